/*
 * fuzz_db_api.c - a coverage-guided fuzzer (libFuzzer) over the public
 * storage API, checked against a simple model.
 *
 * The input is a program: each step is an opcode byte and its argument
 * bytes, run against up to two dbs, four snapshots and two iterators, with
 * a model beside them (per db, which of 16 keys hold which value; per
 * snapshot and iterator, a copy of the model at their open). Every result is
 * checked: values read at the latest state or at a snapshot, multigets,
 * iterator order and contents, batch atomicity (a malformed batch, made by
 * corrupting a byte of a well-formed one, must change nothing; a corrupted
 * batch that is still well-formed must apply exactly as the model's own
 * reading of the format says), commits against a snapshot (mantis_db_commit:
 * a conflict exactly when a named key was written since the snapshot; the
 * model counts each key's writes), and calls with closed, stale, wrong-kind and
 * forged handles (only MANTIS_CLOSED, MANTIS_EBADHANDLE or MANTIS_EINVAL,
 * never a crash). At the end of an input every open db passes the
 * invariant checker (mt_check_db) and everything is closed, so the
 * sanitizers' leak checks cover each program.
 *
 * Run by `make fuzz` (FUZZ_TIME seconds, default 60) and, in `make test`, by
 * test-fuzz (its corpus in tests/fuzz/corpus, then a 60-second session).
 */
#include "mantis.h"
#include "mt_check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_KEYS  16
#define FZ_VMAX  24
#define FZ_DBS   2
#define FZ_SNAPS 4
#define FZ_ITERS 2

/* Keys with shared prefixes, so that prefix scans and order matter. */
static const char *const fz_keys[FZ_KEYS] = {"a",   "ab", "abc", "b",  "ba", "bb", "c",  "ca",
                                             "cab", "d",  "da",  "db", "dc", "e",  "ea", "eab"};

struct fz_model {
	uint8_t has[FZ_KEYS];
	uint8_t vlen[FZ_KEYS];
	uint8_t val[FZ_KEYS][FZ_VMAX];
	uint32_t ver[FZ_KEYS]; /* writes of the key: a commit's conflicts */
};

struct fz_db {
	uint64_t h; /* 0: none */
	int open;   /* handle not closed yet */
	struct fz_model m;
};

struct fz_snap {
	uint64_t h;
	uint64_t dbh; /* the db handle it was opened on */
	struct fz_model m;
};

struct fz_iter {
	uint64_t h;
	struct fz_model m;
	uint8_t plen;
	char prefix[2];
	int last; /* index in sorted order of the last key returned, -1 */
	int done;
};

struct fz_state {
	const uint8_t *p;
	size_t left;
	struct fz_db db[FZ_DBS];
	struct fz_snap snap[FZ_SNAPS];
	struct fz_iter it[FZ_ITERS];
	uint64_t closed[8]; /* handles closed in this program */
	unsigned nclosed;
};

static int fz_order[FZ_KEYS]; /* key ids in key order */

#define FZ_CHECK(cond, ...)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_db_api: %s:%d: ", __FILE__, __LINE__);               \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static uint8_t fz_byte(struct fz_state *s)
{
	if (s->left == 0)
		return 0;
	s->left--;
	return *s->p++;
}

static int fz_cmp(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c != 0 ? c : (al > bl) - (al < bl);
}

static int fz_key_cmp(const void *a, const void *b)
{
	const char *x = fz_keys[*(const int *)a], *y = fz_keys[*(const int *)b];

	return fz_cmp(x, strlen(x), y, strlen(y));
}

static void fz_remember_closed(struct fz_state *s, uint64_t h)
{
	s->closed[s->nclosed++ % 8] = h;
}

static int fz_bad_handle_code(int rc)
{
	return rc == MANTIS_CLOSED || rc == MANTIS_EBADHANDLE || rc == MANTIS_EINVAL;
}

