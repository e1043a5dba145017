package storage

// CheckDir: the offline verifier behind `mantisdb check --data-dir DIR`
// (as `bbolt check`). It reads a closed database exactly as recovery would,
// without modifying anything: every file header, every frame checksum, the
// checkpoint's chunk numbering, trailer and entry count (and that no key
// appears twice in it), the log's continuity from the checkpoint on (no
// missing segment, consecutive record numbers), and every record's content.
// A torn tail of the newest segment is reported but is not an error:
// recovery cuts it, as after any crash.

import (
	"fmt"
	"path/filepath"
	"strings"
)

// CheckReport is what CheckDir found in a data directory.
type CheckReport struct {
	Dir string
	// Checkpoint is the checkpoint file recovery would load ("" if none),
	// with its number of entries.
	Checkpoint        string
	CheckpointEntries uint64
	// Segments are the log segments recovery would read, in order.
	Segments []string
	// Records and LogBytes are the log records after the checkpoint and
	// their size.
	Records  uint64
	LogBytes int64
	// Keys is the number of keys the database holds after recovery
	// (expired ones included).
	Keys uint64
	// TornTail describes the torn tail of the newest segment that
	// recovery would cut ("" if none; the preallocated zeros after the
	// last record of a log that was not closed are not a torn tail).
	TornTail string
}

// String formats the report for people.
func (r CheckReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "data directory %s\n", r.Dir)
	if r.Checkpoint != "" {
		fmt.Fprintf(&b, "checkpoint %s: %d entries, every checksum valid\n", r.Checkpoint, r.CheckpointEntries)
	} else {
		fmt.Fprintf(&b, "no checkpoint\n")
	}
	fmt.Fprintf(&b, "log: %d segments, %d records after the checkpoint (%d bytes), every checksum valid\n",
		len(r.Segments), r.Records, r.LogBytes)
	if r.TornTail != "" {
		fmt.Fprintf(&b, "torn tail (recovery cuts it, normal after a crash): %s\n", r.TornTail)
	}
	fmt.Fprintf(&b, "%d keys after recovery\n", r.Keys)
	return b.String()
}

// CheckDir verifies the closed database in dir and returns what it found.
// The error wraps ErrCorrupt (naming the file and offset) if anything is
// wrong, ErrLocked if an engine has the directory open, or the operating
// system's error. Nothing in dir is modified (the LOCK file is created if
// missing: CheckDir holds it while it reads).
func CheckDir(dir string) (CheckReport, error) {
	r := CheckReport{Dir: dir}
	fs := osFS{}
	if _, err := fs.List(dir); err != nil {
		return r, fmt.Errorf("storage: check: %w", err)
	}
	unlock, err := fs.Lock(filepath.Join(dir, lockFileName))
	if err != nil {
		return r, fmt.Errorf("storage: check: %w", err)
	}
	defer unlock()
	keys := map[string]bool{}
	var dup string
	load := func(ops []walOp) error {
		for _, o := range ops {
			k := string(o.key)
			if keys[k] && dup == "" {
				dup = k
			}
			keys[k] = true
			r.CheckpointEntries++
		}
		return nil
	}
	apply := func(_ uint64, ops []walOp) error {
		for _, o := range ops {
			if o.op == opDelete {
				delete(keys, string(o.key))
			} else {
				keys[string(o.key)] = true
			}
		}
		return nil
	}
	st, err := recoverDir(fs, dir, false, load, apply)
	if st.ckpt != 0 {
		r.Checkpoint = checkpointName(st.ckpt)
	}
	for _, s := range st.segs {
		r.Segments = append(r.Segments, segmentName(s))
	}
	r.Records, r.LogBytes, r.Keys = st.records, st.logBytes, uint64(len(keys))
	if st.tornAt >= 0 && !st.zeroTail && len(st.segs) > 0 {
		r.TornTail = fmt.Sprintf("%s from offset %d", segmentName(st.segs[len(st.segs)-1]), st.tornAt)
	}
	if err != nil {
		return r, fmt.Errorf("storage: check: %w", err)
	}
	if dup != "" {
		return r, fmt.Errorf("storage: check: %w", corruptf(filepath.Join(dir, r.Checkpoint), 0,
			"key %q appears twice", clip(dup)))
	}
	return r, nil
}
