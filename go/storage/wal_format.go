package storage

// The on-disk format shared by both engines (docs/format.md is the
// specification; this file is its only implementation, so the pure-Go and the
// C engine cannot drift apart).
//
// A data directory holds
//
//	LOCK                          flock'ed while an engine has it open
//	wal-<16 hex>.log              log segments; the number is the seq of the
//	                              first record the segment may hold
//	checkpoint-<16 hex>.ckpt      a checkpoint; the number is the seq replay
//	                              starts from (every record before it is in
//	                              the checkpoint)
//	*.tmp                         a checkpoint being written (ignored, removed)
//
// Both file kinds start with a 32-byte header and continue with frames:
//
//	header: magic[8] ("MANTISWL" or "MANTISCP"), u32 version (1),
//	        u32 flags (0), u64 seq (first record / replay start),
//	        u32 crc32c(bytes 0..24), u32 zero
//	frame:  u32 crc32c(bytes 4..16+len), u32 len, u64 seq, len payload bytes
//
// A frame's checksum covers its length and seq, so a flipped length or seq
// is caught like a flipped payload byte. Integers are little-endian. The
// payload of a log frame (one write group: a Put, Delete, batch or commit,
// atomic on replay) and of a checkpoint chunk is a run of ops:
//
//	u8 op (1 put, 2 delete), u32 klen, u32 vlen, i64 expiry, key, value
//
// expiry is an absolute wall-clock time in Unix milliseconds (0: none), so a
// TTL means the same after a restart whatever the engines' monotonic clocks
// did. A checkpoint's last frame has seq ckptTrailerSeq and a 16-byte
// payload: u64 entries, u64 chunks; a checkpoint without it is corrupt.

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

const (
	walMagic        = "MANTISWL"
	ckptMagic       = "MANTISCP"
	formatVersion   = 1
	fileHeaderSize  = 32
	frameHeaderSize = 16
	opHeaderSize    = 17 // u8 op, u32 klen, u32 vlen, i64 expiry

	opPut    = 1
	opDelete = 2

	// maxFramePayload bounds a frame's length field: a batch's encoding
	// is at most MaxBatchSize, a single put's one op of the largest key and
	// value; anything longer is corruption.
	maxFramePayload = max(MaxBatchSize, opHeaderSize+MaxKeySize+MaxValueSize)

	ckptTrailerSeq = ^uint64(0)
	lockFileName   = "LOCK"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crcTable) }

// segmentName and checkpointName are the file names for seq.
func segmentName(seq uint64) string    { return fmt.Sprintf("wal-%016x.log", seq) }
func checkpointName(seq uint64) string { return fmt.Sprintf("checkpoint-%016x.ckpt", seq) }

// parseName returns the seq of a segment ("wal") or checkpoint ("ckpt")
// file name; ok is false for any other name.
func parseName(name string) (kind string, seq uint64, ok bool) {
	var hex string
	switch {
	case strings.HasPrefix(name, "wal-") && strings.HasSuffix(name, ".log"):
		kind, hex = "wal", strings.TrimSuffix(strings.TrimPrefix(name, "wal-"), ".log")
	case strings.HasPrefix(name, "checkpoint-") && strings.HasSuffix(name, ".ckpt"):
		kind, hex = "ckpt", strings.TrimSuffix(strings.TrimPrefix(name, "checkpoint-"), ".ckpt")
	default:
		return "", 0, false
	}
	if len(hex) != 16 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return "", 0, false
	}
	return kind, seq, true
}

// fileHeader returns the header of a file of kind magic starting at seq.
func fileHeader(magic string, seq uint64) []byte {
	h := make([]byte, fileHeaderSize)
	copy(h, magic)
	binary.LittleEndian.PutUint32(h[8:], formatVersion)
	binary.LittleEndian.PutUint64(h[16:], seq)
	binary.LittleEndian.PutUint32(h[24:], crc32c(h[:24]))
	return h
}