/* Reads key k at snapshot handle snap (0: latest) and checks it against m. */
static void fz_check_get(uint64_t db, uint64_t snap, const struct fz_model *m, int k)
{
	char buf[FZ_VMAX];
	size_t vlen = 0;
	int rc = mantis_db_get(db, snap, fz_keys[k], strlen(fz_keys[k]), buf, sizeof(buf), &vlen,
	                       NULL);

	if (!m->has[k]) {
		FZ_CHECK(rc == MANTIS_NOTFOUND, "get %s: %s, expected absent", fz_keys[k],
		         mantis_strerror(rc));
		return;
	}
	FZ_CHECK(rc == MANTIS_OK, "get %s: %s", fz_keys[k], mantis_strerror(rc));
	FZ_CHECK(vlen == m->vlen[k] && memcmp(buf, m->val[k], vlen) == 0, "get %s: wrong value",
	         fz_keys[k]);
}

/* ------------------------------------------------------------ batches */

static void fz_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t fz_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * The model's reading of the batch format (bindings/mantis.h): records of
 * op, klen, vlen, ttl (17 bytes) then key and value; PUT, DELETE or CHECK;
 * CHECK and DELETE carry no value and no TTL; keys 1..MANTIS_KEY_MAX. The
 * last PUT or DELETE of each key applies. Returns 1 and applies to m if the
 * batch is well-formed and every key is one of the model's, 0 if malformed,
 * -1 if well-formed with a key outside the model (the caller skips those).
 * *keys: the mask of the model's keys the batch names (a commit's checks).
 */
static int fz_model_batch(const uint8_t *b, size_t len, struct fz_model *m, uint32_t *keys)
{
	struct fz_model next = *m;
	size_t off = 0;

	while (off < len) {
		uint32_t klen, vlen;
		uint8_t op;
		uint64_t ttl = 0;
		int k = -1;

		if (len - off < MANTIS_BATCH_HDR)
			return 0;
		op = b[off];
		klen = fz_rd32(b + off + 1);
		vlen = fz_rd32(b + off + 5);
		for (int i = 0; i < 8; i++)
			ttl |= (uint64_t)b[off + 9 + i] << (8 * i);
		if (op != MANTIS_OP_PUT && op != MANTIS_OP_DELETE && op != MANTIS_OP_CHECK)
			return 0;
		if ((uint64_t)klen + vlen > len - off - MANTIS_BATCH_HDR)
			return 0;
		if (op != MANTIS_OP_PUT && (vlen != 0 || ttl != 0))
			return 0;
		if (klen == 0 || klen > MANTIS_KEY_MAX)
			return 0;
		for (int i = 0; i < FZ_KEYS; i++)
			if (strlen(fz_keys[i]) == klen &&
			    memcmp(fz_keys[i], b + off + MANTIS_BATCH_HDR, klen) == 0)
				k = i;
		if (k < 0 || ttl != 0 || vlen > FZ_VMAX)
			return -1;
		*keys |= 1u << k;
		if (op != MANTIS_OP_CHECK)
			next.ver[k]++;
		if (op == MANTIS_OP_PUT) {
			next.has[k] = 1;
			next.vlen[k] = (uint8_t)vlen;
			memcpy(next.val[k], b + off + MANTIS_BATCH_HDR + klen, vlen);
		} else if (op == MANTIS_OP_DELETE) {
			next.has[k] = 0;
		}
		off += MANTIS_BATCH_HDR + (size_t)klen + vlen;
	}
	*m = next;
	return 1;
}

/*
 * The outcome the model allows for a commit of the batch naming keys
 * against snapshot model sm, the db's model being m: a key written since
 * the snapshot and present now conflicts; with none written since, the
 * commit applies, unless a named key is absent now (its history may be
 * gone: the core then answers conservatively, either way). Returns
 * MANTIS_CONFLICT, MANTIS_OK, or -1 for either.
 */
