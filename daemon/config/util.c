// SPDX-License-Identifier: GPL-2.0-or-later
/* Small helpers of the config module: allocation, quoting, suggestions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-private.h"

static void *oom(void)
{
	fputs("anserd: out of memory while reading the config\n", stderr);
	abort();
}

void *cfg_malloc0(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	return p ? p : oom();
}

void *cfg_realloc_array(void *p, size_t n, size_t elem)
{
	if (elem && n > SIZE_MAX / elem)
		return oom();
	p = realloc(p, n * elem > 0 ? n * elem : 1);
	return p ? p : oom();
}

char *cfg_strdup(const char *s)
{
	return cfg_strndup(s, strlen(s));
}

char *cfg_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p)
		return oom();
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *cfg_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	int r = vasprintf(&p, fmt, ap);
	va_end(ap);
	return r < 0 ? oom() : p;
}

void cfg_reserve(void *v, size_t *cap, size_t n, size_t elem)
{
	void **pv = v;

	if (n < *cap)
		return;
	size_t c = *cap ? *cap * 2 : 4;
	while (c <= n)
		c *= 2;
	*pv = cfg_realloc_array(*pv, c, elem);
	memset((char *)*pv + *cap * elem, 0, (c - *cap) * elem);
	*cap = c;
}

#define QUOTE_MAX 48

static void quote_into(char *out, size_t *o, const char *s, size_t len)
{
	for (size_t i = 0; i < len && *o < QUOTE_MAX * 4; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f) {
			snprintf(out + *o, 5, "\\x%02x", c);
			*o += 4;
		} else {
			out[(*o)++] = (char)c;
		}
	}
}

char *cfg_quote(const char *s, size_t len)
{
	/* 4 output bytes per input byte at most, plus "://...@", "..." */
	char *out = cfg_malloc0(QUOTE_MAX * 4 + 16);
	const char *sep = memmem(s, len, "://", 3);
	const char *at = NULL;
	size_t o = 0;

	/* scheme://user:pass@host: the user info is a secret, never show it */
	for (const char *c = sep; c && c < s + len; c++)
		if (*c == '@')
			at = c;
	if (at) {
		quote_into(out, &o, s,
			   (size_t)(sep - s) < QUOTE_MAX ? (size_t)(sep - s) : QUOTE_MAX);
		memcpy(out + o, "://...@", 7);
		o += 7;
		len -= (size_t)(at + 1 - s);
		s = at + 1;
	}
	quote_into(out, &o, s, len < QUOTE_MAX ? len : QUOTE_MAX);
	if (len > QUOTE_MAX) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

/* Optimal string alignment distance, with an early exit for long inputs:
 * only used to find near misses among short names. */
unsigned cfg_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned d[CFG_MAX_NAME + 2][CFG_MAX_NAME + 2];

	/* only distances up to 2 matter: cut the work short beyond */
	if (la > CFG_MAX_NAME || lb > CFG_MAX_NAME || la > lb + 2 || lb > la + 2)
		return 1000;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	unsigned prev_min = 0;
	for (size_t i = 1; i <= la; i++) {
		unsigned row_min = 1000;
		for (size_t j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] != b[j - 1];
			unsigned v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
			if (v < row_min)
				row_min = v;
		}
		/* a row is at least the smaller of the row above and the one
		 * before it plus one: two rows past 2 mean the end is past 2 */
		if (row_min > 2 && prev_min > 2)
			return 1000;
		prev_min = row_min;
	}
	return d[la][lb];
}

const char *cfg_suggest(const char *s, const char *const *cands, size_t n)
{
	const char *best = NULL;
	unsigned best_d = 3;

	for (size_t i = 0; i < n; i++) {
		unsigned dist = cfg_edit_distance(s, cands[i]);
		/* a one-letter name is "near" everything: demand a real match */
		size_t longer = strlen(cands[i]) > strlen(s) ? strlen(cands[i]) : strlen(s);
		if (dist < best_d && dist < longer) {
			best = cands[i];
			best_d = dist;
		}
	}
	return best;
}