// parseHeader checks b's header against magic and returns its seq.
func parseHeader(b []byte, magic, file string) (uint64, error) {
	if len(b) < fileHeaderSize {
		return 0, corruptf(file, 0, "header of %d bytes", len(b))
	}
	if crc32c(b[:24]) != binary.LittleEndian.Uint32(b[24:]) {
		return 0, corruptf(file, 0, "header checksum mismatch")
	}
	if string(b[:8]) != magic {
		return 0, corruptf(file, 0, "magic %q, want %q", b[:8], magic)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != formatVersion {
		return 0, corruptf(file, 8, "format version %d, this build reads %d", v, formatVersion)
	}
	return binary.LittleEndian.Uint64(b[16:]), nil
}

// corruptf returns an ErrCorrupt naming file and offset.
func corruptf(file string, off int64, format string, args ...any) error {
	return fmt.Errorf("%w (%s at offset %d: %s)", ErrCorrupt, file, off, fmt.Sprintf(format, args...))
}

// appendFrame appends a frame of seq around the payload that fill appends to
// b, and returns the extended buffer.
func appendFrame(b []byte, seq uint64, fill func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, frameHeaderSize)...)
	b = fill(b)
	n := len(b) - start - frameHeaderSize
	binary.LittleEndian.PutUint32(b[start+4:], uint32(n))
	binary.LittleEndian.PutUint64(b[start+8:], seq)
	binary.LittleEndian.PutUint32(b[start:], crc32c(b[start+4:]))
	return b
}

// appendOp appends one op to a payload.
func appendOp(b []byte, op byte, key, value string, expiry int64) []byte {
	var h [opHeaderSize]byte
	h[0] = op
	binary.LittleEndian.PutUint32(h[1:], uint32(len(key)))
	binary.LittleEndian.PutUint32(h[5:], uint32(len(value)))
	binary.LittleEndian.PutUint64(h[9:], uint64(expiry))
	b = append(b, h[:]...)
	b = append(b, key...)
	return append(b, value...)
}

// frameAt decodes the frame at off of b. ok is false if no whole, valid
// frame starts there (short, implausible length, or checksum mismatch).
func frameAt(b []byte, off int) (seq uint64, payload []byte, next int, ok bool) {
	if len(b)-off < frameHeaderSize {
		return 0, nil, 0, false
	}
	n := int(binary.LittleEndian.Uint32(b[off+4:]))
	if n > maxFramePayload || n > len(b)-off-frameHeaderSize {
		return 0, nil, 0, false
	}
	end := off + frameHeaderSize + n
	if crc32c(b[off+4:end]) != binary.LittleEndian.Uint32(b[off:]) {
		return 0, nil, 0, false
	}
	return binary.LittleEndian.Uint64(b[off+8:]), b[off+frameHeaderSize : end], end, true
}

// walOp is one decoded op. key and value alias the payload.
type walOp struct {
	op         byte
	key, value []byte
	expiry     int64
}

// decodeOps decodes a frame's payload into ops (appended to ops). A
// malformed payload (its checksum held, so it was written that way: a bug,
// or a forged file) is an error.
func decodeOps(p []byte, ops []walOp) ([]walOp, error) {
	for off := 0; off < len(p); {
		if len(p)-off < opHeaderSize {
			return ops, fmt.Errorf("op header cut at %d of %d", off, len(p))
		}
		op := p[off]
		kl := int(binary.LittleEndian.Uint32(p[off+1:]))
		vl := int(binary.LittleEndian.Uint32(p[off+5:]))
		exp := int64(binary.LittleEndian.Uint64(p[off+9:]))
		off += opHeaderSize
		switch {
		case op != opPut && op != opDelete:
			return ops, fmt.Errorf("unknown op %d", op)
		case kl == 0 || kl > MaxKeySize:
			return ops, fmt.Errorf("key of %d bytes", kl)
		case vl > MaxValueSize || (op == opDelete && (vl != 0 || exp != 0)):
			return ops, fmt.Errorf("value of %d bytes", vl)
		case exp < 0:
			return ops, fmt.Errorf("expiry %d", exp)
		case kl+vl > len(p)-off:
			return ops, fmt.Errorf("op cut at %d of %d", off, len(p))
		}
		ops = append(ops, walOp{op: op, key: p[off : off+kl], value: p[off+kl : off+kl+vl], expiry: exp})
		off += kl + vl
	}
	return ops, nil
}