static int fz_model_commit(const struct fz_model *sm, const struct fz_model *m, uint32_t keys)
{
	int changed = 0, absent = 0;

	for (int k = 0; k < FZ_KEYS; k++) {
		if (!(keys >> k & 1))
			continue;
		if (sm->ver[k] != m->ver[k] && m->has[k])
			return MANTIS_CONFLICT;
		changed |= sm->ver[k] != m->ver[k];
		absent |= !m->has[k];
	}
	return changed || absent ? -1 : MANTIS_OK;
}

/* A batch (mantis_db_write), or a transaction's commit against a snapshot
 * of the db (mantis_db_commit), maybe malformed. */
static void fz_op_batch(struct fz_state *s, struct fz_db *d)
{
	uint8_t buf[8 * (MANTIS_BATCH_HDR + 4 + FZ_VMAX)];
	size_t len = 0;
	unsigned n = fz_byte(s) % 6, corrupt = fz_byte(s);
	struct fz_model m = d->m;
	struct fz_snap *sn = NULL;
	uint32_t keys = 0;
	int verdict, rc, want = MANTIS_OK;

	for (unsigned i = 0; i < n; i++) {
		uint8_t c = fz_byte(s), k = c % FZ_KEYS, op = (uint8_t)(1 + (c >> 4) % 3);
		uint32_t klen = (uint32_t)strlen(fz_keys[k]), vlen = 0;

		if (op == MANTIS_OP_PUT)
			vlen = fz_byte(s) % (FZ_VMAX + 1);
		buf[len] = op;
		fz_le32(buf + len + 1, klen);
		fz_le32(buf + len + 5, vlen);
		memset(buf + len + 9, 0, 8);
		memcpy(buf + len + MANTIS_BATCH_HDR, fz_keys[k], klen);
		for (uint32_t j = 0; j < vlen; j++)
			buf[len + MANTIS_BATCH_HDR + klen + j] = fz_byte(s);
		len += MANTIS_BATCH_HDR + klen + vlen;
	}
	/* Half the time, corrupt one byte, or cut the batch short. */
	if (len > 0 && corrupt & 1) {
		size_t at = fz_byte(s) % len;

		if (corrupt & 2)
			len = at;
		else
			buf[at] ^= (uint8_t)(fz_byte(s) | 1);
	}
	verdict = fz_model_batch(buf, len, &m, &keys);
	if (verdict < 0)
		return; /* a key the model does not track: skip it */
	for (int i = 0; i < FZ_SNAPS && (corrupt & 4); i++)
		if (s->snap[i].h != 0 && s->snap[i].dbh == d->h && sn == NULL)
			sn = &s->snap[i];
	if (sn != NULL) {
		want = fz_model_commit(&sn->m, &d->m, keys);
		rc = mantis_db_commit(d->h, sn->h, buf, len, NULL);
	} else {
		rc = mantis_db_write(d->h, buf, len, 0, NULL);
	}
	if (!d->open) {
		FZ_CHECK(rc == MANTIS_CLOSED || (verdict == 0 && rc != MANTIS_OK),
		         "write on a closed db: %s", mantis_strerror(rc));
		return;
	}
	if (verdict == 1) {
		FZ_CHECK(rc == want || (want < 0 && (rc == MANTIS_OK || rc == MANTIS_CONFLICT)),
		         "well-formed batch%s: %s", sn != NULL ? " (commit)" : "",
		         mantis_strerror(rc));
		if (rc == MANTIS_OK)
			d->m = m;
	} else {
		FZ_CHECK(rc == MANTIS_EINVAL || rc == MANTIS_EKEY || rc == MANTIS_ETOOLARGE,
		         "malformed batch: %s", mantis_strerror(rc));
	}
}

/* ------------------------------------------------------------ iterators */

