package storage

// Recovery: load the newest checkpoint, replay the log after it.
//
// The rules (docs/format.md, "Recovery"):
//   - *.tmp files are checkpoints that were never renamed: removed.
//   - The newest checkpoint must be whole (every frame's checksum and the
//     trailer); if not, ErrCorrupt: an older one may lack records whose
//     segments are already gone, so falling back could drop acknowledged
//     data. Older checkpoints (a crash before their removal) are removed.
//   - Segments whose records all precede the checkpoint are removed; the
//     first remaining one must start at or before the checkpoint's seq (or
//     at 1 without a checkpoint), and each segment must start where the
//     previous one ended: a missing segment is ErrCorrupt.
//   - A newest segment no longer than a header whose header is not valid,
//     or whose header does not checksum and holds no valid frame, is a
//     torn creation (its header is synced before any record is written):
//     removed.
//   - Frames carry consecutive seqs. In every segment but the newest, any
//     bad frame is ErrCorrupt. In the newest, a bad frame is a torn tail
//     (cut there, the file truncated) if no valid frame with a later seq
//     follows it anywhere in the file, else ErrCorrupt: a write torn by a
//     crash leaves garbage only at the end, a flipped byte in the middle
//     leaves valid frames after it. The zeros the writer preallocates after
//     the last record (wal_log.go) are such a tail: the newest segment of a
//     log that was not closed ends with them, and they are cut the same
//     way (a closed segment was trimmed to its last record).
//   - A frame whose checksum holds but whose content is malformed is
//     ErrCorrupt (it was written that way: nothing to recover).
//   - The newest segment is synced (cut at a torn tail, if any) and the
//     directory synced before obsolete files are removed: after a process
//     kill, the recovered state may not be durable yet.
// Nothing of the directory is modified before every check that can fail
// passed, except removing *.tmp files and truncating the torn tail.

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
)

// dirState is what recovery found.
type dirState struct {
	ckpt     uint64   // the checkpoint's seq (0: none)
	ckptSize int64    // its size in bytes
	segs     []uint64 // the live segments' first seqs, ascending
	next     uint64   // the seq the next record gets
	logBytes int64    // bytes of log replayed
	records  uint64   // records replayed
	tornAt   int64    // where the newest segment was cut (-1: not torn)
	zeroTail bool     // and only zeros followed (its preallocated end)
}

// scanDir lists dir's checkpoints and segments (ascending).
func scanDir(fs walFS, dir string) (ckpts, segs []uint64, tmps []string, err error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			tmps = append(tmps, n)
			continue
		}
		switch kind, seq, ok := parseName(n); {
		case !ok:
		case kind == "wal":
			segs = append(segs, seq)
		default:
			ckpts = append(ckpts, seq)
		}
	}
	return ckpts, segs, tmps, nil
}

// recoverDir loads dir into an engine: load receives the checkpoint's
// entries (chunk by chunk, after the whole file was verified), apply every
// log record at or after the checkpoint's seq, in order. repair allows
// removing stale files and truncating the torn tail (Init); without it
// (check) nothing is modified.
func recoverDir(fs walFS, dir string, repair bool, load func([]walOp) error, apply func(seq uint64, ops []walOp) error) (dirState, error) {
	st := dirState{tornAt: -1}
	ckpts, segs, tmps, err := scanDir(fs, dir)
	if err != nil {
		return st, err
	}
	if repair {
		for _, t := range tmps {
			fs.Remove(filepath.Join(dir, t))
		}
	}
	next := uint64(1)
	if len(ckpts) > 0 {
		st.ckpt = ckpts[len(ckpts)-1]
		size, err := readCheckpoint(fs, filepath.Join(dir, checkpointName(st.ckpt)), st.ckpt, load)
		if err != nil {
			return st, err
		}
		st.ckptSize = size
		next = st.ckpt
	}
	// Segments that end before the checkpoint are obsolete.
	first := 0
	for first+1 < len(segs) && segs[first+1] <= next {
		first++
	}
	live := segs[first:]
	if len(live) > 0 && live[0] > next {
		return st, corruptf(filepath.Join(dir, segmentName(live[0])), 0,
			"log starts at record %d, records from %d are missing", live[0], next)
	}
	var ops []walOp
	for i, seg := range live {
		name := filepath.Join(dir, segmentName(seg))
		newest := i == len(live)-1
		if seg != next && !(i == 0 && seg <= next) {
			return st, corruptf(name, 0, "segment starts at record %d, want %d", seg, next)
		}
		b, err := fs.ReadFile(name)
		if err != nil {
			return st, err
		}
		if newest && tornCreation(b, seg) {
			// Torn creation: the crash came before its header was
			// synced (records are written only after that), so it
			// holds no record.
			st.tornAt = 0
			if repair {
				if err := fs.Remove(name); err != nil {
					return st, err
				}
			}
			live = live[:i]
			break
		}
		hseq, err := parseHeader(b, walMagic, name)
		if err != nil {
			return st, err
		}
		if hseq != seg {
			return st, corruptf(name, 16, "header says record %d, name says %d", hseq, seg)
		}
		expect := seg
		off := fileHeaderSize
		for off < len(b) {
			seq, payload, end, ok := frameAt(b, off)
			if ok && seq != expect {
				return st, corruptf(name, int64(off), "record %d, want %d", seq, expect)
			}
			if !ok {
				if !newest || laterFrame(b, off+1, expect) {
					return st, corruptf(name, int64(off), "record %d: bad checksum or length", expect)
				}
				st.tornAt = int64(off)
				st.zeroTail = allZero(b[off:])
				break
			}
			if seq >= next {
				ops, err = decodeOps(payload, ops[:0])
				if err != nil {
					return st, corruptf(name, int64(off), "record %d: %v", seq, err)
				}
				if err := apply(seq, ops); err != nil {
					return st, err
				}
				st.records++
				st.logBytes += int64(end - off)
				next = seq + 1
			}
			expect = seq + 1
			off = end
		}
		if expect > next {
			next = expect
		}
		if newest && repair {
			// Cut a torn tail, and sync the segment either way: after
			// a process kill its last records may be in the page cache
			// only; the next segment will follow it, so a later power
			// loss must not cut it (a gap: ErrCorrupt).
			end := int64(len(b))
			if st.tornAt >= 0 {
				end = st.tornAt
			}
			if err := fs.Truncate(name, end); err != nil {
				return st, err
			}
		}
	}
	if repair && (len(ckpts) > 1 || first > 0) {
		// The checkpoint that makes these obsolete may have been
		// renamed by a process killed before its directory sync: make
		// it durable first, else a removal may reach the disk before it.
		if err := fs.SyncDir(dir); err != nil {
			return st, err
		}
		for _, c := range ckpts[:max(len(ckpts)-1, 0)] {
			fs.Remove(filepath.Join(dir, checkpointName(c)))
		}
		for _, s := range segs[:first] {
			fs.Remove(filepath.Join(dir, segmentName(s)))
		}
	}
	st.segs = live
	st.next = next
	return st, nil
}

