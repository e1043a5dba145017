/*
 * trace_reader.h - loads block-access traces as arrays of page numbers.
 *
 * ARC traces (../shared/traces/README.md): zstd-compressed text, one
 * request a line, "starting_block number_of_blocks ignored request_number";
 * a line stands for number_of_blocks page references starting_block,
 * starting_block + 1, ... They are decompressed through popen("zstd -dc").
 * LIRS traces: one page number a line (blank lines ignored).
 *
 * The README of the traces directory holds the reference hit ratios; it is
 * parsed too, so that the benchmark's rows and reference figures come from
 * it rather than from a copy.
 */
#ifndef TRACE_READER_H
#define TRACE_READER_H

#include <stddef.h>
#include <stdint.h>

struct trace {
	uint64_t *refs; /* page numbers, in reference order */
	size_t n;
	size_t lines; /* requests (lines) read */
};

/* Loads an ARC ".lis.zst" trace. Returns 0, or -1 with a message on
 * stderr. */
int trace_load_lis_zst(const char *path, struct trace *t);

/* Loads a plain one-page-a-line trace (the LIRS format). */
int trace_load_lines(const char *path, struct trace *t);

void trace_free(struct trace *t);

/* One row of the README's hit-ratio table. */
struct trace_row {
	char trace[16]; /* "OLTP", "P3", ... (the '*' dropped) */
	uint64_t capacity;
	double lru, arc; /* percent */
};

/* Parses the "| trace | capacity (pages) | LRU | ARC |" table of the
 * README at path into rows (at most max). Returns the number of rows, or
 * -1 on error. */
int trace_readme_rows(const char *path, struct trace_row *rows, int max);

#endif /* TRACE_READER_H */