static void fz_op_iter_next(struct fz_iter *it)
{
	const void *k, *v;
	size_t kl, vl;
	int rc = mantis_iter_next(it->h, &k, &kl, &v, &vl), want = -1;

	for (int i = it->last + 1; i < FZ_KEYS && want < 0; i++) {
		int id = fz_order[i];

		if (it->m.has[id] && strncmp(fz_keys[id], it->prefix, it->plen) == 0 &&
		    strlen(fz_keys[id]) >= it->plen)
			want = i;
	}
	if (want < 0) {
		FZ_CHECK(rc == MANTIS_DONE, "iterator: %s, expected the end", mantis_strerror(rc));
		it->done = 1;
		return;
	}
	FZ_CHECK(rc == MANTIS_OK, "iterator: %s", mantis_strerror(rc));
	{
		int id = fz_order[want];

		FZ_CHECK(kl == strlen(fz_keys[id]) && memcmp(k, fz_keys[id], kl) == 0,
		         "iterator: key %.*s, expected %s", (int)kl, (const char *)k, fz_keys[id]);
		FZ_CHECK(vl == it->m.vlen[id] && memcmp(v, it->m.val[id], vl) == 0,
		         "iterator: wrong value of %s", fz_keys[id]);
	}
	it->last = want;
}

/* ------------------------------------------------------------ one step */