// tornCreation reports whether b, the newest segment (whose name says seq),
// is one whose creation a crash interrupted: shorter than a header, a
// header-sized file without a valid header, or a header that does not
// checksum (zeros or garbage, up to the preallocated length: the size may
// reach the disk before the data) with no valid frame anywhere after it.
// The header is synced before any record is written, so such a file holds
// none; a header that checksums (another version, say) is never torn.
func tornCreation(b []byte, seq uint64) bool {
	if len(b) < fileHeaderSize || (len(b) == fileHeaderSize && !validHeader(b, walMagic, seq)) {
		return true
	}
	return crc32c(b[:24]) != binary.LittleEndian.Uint32(b[24:]) && !laterFrame(b, 0, seq)
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// validHeader reports whether b starts with a valid header of magic and seq.
func validHeader(b []byte, magic string, seq uint64) bool {
	h, err := parseHeader(b, magic, "")
	return err == nil && h == seq
}

// laterFrame reports whether a valid frame with a seq after expect starts
// anywhere in b from off on. Candidates are filtered by a plausible seq
// before the checksum is computed, so the scan is linear in practice.
func laterFrame(b []byte, off int, expect uint64) bool {
	for ; off+frameHeaderSize <= len(b); off++ {
		seq := binary.LittleEndian.Uint64(b[off+8:])
		if seq < expect || seq-expect > 1<<32 {
			continue
		}
		if _, _, _, ok := frameAt(b, off); ok {
			return true
		}
	}
	return false
}

// readCheckpoint verifies the checkpoint file name (whose replay seq is
// seq) and then passes its entries to load, chunk by chunk.
func readCheckpoint(fs walFS, name string, seq uint64, load func([]walOp) error) (int64, error) {
	b, err := fs.ReadFile(name)
	if err != nil {
		return 0, err
	}
	hseq, err := parseHeader(b, ckptMagic, name)
	if err != nil {
		return 0, err
	}
	if hseq != seq {
		return 0, corruptf(name, 16, "header says record %d, name says %d", hseq, seq)
	}
	// Pass 1: every checksum, the chunk numbering and the trailer.
	var entries, chunks uint64
	off, trailer := fileHeaderSize, -1
	for off < len(b) {
		fseq, payload, end, ok := frameAt(b, off)
		if !ok {
			return 0, corruptf(name, int64(off), "bad checksum or length")
		}
		if fseq == ckptTrailerSeq {
			if len(payload) != 16 || end != len(b) {
				return 0, corruptf(name, int64(off), "malformed trailer")
			}
			trailer = off
			if binary.LittleEndian.Uint64(payload[8:]) != chunks {
				return 0, corruptf(name, int64(off), "trailer counts %d chunks, file has %d",
					binary.LittleEndian.Uint64(payload[8:]), chunks)
			}
			entries = binary.LittleEndian.Uint64(payload)
		} else if fseq != chunks+1 {
			return 0, corruptf(name, int64(off), "chunk %d, want %d", fseq, chunks+1)
		}
		chunks++
		off = end
	}
	if trailer < 0 {
		return 0, corruptf(name, int64(len(b)), "no trailer")
	}
	chunks--
	// Pass 2: decode and load.
	var ops []walOp
	var n uint64
	for off = fileHeaderSize; off < trailer; {
		_, payload, end, _ := frameAt(b, off)
		ops, err = decodeOps(payload, ops[:0])
		if err != nil {
			return 0, corruptf(name, int64(off), "%v", err)
		}
		for _, o := range ops {
			if o.op != opPut {
				return 0, corruptf(name, int64(off), "op %d in a checkpoint", o.op)
			}
		}
		n += uint64(len(ops))
		if n > entries {
			return 0, corruptf(name, int64(off), "more entries than the trailer's %d", entries)
		}
		if err := load(ops); err != nil {
			return 0, err
		}
		off = end
	}
	if n != entries {
		return 0, corruptf(name, int64(trailer), "%d entries, trailer says %d", n, entries)
	}
	return int64(len(b)), nil
}

// errNotDurable is returned by durable-only calls on an in-memory engine.
var errNotDurable = fmt.Errorf("storage: engine has no data directory")
