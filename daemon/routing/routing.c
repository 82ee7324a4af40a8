// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Generations and the rule compiler. A rule "a && !b -> out" becomes the
 * matcher run [a][!b, end, out]. Each name, CIDR or port condition owns a
 * bit of its kind; names go into pname_set under a per-condition set id,
 * CIDRs and ports into one LPM trie per kind whose entries carry the bits
 * of every condition with a prefix containing them, so the kernel needs
 * one lookup per flow however many rules there are. Set ids and LPM keys
 * carry the slot, so the two slots never share an entry and a reload can
 * fill one while the kernel reads the other.
 */
#include "routing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct anser_gen *anser_gen_new(struct anser_config *cfg, uint64_t number, unsigned slot)
{
	struct anser_gen *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	atomic_init(&g->refs, 1);
	g->number = number;
	g->slot = slot & 1;
	g->cfg = cfg;
	return g;
}

struct anser_gen *anser_gen_ref(struct anser_gen *g)
{
	if (g)
		atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	return g;
}

void anser_gen_unref(struct anser_gen *g)
{
	if (!g)
		return;
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
		return;
	anser_config_free(g->cfg);
	free(g);
}

void anser_compiled_clear(struct anser_compiled *c)
{
	free(c->matchers);
	free(c->lpm);
	free(c->pnames);
	memset(c, 0, sizeof(*c));
}

void anser_port_range_prefixes(uint16_t lo, uint16_t hi,
			       void (*emit)(uint16_t port, unsigned bits, void *ud), void *ud)
{
	uint32_t cur = lo;
	while (cur <= hi) {
		/* Largest aligned block starting at cur that stays within hi. */
		unsigned size_bits = 0;
		while (size_bits < 16) {
			uint32_t block = 1u << (size_bits + 1);
			if ((cur & (block - 1)) != 0 || cur + block - 1 > hi)
				break;
			size_bits++;
		}
		emit((uint16_t)cur, 16 - size_bits, ud);
		cur += 1u << size_bits;
	}
}

struct compiler {
	struct anser_compiled *out;
	size_t cap_m, cap_l, cap_p;
	uint32_t next_set;
	uint32_t slot;
	uint32_t next_bit[ANSER_M_DPORT + 1]; /* per kind: PNAME, DIP, DPORT */
	uint32_t cur_bit;		      /* bit of the port condition being split */
	int err;
};

static int grow(void **v, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 64;
	void *nv = realloc(*v, ncap * elem);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

static struct anser_matcher *add_matcher(struct compiler *c)
{
	struct anser_compiled *o = c->out;
	if (o->n_matchers >= ANSER_MAX_MATCHERS) {
		c->err = -E2BIG;
		return NULL;
	}
	if (grow((void **)&o->matchers, &c->cap_m, o->n_matchers, sizeof(*o->matchers)) < 0) {
		c->err = -ENOMEM;
		return NULL;
	}
	struct anser_matcher *m = &o->matchers[o->n_matchers++];
	memset(m, 0, sizeof(*m));
	return m;
}

/* A trie entry of `kind` for the condition owning `bit` (its data is
 * filled by the caller; bits beyond the prefix must be zero). */
static struct anser_lpm_entry *add_lpm(struct compiler *c, uint32_t kind, unsigned prefixlen,
				       uint32_t bit)
{
	struct anser_compiled *o = c->out;
	if (grow((void **)&o->lpm, &c->cap_l, o->n_lpm, sizeof(*o->lpm)) < 0) {
		c->err = -ENOMEM;
		return NULL;
	}
	struct anser_lpm_entry *e = &o->lpm[o->n_lpm++];
	memset(e, 0, sizeof(*e));
	e->key.prefixlen = 32 + prefixlen;
	e->key.set = (c->slot << 31) | kind;
	e->bits.w[bit / 64] = 1ULL << (bit % 64);
	return e;
}

static void emit_port(uint16_t port, unsigned bits, void *ud)
{
	struct compiler *c = ud;
	struct anser_lpm_entry *e = add_lpm(c, ANSER_LPM_DPORT, bits, c->cur_bit);
	if (!e)
		return;
	e->key.data[0] = port >> 8;
	e->key.data[1] = port & 0xff;
}

/* The next free bit of a matcher type's kind, or -1 (and -E2BIG) when the
 * kind has no bits left. */
static int take_bit(struct compiler *c, unsigned type, unsigned limit)
{
	if (c->next_bit[type] >= limit) {
		c->err = -E2BIG;
		return -1;
	}
	return (int)c->next_bit[type]++;
}

static int lpm_cmp(const void *pa, const void *pb)
{
	const struct anser_lpm_key *a = &((const struct anser_lpm_entry *)pa)->key;
	const struct anser_lpm_key *b = &((const struct anser_lpm_entry *)pb)->key;
	if (a->set != b->set)
		return a->set < b->set ? -1 : 1;
	int r = memcmp(a->data, b->data, sizeof(a->data));
	if (r)
		return r;
	return a->prefixlen < b->prefixlen ? -1 : a->prefixlen > b->prefixlen;
}

/* Does prefix a contain prefix b (same kind)? */
static int lpm_contains(const struct anser_lpm_key *a, const struct anser_lpm_key *b)
{
	if (a->set != b->set || a->prefixlen > b->prefixlen)
		return 0;
	unsigned bits = a->prefixlen - 32, full = bits / 8, rest = bits % 8;
	if (memcmp(a->data, b->data, full) != 0)
		return 0;
	if (!rest)
		return 1;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a->data[full] & mask) == (b->data[full] & mask);
}