static void fz_step(struct fz_state *s)
{
	uint8_t op = fz_byte(s), a = fz_byte(s);
	struct fz_db *d = &s->db[a & 1];
	struct fz_snap *sn = &s->snap[(a >> 1) % FZ_SNAPS];
	struct fz_iter *it = &s->it[(a >> 3) & 1];
	int k = (a >> 4) % FZ_KEYS, rc;
	char val[FZ_VMAX];
	uint8_t vlen;

	switch (op % 16) {
	case 0: /* open a db */
		if (d->h == 0) {
			FZ_CHECK(mantis_db_open(NULL, &d->h) == MANTIS_OK, "open");
			d->open = 1;
			memset(&d->m, 0, sizeof(d->m));
		}
		break;
	case 1: /* close a db (its snapshots and iterators live on) */
		if (d->h != 0) {
			rc = mantis_db_close(d->h);
			FZ_CHECK(rc == (d->open ? MANTIS_OK : MANTIS_CLOSED), "close: %s",
			         mantis_strerror(rc));
			if (d->open)
				fz_remember_closed(s, d->h);
			d->open = 0;
			if (a & 0x80)
				d->h = 0; /* forget it: a new one may open */
		}
		break;
	case 2: /* put */
	case 3:
		if (d->h == 0)
			break;
		vlen = fz_byte(s) % (FZ_VMAX + 1);
		for (int i = 0; i < vlen; i++)
			val[i] = (char)fz_byte(s);
		rc = mantis_db_put(d->h, fz_keys[k], strlen(fz_keys[k]), val, vlen, 0, NULL);
		FZ_CHECK(rc == (d->open ? MANTIS_OK : MANTIS_CLOSED), "put: %s",
		         mantis_strerror(rc));
		if (d->open) {
			d->m.has[k] = 1;
			d->m.ver[k]++;
			d->m.vlen[k] = vlen;
			memcpy(d->m.val[k], val, vlen);
		}
		break;
	case 4: /* delete */
		if (d->h == 0)
			break;
		rc = mantis_db_delete(d->h, fz_keys[k], strlen(fz_keys[k]), NULL);
		FZ_CHECK(rc == (d->open ? MANTIS_OK : MANTIS_CLOSED), "delete: %s",
		         mantis_strerror(rc));
		if (d->open) {
			d->m.has[k] = 0;
			d->m.ver[k]++;
		}
		break;
	case 5: /* get, latest */
		if (d->h != 0 && d->open)
			fz_check_get(d->h, 0, &d->m, k);
		break;
	case 6: /* get at a snapshot, through its db or the other one */
		if (sn->h != 0 && d->h != 0 && d->open) {
			if (sn->dbh == d->h) {
				fz_check_get(d->h, sn->h, &sn->m, k);
			} else {
				char buf[FZ_VMAX];
				size_t vl;

				rc = mantis_db_get(d->h, sn->h, "a", 1, buf, sizeof(buf), &vl,
				                   NULL);
				FZ_CHECK(rc == MANTIS_EINVAL, "foreign snapshot: %s",
				         mantis_strerror(rc));
			}
		}
		break;
	case 7: /* batch, maybe malformed */
		if (d->h != 0)
			fz_op_batch(s, d);
		break;
	case 8: /* multiget of three keys, latest */
		if (d->h != 0 && d->open) {
			uint8_t keys[3 * 8], out[3 * (4 + FZ_VMAX)];
			size_t kl = 0, olen = 0, o = 0;
			int ids[3];

			for (int i = 0; i < 3; i++) {
				ids[i] = fz_byte(s) % FZ_KEYS;
				fz_le32(keys + kl, (uint32_t)strlen(fz_keys[ids[i]]));
				memcpy(keys + kl + 4, fz_keys[ids[i]], strlen(fz_keys[ids[i]]));
				kl += 4 + strlen(fz_keys[ids[i]]);
			}
			rc = mantis_db_multiget(d->h, 0, keys, kl, 3, out, sizeof(out), &olen);
			FZ_CHECK(rc == MANTIS_OK, "multiget: %s", mantis_strerror(rc));
			for (int i = 0; i < 3; i++) {
				uint32_t l = fz_rd32(out + o);

				o += 4;
				if (!d->m.has[ids[i]]) {
					FZ_CHECK(l == MANTIS_ABSENT, "multiget: %s present",
					         fz_keys[ids[i]]);
					continue;
				}
				FZ_CHECK(l == d->m.vlen[ids[i]] &&
				                 memcmp(out + o, d->m.val[ids[i]], l) == 0,
				         "multiget: wrong value of %s", fz_keys[ids[i]]);
				o += l;
			}
			FZ_CHECK(o == olen, "multiget: length");
		}
		break;
	case 9: /* snapshot open */
		if (sn->h == 0 && d->h != 0) {
			rc = mantis_snapshot_open(d->h, &sn->h, NULL);
			FZ_CHECK(rc == (d->open ? MANTIS_OK : MANTIS_CLOSED), "snapshot: %s",
			         mantis_strerror(rc));
			if (rc != MANTIS_OK) {
				sn->h = 0;
				break;
			}
			sn->dbh = d->h;
			sn->m = d->m;
		}
		break;
	case 10: /* snapshot close */
		if (sn->h != 0) {
			FZ_CHECK(mantis_snapshot_close(sn->h) == MANTIS_OK, "snapshot close");
			fz_remember_closed(s, sn->h);
			sn->h = 0;
		}
		break;
	case 11: /* iterator open: latest or at a snapshot, maybe a prefix */
		if (it->h == 0 && d->h != 0 && d->open) {
			const struct fz_model *m = &d->m;
			uint64_t snaph = 0;

			if ((a & 0x40) && sn->h != 0 && sn->dbh == d->h) {
				snaph = sn->h;
				m = &sn->m;
			}
			it->plen = fz_byte(s) % 3;
			memcpy(it->prefix, fz_keys[k], it->plen);
			if (strlen(fz_keys[k]) < it->plen)
				it->plen = (uint8_t)strlen(fz_keys[k]);
			rc = mantis_iter_open(d->h, snaph, it->prefix, it->plen, &it->h);
			FZ_CHECK(rc == MANTIS_OK, "iter open: %s", mantis_strerror(rc));
			it->m = *m;
			it->last = -1;
			it->done = 0;
		}
		break;
	case 12: /* iterator next */
		if (it->h != 0 && !it->done)
			fz_op_iter_next(it);
		break;
	case 13: /* iterator close */
		if (it->h != 0) {
			FZ_CHECK(mantis_iter_close(it->h) == MANTIS_OK, "iter close");
			fz_remember_closed(s, it->h);
			it->h = 0;
		}
		break;
	case 14: /* sweep, stats */
		if (d->h != 0) {
			mantis_db_stats_t st;

			rc = mantis_db_sweep(d->h, NULL);
			FZ_CHECK(rc == (d->open ? MANTIS_OK : MANTIS_CLOSED), "sweep: %s",
			         mantis_strerror(rc));
			rc = mantis_db_stats(d->h, &st);
			FZ_CHECK(rc == (d->open ? MANTIS_OK : MANTIS_CLOSED), "stats: %s",
			         mantis_strerror(rc));
		}
		break;
	default: { /* closed, stale, wrong-kind and forged handles */
		uint64_t h = 0;
		char buf[8];
		size_t vl;

		if ((a & 3) == 0 && s->nclosed > 0) {
			h = s->closed[fz_byte(s) % (s->nclosed < 8 ? s->nclosed : 8)];
		} else if ((a & 3) == 1) {
			for (int i = 0; i < 8; i++)
				h = h << 8 | fz_byte(s);
		} else if ((a & 3) == 2 && sn->h != 0) {
			h = sn->h; /* a snapshot used as a db */
		} else if (it->h != 0) {
			h = it->h; /* an iterator used as a snapshot or a db */
		}
		if (h == 0)
			break;
		rc = mantis_db_get(h, 0, "a", 1, buf, sizeof(buf), &vl, NULL);
		FZ_CHECK(fz_bad_handle_code(rc) || rc == MANTIS_OK || rc == MANTIS_NOTFOUND ||
		                 rc == MANTIS_EBUFSIZE,
		         "get with handle %llx: %s", (unsigned long long)h, mantis_strerror(rc));
		if (d->h != 0 && d->open) {
			rc = mantis_db_get(d->h, h, "a", 1, buf, sizeof(buf), &vl, NULL);
			FZ_CHECK(fz_bad_handle_code(rc) || rc == MANTIS_OK ||
			                 rc == MANTIS_NOTFOUND || rc == MANTIS_EBUFSIZE,
			         "get at snapshot %llx: %s", (unsigned long long)h,
			         mantis_strerror(rc));
		}
		/* Closing a live handle of the wrong kind must be refused. */
		rc = mantis_db_close(h);
		if (rc == MANTIS_OK) {
			/* It was one of our dbs (forged to a live value). */
			for (int i = 0; i < FZ_DBS; i++)
				if (s->db[i].h == h) {
					s->db[i].open = 0;
					fz_remember_closed(s, h);
				}
		}
		rc = mantis_snapshot_close(h);
		if (rc == MANTIS_OK) {
			for (int i = 0; i < FZ_SNAPS; i++)
				if (s->snap[i].h == h)
					s->snap[i].h = 0;
		}
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz_state s;

	if (fz_order[1] == 0) {
		for (int i = 0; i < FZ_KEYS; i++)
			fz_order[i] = i;
		qsort(fz_order, FZ_KEYS, sizeof(int), fz_key_cmp);
	}
	memset(&s, 0, sizeof(s));
	s.p = data;
	s.left = size;
	for (unsigned steps = 0; s.left > 0 && steps < 4096; steps++)
		fz_step(&s);
	/* Close everything: the leak checker then covers the program. */
	for (int i = 0; i < FZ_ITERS; i++)
		if (s.it[i].h != 0)
			FZ_CHECK(mantis_iter_close(s.it[i].h) == MANTIS_OK, "final iter close");
	for (int i = 0; i < FZ_SNAPS; i++)
		if (s.snap[i].h != 0)
			FZ_CHECK(mantis_snapshot_close(s.snap[i].h) == MANTIS_OK,
			         "final snap close");
	for (int i = 0; i < FZ_DBS; i++) {
		char msg[256];

		if (s.db[i].h == 0 || !s.db[i].open)
			continue;
		/* Quiescent now: the storage invariants must hold exactly. */
		FZ_CHECK(mt_check_db(s.db[i].h, msg, sizeof(msg)) == MANTIS_OK, "invariants: %s",
		         msg);
		FZ_CHECK(mantis_db_close(s.db[i].h) == MANTIS_OK, "final close");
	}
	mantis_thread_release();
	return 0;
}
