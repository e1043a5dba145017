package storage

// FuzzEngineVsModel is a metamorphic test: the fuzz input decodes to a
// sequence of operations that is applied both to an engine and to a plain
// map model, and every result (values, error kinds, iteration order,
// snapshots, transaction conflicts, counters) must agree. Its seed corpus in
// testdata/fuzz/FuzzEngineVsModel runs in every `go test`; `go test -fuzz
// FuzzEngineVsModel` explores further.
//
// Input format: a stream of bytes; each operation is one opcode byte
// followed by its operands (keys, values, counts, slots). Reading past the
// end yields zeros, and the run stops when the input is consumed.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Error kinds compared between the engine and the model.
type errKind int

const (
	kOK errKind = iota
	kNotFound
	kInvalidKey
	kTooLarge
	kConflict
	kTxnDone
	kClosed
	kOther
)

func (k errKind) String() string {
	return [...]string{"ok", "ErrNotFound", "ErrInvalidKey", "ErrTooLarge", "ErrConflict", "ErrTxnDone", "ErrClosed", "other"}[k]
}

func kindOf(err error) errKind {
	switch {
	case err == nil:
		return kOK
	case errors.Is(err, ErrNotFound):
		return kNotFound
	case errors.Is(err, ErrInvalidKey):
		return kInvalidKey
	case errors.Is(err, ErrTooLarge):
		return kTooLarge
	case errors.Is(err, ErrConflict):
		return kConflict
	case errors.Is(err, ErrTxnDone):
		return kTxnDone
	case errors.Is(err, ErrClosed):
		return kClosed
	}
	return kOther
}

// keyKind is the model's validation of a key.
func keyKind(k string) errKind {
	switch {
	case k == "":
		return kInvalidKey
	case len(k) > MaxKeySize:
		return kTooLarge
	}
	return kOK
}

var hugeValue = sync.OnceValue(func() string { return hugeString(MaxValueSize + 1) })
var hugeKey = strings.Repeat("K", MaxKeySize+1)
var maxKey = strings.Repeat("M", MaxKeySize)

// fuzzKeys is the pool most keys come from, so that operations collide.
var fuzzKeys = []string{"a", "b", "ab", "abc", "a\x00", "\x00", "\x00\x00", "\xff", "\xff\xfe", "b\x00c",
	"\xc3\x28", "k1", "k2", "k10", "", hugeKey, maxKey, "a/b", "a/c", "zz"}

// fuzzPrefixes are the iterator prefixes.
var fuzzPrefixes = []string{"", "a", "a\x00", "\x00", "\xff", "k", "k1", "a/", "z", "abcd", hugeKey, maxKey}

// decoder reads operands from the fuzz input.
type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) more() bool { return d.pos < len(d.data) }

func (d *decoder) byte() byte {
	if d.pos >= len(d.data) {
		return 0
	}
	b := d.data[d.pos]
	d.pos++
	return b
}

// raw reads n bytes (fewer at the end).
func (d *decoder) raw(n int) string {
	end := min(d.pos+n, len(d.data))
	s := string(d.data[d.pos:end])
	d.pos = end
	return s
}

// key: a pool key (byte < 224) or 1..32 raw bytes.
func (d *decoder) key() string {
	b := d.byte()
	if b < 224 {
		return fuzzKeys[int(b)%len(fuzzKeys)]
	}
	return d.raw(int(b-224) + 1)
}

// value: short raw bytes, a generated value, the empty value or an
// oversized one.
func (d *decoder) value() string {
	b := d.byte()
	switch {
	case b < 128:
		return d.raw(int(b % 16))
	case b < 250:
		return fmt.Sprintf("v%d", b)
	case b < 254:
		return ""
	case b == 254:
		return strings.Repeat("\x00\xff", 2000)
	}
	return hugeValue()
}

// model is the reference: a plain map, plus the last-write sequence number
// of every key ever written or deleted (for conflict detection).
type model struct {
	m      map[string]string
	seq    uint64
	kseq   map[string]uint64
	closed bool
	reads  uint64
	writes uint64
	dels   uint64
}

func (m *model) put(k, v string) {
	m.m[k] = v
	m.kseq[k] = m.seq
}

func (m *model) del(k string) {
	delete(m.m, k)
	m.kseq[k] = m.seq
}

func (m *model) sortedWithPrefix(prefix string) [][2]string {
	var out [][2]string
	for _, k := range slices.Sorted(maps.Keys(m.m)) {
		if strings.HasPrefix(k, prefix) {
			out = append(out, [2]string{k, m.m[k]})
		}
	}
	return out
}

// modelTxn is a transaction of the model: a copy of the map at begin.
type modelTxn struct {
	begin  uint64
	snap   map[string]string
	writes map[string]*string // nil: deleted
	reads  map[string]bool
	done   bool
}

