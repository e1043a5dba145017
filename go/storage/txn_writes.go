package storage

// The engine-agnostic part of a transaction, shared by the pure-Go engine
// (purego_txn.go) and the C engine (txn_c.go): the buffered write set, the
// set of keys read from storage, the argument checks of Put, Delete and Get,
// and read-your-own-writes. Each engine embeds a txnWrites in its
// transaction and keeps to itself what differs: the state check made first
// by every call, the snapshot read, and how Commit validates and applies
// the sets. Not safe for concurrent use (as Transaction says).

// txnWrite is a buffered write of a transaction: a put of value, or a
// delete.
type txnWrite struct {
	value   string
	deleted bool
}

// txnWrites is the write set (writes) and read set (reads) of a
// transaction. The maps are allocated on first use; reset drops them.
type txnWrites struct {
	writes map[string]txnWrite
	reads  map[string]struct{}
}

// put checks key and value and buffers a put of them.
func (w *txnWrites) put(key, value string) error {
	if err := checkKV("transaction put", key, value); err != nil {
		return err
	}
	w.record(key, txnWrite{value: value})
	return nil
}

// del checks key and buffers a delete of it.
func (w *txnWrites) del(key string) error {
	if err := checkKey("transaction delete", key); err != nil {
		return err
	}
	w.record(key, txnWrite{deleted: true})
	return nil
}

func (w *txnWrites) record(key string, x txnWrite) {
	if w.writes == nil {
		w.writes = make(map[string]txnWrite)
	}
	w.writes[key] = x
}

// own checks key for a Get and answers it from the transaction's own
// buffered write if there is one. done reports whether value and err are
// the answer; if not, the caller reads storage at its snapshot and, on a
// successful read (found or not), calls noteRead.
func (w *txnWrites) own(key string) (value string, done bool, err error) {
	if err := checkKey("transaction get", key); err != nil {
		return "", true, err
	}
	x, ok := w.writes[key]
	switch {
	case !ok:
		return "", false, nil
	case x.deleted:
		return "", true, ErrNotFound
	}
	return x.value, true, nil
}

// noteRead adds key to the read set, which Commit validates.
func (w *txnWrites) noteRead(key string) {
	if w.reads == nil {
		w.reads = make(map[string]struct{})
	}
	w.reads[key] = struct{}{}
}

// commitSize is the batch size (recordSize) of a commit of the sets: every
// buffered write, and every key only read as a value-less record.
func (w *txnWrites) commitSize() int64 {
	var size int64
	for k, x := range w.writes {
		size += recordSize(k, x.value)
	}
	for k := range w.reads {
		if _, ok := w.writes[k]; !ok {
			size += recordSize(k, "")
		}
	}
	return size
}

// reset drops both sets.
func (w *txnWrites) reset() {
	w.writes, w.reads = nil, nil
}

// keys returns every key written or read (a key in both, twice), for the
// durable C engine's stripe locks.
func (w *txnWrites) keys() []string {
	keys := make([]string, 0, len(w.writes)+len(w.reads))
	for k := range w.writes {
		keys = append(keys, k)
	}
	for k := range w.reads {
		keys = append(keys, k)
	}
	return keys
}
