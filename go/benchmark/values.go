package benchmark

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Keys and values.
//
// Key i is "key:" followed by i in 12 decimal digits (16 bytes), so that key
// order is index order and the 14-byte prefix key(i)[:14] names the group of
// the 100 keys i - i%100 .. i - i%100 + 99 (the scan suites use those groups).
//
// A value carries what is needed to check it without remembering it:
//
//	[0:8)    version, big-endian (which write of the key made it)
//	[8:16)   check word = mix(hash(key), version)
//	[16:16+len(key))  the key
//	the rest padding: the check word's 8 little-endian bytes, repeated
//	         (or, for incompressible values, a stream seeded by it)
//
// and its length is a function of the key and the version (fixed for most
// suites, 16-64 KiB for memory-pressure). A value read back for a key is
// valid for that key and version only if every byte is the one written, so a
// value of another key, a truncated or torn value, or a flipped byte anywhere
// is detected.

const (
	keyLen      = 16
	groupPrefix = 14 // bytes of a key naming its group of 100
	valueHeader = 16
)

// keyOf returns the key of index i.
func keyOf(i uint64) string {
	var b [keyLen]byte
	copy(b[:], "key:")
	for p := keyLen - 1; p >= 4; p-- {
		b[p] = byte('0' + i%10)
		i /= 10
	}
	return string(b[:])
}

// keyIndex parses a key made by keyOf; ok is false for anything else.
func keyIndex(k string) (uint64, bool) {
	if len(k) != keyLen || k[:4] != "key:" {
		return 0, false
	}
	var i uint64
	for p := 4; p < keyLen; p++ {
		c := k[p]
		if c < '0' || c > '9' {
			return 0, false
		}
		i = i*10 + uint64(c-'0')
	}
	return i, true
}

// hashKey is FNV-1a finished with a 64-bit mixer.
func hashKey(k string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(k); i++ {
		h ^= uint64(k[i])
		h *= 1099511628211
	}
	return mix64(h)
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// valueSpec gives value lengths: Min..Max bytes, chosen from the key and the
// version. Incompressible values pad with a pseudo-random stream seeded by
// the check word instead of the word repeated: the durable suites use them,
// so that the peers that compress their files (pebble, badger) store as many
// bytes as the data holds and disk/live compares like with like.
type valueSpec struct {
	Min, Max       int
	Incompressible bool
}

func (s valueSpec) size(word uint64) int {
	if s.Max <= s.Min {
		return s.Min
	}
	return s.Min + int(word%uint64(s.Max-s.Min+1))
}

// codec builds and checks values; one per worker (it has a scratch buffer).
type codec struct {
	spec valueSpec
	pad  []byte
}

func newCodec(spec valueSpec) *codec {
	if spec.Min < valueHeader+keyLen {
		spec.Min = valueHeader + keyLen
	}
	if spec.Max < spec.Min {
		spec.Max = spec.Min
	}
	return &codec{spec: spec}
}

// padding returns n bytes of the check word repeated (scratch memory).
func (c *codec) padding(word uint64, n int) []byte {
	if cap(c.pad) < n+8 {
		c.pad = make([]byte, n+8)
	}
	p := c.pad[:n+8]
	if c.spec.Incompressible {
		for i := 0; i < n; i += 8 {
			binary.LittleEndian.PutUint64(p[i:], mix64(word+uint64(i)*0x9e3779b97f4a7c15))
		}
		return p[:n]
	}
	binary.LittleEndian.PutUint64(p, word)
	for filled := 8; filled < n; filled *= 2 {
		copy(p[filled:], p[:filled])
	}
	return p[:n]
}

// value returns the value of key at version.
func (c *codec) value(key string, version uint64) string {
	word := mix64(hashKey(key) ^ version*0x9e3779b97f4a7c15)
	size := max(c.spec.size(word), valueHeader+len(key))
	var b strings.Builder
	b.Grow(size)
	var hdr [valueHeader]byte
	binary.BigEndian.PutUint64(hdr[0:8], version)
	binary.BigEndian.PutUint64(hdr[8:16], word)
	b.Write(hdr[:])
	b.WriteString(key)
	b.Write(c.padding(word, size-valueHeader-len(key)))
	return b.String()
}

// check verifies that v is a value written for key and returns its version.
func (c *codec) check(key, v string) (uint64, error) {
	if len(v) < valueHeader+len(key) {
		return 0, fmt.Errorf("value of %q is %d bytes, too short to be one written by the suite", key, len(v))
	}
	version := binary.BigEndian.Uint64([]byte(v[0:8]))
	word := binary.BigEndian.Uint64([]byte(v[8:16]))
	if want := mix64(hashKey(key) ^ version*0x9e3779b97f4a7c15); word != want {
		return 0, fmt.Errorf("value of %q has a wrong check word (version %d): not a value written for this key", key, version)
	}
	if v[valueHeader:valueHeader+len(key)] != key {
		return 0, fmt.Errorf("value of %q carries key %q", key, v[valueHeader:valueHeader+len(key)])
	}
	size := max(c.spec.size(word), valueHeader+len(key))
	if len(v) != size {
		return 0, fmt.Errorf("value of %q (version %d) is %d bytes, written %d", key, version, len(v), size)
	}
	if string(c.padding(word, size-valueHeader-len(key))) != v[valueHeader+len(key):] {
		return 0, fmt.Errorf("value of %q (version %d) has corrupted bytes", key, version)
	}
	return version, nil
}
