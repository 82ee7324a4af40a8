// SPDX-License-Identifier: GPL-2.0-or-later
/* The domain() matcher (domain.h). */
#include "domain.h"

#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

static inline char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* Hash of s[0..n), read right to left (so a name's suffixes come out of
 * one pass). */
static uint64_t rhash(const char *s, size_t n)
{
	uint64_t h = FNV_OFFSET;
	while (n--)
		h = (h ^ (uint8_t)s[n]) * FNV_PRIME;
	return h;
}

static inline size_t slot_of(uint64_t h, size_t mask)
{
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return (size_t)h & mask;
}

/* ---- builder ---- */

struct name_ent {
	uint64_t hash;
	uint32_t off, len; /* in the string arena */
	uint32_t ref;	   /* id << 1 | suffix */
};

struct kw_ent {
	char *s;
	uint32_t id;
};

/* Ids of keyword-automaton outputs that are regex triggers, not ids. */
#define RE_TRIGGER    0x80000000u
#define MAX_TRIGGERED 1024 /* regexes with triggers tracked per lookup */

/*
 * The longest run of plain characters a regex's every match must contain,
 * lowercased, if it has one of 3 or more (none when it has '|', whose
 * branches need not share one). Characters made optional or repeatable
 * by a following quantifier end a run without counting; bracket
 * expressions, groups' parentheses and other escapes end runs.
 */
static bool regex_literal(const char *re, char *out, size_t outlen)
{
	char cur[64];
	size_t n = 0, best = 0;
	unsigned depth = 0;

	if (strchr(re, '|'))
		return false;
	for (const char *p = re;; p++) {
		char c = *p, v = 0;
		bool lit = false, last = false;
		if (c == '\\' && p[1] && strchr(".-\\/+*?()[]{}^$", p[1])) {
			v = *++p;
			lit = true;
		} else if (c && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				 (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '/')) {
			v = c;
			lit = true;
		} else if (c == '[') {
			/* skip the bracket expression, escapes included */
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			while (*p && *p != ']')
				p += (*p == '\\' && p[1]) ? 2 : 1;
			if (!*p)
				return false;
		} else if (c == '(') {
			depth++; /* a group may be optional or repeated: not counted */
		} else if (c == ')') {
			if (depth)
				depth--;
		} else if (c == '\\' && p[1]) {
			p++; /* \d, \w, ...: not a literal */
		}
		char next = lit ? p[1] : 0;
		if (lit && (next == '*' || next == '?' || next == '{'))
			lit = false; /* optional: ends the run without it */
		if (lit && next == '+')
			last = true; /* once at least: ends the run after it */
		if (lit && depth == 0 && n + 1 < sizeof(cur))
			cur[n++] = lower(v);
		if (!lit || depth || last || n + 1 >= sizeof(cur)) {
			if (n > best && n < outlen) {
				memcpy(out, cur, n);
				out[n] = '\0';
				best = n;
			}
			n = 0;
		}
		if (!c)
			break;
	}
	return best >= 3;
}

struct anser_domain_builder {
	GString *arena;
	struct name_ent *names;
	size_t n_names, cap_names;
	struct kw_ent *kws;
	size_t n_kws, cap_kws;
	GRegex **res;
	uint32_t *re_ids;
	size_t n_res, cap_res;
	size_t always_res; /* regexes without a trigger */
	size_t counts[4];
};

struct anser_domain_builder *anser_domain_builder_new(void)
{
	struct anser_domain_builder *b = calloc(1, sizeof(*b));
	if (b)
		b->arena = g_string_sized_new(4096);
	return b;
}

void anser_domain_builder_free(struct anser_domain_builder *b)
{
	if (!b)
		return;
	if (b->arena)
		g_string_free(b->arena, TRUE);
	free(b->names);
	for (size_t i = 0; i < b->n_kws; i++)
		free(b->kws[i].s);
	free(b->kws);
	for (size_t i = 0; i < b->n_res; i++)
		g_regex_unref(b->res[i]);
	free(b->res);
	free(b->re_ids);
	free(b);
}

static bool grow(void **v, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return true;
	size_t c = *cap ? *cap * 2 : 64;
	void *p = realloc(*v, c * elem);
	if (!p)
		return false;
	*v = p;
	*cap = c;
	return true;
}

