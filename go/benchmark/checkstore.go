package benchmark

import (
	"fmt"
	"os"
	"sync"
)

// CheckStore is a small correctness check of an adapter, for tests (the peers'
// module runs it on every peer): writes, overwrites, deletes and misses,
// sequentially and from several goroutines, and for ordered stores prefix
// scans (ascending, prefix-bounded, stoppable). A lossy store (a cache) may
// miss any key, but must hit some; every hit must return a value written for
// the key (the last one after a sequential overwrite; under concurrent
// rewrites of fresh keys an older one is accepted from a cache), and a
// deleted key must not be found.
func CheckStore(reg Registration) error {
	if reg.New == nil {
		return fmt.Errorf("%s: no in-memory store (see CheckDurable)", reg.Name)
	}
	s, err := reg.New(4 * checkKeys)
	if err != nil {
		return fmt.Errorf("%s: new: %w", reg.Name, err)
	}
	if _, err := exercise(reg, s); err != nil {
		s.Close()
		return err
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", reg.Name, err)
	}
	return nil
}

// CheckDurable runs CheckStore's checks on the store reg.Durable opens (with
// synced writes) in a temporary directory, closes it, opens a second one on
// the same directory and checks that it holds exactly what the first held
// at its Close: every key at its last version, deleted keys absent.
func CheckDurable(reg Registration) error {
	if reg.Durable == nil {
		return fmt.Errorf("%s: no durable mode", reg.Name)
	}
	dir, err := os.MkdirTemp("", "mantisdb-checkdurable-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := reg.Durable(dir, true)
	if err != nil {
		return fmt.Errorf("%s: open %s: %w", reg.Name, dir, err)
	}
	want, err := exercise(reg, s)
	if err != nil {
		s.Close()
		return err
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", reg.Name, err)
	}
	s, err = reg.Durable(dir, true)
	if err != nil {
		return fmt.Errorf("%s: reopen %s: %w", reg.Name, dir, err)
	}
	defer s.Close()
	c := newCodec(smallValue)
	lost := 0
	for i, ver := range want {
		k := keyOf(i)
		v, found, err := s.Get(k)
		switch {
		case err != nil:
			return fmt.Errorf("%s: after the reopen: get %q: %w", reg.Name, k, err)
		case found && ver == 0:
			return fmt.Errorf("%s: after the reopen: %q is back, it was deleted", reg.Name, k)
		case !found && ver != 0:
			lost++
		case found:
			got, err := c.check(k, v)
			if err != nil {
				return fmt.Errorf("%s: after the reopen: %w", reg.Name, err)
			}
			if got != ver {
				return fmt.Errorf("%s: after the reopen: %q holds version %d, want %d", reg.Name, k, got, ver)
			}
		}
	}
	if lost > 0 {
		return fmt.Errorf("%s: the reopen lost %d of the %d keys written: not durable", reg.Name, lost, len(want))
	}
	return nil
}

const checkKeys = 300 // keys 0..299: three scan groups

// exercise runs the checks on s and returns the version each key it wrote
// must hold at the end (0: deleted).
func exercise(reg Registration, s Store) (map[uint64]uint64, error) {
	const n = checkKeys
	final := map[uint64]uint64{}
	c := newCodec(smallValue)
	put := func(i, ver uint64) error {
		if err := s.Put(keyOf(i), c.value(keyOf(i), ver)); err != nil {
			return fmt.Errorf("%s: put %q: %w", reg.Name, keyOf(i), err)
		}
		return nil
	}
	// get checks key i: want 0 means it must be absent.
	hits := 0
	get := func(i, want uint64) error {
		k := keyOf(i)
		v, found, err := s.Get(k)
		switch {
		case err != nil:
			return fmt.Errorf("%s: get %q: %w", reg.Name, k, err)
		case !found && want != 0 && !reg.Lossy:
			return fmt.Errorf("%s: get %q: missing, version %d was written", reg.Name, k, want)
		case found && want == 0:
			return fmt.Errorf("%s: get %q: found a key that was deleted or never written", reg.Name, k)
		case found:
			hits++
			ver, err := c.check(k, v)
			if err != nil {
				return fmt.Errorf("%s: %w", reg.Name, err)
			}
			if ver != want {
				return fmt.Errorf("%s: get %q: version %d, want %d", reg.Name, k, ver, want)
			}
		}
		return nil
	}

	if bs, ok := s.(BatchStore); ok {
		batch := map[string]string{}
		for i := uint64(0); i < n; i++ {
			batch[keyOf(i)] = c.value(keyOf(i), 1)
		}
		if err := bs.BatchPut(batch); err != nil {
			return nil, fmt.Errorf("%s: batch put: %w", reg.Name, err)
		}
	} else {
		for i := uint64(0); i < n; i++ {
			if err := put(i, 1); err != nil {
				return nil, err
			}
		}
	}
	for i := uint64(0); i < n; i++ {
		if err := get(i, 1); err != nil {
			return nil, err
		}
	}
	if hits == 0 {
		return nil, fmt.Errorf("%s: none of %d keys just written was found", reg.Name, n)
	}
	if err := get(n+7, 0); err != nil {
		return nil, err
	}
	// Overwrite the even keys, delete every fourth odd key.
	want := make([]uint64, n)
	for i := uint64(0); i < n; i++ {
		want[i] = 1
		switch {
		case i%2 == 0:
			want[i] = 2
			if err := put(i, 2); err != nil {
				return nil, err
			}
		case i%8 == 1:
			want[i] = 0
			if err := s.Delete(keyOf(i)); err != nil {
				return nil, fmt.Errorf("%s: delete %q: %w", reg.Name, keyOf(i), err)
			}
		}
	}
	if err := s.Delete(keyOf(n + 9)); err != nil {
		return nil, fmt.Errorf("%s: delete of a missing key: %w", reg.Name, err)
	}
	for i := uint64(0); i < n; i++ {
		if err := get(i, want[i]); err != nil {
			return nil, err
		}
	}

	if reg.Ordered {
		o, ok := s.(OrderedStore)
		if !ok {
			return nil, fmt.Errorf("%s: registered as ordered but has no Scan", reg.Name)
		}
		prefix := keyOf(100)[:groupPrefix]
		var got []uint64
		if err := o.Scan(prefix, func(k, v string) bool {
			i, ok := keyIndex(k)
			if !ok {
				got = append(got, ^uint64(0))
				return false
			}
			got = append(got, i)
			if ver, err := c.check(k, v); err != nil || ver != want[i] {
				got = append(got, ^uint64(0))
				return false
			}
			return true
		}); err != nil {
			return nil, fmt.Errorf("%s: scan %q: %w", reg.Name, prefix, err)
		}
		var exp []uint64
		for i := uint64(100); i < 200; i++ {
			if want[i] != 0 {
				exp = append(exp, i)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			return nil, fmt.Errorf("%s: scan %q returned keys %v, want %v", reg.Name, prefix, got, exp)
		}
		calls := 0
		if err := o.Scan(prefix, func(string, string) bool { calls++; return calls < 3 }); err != nil {
			return nil, fmt.Errorf("%s: scan: %w", reg.Name, err)
		}
		if calls != 3 {
			return nil, fmt.Errorf("%s: a scan told to stop after 3 keys called back %d times", reg.Name, calls)
		}
	}

	// Several goroutines, each on its own keys.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := uint64(0); g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newCodec(smallValue)
			for round := uint64(1); round <= 50; round++ {
				for j := uint64(0); j < 10; j++ {
					i := 2*n + g*10 + j
					k := keyOf(i)
					if err := s.Put(k, c.value(k, round)); err != nil {
						errs <- fmt.Errorf("%s: concurrent put: %w", reg.Name, err)
						return
					}
					v, found, err := s.Get(k)
					if err != nil {
						errs <- fmt.Errorf("%s: concurrent get: %w", reg.Name, err)
						return
					}
					if !found {
						if reg.Lossy {
							continue
						}
						errs <- fmt.Errorf("%s: concurrent get %q: missing after its put", reg.Name, k)
						return
					}
					ver, err := c.check(k, v)
					// A cache may return an older version it was
					// given (ristretto drops the second Set of a key
					// whose first Set is still in its buffers), never
					// one that was not written.
					if err != nil || ver > round || (ver != round && !reg.Lossy) {
						errs <- fmt.Errorf("%s: concurrent get %q: version %d (%v), want %d", reg.Name, k, ver, err, round)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	for i := uint64(0); i < n; i++ {
		final[i] = want[i]
	}
	for i := 2 * n; i < 2*n+40; i++ {
		final[uint64(i)] = 50
	}
	return final, nil
}
