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
		free(d->v[i].source);
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

/* A caret under byte column `col` of `line`: tabs are kept so it lines up,
 * and a UTF-8 character takes one column. */
static void print_excerpt(FILE *f, const char *line, unsigned col)
{
	fprintf(f, "    %s\n    ", line);
	for (size_t i = 0; i + 1 < col && line[i]; i++) {
		unsigned char ch = (unsigned char)line[i];
		if (ch == '\t')
			fputc('\t', f);
		else if ((ch & 0xc0) != 0x80)
			fputc(' ', f);
	}
	fputs("^\n", f);
}

static char *format(const struct anser_diags *d, bool excerpts)
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
		if (excerpts && g->line && g->source)
			print_excerpt(f, g->source, g->col);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *anser_diags_format(const struct anser_diags *d)
{
	return format(d, false);
}

char *anser_diags_format_excerpts(const struct anser_diags *d)
{
	return format(d, true);
}

/* Passwords in links ("socks5://user:secret@host", or a quoted
 * 'user:secret@host') become '*': the excerpt may end up in a terminal
 * log or a bug report. */
static void mask_secrets(char *s)
{
	for (char *at = strchr(s, '@'); at; at = strchr(at + 1, '@')) {
		char *start = at, *colon = NULL;
		while (start > s && !strchr("/'\" \t(,", start[-1]))
			start--;
		if (start == s || !strchr("/'\"", start[-1]))
			continue; /* not a link's userinfo (e.g. geosite:cn@cn) */
		for (char *q = start; q < at; q++)
			if (*q == ':' && !colon)
				colon = q;
		if (colon)
			memset(colon + 1, '*', (size_t)(at - colon - 1));
	}
}

/* Line `line` (1-based) of src, without its newline; NUL bytes and other
 * control characters but tabs shown as spaces, passwords masked. NULL if
 * there is none. */
static char *source_line(const char *src, size_t len, unsigned line)
{
	if (!src || !line)
		return NULL;

	const char *p = src, *end = src + len;
	for (unsigned l = 1; l < line; l++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return NULL;
		p = nl + 1;
	}
	const char *eol = memchr(p, '\n', (size_t)(end - p));
	size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
	if (n && p[n - 1] == '\r')
		n--;
	if (n > CFG_MAX_EXCERPT)
		n = CFG_MAX_EXCERPT; /* a caret past it still points at the line's end */
	char *s = cfg_strndup(p, n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
			s[i] = ' ';
	mask_secrets(s);
	return s;
}

static void push(struct cfg_diag_sink *s, struct cfg_pos pos, bool warning, char *message)
{
	struct anser_diags *d = s->d;
	const char *file = s->file, *src = s->src;
	size_t len = s->len;

	if (s->files && pos.file < s->n_files) {
		file = s->files[pos.file].name;
		src = s->files[pos.file].text;
		len = s->files[pos.file].len;
	}
	d->v = cfg_realloc_array(d->v, d->n + 1, sizeof(*d->v));
	d->v[d->n++] = (struct anser_diag){
		.file = cfg_strdup(file ? file : "<input>"),
		.line = pos.line,
		.col = pos.col,
		.warning = warning,
		.message = message,
		.source = source_line(src, len, pos.line),
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
		push(s, pos, false,
		     cfg_strdup("too many problems, giving up (fix the ones above first)"));
		if (warning)
			s->n_errors++;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	push(s, pos, warning, msg ? msg : cfg_strdup(fmt));
}

struct ranked {
	size_t file; /* rank of its file */
	size_t ix;   /* insertion order */
	struct anser_diag d;
};

static int cmp_diag(const void *a, const void *b)
{
	const struct ranked *rx = a, *ry = b;
	const struct anser_diag *x = &rx->d, *y = &ry->d;

	if (rx->file != ry->file)
		return rx->file < ry->file ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	/* keep insertion order for ties */
	return rx->ix < ry->ix ? -1 : rx->ix > ry->ix;
}

void cfg_diags_sort(struct anser_diags *d, size_t from, const struct cfg_file *files,
		    size_t n_files)
{
	size_t n = d->n - from;

	if (n < 2)
		return;
	struct ranked *r = cfg_realloc_array(NULL, n, sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		r[i] = (struct ranked){ .file = n_files, .ix = i, .d = d->v[from + i] };
		for (size_t f = 0; f < n_files; f++)
			if (strcmp(files[f].name, r[i].d.file) == 0) {
				r[i].file = f;
				break;
			}
	}
	qsort(r, n, sizeof(*r), cmp_diag);
	for (size_t i = 0; i < n; i++)
		d->v[from + i] = r[i].d;
	free(r);
}
