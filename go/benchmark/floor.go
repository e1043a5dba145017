package benchmark

// The disk's floor for synced writes: one writer rewriting a 4 KiB page of a
// preallocated file and calling fdatasync after each write, for the suite
// duration, in the directory where the durable suites keep their databases.
// Preallocated and rewritten in place, no fdatasync has to write file-size
// metadata: this is the fastest one writer can make a write durable, the
// rate that group commit must multiply.

import (
	"fmt"
	"os"
	"time"
)

// DiskFloor is the disk measurement of a run with durable suites.
type DiskFloor struct {
	// Dir is where the durable suites' databases were made; FS its file
	// system type (statfs; "tmpfs" makes every durable figure meaningless).
	Dir string `json:"dir"`
	FS  string `json:"fs"`
	// FdatasyncsPerSec is one writer's rate of 4 KiB write + fdatasync.
	FdatasyncsPerSec float64 `json:"fdatasyncs_per_sec"`
	P50Ns            int64   `json:"p50_ns"`
	P99Ns            int64   `json:"p99_ns"`
	Count            uint64  `json:"count"`
}

const floorFileBytes = 1 << 20

// measureFloor measures the fdatasync floor in dir for d (at least 200 ms).
func measureFloor(dir string, d time.Duration) (*DiskFloor, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "mantisdb-fdatasync-floor-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	page := make([]byte, 4096)
	for off := int64(0); off < floorFileBytes; off += int64(len(page)) {
		if _, err := f.WriteAt(page, off); err != nil {
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	h := newHistogram(histMaxNs)
	d = max(d, 200*time.Millisecond)
	start := time.Now()
	var off int64
	for time.Since(start) < d {
		page[0]++
		t := time.Now()
		if _, err := f.WriteAt(page, off); err != nil {
			return nil, err
		}
		if err := fdatasync(f); err != nil {
			return nil, fmt.Errorf("fdatasync: %w", err)
		}
		h.record(time.Since(t).Nanoseconds())
		off = (off + int64(len(page))) % floorFileBytes
	}
	el := time.Since(start)
	return &DiskFloor{Dir: dir, FS: fsType(dir), FdatasyncsPerSec: float64(h.count()) / el.Seconds(),
		P50Ns: h.quantile(50), P99Ns: h.quantile(99), Count: h.count()}, nil
}