/*
 * Merge duplicate prefixes and give each entry the bits of every prefix
 * containing it: the trie answers with the longest match, and every other
 * prefix that contains the address contains that match. Sorted by
 * (kind, address, length), a prefix's descendants follow it contiguously,
 * so a stack of the open ancestors does it in one pass.
 */
static int finish_lpm(struct anser_compiled *o)
{
	size_t n = 0, depth = 0;
	size_t *stack;

	if (!o->n_lpm)
		return 0;
	qsort(o->lpm, o->n_lpm, sizeof(*o->lpm), lpm_cmp);
	for (size_t i = 0; i < o->n_lpm; i++) {
		if (n && lpm_cmp(&o->lpm[n - 1], &o->lpm[i]) == 0) {
			for (size_t w = 0;
			     w < sizeof(o->lpm[0].bits.w) / sizeof(o->lpm[0].bits.w[0]); w++)
				o->lpm[n - 1].bits.w[w] |= o->lpm[i].bits.w[w];
			continue;
		}
		o->lpm[n++] = o->lpm[i];
	}
	o->n_lpm = n;
	stack = malloc(n * sizeof(*stack));
	if (!stack)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		while (depth && !lpm_contains(&o->lpm[stack[depth - 1]].key, &o->lpm[i].key))
			depth--;
		if (depth)
			for (size_t w = 0;
			     w < sizeof(o->lpm[0].bits.w) / sizeof(o->lpm[0].bits.w[0]); w++)
				o->lpm[i].bits.w[w] |= o->lpm[stack[depth - 1]].bits.w[w];
		stack[depth++] = i;
	}
	free(stack);
	return 0;
}

static void compile_cond(struct compiler *c, const struct anser_cond *cond, struct anser_matcher *m)
{
	int bit;

	m->negate = cond->negate ? 1 : 0;
	switch (cond->type) {
	case ANSER_COND_PNAME:
		m->type = ANSER_M_PNAME;
		m->set = (c->slot << 31) | c->next_set++;
		if ((bit = take_bit(c, ANSER_M_PNAME, ANSER_PROC_BITS)) < 0)
			return;
		m->arg = (uint32_t)bit;
		for (size_t i = 0; i < cond->n_names; i++) {
			struct anser_compiled *o = c->out;
			if (grow((void **)&o->pnames, &c->cap_p, o->n_pnames, sizeof(*o->pnames)) <
			    0) {
				c->err = -ENOMEM;
				return;
			}
			struct anser_pname_key *p = &o->pnames[o->n_pnames++];
			memset(p, 0, sizeof(*p));
			p->set = m->set;
			strncpy(p->name, cond->names[i], sizeof(p->name) - 1);
		}
		break;
	case ANSER_COND_DIP:
		m->type = ANSER_M_DIP;
		if ((bit = take_bit(c, ANSER_M_DIP, ANSER_DIP_BITS)) < 0)
			return;
		m->arg = (uint32_t)bit;
		c->out->lookups |= ANSER_LOOKUP_DIP;
		for (size_t i = 0; i < cond->n_cidrs; i++) {
			struct anser_lpm_entry *e =
				add_lpm(c, ANSER_LPM_DIP, cond->cidrs[i].prefix, m->arg);
			if (!e)
				return;
			memcpy(e->key.data, cond->cidrs[i].addr, 16);
		}
		break;
	case ANSER_COND_DPORT:
		m->type = ANSER_M_DPORT;
		if ((bit = take_bit(c, ANSER_M_DPORT, ANSER_PORT_BITS)) < 0)
			return;
		m->arg = (uint32_t)bit;
		c->cur_bit = m->arg;
		c->out->lookups |= ANSER_LOOKUP_DPORT;
		for (size_t i = 0; i < cond->n_ports; i++)
			anser_port_range_prefixes(cond->ports[i].lo, cond->ports[i].hi, emit_port,
						  c);
		break;
	case ANSER_COND_L4PROTO:
		m->type = ANSER_M_L4PROTO;
		m->arg = cond->mask;
		break;
	case ANSER_COND_IPVERSION:
		m->type = ANSER_M_IPVERSION;
		m->arg = cond->mask;
		break;
	default:
		c->err = -EINVAL;
	}
}

int anser_routing_compile(const struct anser_config *cfg, unsigned slot, struct anser_compiled *out)
{
	struct compiler c = { .out = out, .next_set = 1, .slot = slot & 1 };

	memset(out, 0, sizeof(*out));
	for (size_t r = 0; r < cfg->n_rules && !c.err; r++) {
		const struct anser_rule *rule = &cfg->rules[r];
		struct anser_matcher *m = NULL;
		if (rule->n_conds == 0) {
			m = add_matcher(&c);
			if (m)
				m->type = ANSER_M_TRUE;
		}
		for (size_t i = 0; i < rule->n_conds && !c.err; i++) {
			m = add_matcher(&c);
			if (m)
				compile_cond(&c, &rule->conds[i], m);
		}
		if (m && !c.err) {
			m->rule_end = 1;
			m->outbound = (uint16_t)rule->outbound;
			m->rule = (uint16_t)r;
		}
	}
	if (!c.err) {
		struct anser_matcher *m = add_matcher(&c);
		if (m) {
			m->type = ANSER_M_TRUE;
			m->rule_end = 1;
			m->outbound = (uint16_t)cfg->fallback;
			m->rule = ANSER_RULE_FALLBACK;
		}
	}
	if (!c.err)
		c.err = finish_lpm(out);
	if (c.err) {
		anser_compiled_clear(out);
		return c.err;
	}
	return 0;
}