type fuzzRun struct {
	t    *testing.T
	e    Engine
	m    *model
	txns [2]Transaction
	mtx  [2]*modelTxn
	step int
	op   string
	// alsoOK is a second acceptable kind for the next expect (set by
	// closedOr: a bad input on a closed engine may report either).
	alsoOK errKind
}

func (r *fuzzRun) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("step %d (%s): %s", r.step, r.op, fmt.Sprintf(format, args...))
}

// expect compares an engine error with the model's expected kind.
func (r *fuzzRun) expect(err error, want errKind) {
	r.t.Helper()
	also := r.alsoOK
	r.alsoOK = kOK
	if got := kindOf(err); got != want && !(want == kClosed && also != kOK && got == also) {
		r.fail("engine returned %v (%v), model expects %v", got, err, want)
	}
}

// expectOneOf: when several inputs are invalid, which is reported first is
// unspecified.
func (r *fuzzRun) expectOneOf(err error, want []errKind) {
	r.t.Helper()
	if got := kindOf(err); !slices.Contains(want, got) {
		r.fail("engine returned %v (%v), model expects one of %v", got, err, want)
	}
}

// batchKinds returns the error kinds a batch over keys (and values) may
// return; [kOK] if it is valid.
func batchKinds(keys []string, vals []string) []errKind {
	var kinds []errKind
	for i, k := range keys {
		if kk := keyKind(k); kk != kOK {
			kinds = append(kinds, kk)
		} else if vals != nil && len(vals[i]) > MaxValueSize {
			kinds = append(kinds, kTooLarge)
		}
	}
	if len(kinds) == 0 {
		return []errKind{kOK}
	}
	return kinds
}

// closedKinds: on a closed engine, ErrClosed or any of the input's faults.
func closedKinds(kinds []errKind) []errKind {
	if kinds[0] == kOK {
		return []errKind{kClosed}
	}
	return append([]errKind{kClosed}, kinds...)
}

func FuzzEngineVsModel(f *testing.F) {
	f.Add([]byte{0, 1, 200, 1, 1, 2, 1, 1, 1})
	f.Add([]byte{8, 0, 10, 0, 1, 0, 1, 200, 9, 0, 1, 201, 12, 0, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, te := range testEngines {
			t.Run(te.name, func(t *testing.T) { runFuzz(t, te, data) })
		}
	})
}

func runFuzz(t *testing.T, te testEngine, data []byte) {
	e := te.new(StorageConfig{})
	if err := e.Init(""); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	r := &fuzzRun{t: t, e: e, m: &model{m: map[string]string{}, kseq: map[string]uint64{}}}
	d := &decoder{data: data}
	for r.step = 0; d.more() && r.step < 2000; r.step++ {
		r.apply(d)
	}
	r.op = "final check"
	if !r.m.closed {
		r.checkAll()
	}
}

// closedOr returns kClosed if the model is closed, else k. On a closed
// engine a call with bad input may report either fault (unspecified), so
// expect accepts both; see expect.
func (r *fuzzRun) closedOr(k errKind) errKind {
	if r.m.closed {
		r.alsoOK = k
		return kClosed
	}
	return k
}