int anser_domain_builder_add(struct anser_domain_builder *b, enum anser_domain_kind kind,
			     const char *value, size_t len, uint32_t id, const char **why)
{
	if (kind == ANSER_DOMAIN_SUFFIX || kind == ANSER_DOMAIN_FULL) {
		while (len && value[0] == '.') {
			value++;
			len--;
		}
		while (len && value[len - 1] == '.')
			len--;
		if (!len || len > ANSER_DOMAIN_MAX_NAME) {
			*why = len ? "a domain name is at most 253 bytes" : "an empty domain name";
			return -EINVAL;
		}
		if (!grow((void **)&b->names, &b->cap_names, b->n_names, sizeof(*b->names)))
			return -ENOMEM;
		size_t off = b->arena->len;
		for (size_t i = 0; i < len; i++)
			g_string_append_c(b->arena, lower(value[i]));
		b->names[b->n_names++] = (struct name_ent){
			.hash = rhash(b->arena->str + off, len),
			.off = (uint32_t)off,
			.len = (uint32_t)len,
			.ref = id << 1 | (kind == ANSER_DOMAIN_SUFFIX),
		};
	} else if (kind == ANSER_DOMAIN_KEYWORD) {
		if (!len || len > ANSER_DOMAIN_MAX_NAME) {
			*why = len ? "a keyword is at most 253 bytes" : "an empty keyword";
			return -EINVAL;
		}
		if (!grow((void **)&b->kws, &b->cap_kws, b->n_kws, sizeof(*b->kws)))
			return -ENOMEM;
		char *s = g_ascii_strdown(value, (gssize)len);
		b->kws[b->n_kws++] = (struct kw_ent){ s, id };
	} else {
		g_autofree char *pat = g_strndup(value, len);
		GError *err = NULL;
		if (!len || memchr(value, 0, len)) {
			*why = "an empty regular expression";
			return -EINVAL;
		}
		GRegex *re = g_regex_new(pat, G_REGEX_CASELESS | G_REGEX_OPTIMIZE | G_REGEX_RAW, 0,
					 &err);
		if (!re) {
			g_error_free(err);
			*why = "the regular expression does not compile";
			return -EINVAL;
		}
		if (!grow((void **)&b->res, &b->cap_res, b->n_res, sizeof(*b->res)) ||
		    !(b->re_ids = realloc(b->re_ids, b->cap_res * sizeof(*b->re_ids)))) {
			g_regex_unref(re);
			return -ENOMEM;
		}
		b->res[b->n_res] = re;
		b->re_ids[b->n_res] = id;
		/* a literal every match contains: the regex runs only for names
		 * the keyword automaton finds it in */
		char lit[64];
		if (regex_literal(pat, lit, sizeof(lit))) {
			if (!grow((void **)&b->kws, &b->cap_kws, b->n_kws, sizeof(*b->kws)))
				return -ENOMEM;
			b->kws[b->n_kws++] =
				(struct kw_ent){ g_strdup(lit), RE_TRIGGER | (uint32_t)b->n_res };
		} else {
			b->always_res++;
		}
		b->n_res++;
	}
	b->counts[kind]++;
	return 0;
}

/* ---- the set ---- */

struct slot {
	uint64_t hash;
	uint32_t off, len;     /* key in the arena; len 0: empty slot */
	uint32_t refs, n_refs; /* in refs[] */
};

#define AC_ALPHA 40

struct anser_domain_set {
	char *arena;
	size_t arena_len;
	struct slot *slots;
	size_t mask;
	uint32_t *refs;
	size_t n_refs;
	/* keywords: a DFA over AC_ALPHA symbols; state 0 is the root */
	uint32_t *next;		     /* n_states * AC_ALPHA */
	uint32_t *out_start, *out_n; /* per state: ids in outs[] (fail chain merged) */
	uint32_t *outs;
	size_t n_states, n_outs;
	GRegex **res;
	uint32_t *re_ids;
	uint8_t *re_triggered; /* per regex: 1 if it has a trigger */
	size_t n_res;
	size_t counts[4];
};

static unsigned sym(unsigned char c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= '0' && c <= '9')
		return 26 + (c - '0');
	if (c == '-')
		return 36;
	if (c == '.')
		return 37;
	if (c == '_')
		return 38;
	return 39;
}

static int cmp_name_ent(const void *pa, const void *pb, void *arena)
{
	const struct name_ent *a = pa, *b = pb;
	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	int r = memcmp((char *)arena + a->off, (char *)arena + b->off, a->len);
	if (r)
		return r;
	return a->ref < b->ref ? -1 : a->ref > b->ref;
}

static bool same_key(const struct anser_domain_builder *b, const struct name_ent *x,
		     const struct name_ent *y)
{
	return x->hash == y->hash && x->len == y->len &&
	       memcmp(b->arena->str + x->off, b->arena->str + y->off, x->len) == 0;
}

