/*
 * trace_reader.c - ARC and LIRS trace loading, and the traces README's
 * table. See trace_reader.h for the formats.
 */
#include "trace_reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int trace_push(struct trace *t, size_t *cap, uint64_t page)
{
	if (t->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 1 << 20;
		uint64_t *r = realloc(t->refs, ncap * sizeof(*r));

		if (r == NULL)
			return -1;
		t->refs = r;
		*cap = ncap;
	}
	t->refs[t->n++] = page;
	return 0;
}

/* Parses an unsigned decimal at *p, skipping leading blanks. */
static int trace_num(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (uint64_t)(*s++ - '0');
	*p = s;
	*out = v;
	return 0;
}

int trace_load_lis_zst(const char *path, struct trace *t)
{
	char cmd[4200], line[256];
	size_t cap = 0;
	FILE *f;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	if (strchr(path, '\'') != NULL) {
		fprintf(stderr, "trace: unsupported path %s\n", path);
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "zstd -dc '%s'", path);
	f = popen(cmd, "r");
	if (f == NULL) {
		fprintf(stderr, "trace: cannot run %s: %s\n", cmd, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p = line;
		uint64_t start, count;

		if (trace_num(&p, &start) != 0 || trace_num(&p, &count) != 0) {
			if (line[0] == '\n')
				continue;
			fprintf(stderr, "trace: %s: bad line %zu: %s", path, t->lines + 1, line);
			rc = -1;
			break;
		}
		t->lines++;
		for (uint64_t i = 0; i < count; i++)
			if (trace_push(t, &cap, start + i) != 0) {
				fprintf(stderr, "trace: out of memory\n");
				rc = -1;
				break;
			}
		if (rc != 0)
			break;
	}
	if (pclose(f) != 0 && rc == 0) {
		fprintf(stderr, "trace: zstd -dc %s failed\n", path);
		rc = -1;
	}
	if (rc != 0)
		trace_free(t);
	return rc;
}

int trace_load_lines(const char *path, struct trace *t)
{
	char line[128];
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	memset(t, 0, sizeof(*t));
	if (f == NULL) {
		fprintf(stderr, "trace: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p = line;
		uint64_t page;

		if (trace_num(&p, &page) != 0)
			continue; /* blank line */
		t->lines++;
		if (trace_push(t, &cap, page) != 0) {
			fclose(f);
			trace_free(t);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

void trace_free(struct trace *t)
{
	free(t->refs);
	memset(t, 0, sizeof(*t));
}

/* Parses "1,000" or "32.83" (commas ignored). */
static int trace_cell_num(const char *cell, double *out)
{
	char buf[64];
	size_t j = 0;

	for (const char *c = cell; *c != '\0' && *c != '|' && j + 1 < sizeof(buf); c++)
		if (*c != ',' && *c != ' ')
			buf[j++] = *c;
	buf[j] = '\0';
	if (j == 0)
		return -1;
	char *end;
	*out = strtod(buf, &end);
	return *end == '\0' ? 0 : -1;
}

int trace_readme_rows(const char *path, struct trace_row *rows, int max)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int n = 0, in_table = 0;

	if (f == NULL) {
		fprintf(stderr, "trace: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *cells[5];
		int nc = 0;
		double cap;

		if (strstr(line, "| trace | capacity") != NULL) {
			in_table = 1;
			continue;
		}
		if (!in_table)
			continue;
		if (line[0] != '|')
			break; /* end of the table */
		for (char *p = line; *p != '\0' && nc < 5; p++)
			if (*p == '|')
				cells[nc++] = p + 1;
		if (nc < 5 || strstr(cells[0], "---") != NULL)
			continue;
		if (n == max)
			break;
		{
			struct trace_row *r = &rows[n];
			size_t j = 0;

			for (char *c = cells[0]; *c != '|' && j + 1 < sizeof(r->trace); c++)
				if (*c != ' ' && *c != '*')
					r->trace[j++] = *c;
			r->trace[j] = '\0';
			if (trace_cell_num(cells[1], &cap) != 0 ||
			    trace_cell_num(cells[2], &r->lru) != 0 ||
			    trace_cell_num(cells[3], &r->arc) != 0) {
				fprintf(stderr, "trace: %s: cannot parse row: %s", path, line);
				fclose(f);
				return -1;
			}
			r->capacity = (uint64_t)cap;
			n++;
		}
	}
	fclose(f);
	return n;
}