func (r *fuzzRun) apply(d *decoder) {
	m := r.m
	switch op := d.byte() % 18; op {
	case 0, 14: // Put, PutWithTTL (an hour: never expires during the run)
		k, v := d.key(), d.value()
		var err error
		if op == 0 {
			r.op = fmt.Sprintf("Put(%q, %d bytes)", clip(k), len(v))
			err = r.e.Put(bg, k, v)
		} else {
			r.op = fmt.Sprintf("PutWithTTL(%q, %d bytes)", clip(k), len(v))
			err = r.e.PutWithTTL(bg, k, v, time.Hour)
		}
		want := keyKind(k)
		if want == kOK && len(v) > MaxValueSize {
			want = kTooLarge
		}
		want = r.closedOr(want)
		r.expect(err, want)
		if want == kOK {
			m.seq++
			m.put(k, v)
			m.writes++
		}
	case 1: // Get
		k := d.key()
		r.op = fmt.Sprintf("Get(%q)", clip(k))
		got, err := r.e.Get(bg, k)
		want := r.closedOr(keyKind(k))
		if want == kOK {
			m.reads++
			v, ok := m.m[k]
			if !ok {
				want = kNotFound
			} else if err == nil && got != v {
				r.fail("Get = %q, model %q", clip(got), clip(v))
			}
		}
		r.expect(err, want)
	case 2: // Delete
		k := d.key()
		r.op = fmt.Sprintf("Delete(%q)", clip(k))
		want := r.closedOr(keyKind(k))
		r.expect(r.e.Delete(bg, k), want)
		if want == kOK {
			m.seq++
			m.del(k)
			m.dels++
		}
	case 3: // BatchPut of up to 7 pairs
		n := int(d.byte() % 8)
		kv := map[string]string{}
		for range n {
			kv[d.key()] = d.value()
		}
		r.op = fmt.Sprintf("BatchPut(%d pairs)", len(kv))
		keys := slices.Collect(maps.Keys(kv))
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = kv[k]
		}
		kinds := batchKinds(keys, vals)
		if m.closed {
			kinds = closedKinds(kinds)
		}
		err := r.e.BatchPut(bg, kv)
		r.expectOneOf(err, kinds)
		if kinds[0] == kOK {
			if len(kv) > 0 {
				m.seq++
			}
			for k, v := range kv {
				m.put(k, v)
			}
			m.writes += uint64(len(kv))
		}
	case 4: // BatchGet of up to 7 keys
		keys := make([]string, d.byte()%8)
		for i := range keys {
			keys[i] = d.key()
		}
		r.op = fmt.Sprintf("BatchGet(%q)", keys)
		kinds := batchKinds(keys, nil)
		if m.closed {
			kinds = closedKinds(kinds)
		}
		got, err := r.e.BatchGet(bg, keys)
		r.expectOneOf(err, kinds)
		if kinds[0] == kOK {
			m.reads += uint64(len(keys))
			want := map[string]string{}
			for _, k := range keys {
				if v, ok := m.m[k]; ok {
					want[k] = v
				}
			}
			if !mapsEqual(got, want) {
				r.fail("BatchGet = %q, model %q", got, want)
			}
		}
	case 5: // BatchDelete of up to 7 keys
		keys := make([]string, d.byte()%8)
		for i := range keys {
			keys[i] = d.key()
		}
		r.op = fmt.Sprintf("BatchDelete(%q)", keys)
		kinds := batchKinds(keys, nil)
		if m.closed {
			kinds = closedKinds(kinds)
		}
		r.expectOneOf(r.e.BatchDelete(bg, keys), kinds)
		if kinds[0] == kOK {
			if len(keys) > 0 {
				m.seq++
			}
			for _, k := range keys {
				m.del(k)
			}
			m.dels += uint64(len(keys))
		}
	case 6: // a whole iteration over a prefix
		p := fuzzPrefixes[int(d.byte())%len(fuzzPrefixes)]
		r.op = fmt.Sprintf("iterate(%q)", clip(p))
		r.iterate(p, nil)
	case 7: // an iteration with a write in the middle: the snapshot must hold
		p := fuzzPrefixes[int(d.byte())%len(fuzzPrefixes)]
		stop := int(d.byte() % 4)
		k, v, del := d.key(), d.value(), d.byte()%2 == 0
		r.op = fmt.Sprintf("iterate(%q) with a write of %q after %d entries", clip(p), clip(k), stop)
		r.iterate(p, func(i int) {
			if i != stop {
				return
			}
			var err error
			want := r.closedOr(keyKind(k))
			if del {
				err = r.e.Delete(bg, k)
			} else {
				err = r.e.Put(bg, k, v)
				if want == kOK && len(v) > MaxValueSize {
					want = kTooLarge
				}
			}
			r.expect(err, want)
			if want == kOK {
				m.seq++
				if del {
					m.del(k)
					m.dels++
				} else {
					m.put(k, v)
					m.writes++
				}
			}
		})
	case 8: // BeginTransaction into slot s (rolling back what was there)
		s := int(d.byte() % 2)
		r.op = fmt.Sprintf("BeginTransaction(slot %d)", s)
		if r.txns[s] != nil && !r.mtx[s].done {
			r.txns[s].Rollback()
		}
		txn, err := r.e.BeginTransaction(bg)
		r.expect(err, r.closedOr(kOK))
		r.txns[s], r.mtx[s] = nil, nil
		if err == nil {
			r.txns[s] = txn
			r.mtx[s] = &modelTxn{begin: m.seq, snap: maps.Clone(m.m), writes: map[string]*string{}, reads: map[string]bool{}}
		}
	case 9, 10, 11, 12, 13: // transaction Put, Get, Delete, Commit, Rollback
		s := int(d.byte() % 2)
		txn, mt := r.txns[s], r.mtx[s]
		if txn == nil {
			return
		}
		r.txnOp(op, s, txn, mt, d)
	case 15: // Stats
		r.op = "Stats"
		r.checkStats()
	case 16: // HealthCheck
		r.op = "HealthCheck"
		r.expect(r.e.HealthCheck(bg), r.closedOr(kOK))
	case 17: // Close (rarely: only if the next byte says so)
		if d.byte() != 0xC1 {
			return
		}
		r.op = "Close"
		if !m.closed {
			r.checkAll()
		}
		r.expect(r.e.Close(), kOK)
		m.closed = true
	}
}