static int build_names(struct anser_domain_set *s, struct anser_domain_builder *b)
{
	size_t n = b->n_names, keys = 0, size = 16;

	if (n)
		g_qsort_with_data(b->names, (gint)n, sizeof(*b->names), cmp_name_ent,
				  b->arena->str);
	for (size_t i = 0; i < n; i++)
		keys += i == 0 || !same_key(b, &b->names[i - 1], &b->names[i]);
	while (size < keys * 2)
		size *= 2;
	s->slots = calloc(size, sizeof(*s->slots));
	s->refs = malloc((n ? n : 1) * sizeof(*s->refs));
	if (!s->slots || !s->refs)
		return -ENOMEM;
	s->mask = size - 1;
	for (size_t a = 0, z; a < n; a = z) {
		const struct name_ent *e = &b->names[a];
		for (z = a + 1;
		     z < n && b->names[z].hash == e->hash && b->names[z].len == e->len &&
		     memcmp(b->arena->str + b->names[z].off, b->arena->str + e->off, e->len) == 0;
		     z++)
			;
		size_t k = slot_of(e->hash, s->mask);
		while (s->slots[k].len)
			k = (k + 1) & s->mask;
		s->slots[k] = (struct slot){ e->hash, e->off, e->len, (uint32_t)s->n_refs, 0 };
		for (size_t i = a; i < z; i++)
			if (i == a || b->names[i].ref != b->names[i - 1].ref) {
				s->refs[s->n_refs++] = b->names[i].ref;
				s->slots[k].n_refs++;
			}
	}
	s->arena_len = b->arena->len;
	s->arena = g_string_free(b->arena, FALSE);
	b->arena = NULL;
	return 0;
}

/* Aho-Corasick: a trie of the keywords, failure links by breadth, then
 * every missing edge filled from the failure state (a DFA). */
static int build_keywords(struct anser_domain_set *s, struct anser_domain_builder *b)
{
	size_t max_states = 1;
	uint32_t *fail = NULL, *queue = NULL;
	GArray **own = NULL;
	int r = -ENOMEM;

	for (size_t i = 0; i < b->n_kws; i++)
		max_states += strlen(b->kws[i].s);
	s->next = calloc(max_states * AC_ALPHA, sizeof(*s->next));
	s->out_start = calloc(max_states, sizeof(*s->out_start));
	s->out_n = calloc(max_states, sizeof(*s->out_n));
	fail = calloc(max_states, sizeof(*fail));
	queue = calloc(max_states, sizeof(*queue));
	own = calloc(max_states, sizeof(*own));
	if (!s->next || !s->out_start || !s->out_n || !fail || !queue || !own)
		goto out;
	s->n_states = 1;
	/* next[] == 0 means "no edge" while building (the root has no
	 * incoming edges) */
	for (size_t i = 0; i < b->n_kws; i++) {
		uint32_t st = 0;
		for (const char *c = b->kws[i].s; *c; c++) {
			uint32_t *e = &s->next[st * AC_ALPHA + sym((unsigned char)*c)];
			if (!*e)
				*e = (uint32_t)s->n_states++;
			st = *e;
		}
		if (!own[st])
			own[st] = g_array_new(FALSE, FALSE, sizeof(uint32_t));
		g_array_append_val(own[st], b->kws[i].id);
	}
	size_t head = 0, tail = 0;
	for (unsigned c = 0; c < AC_ALPHA; c++)
		if (s->next[c]) {
			fail[s->next[c]] = 0;
			queue[tail++] = s->next[c];
		}
	while (head < tail) {
		uint32_t st = queue[head++];
		for (unsigned c = 0; c < AC_ALPHA; c++) {
			uint32_t *e = &s->next[st * AC_ALPHA + c];
			if (*e) {
				fail[*e] = s->next[fail[st] * AC_ALPHA + c];
				queue[tail++] = *e;
			} else {
				*e = s->next[fail[st] * AC_ALPHA + c];
			}
		}
	}
	/* outputs: a state's own ids, then its failure state's (already
	 * merged: failure states come earlier in breadth order) */
	GArray *outs = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	for (size_t qi = 0; qi <= tail; qi++) {
		uint32_t st = qi == 0 ? 0 : queue[qi - 1];
		s->out_start[st] = outs->len;
		if (own[st])
			g_array_append_vals(outs, own[st]->data, own[st]->len);
		if (st) {
			uint32_t f = fail[st];
			/* one at a time: appending may move the array */
			for (uint32_t o = 0; o < s->out_n[f]; o++) {
				uint32_t id = g_array_index(outs, uint32_t, s->out_start[f] + o);
				g_array_append_val(outs, id);
			}
		}
		s->out_n[st] = outs->len - s->out_start[st];
	}
	s->n_outs = outs->len;
	s->outs = (uint32_t *)(void *)g_array_free(outs, FALSE);
	r = 0;
out:
	for (size_t i = 0; own && i < max_states; i++)
		if (own[i])
			g_array_free(own[i], TRUE);
	free(own);
	free(fail);
	free(queue);
	return r;
}

struct anser_domain_set *anser_domain_builder_finish(struct anser_domain_builder *b)
{
	struct anser_domain_set *s = calloc(1, sizeof(*s));

