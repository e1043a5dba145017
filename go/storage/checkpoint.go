package storage

// Checkpoints and backups: a snapshot of every live key (value and absolute
// expiry) written as one file, checkpoint-<seq>.ckpt (format: wal_format.go,
// docs/format.md).
//
// A checkpoint is fuzzy with respect to the log and exact with respect to
// the keys: the log is rotated first, so every record with seq < S (the new
// segment's first seq) lies in older segments, and every such record was
// applied before it was appended (engines append after applying), so the
// snapshot taken after the rotation contains it. Records >= S may or may not
// be in the snapshot; replaying them over it is harmless, because a record
// sets keys to absolute values (puts with absolute expiries, deletes) and the
// records of one key are logged in the order they were applied: replaying a
// key's records from any point of its history on ends in its last state.
//
// The file is written as checkpoint-<S>.ckpt.tmp, synced, and, after the log
// is synced up to everything appended during the snapshot (so that no write
// the checkpoint holds can be missing from a log tail cut later), renamed
// and the directory synced. Only then are older segments and checkpoints
// removed.

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
)

// ckptChunk is the payload size after which a checkpoint frame is closed.
const ckptChunk = 256 << 10

// snapshotFunc calls emit for every live key of one consistent snapshot
// (expiry: absolute Unix milliseconds, 0 none), in any order, and returns
// emit's first error.
type snapshotFunc func(emit func(key, value string, expiry int64) error) error

// writeCheckpoint writes the snapshot as dir/checkpoint-<seq>.ckpt through
// fs. beforeRename (may be nil) runs once the file is synced. It returns the
// file's size. On error, the temporary file is removed.
func writeCheckpoint(fs walFS, dir string, seq uint64, snap snapshotFunc, beforeRename func() error) (int64, error) {
	final := filepath.Join(dir, checkpointName(seq))
	tmp := final + ".tmp"
	f, err := fs.Create(tmp)
	if err != nil {
		return 0, err
	}
	size, err := writeCheckpointTo(f, seq, snap)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && beforeRename != nil {
		err = beforeRename()
	}
	if err == nil {
		err = fs.Rename(tmp, final)
	}
	if err == nil {
		err = fs.SyncDir(dir)
	}
	if err != nil {
		fs.Remove(tmp)
		return 0, fmt.Errorf("checkpoint %s: %w", final, err)
	}
	return size, nil
}

func writeCheckpointTo(f walFile, seq uint64, snap snapshotFunc) (int64, error) {
	var size int64
	write := func(b []byte) error {
		n, err := f.Write(b)
		size += int64(n)
		if err == nil && n < len(b) {
			err = fmt.Errorf("short write")
		}
		return err
	}
	if err := write(fileHeader(ckptMagic, seq)); err != nil {
		return size, err
	}
	var entries, chunks uint64
	var payload, frame []byte
	flush := func() error {
		if len(payload) == 0 {
			return nil
		}
		chunks++
		frame = appendFrame(frame[:0], chunks, func(b []byte) []byte { return append(b, payload...) })
		payload = payload[:0]
		return write(frame)
	}
	err := snap(func(key, value string, expiry int64) error {
		payload = appendOp(payload, opPut, key, value, expiry)
		entries++
		if len(payload) >= ckptChunk {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return size, err
	}
	frame = appendFrame(frame[:0], ckptTrailerSeq, func(b []byte) []byte {
		b = binary.LittleEndian.AppendUint64(b, entries)
		return binary.LittleEndian.AppendUint64(b, chunks)
	})
	return size, write(frame)
}
