// SPDX-License-Identifier: GPL-2.0-or-later
/* Diagnostics: collection, ordering and the "file:line:col: error: msg" form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-private.h"

void anser_diags_clear(struct anser_diags *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].message);
	}
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

size_t anser_diags_errors(const struct anser_diags *d)
{
	size_t n = 0;

	for (size_t i = 0; d && i < d->n; i++)
		n += !d->v[i].warning;
	return n;
}

char *anser_diags_format(const struct anser_diags *d)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return NULL;
	for (size_t i = 0; d && i < d->n; i++) {
		const struct anser_diag *g = &d->v[i];
		const char *kind = g->warning ? "warning" : "error";
		if (g->line)
			fprintf(f, "%s:%u:%u: %s: %s\n", g->file, g->line, g->col, kind,
				g->message);
		else
			fprintf(f, "%s: %s: %s\n", g->file, kind, g->message);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void push(struct anser_diags *d, const char *file, unsigned line, unsigned col, bool warning,
		 char *message)
{
	d->v = cfg_realloc_array(d->v, d->n + 1, sizeof(*d->v));
	d->v[d->n++] = (struct anser_diag){
		.file = cfg_strdup(file),
		.line = line,
		.col = col,
		.warning = warning,
		.message = message,
	};
}

void cfg_diag(struct cfg_diag_sink *s, bool warning, struct cfg_pos pos, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (s->full)
		return;
	if (!warning)
		s->n_errors++;
	if (s->d->n + 1 >= CFG_MAX_DIAGS) {
		s->full = true;
		push(s->d, s->file, pos.line, pos.col, false,
		     cfg_strdup("too many problems, giving up (fix the ones above first)"));
		if (warning)
			s->n_errors++;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	push(s->d, s->file, pos.line, pos.col, warning, msg ? msg : cfg_strdup(fmt));
}

static int cmp_diag(const void *a, const void *b)
{
	const struct anser_diag *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	/* keep insertion order for ties: messages are compared last only to
	 * make qsort deterministic */
	return strcmp(x->message, y->message);
}

void cfg_diags_sort(struct anser_diags *d, size_t from)
{
	if (d->n - from > 1)
		qsort(d->v + from, d->n - from, sizeof(*d->v), cmp_diag);
}