// txnOp applies one transaction operation to the engine's transaction and
// the model's.
func (r *fuzzRun) txnOp(op byte, s int, txn Transaction, mt *modelTxn, d *decoder) {
	m := r.m
	// The order of checks: finished, then engine closed, then the input.
	state := kOK
	if mt.done {
		state = kTxnDone
	} else if m.closed {
		state = kClosed
	}
	switch op {
	case 9:
		k, v := d.key(), d.value()
		r.op = fmt.Sprintf("txn %d Put(%q, %d bytes)", s, clip(k), len(v))
		want := state
		if want == kOK {
			want = keyKind(k)
			if want == kOK && len(v) > MaxValueSize {
				want = kTooLarge
			}
		}
		r.expect(txn.Put(k, v), want)
		if want == kOK {
			mt.writes[k] = &v
		}
	case 10:
		k := d.key()
		r.op = fmt.Sprintf("txn %d Get(%q)", s, clip(k))
		got, err := txn.Get(k)
		want := state
		if want == kOK {
			want = keyKind(k)
		}
		if want == kOK {
			var v string
			var ok bool
			if w, own := mt.writes[k]; own {
				if w != nil {
					v, ok = *w, true
				}
			} else {
				v, ok = mt.snap[k]
				mt.reads[k] = true
			}
			if !ok {
				want = kNotFound
			} else if err == nil && got != v {
				r.fail("txn Get = %q, model %q", clip(got), clip(v))
			}
		}
		r.expect(err, want)
	case 11:
		k := d.key()
		r.op = fmt.Sprintf("txn %d Delete(%q)", s, clip(k))
		want := state
		if want == kOK {
			want = keyKind(k)
		}
		r.expect(txn.Delete(k), want)
		if want == kOK {
			mt.writes[k] = nil
		}
	case 12:
		r.op = fmt.Sprintf("txn %d Commit (%d writes, %d reads)", s, len(mt.writes), len(mt.reads))
		want := state
		if want == kOK {
			for k := range mt.reads {
				if m.kseq[k] > mt.begin {
					want = kConflict
				}
			}
			for k := range mt.writes {
				if m.kseq[k] > mt.begin {
					want = kConflict
				}
			}
		}
		r.expect(txn.Commit(), want)
		mt.done = true
		if want == kOK && len(mt.writes) > 0 {
			m.seq++
			for k, v := range mt.writes {
				if v == nil {
					m.del(k)
					m.dels++
				} else {
					m.put(k, *v)
					m.writes++
				}
			}
		}
	case 13:
		r.op = fmt.Sprintf("txn %d Rollback", s)
		r.expect(txn.Rollback(), state)
		mt.done = true
	}
}

// iterate compares an iteration over prefix with the model's snapshot;
// during(i) runs before the i-th Next.
func (r *fuzzRun) iterate(prefix string, during func(i int)) {
	it, err := r.e.NewIterator(bg, prefix)
	want := kOK
	if len(prefix) > MaxKeySize {
		want = kTooLarge
	}
	r.expect(err, r.closedOr(want))
	if err != nil {
		return
	}
	defer it.Close()
	snap := r.m.sortedWithPrefix(prefix)
	var got [][2]string
	for i := 0; ; i++ {
		if during != nil {
			during(i)
		}
		if !it.Next() {
			break
		}
		got = append(got, [2]string{it.Key(), it.Value()})
	}
	r.expect(it.Error(), kOK)
	if !slices.Equal(got, snap) {
		r.fail("iteration yields %q, model snapshot %q", got, snap)
	}
}

// checkStats compares the counters with the model's.
func (r *fuzzRun) checkStats() {
	s := r.e.Stats()
	m := r.m
	if m.closed {
		if s != (Stats{}) {
			r.fail("Stats of a closed engine = %+v", s)
		}
		return
	}
	var bytes uint64
	for k, v := range m.m {
		bytes += uint64(len(k) + len(v))
	}
	if s.Reads != m.reads || s.Writes != m.writes || s.Deletes != m.dels || s.Entries != uint64(len(m.m)) || s.Bytes < bytes {
		r.fail("Stats = %+v, model reads %d writes %d deletes %d entries %d bytes >= %d",
			s, m.reads, m.writes, m.dels, len(m.m), bytes)
	}
}

// checkAll compares the whole content, by iteration and by point reads.
func (r *fuzzRun) checkAll() {
	r.iterate("", nil)
	for k, v := range r.m.m {
		got, err := r.e.Get(bg, k)
		r.m.reads++
		if err != nil || got != v {
			r.fail("Get(%q) = %q, %v; model %q", clip(k), clip(got), err, clip(v))
		}
	}
	r.checkStats()
}