	if (!s || build_names(s, b) < 0 || build_keywords(s, b) < 0) {
		anser_domain_set_free(s);
		anser_domain_builder_free(b);
		return NULL;
	}
	s->res = b->res;
	s->re_ids = b->re_ids;
	s->n_res = b->n_res;
	s->re_triggered = calloc(b->n_res ? b->n_res : 1, 1);
	if (!s->re_triggered) {
		anser_domain_set_free(s);
		anser_domain_builder_free(b);
		return NULL;
	}
	for (size_t i = 0; i < b->n_kws; i++)
		if (b->kws[i].id & RE_TRIGGER)
			s->re_triggered[b->kws[i].id & ~RE_TRIGGER] = 1;
	b->res = NULL;
	b->re_ids = NULL;
	b->n_res = 0;
	memcpy(s->counts, b->counts, sizeof(s->counts));
	anser_domain_builder_free(b);
	return s;
}

void anser_domain_set_free(struct anser_domain_set *s)
{
	if (!s)
		return;
	g_free(s->arena);
	free(s->slots);
	free(s->refs);
	free(s->next);
	free(s->out_start);
	free(s->out_n);
	g_free(s->outs);
	for (size_t i = 0; i < s->n_res; i++)
		g_regex_unref(s->res[i]);
	free(s->res);
	free(s->re_ids);
	free(s->re_triggered);
	free(s);
}

static inline void set_bit(uint64_t *bits, size_t words, uint32_t id)
{
	if (id / 64 < words)
		bits[id / 64] |= 1ULL << (id % 64);
}

size_t anser_domain_set_match(const struct anser_domain_set *s, const char *name, size_t len,
			      uint64_t *bits, size_t words)
{
	char buf[ANSER_DOMAIN_MAX_NAME + 1];
	size_t hits = 0;

	while (len && name[len - 1] == '.')
		len--;
	if (!len || len > ANSER_DOMAIN_MAX_NAME)
		return 0;
	for (size_t i = 0; i < len; i++)
		buf[i] = lower(name[i]);
	buf[len] = '\0';

	/* suffixes at each label boundary, and the full name */
	uint64_t h = FNV_OFFSET;
	for (size_t i = len; i-- > 0;) {
		h = (h ^ (uint8_t)buf[i]) * FNV_PRIME;
		if (i && buf[i - 1] != '.')
			continue;
		size_t n = len - i;
		for (size_t k = slot_of(h, s->mask); s->slots[k].len; k = (k + 1) & s->mask) {
			const struct slot *sl = &s->slots[k];
			if (sl->hash != h || sl->len != n || memcmp(s->arena + sl->off, buf + i, n))
				continue;
			for (uint32_t r = 0; r < sl->n_refs; r++) {
				uint32_t ref = s->refs[sl->refs + r];
				if ((ref & 1) || i == 0) {
					set_bit(bits, words, ref >> 1);
					hits++;
				}
			}
			break;
		}
	}
	/* regexes whose trigger literal the automaton saw */
	uint64_t cand[MAX_TRIGGERED / 64] = { 0 };
	bool overflow = false;
	if (s->n_outs) {
		uint32_t st = 0;
		for (size_t i = 0; i < len; i++) {
			st = s->next[st * AC_ALPHA + sym((unsigned char)buf[i])];
			for (uint32_t o = 0; o < s->out_n[st]; o++) {
				uint32_t id = s->outs[s->out_start[st] + o];
				if (id & RE_TRIGGER) {
					id &= ~RE_TRIGGER;
					if (id < MAX_TRIGGERED)
						cand[id / 64] |= 1ULL << (id % 64);
					else
						overflow = true;
					continue;
				}
				set_bit(bits, words, id);
				hits++;
			}
		}
	}
	for (size_t i = 0; i < s->n_res; i++) {
		if (s->re_triggered[i] && !overflow &&
		    (i >= MAX_TRIGGERED || !((cand[i / 64] >> (i % 64)) & 1)))
			continue;
		if (g_regex_match(s->res[i], buf, 0, NULL)) {
			set_bit(bits, words, s->re_ids[i]);
			hits++;
		}
	}
	return hits;
}

size_t anser_domain_set_count(const struct anser_domain_set *s, enum anser_domain_kind kind)
{
	return s && (unsigned)kind < 4 ? s->counts[kind] : 0;
}

size_t anser_domain_set_bytes(const struct anser_domain_set *s)
{
	if (!s)
		return 0;
	return sizeof(*s) + s->arena_len + (s->mask + 1) * sizeof(*s->slots) +
	       s->n_refs * sizeof(*s->refs) + s->n_states * (AC_ALPHA + 2) * sizeof(uint32_t) +
	       s->n_outs * sizeof(uint32_t);
}
