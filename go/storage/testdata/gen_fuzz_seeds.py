#!/usr/bin/env python3
"""Writes hand-made seeds of FuzzEngineVsModel (the input format is described
in fuzz_test.go) to testdata/fuzz/FuzzEngineVsModel/seed-*. Run from
go/storage: python3 testdata/gen_fuzz_seeds.py"""
import os

PUT, GET, DEL, BPUT, BGET, BDEL, ITER, ITERW, BEGIN, TPUT, TGET, TDEL, COMMIT, ROLLBACK, TTLPUT, STATS, HEALTH, CLOSE = range(18)
# Pool indexes (fuzzKeys): a=0 b=1 ab=2 abc=3 "a\0"=4 "\0"=5 "\0\0"=6 "\xff"=7 ...
A, B, AB, ABC, A0, NUL, NUL2, FF, FFFE, B0C, BADUTF8, K1, K2, K10, EMPTY, HUGEKEY, MAXKEY, AS_B, AS_C, ZZ = range(20)
V1, V2, V3, V4 = 130, 131, 132, 133            # "v130".. values
EMPTYV, BIGV, HUGEV = 250, 254, 255            # "", 4000 bytes, over the limit

def raw_key(bs): return [224 + len(bs) - 1] + list(bs)
def raw_val(bs): return [len(bs)] + list(bs)  # len < 16

seeds = {
  "basic": [PUT, A, V1, GET, A, PUT, A, V2, GET, A, DEL, A, GET, A, DEL, A, PUT, B, EMPTYV, GET, B,
            PUT, MAXKEY, BIGV, GET, MAXKEY, STATS, ITER, 0, HEALTH],
  "binary": [PUT] + raw_key(b"\x00\xff\x00") + raw_val(b"\x00\x00\xff") +
            [PUT] + raw_key(b"\xff") + raw_val(b"\xc3\x28") +
            [PUT, NUL, V1, PUT, NUL2, V2, PUT, FF, V3, PUT, FFFE, V4, PUT, BADUTF8, V1, PUT, A0, V2,
             ITER, 0, ITER, 3, ITER, 4, ITER, 2, GET] + raw_key(b"\x00\xff\x00") + [STATS],
  "bad-input": [PUT, EMPTY, V1, PUT, HUGEKEY, V1, PUT, A, HUGEV, TTLPUT, EMPTY, V1, GET, EMPTY, GET, HUGEKEY,
                DEL, EMPTY, DEL, HUGEKEY, BPUT, 3, A, V1, EMPTY, V2, B, V3, BPUT, 2, A, HUGEV, B, V1,
                BGET, 2, A, HUGEKEY, BDEL, 2, A, EMPTY, ITER, 10, ITER, 11, BEGIN, 0, TPUT, 0, EMPTY, V1,
                TPUT, 0, A, HUGEV, TGET, 0, HUGEKEY, TDEL, 0, EMPTY, TPUT, 0, A, V1, COMMIT, 0, STATS],
  "batches": [BPUT, 5, A, V1, B, V2, AB, V3, ABC, V4, K1, EMPTYV, BGET, 6, A, ZZ, A, K1, K2, ABC,
              BDEL, 3, A, ZZ, A, BGET, 3, A, B, ZZ, BPUT, 0, BDEL, 0, BGET, 0, ITER, 0, STATS],
  "conflict-read": [PUT, A, V1, BEGIN, 0, TGET, 0, A, PUT, A, V2, TPUT, 0, B, V3, COMMIT, 0, GET, B,
                    TPUT, 0, B, V1, STATS, ITER, 0],
  "conflict-write-write": [BEGIN, 0, BEGIN, 1, TPUT, 0, AB, V1, TPUT, 1, AB, V2, COMMIT, 0, COMMIT, 1,
                           GET, AB, STATS],
  "conflict-delete-absent": [BEGIN, 0, TGET, 0, ZZ, DEL, ZZ, TPUT, 0, A, V1, COMMIT, 0, GET, A,
                             BEGIN, 1, TGET, 1, ZZ, BDEL, 1, ZZ, COMMIT, 1],
  "no-conflict": [PUT, A, V1, BEGIN, 0, TGET, 0, A, PUT, B, V2, TPUT, 0, A, V3, TDEL, 0, K1, COMMIT, 0,
                  GET, A, BEGIN, 1, TPUT, 1, K1, V4, COMMIT, 1, STATS],
  "snapshot": [PUT, A, V1, PUT, B, V2, BEGIN, 0, DEL, A, PUT, B, V3, PUT, ABC, V4, TGET, 0, A, TGET, 0, B,
               TGET, 0, ABC, TPUT, 0, ABC, V1, TGET, 0, ABC, TDEL, 0, B, TGET, 0, B, ROLLBACK, 0,
               TGET, 0, A, COMMIT, 0, ROLLBACK, 0, GET, A, STATS],
  "two-txns-history": [PUT, K1, V1, BEGIN, 0, PUT, K1, V2, BEGIN, 1, PUT, K1, V3, DEL, K1, TGET, 0, K1,
                       TGET, 1, K1, ROLLBACK, 0, TGET, 1, K1, PUT, K1, V4, TGET, 1, K1, COMMIT, 1, GET, K1,
                       BEGIN, 0, TGET, 0, K1, COMMIT, 0, STATS],
  "iterator-snapshot": [BPUT, 4, AS_B, V1, AS_C, V2, A, V3, AB, V4, ITERW, 1, 1, AS_C, V4, 0,
                        ITERW, 7, 0, AS_B, V1, 1, ITERW, 0, 2, K10, V1, 1, ITER, 7, ITER, 0],
  "ttl": [TTLPUT, A, V1, GET, A, PUT, A, V2, TTLPUT, B, V3, BGET, 2, A, B, ITER, 0, STATS],
  "close": [PUT, A, V1, BEGIN, 0, TPUT, 0, B, V2, BEGIN, 1, CLOSE, 0xC1, PUT, A, V2, GET, A, DEL, A,
            BPUT, 1, A, V1, BGET, 1, A, BDEL, 1, A, ITER, 0, BEGIN, 0, HEALTH, STATS,
            PUT, EMPTY, V1, BPUT, 1, HUGEKEY, V1, ITER, 10, TPUT, 1, A, V1, TGET, 1, A, COMMIT, 1,
            ROLLBACK, 1, CLOSE, 0xC1],
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz", "FuzzEngineVsModel")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    assert all(0 <= b < 256 for b in data), name
    lit = "".join("\\x%02x" % b for b in data)
    with open(os.path.join(out, "seed-" + name), "w") as f:
        f.write('go test fuzz v1\n[]byte("%s")\n' % lit)
