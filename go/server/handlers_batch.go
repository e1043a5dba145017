package server

// POST /api/v1/kv/batch: {"operations": [{"type", "key", "value", "ttl"}],
// "atomic": bool}.
//
// Not atomic: each operation runs on its own, in order; each has its result
// and a failed one does not stop the others (200, "success" false if any
// failed).
//
// Atomic: every operation is checked first (a bad key or value fails the
// whole batch with 400 or 413, nothing applied); then the writes apply as one
// all-or-nothing unit and the reads see one snapshot:
//   - only sets (without TTL): one BatchPut (a key set twice keeps the last);
//   - only deletes: one BatchDelete;
//   - anything else (gets mixed with writes): one optimistic transaction,
//     whose gets see its snapshot plus the batch's earlier writes. A commit
//     that conflicts with a concurrent write is retried from scratch up to
//     conflictRetries times, then answers 409; nothing is applied then.
//
// A TTL in an atomic batch is refused (400): transactions carry no TTL, and
// a TTL set apart from the batch would not be atomic with it.
//
// A get of a missing key is a failed result ("key not found") in both modes;
// in an atomic batch it does not stop the writes.

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// MaxBatchOps is the most operations one batch request may hold (413 above).
const MaxBatchOps = 100_000

const conflictRetries = 3

type batchOp struct {
	Type  string   `json:"type"`
	Key   *string  `json:"key"`
	Value *string  `json:"value"`
	TTL   *float64 `json:"ttl"`
}

type batchRequest struct {
	Operations []batchOp `json:"operations"`
	Atomic     bool      `json:"atomic"`
}

type batchResult struct {
	key     string
	value   string
	hasVal  bool
	success bool
	err     string
}

// op kinds after parsing
const (
	opSet = iota
	opGet
	opDelete
)

type parsedOp struct {
	kind  int
	key   string
	value string
	ttl   time.Duration
}

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) int {
	b, code, msg := readBody(r, s.cfg.MaxBodyBytes, nil)
	if code != 0 {
		return writeError(w, code, msg, nil)
	}
	var req batchRequest
	if err := decodeJSON(b, &req); err != nil {
		return writeError(w, http.StatusBadRequest, err.Error(), nil)
	}
	if len(req.Operations) > MaxBatchOps {
		return writeError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("%d operations, limit %d", len(req.Operations), MaxBatchOps), nil)
	}
	ops := make([]parsedOp, len(req.Operations))
	for i, o := range req.Operations {
		p := &ops[i]
		switch o.Type {
		case "set", "put":
			p.kind = opSet
		case "get":
			p.kind = opGet
		case "delete", "del":
			p.kind = opDelete
		default:
			return writeError(w, http.StatusBadRequest,
				fmt.Sprintf(`operation %d: type %q: want "set", "get" or "delete"`, i, o.Type), nil)
		}
		if o.Key == nil {
			return writeError(w, http.StatusBadRequest, fmt.Sprintf(`operation %d: missing "key"`, i), nil)
		}
		p.key = *o.Key
		if p.kind == opSet {
			if o.Value == nil {
				return writeError(w, http.StatusBadRequest, fmt.Sprintf(`operation %d: a set needs "value"`, i), nil)
			}
			p.value = *o.Value
		}
		if o.TTL != nil && p.kind == opSet {
			ttl, err := ttlOf(*o.TTL)
			if err != nil {
				return writeError(w, http.StatusBadRequest, fmt.Sprintf("operation %d: %v", i, err), nil)
			}
			if req.Atomic && ttl > 0 {
				return writeError(w, http.StatusBadRequest,
					fmt.Sprintf("operation %d: a ttl cannot be part of an atomic batch (set it with its own request)", i), nil)
			}
			p.ttl = ttl
		}
	}
	var results []batchResult
	if req.Atomic {
		var status int
		if results, status = s.atomicBatch(w, r, ops); status != 0 {
			return status
		}
	} else {
		results = s.eachOp(r, ops)
	}
	return writeBatchResults(w, r, results)
}

// eachOp runs the operations one by one.
func (s *Server) eachOp(r *http.Request, ops []parsedOp) []batchResult {
	ctx := r.Context()
	res := make([]batchResult, len(ops))
	for i, o := range ops {
		var err error
		res[i].key = o.key
		switch o.kind {
		case opSet:
			if o.ttl > 0 {
				err = s.eng.PutWithTTL(ctx, o.key, o.value, o.ttl)
			} else {
				err = s.eng.Put(ctx, o.key, o.value)
			}
		case opGet:
			res[i].value, err = s.eng.Get(ctx, o.key)
			res[i].hasVal = err == nil
		case opDelete:
			err = s.eng.Delete(ctx, o.key)
		}
		setResult(&res[i], err)
	}
	return res
}

func setResult(res *batchResult, err error) {
	if err == nil {
		res.success = true
		return
	}
	_, msg := statusOf(err)
	res.err = msg
}

// checkOp validates an operation's key and value against the engine's
// limits, with the engine's own errors.
func checkOp(o parsedOp) error {
	if o.key == "" {
		return storage.ErrInvalidKey
	}
	if len(o.key) > storage.MaxKeySize {
		return fmt.Errorf("%w: key of %d bytes, limit %d", storage.ErrTooLarge, len(o.key), storage.MaxKeySize)
	}
	if len(o.value) > storage.MaxValueSize {
		return fmt.Errorf("%w: value of %d bytes, limit %d", storage.ErrTooLarge, len(o.value), storage.MaxValueSize)
	}
	return nil
}

// atomicBatch applies ops all or nothing. On failure it has written the
// response and returns its status.
func (s *Server) atomicBatch(w http.ResponseWriter, r *http.Request, ops []parsedOp) ([]batchResult, int) {
	ctx := r.Context()
	sets, dels := 0, 0
	for i, o := range ops {
		if err := checkOp(o); err != nil {
			code, msg := statusOf(err)
			d := keyDetails(o.key)
			d["operation"] = i
			return nil, writeError(w, code, fmt.Sprintf("operation %d: %s; nothing was applied", i, msg), d)
		}
		switch o.kind {
		case opSet:
			sets++
		case opDelete:
			dels++
		}
	}
	res := make([]batchResult, len(ops))
	for i, o := range ops {
		res[i].key = o.key
		res[i].success = o.kind != opGet
	}
	var err error
	switch {
	case len(ops) == 0:
	case sets == len(ops):
		kv := make(map[string]string, len(ops))
		for _, o := range ops {
			kv[o.key] = o.value
		}
		err = s.eng.BatchPut(ctx, kv)
	case dels == len(ops):
		keys := make([]string, len(ops))
		for i, o := range ops {
			keys[i] = o.key
		}
		err = s.eng.BatchDelete(ctx, keys)
	default:
		for try := 0; ; try++ {
			err = s.txnBatch(r, ops, res)
			if !errors.Is(err, storage.ErrConflict) || try == conflictRetries {
				break
			}
		}
	}
	if err != nil {
		code, msg := statusOf(err)
		if code == http.StatusInternalServerError || code == http.StatusNotFound {
			code = http.StatusConflict
		}
		return nil, writeError(w, code, "atomic batch failed, nothing was applied: "+msg, nil)
	}
	return res, 0
}

// txnBatch runs ops in one transaction, filling the gets' results.
func (s *Server) txnBatch(r *http.Request, ops []parsedOp, res []batchResult) error {
	tx, err := s.eng.BeginTransaction(r.Context())
	if err != nil {
		return err
	}
	for i, o := range ops {
		switch o.kind {
		case opSet:
			err = tx.Put(o.key, o.value)
		case opDelete:
			err = tx.Delete(o.key)
		case opGet:
			var v string
			v, err = tx.Get(o.key)
			res[i] = batchResult{key: o.key}
			if errors.Is(err, storage.ErrNotFound) {
				setResult(&res[i], err)
				err = nil
				continue
			}
			res[i].value, res[i].hasVal, res[i].success = v, err == nil, err == nil
		}
		if err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// writeBatchResults writes {"results": [...], "success": bool, "errors": n}.
func writeBatchResults(w http.ResponseWriter, r *http.Request, results []batchResult) int {
	bp := bufPool.Get().(*[]byte)
	defer putBuf(bp)
	b := append((*bp)[:0], `{"results":[`...)
	failed := 0
	for i, res := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendField(b, "key", res.key)
		if res.hasVal {
			b = append(b, ',')
			b = appendField(b, "value", res.value)
		}
		if res.success {
			b = append(b, `,"success":true`...)
		} else {
			failed++
			b = append(b, `,"success":false,`...)
			b = appendField(b, "error", res.err)
		}
		b = append(b, '}')
	}
	b = append(b, `],"success":`...)
	if failed == 0 {
		b = append(b, "true"...)
	} else {
		b = append(b, "false"...)
	}
	b = append(b, `,"errors":`...)
	b = strconv.AppendInt(b, int64(failed), 10)
	b = append(b, "}\n"...)
	*bp = b
	return writeBody(w, r, http.StatusOK, ctJSON, b)
}
