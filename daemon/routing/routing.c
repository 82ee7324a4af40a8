// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Generations and the rule compiler. The kernel decides a flow by ANDing
 * four sets of rules -- those its process name, destination address,
 * destination port and protocol/IP version leave possible -- and taking
 * the lowest rule left (bpf/anser_abi.h). This file works those sets out:
 * one per distinct process name (pname_set), one per distinct dip()
 * prefix (an LPM trie entry answers for every address whose longest match
 * it is), one per class of ports that no range boundary separates, and
 * one per protocol/IP version pair. Names and trie keys carry the slot, so
 * the two slots never share an entry and a reload can fill one while the
 * kernel reads the other.
 */
#include "routing.h"

#include <errno.h>
#include <fnmatch.h>
#include <glib.h>
#include <stdbool.h>
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
	free(c->lpm);
	free(c->pnames);
	free(c->port_class);
	free(c->port_rules);
	free(c->sport_class);
	free(c->sport_rules);
	free(c->dscp_rules);
	anser_cg_rules_free(c->cg);
	anser_domain_rules_free(c->dom);
	memset(c, 0, sizeof(*c));
}

static void rules_set(struct anser_rules *m, unsigned r)
{
	m->w[r / 64] |= 1ULL << (r % 64);
}

static bool rules_has(const struct anser_rules *m, unsigned r)
{
	return (m->w[r / 64] >> (r % 64)) & 1;
}

/* Is the flow's value in condition `cond` (before negation)? `i` counts
 * the conditions of the kind being looked at, in config order. */
typedef bool (*cond_in_fn)(const struct anser_cond *cond, size_t i, const void *ud);

/*
 * The rules left possible when the value of one kind of condition is
 * known: those in which every condition of that kind holds (rules with
 * none of that kind, and fallback, included).
 */
static void rules_where(const struct anser_config *cfg, enum anser_cond_type type, cond_in_fn in,
			const void *ud, struct anser_rules *out)
{
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	for (size_t r = 0; r < cfg->n_rules; r++) {
		bool ok = true;
		for (size_t k = 0; k < cfg->rules[r].n_conds; k++) {
			const struct anser_cond *cond = &cfg->rules[r].conds[k];
			if (cond->type != type)
				continue;
			if (in(cond, i++, ud) == cond->negate)
				ok = false;
		}
		if (ok)
			rules_set(out, (unsigned)r);
	}
	rules_set(out, (unsigned)cfg->n_rules); /* fallback */
}

static bool in_none(const struct anser_cond *cond, size_t i, const void *ud)
{
	return false;
}

static bool in_l4(const struct anser_cond *cond, size_t i, const void *ud)
{
	return cond->mask & *(const unsigned *)ud;
}

/* network(): does the primary connection show one of the condition's
 * values? Never while there is none (NetworkManager away, or offline). */
static bool in_network(const struct anser_cond *cond, size_t i, const void *ud)
{
	const struct anser_network *net = ud;

	if (!net || !net->id || !*net->id)
		return false;
	for (size_t k = 0; k < cond->n_nets; k++) {
		const struct anser_net_match *m = &cond->nets[k];
		const char *have = m->key == ANSER_NET_ID      ? net->id
				   : m->key == ANSER_NET_UUID  ? net->uuid
				   : m->key == ANSER_NET_TYPE  ? net->type
				   : m->key == ANSER_NET_SSID  ? net->ssid
				   : m->key == ANSER_NET_IFACE ? net->iface
				   : net->metered	       ? "yes"
							       : "no";
		if (have && *have && fnmatch(m->value, have, 0) == 0)
			return true;
	}
	return false;
}

static size_t count_conds(const struct anser_config *cfg, enum anser_cond_type type)
{
	size_t n = 0;
	for (size_t r = 0; r < cfg->n_rules; r++)
		for (size_t k = 0; k < cfg->rules[r].n_conds; k++)
			n += cfg->rules[r].conds[k].type == type;
	return n;
}

/* How many names, CIDRs or ports the conditions of a type list in all. */
static size_t count_items(const struct anser_config *cfg, enum anser_cond_type type)
{
	size_t n = 0;
	for (size_t r = 0; r < cfg->n_rules; r++)
		for (size_t k = 0; k < cfg->rules[r].n_conds; k++) {
			const struct anser_cond *c = &cfg->rules[r].conds[k];
			if (c->type == type)
				n += c->n_names + c->n_cidrs + c->n_ports +
				     c->n_macs; /* one is set */
		}
	return n;
}

/* ---- pname(): one entry per distinct name ---- */

struct name_ref {
	const char *name;
	size_t cond; /* index among the pname() conditions */
};

static int name_ref_cmp(const void *pa, const void *pb)
{
	const struct name_ref *a = pa, *b = pb;
	int r = strcmp(a->name, b->name);
	if (r)
		return r;
	return a->cond < b->cond ? -1 : a->cond > b->cond;
}

struct name_group {
	const struct name_ref *refs; /* the conditions naming this name */
	size_t n;
};

static bool in_name_group(const struct anser_cond *cond, size_t i, const void *ud)
{
	const struct name_group *g = ud;
	for (size_t k = 0; k < g->n; k++)
		if (g->refs[k].cond == i)
			return true;
	return false;
}

static int compile_pnames(const struct anser_config *cfg, unsigned slot, struct anser_compiled *o)
{
	size_t n = count_items(cfg, ANSER_COND_PNAME), i = 0;
	struct name_ref *refs;

	rules_where(cfg, ANSER_COND_PNAME, in_none, NULL, &o->info.pname_default);
	if (!n)
		return 0;
	refs = calloc(n, sizeof(*refs));
	o->pnames = calloc(n, sizeof(*o->pnames));
	if (!refs || !o->pnames) {
		free(refs);
		return -ENOMEM;
	}
	n = 0;
	for (size_t r = 0; r < cfg->n_rules; r++)
		for (size_t k = 0; k < cfg->rules[r].n_conds; k++) {
			const struct anser_cond *cond = &cfg->rules[r].conds[k];
			if (cond->type != ANSER_COND_PNAME)
				continue;
			for (size_t j = 0; j < cond->n_names; j++)
				refs[n++] = (struct name_ref){ cond->names[j], i };
			i++;
		}
	qsort(refs, n, sizeof(*refs), name_ref_cmp);
	for (size_t a = 0, b; a < n; a = b) {
		for (b = a + 1; b < n && strcmp(refs[a].name, refs[b].name) == 0; b++)
			;
		struct name_group g = { &refs[a], b - a };
		struct anser_pname_entry *e = &o->pnames[o->n_pnames++];
		e->key.set = slot;
		strncpy(e->key.name, refs[a].name, sizeof(e->key.name) - 1);
		rules_where(cfg, ANSER_COND_PNAME, in_name_group, &g, &e->rules);
	}
	free(refs);
	return 0;
}

/* ---- dip(): one trie entry per distinct prefix ---- */

struct prefix_ref {
	struct anser_lpm_key key;
	size_t cond; /* index among the dip() conditions */
};

static int lpm_key_cmp(const struct anser_lpm_key *a, const struct anser_lpm_key *b)
{
	int r = memcmp(a->data, b->data, sizeof(a->data));
	if (r)
		return r;
	return a->prefixlen < b->prefixlen ? -1 : a->prefixlen > b->prefixlen;
}

static int prefix_ref_cmp(const void *pa, const void *pb)
{
	return lpm_key_cmp(&((const struct prefix_ref *)pa)->key,
			   &((const struct prefix_ref *)pb)->key);
}

/* Does prefix a contain prefix b? */
static bool lpm_contains(const struct anser_lpm_key *a, const struct anser_lpm_key *b)
{
	if (a->prefixlen > b->prefixlen)
		return false;
	unsigned bits = a->prefixlen - 32, full = bits / 8, rest = bits % 8;
	if (memcmp(a->data, b->data, full) != 0)
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a->data[full] & mask) == (b->data[full] & mask);
}

struct condset {
	const uint64_t *bits; /* by dip() condition index */
};

static bool in_condset(const struct anser_cond *cond, size_t i, const void *ud)
{
	const struct condset *s = ud;
	return (s->bits[i / 64] >> (i % 64)) & 1;
}

/*
 * The trie answers with the longest prefix containing the address, and
 * every other prefix containing the address contains that one: so the
 * dip() conditions that hold are those of the entry and of its ancestors.
 * Sorted by (address, length), a prefix's descendants follow it, and a
 * stack of the open ancestors collects them in one pass.
 */
static int compile_prefixes(const struct anser_config *cfg, unsigned slot, struct anser_compiled *o,
			    enum anser_cond_type type, uint32_t set, struct anser_rules *dflt,
			    uint32_t lookup)
{
	size_t n = count_items(cfg, type), i = 0, n_conds = count_conds(cfg, type);
	size_t words = (n_conds + 63) / 64, u = 0, depth = 0, base = o->n_lpm;
	struct prefix_ref *refs = NULL;
	uint64_t *sets = NULL;
	size_t *stack = NULL;
	int r = -ENOMEM;

	rules_where(cfg, type, in_none, NULL, dflt);
	if (!n)
		return 0;
	o->info.lookups |= lookup;
	refs = calloc(n, sizeof(*refs));
	if (!refs)
		goto out;
	n = 0;
	for (size_t q = 0; q < cfg->n_rules; q++)
		for (size_t k = 0; k < cfg->rules[q].n_conds; k++) {
			const struct anser_cond *cond = &cfg->rules[q].conds[k];
			if (cond->type != type)
				continue;
			for (size_t j = 0; j < cond->n_cidrs; j++) {
				struct prefix_ref *p = &refs[n++];
				p->key.prefixlen = 32 + cond->cidrs[j].prefix;
				p->key.set = (slot << 31) | set;
				memcpy(p->key.data, cond->cidrs[j].addr, 16);
				p->cond = i;
			}
			/* mac(): each address is a 48-bit prefix of its own */
			for (size_t j = 0; j < cond->n_macs; j++) {
				struct prefix_ref *p = &refs[n++];
				p->key.prefixlen = 32 + 48;
				p->key.set = (slot << 31) | set;
				memcpy(p->key.data, cond->macs[j], 6);
				p->cond = i;
			}
			i++;
		}
	qsort(refs, n, sizeof(*refs), prefix_ref_cmp);
	sets = calloc(n * words, sizeof(*sets));
	stack = calloc(n, sizeof(*stack));
	struct anser_lpm_entry *all = realloc(o->lpm, (base + n) * sizeof(*o->lpm));
	if (!sets || !stack || !all)
		goto out;
	o->lpm = all;
	struct anser_lpm_entry *lpm = all + base;
	memset(lpm, 0, n * sizeof(*lpm));
	/* Merge equal prefixes: entry u gets the conditions of all of them. */
	for (size_t a = 0; a < n; a++) {
		if (a && lpm_key_cmp(&refs[a - 1].key, &refs[a].key) == 0)
			u--;
		lpm[u].key = refs[a].key;
		sets[u * words + refs[a].cond / 64] |= 1ULL << (refs[a].cond % 64);
		u++;
	}
	o->n_lpm = base + u;
	if (o->n_lpm > ANSER_LPM_MAX_ENTRIES / 2) {
		o->limit = "at most 131072 distinct dip() and sip() addresses and prefixes";
		r = -E2BIG;
		goto out;
	}
	for (size_t e = 0; e < u; e++) {
		while (depth && !lpm_contains(&lpm[stack[depth - 1]].key, &lpm[e].key))
			depth--;
		if (depth)
			for (size_t w = 0; w < words; w++)
				sets[e * words + w] |= sets[stack[depth - 1] * words + w];
		stack[depth++] = e;
		struct condset cs = { &sets[e * words] };
		rules_where(cfg, type, in_condset, &cs, &lpm[e].rules);
	}
	r = 0;
out:
	free(refs);
	free(sets);
	free(stack);
	return r;
}

static int compile_dips(const struct anser_config *cfg, unsigned slot, struct anser_compiled *o)
{
	int r = compile_prefixes(cfg, slot, o, ANSER_COND_DIP, ANSER_LPM_DIP, &o->info.dip_default,
				 ANSER_LOOKUP_DIP);
	/* the gateway reads forwarded traffic's source too */
	if (r == 0)
		r = compile_prefixes(cfg, slot, o, ANSER_COND_SIP, ANSER_LPM_SIP,
				     &o->info.sip_default, ANSER_LOOKUP_SIP);
	if (r == 0)
		r = compile_prefixes(cfg, slot, o, ANSER_COND_MAC, ANSER_LPM_MAC,
				     &o->info.mac_default, ANSER_LOOKUP_MAC);
	return r;
}

/* ---- dport(): one class per distinct set of rules ---- */

static bool in_ports(const struct anser_cond *cond, size_t i, const void *ud)
{
	unsigned port = *(const unsigned *)ud;
	for (size_t k = 0; k < cond->n_ports; k++)
		if (port >= cond->ports[k].lo && port <= cond->ports[k].hi)
			return true;
	return false;
}

static int u32_cmp(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	return a < b ? -1 : a > b;
}

/* Ports only change class where a range starts or ends: each run between
 * two such points shares one set of rules. For dport() (type
 * ANSER_COND_DPORT) or sport(): *cls_out (65536 class bytes),
 * *rules_out (the classes' rules), *n_out; nothing when no rule has one. */
static int compile_port_table(const struct anser_config *cfg, enum anser_cond_type type,
			      struct anser_compiled *o, uint8_t **cls_out,
			      struct anser_rules **rules_out, size_t *n_out)
{
	size_t n = 1 + 2 * count_items(cfg, type);
	uint32_t *pts;

	if (!count_conds(cfg, type))
		return 0;
	pts = calloc(n, sizeof(*pts));
	uint8_t *port_class = *cls_out = calloc(65536, 1);
	struct anser_rules *port_rules = *rules_out =
		calloc(ANSER_MAX_PORT_CLASSES, sizeof(*port_rules));
	if (!pts || !port_class || !port_rules) {
		free(pts);
		return -ENOMEM;
	}
	*n_out = 0;
	n = 0;
	pts[n++] = 0;
	for (size_t r = 0; r < cfg->n_rules; r++)
		for (size_t k = 0; k < cfg->rules[r].n_conds; k++) {
			const struct anser_cond *cond = &cfg->rules[r].conds[k];
			if (cond->type != type)
				continue;
			for (size_t j = 0; j < cond->n_ports; j++) {
				pts[n++] = cond->ports[j].lo;
				pts[n++] = (uint32_t)cond->ports[j].hi + 1;
			}
		}
	qsort(pts, n, sizeof(*pts), u32_cmp);
	for (size_t a = 0; a < n && pts[a] <= 65535; a++) {
		if (a && pts[a] == pts[a - 1])
			continue;
		unsigned start = pts[a], end = 65536, cls;
		for (size_t b = a + 1; b < n; b++)
			if (pts[b] != start) {
				end = pts[b] < 65536 ? pts[b] : 65536;
				break;
			}
		struct anser_rules m;
		rules_where(cfg, type, in_ports, &start, &m);
		for (cls = 0; cls < *n_out; cls++)
			if (memcmp(&port_rules[cls], &m, sizeof(m)) == 0)
				break;
		if (cls == *n_out) {
			if (cls == ANSER_MAX_PORT_CLASSES) {
				o->limit = type == ANSER_COND_DPORT
						   ? "at most 256 different sets of dport() ports"
						   : "at most 256 different sets of sport() ports";
				free(pts);
				return -E2BIG;
			}
			port_rules[(*n_out)++] = m;
		}
		memset(port_class + start, (int)cls, end - start);
	}
	free(pts);
	return 0;
}

static int compile_ports(const struct anser_config *cfg, struct anser_compiled *o)
{
	rules_where(cfg, ANSER_COND_DPORT, in_none, NULL, &o->info.port_default);
	if (count_conds(cfg, ANSER_COND_DPORT))
		o->info.lookups |= ANSER_LOOKUP_DPORT;
	if (count_conds(cfg, ANSER_COND_SPORT))
		o->info.lookups |= ANSER_LOOKUP_SPORT;
	int r = compile_port_table(cfg, ANSER_COND_DPORT, o, &o->port_class, &o->port_rules,
				   &o->n_port_classes);
	if (r < 0)
		return r;
	return compile_port_table(cfg, ANSER_COND_SPORT, o, &o->sport_class, &o->sport_rules,
				  &o->n_sport_classes);
}

static bool in_dscp(const struct anser_cond *cond, size_t i, const void *ud)
{
	return (cond->dscp >> *(const unsigned *)ud) & 1;
}

/* dscp(): the rules each of the 64 values leaves possible. */
static int compile_dscp(const struct anser_config *cfg, struct anser_compiled *o)
{
	if (!count_conds(cfg, ANSER_COND_DSCP))
		return 0;
	o->info.lookups |= ANSER_LOOKUP_DSCP;
	o->dscp_rules = calloc(64, sizeof(*o->dscp_rules));
	if (!o->dscp_rules)
		return -ENOMEM;
	for (unsigned v = 0; v < 64; v++)
		rules_where(cfg, ANSER_COND_DSCP, in_dscp, &v, &o->dscp_rules[v]);
	return 0;
}

/* ---- app() and cgroup(): a set per cgroup path ---- */

struct cg_cond {
	unsigned rule;
	bool negate, app;
	char **vals; /* app ids, or cgroup paths without a trailing '/' */
	size_t n;
};

struct anser_cg_rules {
	unsigned n_rules; /* including fallback */
	struct cg_cond *conds;
	size_t n;
};

void anser_cg_rules_free(struct anser_cg_rules *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		for (size_t k = 0; k < m->conds[i].n; k++)
			free(m->conds[i].vals[k]);
		free(m->conds[i].vals);
	}
	free(m->conds);
	free(m);
}

struct anser_cg_rules *anser_cg_rules_new(const struct anser_config *cfg)
{
	size_t n = count_conds(cfg, ANSER_COND_APP) + count_conds(cfg, ANSER_COND_CGROUP);
	struct anser_cg_rules *m;

	if (!n)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->conds = calloc(n, sizeof(*m->conds))))
		goto oom;
	m->n_rules = (unsigned)cfg->n_rules + 1;
	for (size_t r = 0; r < cfg->n_rules; r++)
		for (size_t k = 0; k < cfg->rules[r].n_conds; k++) {
			const struct anser_cond *c = &cfg->rules[r].conds[k];
			if (c->type != ANSER_COND_APP && c->type != ANSER_COND_CGROUP)
				continue;
			struct cg_cond *d = &m->conds[m->n++];
			d->rule = (unsigned)r;
			d->negate = c->negate;
			d->app = c->type == ANSER_COND_APP;
			if (!(d->vals = calloc(c->n_names, sizeof(*d->vals))))
				goto oom;
			for (; d->n < c->n_names; d->n++)
				if (!(d->vals[d->n] = strdup(c->names[d->n])))
					goto oom;
		}
	return m;
oom:
	anser_cg_rules_free(m);
	return NULL;
}

bool anser_cgroup_path_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	if (n == 1 && prefix[0] == '/')
		return true;
	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

void anser_cg_rules_eval(const struct anser_cg_rules *m, const char *path, struct anser_rules *out)
{
	char app[256];
	size_t app_len = path ? anser_cgroup_app_id(path, app, sizeof(app)) : 0;

	memset(out, 0, sizeof(*out));
	for (unsigned r = 0; r < m->n_rules; r++)
		rules_set(out, r);
	for (size_t i = 0; i < m->n; i++) {
		const struct cg_cond *c = &m->conds[i];
		bool in = false;
		for (size_t k = 0; k < c->n && !in; k++)
			in = c->app ? app_len && strcmp(app, c->vals[k]) == 0
				    : path && anser_cgroup_path_under(path, c->vals[k]);
		if (in == c->negate)
			out->w[c->rule / 64] &= ~(1ULL << (c->rule % 64));
	}
}

/* The application id of one path part (a unit name), or 0. */
static size_t unit_app_id(const char *s, size_t n, char *buf, size_t len)
{
	const char *end;

	if (n < 5 || strncmp(s, "app-", 4) != 0)
		return 0;
	s += 4;
	n -= 4;
	if (n > 6 && memcmp(s + n - 6, ".scope", 6) == 0) {
		/* -<random> is required for scopes */
		end = memrchr(s, '-', n - 6);
		if (!end)
			return 0;
	} else if (n > 8 && memcmp(s + n - 8, ".service", 8) == 0) {
		end = memchr(s, '@', n - 8);
		if (!end)
			end = s + n - 8;
	} else if (n > 6 && memcmp(s + n - 6, ".slice", 6) == 0) {
		end = s + n - 6;
	} else {
		return 0;
	}
	/* [<launcher>-]<id>: the id's own '-' are escaped, so it is the
	 * last '-'-separated part */
	const char *start = memrchr(s, '-', (size_t)(end - s));
	start = start ? start + 1 : s;
	size_t o = 0;
	for (const char *c = start; c < end; c++) {
		char ch = *c;
		if (ch == '\\' && end - c >= 4 && c[1] == 'x' && g_ascii_xdigit_value(c[2]) >= 0 &&
		    g_ascii_xdigit_value(c[3]) >= 0) {
			ch = (char)(g_ascii_xdigit_value(c[2]) << 4 | g_ascii_xdigit_value(c[3]));
			c += 3;
		}
		if (o + 1 >= len || ch == '\0' || ch == '/')
			return 0;
		buf[o++] = ch;
	}
	if (!o)
		return 0;
	buf[o] = '\0';
	return o;
}

size_t anser_cgroup_app_id(const char *path, char *buf, size_t len)
{
	size_t found = 0;

	for (const char *p = path; *p;) {
		const char *e = strchrnul(p, '/');
		char tmp[256];
		size_t n = unit_app_id(p, (size_t)(e - p), tmp, sizeof(tmp));
		if (n && n < len) {
			memcpy(buf, tmp, n + 1);
			found = n;
		}
		p = *e ? e + 1 : e;
	}
	return found;
}

/* ---- domain(): one matcher for all patterns, ids = condition index ---- */

struct dom_cond {
	unsigned rule;
	bool negate;
};

struct anser_domain_rules {
	unsigned n_rules; /* including fallback */
	struct dom_cond *conds;
	size_t n;
	struct anser_domain_set *set;
};

void anser_domain_rules_free(struct anser_domain_rules *d)
{
	if (!d)
		return;
	anser_domain_set_free(d->set);
	free(d->conds);
	free(d);
}

const struct anser_domain_set *anser_domain_rules_set(const struct anser_domain_rules *d)
{
	return d ? d->set : NULL;
}

static int compile_domains(const struct anser_config *cfg, struct anser_compiled *o)
{
	size_t n = count_conds(cfg, ANSER_COND_DOMAIN);
	struct anser_domain_builder *b;
	struct anser_domain_rules *d;

	if (!n)
		return 0;
	d = calloc(1, sizeof(*d));
	b = anser_domain_builder_new();
	if (!d || !b || !(d->conds = calloc(n, sizeof(*d->conds))))
		goto oom;
	d->n_rules = (unsigned)cfg->n_rules + 1;
	for (size_t r = 0; r < cfg->n_rules; r++)
		for (size_t k = 0; k < cfg->rules[r].n_conds; k++) {
			const struct anser_cond *c = &cfg->rules[r].conds[k];
			if (c->type != ANSER_COND_DOMAIN)
				continue;
			uint32_t id = (uint32_t)d->n;
			d->conds[d->n++] = (struct dom_cond){ (unsigned)r, c->negate };
			for (size_t i = 0; i < c->n_domains; i++) {
				const char *why;
				const struct anser_domain_pat *pat = &c->domains[i];
				int e = anser_domain_builder_add(
					b, (enum anser_domain_kind)pat->kind, pat->value,
					strlen(pat->value), id, &why);
				if (e == -ENOMEM)
					goto oom;
				/* others (an empty name from a data set) can never match */
			}
		}
	d->set = anser_domain_builder_finish(b);
	b = NULL;
	if (!d->set)
		goto oom;
	o->dom = d;
	return 0;
oom:
	anser_domain_builder_free(b);
	anser_domain_rules_free(d);
	return -ENOMEM;
}

void anser_domain_rules_eval(const struct anser_domain_rules *d, const char *name,
			     struct anser_rules *out)
{
	uint64_t stack[16], *bits = stack;
	size_t words = (d->n + 63) / 64;

	memset(out, 0, sizeof(*out));
	for (unsigned r = 0; r < d->n_rules; r++)
		rules_set(out, r);
	if (words > 16 && !(bits = calloc(words, sizeof(*bits))))
		return;
	if (bits == stack)
		memset(stack, 0, sizeof(stack));
	if (name)
		anser_domain_set_match(d->set, name, strlen(name), bits, words);
	for (size_t i = 0; i < d->n; i++) {
		bool in = (bits[i / 64] >> (i % 64)) & 1;
		if (in == d->conds[i].negate)
			out->w[d->conds[i].rule / 64] &= ~(1ULL << (d->conds[i].rule % 64));
	}
	if (bits != stack)
		free(bits);
}

void anser_compiled_set_slot(struct anser_compiled *c, unsigned slot)
{
	slot &= 1;
	for (size_t i = 0; i < c->n_lpm; i++)
		c->lpm[i].key.set = (c->lpm[i].key.set & ~(1u << 31)) | (slot << 31);
	for (size_t i = 0; i < c->n_pnames; i++)
		c->pnames[i].key.set = slot;
}

static int compile_merged(const struct anser_config *cfg, const uint16_t *first,
			  const struct anser_network *net, unsigned slot,
			  struct anser_compiled *out);

/* ---- dae's merge: consecutive rules of one condition of the same kind,
 * not negated, with the same outbound, become one kernel rule ---- */

bool anser_rules_mergeable(const struct anser_rule *a, const struct anser_rule *b)
{
	if (a->n_conds != 1 || b->n_conds != 1)
		return false;
	const struct anser_cond *x = &a->conds[0], *y = &b->conds[0];
	/* network() is decided before the kernel sees the rules: left alone */
	return x->type == y->type && x->type != ANSER_COND_NETWORK && !x->negate && !y->negate &&
	       a->outbound == b->outbound && a->must == b->must && a->mark == b->mark;
}

#define APPEND(dst, n_dst, src, n_src)                                                             \
	do {                                                                                       \
		if (n_src) {                                                                       \
			void *p_ = realloc((dst), ((n_dst) + (n_src)) * sizeof(*(dst)));           \
			if (!p_)                                                                   \
				return -ENOMEM;                                                    \
			(dst) = p_;                                                                \
			memcpy((dst) + (n_dst), (src), (n_src) * sizeof(*(dst)));                  \
			(n_dst) += (n_src);                                                        \
		}                                                                                  \
	} while (0)

/* Adds the items of y to x (x's arrays are its own; the strings are not). */
static int cond_merge(struct anser_cond *x, const struct anser_cond *y)
{
	APPEND(x->names, x->n_names, y->names, y->n_names);
	APPEND(x->cidrs, x->n_cidrs, y->cidrs, y->n_cidrs);
	APPEND(x->ports, x->n_ports, y->ports, y->n_ports);
	APPEND(x->domains, x->n_domains, y->domains, y->n_domains);
	APPEND(x->macs, x->n_macs, y->macs, y->n_macs);
	x->mask |= y->mask;
	x->dscp |= y->dscp;
	return 0;
}

struct merged {
	struct anser_config view; /* cfg with rules merged (shallow) */
	struct anser_cond *conds; /* the merged rules' own conditions */
	uint16_t *first;	  /* by merged rule: the config's first rule of it */
};

static void merged_free(struct merged *m)
{
	for (size_t i = 0; m->view.rules && i < m->view.n_rules; i++) {
		struct anser_cond *c = m->conds ? &m->conds[i] : NULL;
		if (!c || m->view.rules[i].conds != c)
			continue;
		free(c->names);
		free(c->cidrs);
		free(c->ports);
		free(c->domains);
		free(c->macs);
	}
	free(m->view.rules);
	free(m->conds);
	free(m->first);
}

static int merge_rules(const struct anser_config *cfg, struct merged *m)
{
	size_t n = cfg->n_rules;

	memset(m, 0, sizeof(*m));
	m->view = *cfg;
	m->view.rules = calloc(n ? n : 1, sizeof(*m->view.rules));
	m->conds = calloc(n ? n : 1, sizeof(*m->conds));
	m->first = calloc(n ? n : 1, sizeof(*m->first));
	m->view.n_rules = 0;
	if (!m->view.rules || !m->conds || !m->first)
		return -ENOMEM;
	for (size_t i = 0, j; i < n; i = j) {
		size_t k = m->view.n_rules++;
		m->view.rules[k] = cfg->rules[i];
		m->first[k] = (uint16_t)(i < ANSER_RULE_FALLBACK ? i : ANSER_RULE_FALLBACK - 1);
		for (j = i + 1; j < n && anser_rules_mergeable(&cfg->rules[i], &cfg->rules[j]);
		     j++) {
			struct anser_cond *c = &m->conds[k];
			if (m->view.rules[k].conds != c) {
				/* the first merge: copy, with arrays of its own */
				*c = (struct anser_cond){ .type = cfg->rules[i].conds[0].type,
							  .line = cfg->rules[i].conds[0].line,
							  .col = cfg->rules[i].conds[0].col };
				m->view.rules[k].conds = c;
				if (cond_merge(c, &cfg->rules[i].conds[0]) < 0)
					return -ENOMEM;
			}
			if (cond_merge(c, &cfg->rules[j].conds[0]) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

int anser_routing_compile(const struct anser_config *cfg_in, const struct anser_network *net,
			  unsigned slot, struct anser_compiled *out)
{
	struct merged m;
	int r = merge_rules(cfg_in, &m);

	if (r < 0) {
		merged_free(&m);
		memset(out, 0, sizeof(*out));
		return r;
	}
	r = compile_merged(&m.view, m.first, net, slot, out);
	out->limit_rule = r == -E2BIG && m.view.n_rules + 1 > ANSER_MAX_RULES
				  ? m.first[ANSER_MAX_RULES - 1]
				  : SIZE_MAX;
	merged_free(&m);
	return r;
}

static int compile_merged(const struct anser_config *cfg, const uint16_t *first,
			  const struct anser_network *net, unsigned slot,
			  struct anser_compiled *out)
{
	unsigned n = (unsigned)cfg->n_rules + 1;
	int r;

	slot &= 1;
	memset(out, 0, sizeof(*out));
	if (cfg->n_rules + 1 > ANSER_MAX_RULES) {
		out->limit = "at most 1023 routing rules besides fallback, after merging "
			     "consecutive rules that have one condition of the same kind and the "
			     "same outbound";
		return -E2BIG;
	}
	out->info.n_rules = n;
	for (size_t q = 0; q < cfg->n_rules; q++) {
		out->info.outbound[q] = (uint16_t)cfg->rules[q].outbound;
		out->info.mark[q] = cfg->rules[q].mark;
		out->info.rule_of[q] = first[q];
	}
	out->info.rule_of[n - 1] = ANSER_RULE_FALLBACK;
	out->info.outbound[n - 1] = (uint16_t)cfg->fallback;
	out->info.mark[n - 1] = cfg->fallback_mark;
	for (size_t q = 0; q < cfg->n_rules; q++)
		if (cfg->rules[q].must)
			rules_set(&out->info.must, (unsigned)q);
	if (cfg->fallback_must)
		rules_set(&out->info.must, n - 1);
	for (unsigned q = 0; q < n; q++)
		if (out->info.mark[q])
			out->info.lookups |= ANSER_LOOKUP_MARK;
	/* A flow carries no name: domain() conditions hold as for "no name"
	 * (dom_default) unless the DNS service filed the destination's
	 * names (dom_ip, bpf/anser_abi.h) */
	struct anser_rules no_fwd, fwd, on_net;
	rules_where(cfg, ANSER_COND_DOMAIN, in_none, NULL, &out->info.dom_default);
	if (count_conds(cfg, ANSER_COND_DOMAIN))
		out->info.lookups |= ANSER_LOOKUP_DOMAIN;
	/* the hooks see this machine's own connections: conditions on what
	 * forwarded traffic carries do not hold for them */
	static const enum anser_cond_type forwarded[] = { ANSER_COND_SPORT, ANSER_COND_DSCP,
							  ANSER_COND_SIP, ANSER_COND_MAC };
	/* (the gateway's program reads them all) */
	memset(&no_fwd, 0xff, sizeof(no_fwd));
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(*forwarded); i++) {
		rules_where(cfg, forwarded[i], in_none, NULL, &fwd);
		for (unsigned w = 0; w < ANSER_RULE_WORDS; w++)
			no_fwd.w[w] &= fwd.w[w];
	}
	/* network(): the rules the network the machine is on leaves possible,
	 * for every flow alike */
	rules_where(cfg, ANSER_COND_NETWORK, in_network, net, &on_net);
	if (count_conds(cfg, ANSER_COND_NETWORK))
		out->network = true;
	for (unsigned udp = 0; udp < 2; udp++)
		for (unsigned v6 = 0; v6 < 2; v6++) {
			struct anser_rules *m = &out->info.l4[ANSER_L4_INDEX(udp, v6)], ipv;
			unsigned l4 = udp ? ANSER_L4_UDP : ANSER_L4_TCP;
			unsigned ipver = v6 ? ANSER_IPV_6 : ANSER_IPV_4;
			rules_where(cfg, ANSER_COND_L4PROTO, in_l4, &l4, m);
			rules_where(cfg, ANSER_COND_IPVERSION, in_l4, &ipver, &ipv);
			struct anser_rules *lan = &out->info.lan_l4[ANSER_L4_INDEX(udp, v6)];
			*lan = *m;
			for (unsigned w = 0; w < ANSER_RULE_WORDS; w++) {
				lan->w[w] &= ipv.w[w] & on_net.w[w];
				m->w[w] &= ipv.w[w] & no_fwd.w[w] & on_net.w[w];
			}
		}
	for (size_t q = 0; q < cfg->n_rules; q++) {
		bool free_of_dst = true;
		for (size_t k = 0; k < cfg->rules[q].n_conds; k++) {
			enum anser_cond_type t = cfg->rules[q].conds[k].type;
			/* a name is the destination's too (dom_ip) */
			if (t == ANSER_COND_DIP || t == ANSER_COND_DPORT || t == ANSER_COND_DOMAIN)
				free_of_dst = false;
		}
		if (free_of_dst)
			rules_set(&out->info.dst_free, (unsigned)q);
	}
	rules_set(&out->info.dst_free, n - 1);
	r = compile_pnames(cfg, slot, out);
	if (!r)
		r = compile_dips(cfg, slot, out);
	if (!r)
		r = compile_ports(cfg, out);
	if (!r)
		r = compile_dscp(cfg, out);
	if (!r)
		r = compile_domains(cfg, out);
	if (!r && (count_conds(cfg, ANSER_COND_APP) || count_conds(cfg, ANSER_COND_CGROUP))) {
		out->info.lookups |= ANSER_LOOKUP_CGROUP;
		out->cg = anser_cg_rules_new(cfg);
		if (!out->cg)
			r = -ENOMEM;
		else
			anser_cg_rules_eval(out->cg, NULL, &out->info.cg_default);
	} else {
		memset(&out->info.cg_default, 0xff, sizeof(out->info.cg_default));
	}
	if (r < 0) {
		const char *limit = out->limit;
		anser_compiled_clear(out);
		out->limit = limit;
	}
	return r;
}

static unsigned compiled_bit(const struct anser_compiled *c, const char *pname, const char *cgroup,
			     const uint8_t daddr[16], uint16_t port, int udp, int v6,
			     const char *name);

static const struct anser_rules *find_pname(const struct anser_compiled *c, const char *name)
{
	for (size_t i = 0; i < c->n_pnames; i++)
		if (strncmp(c->pnames[i].key.name, name, ANSER_PNAME_LEN) == 0)
			return &c->pnames[i].rules;
	return &c->info.pname_default;
}

static const struct anser_rules *find_dip(const struct anser_compiled *c, const uint8_t daddr[16])
{
	const struct anser_lpm_entry *best = NULL;
	struct anser_lpm_key k = { .prefixlen = 32 + 128 };

	memcpy(k.data, daddr, 16);
	for (size_t i = 0; i < c->n_lpm; i++)
		if ((c->lpm[i].key.set & ~(1u << 31)) == ANSER_LPM_DIP &&
		    lpm_contains(&c->lpm[i].key, &k) &&
		    (!best || c->lpm[i].key.prefixlen > best->key.prefixlen))
			best = &c->lpm[i];
	return best ? &best->rules : &c->info.dip_default;
}

/* Does rule r's single condition hold for this flow? (The merged rules'
 * conditions are of the kinds the flow shows.) */
static bool cond_holds(const struct anser_cond *k, const char *pname, const char *cgroup,
		       const uint8_t daddr[16], uint16_t port, int udp, int v6)
{
	struct anser_lpm_key a = { .prefixlen = 32 + 128 };
	char app[256];

	memcpy(a.data, daddr, 16);
	switch (k->type) {
	case ANSER_COND_PNAME:
		for (size_t i = 0; i < k->n_names; i++)
			if (strcmp(k->names[i], pname) == 0)
				return true;
		return false;
	case ANSER_COND_DIP:
		for (size_t i = 0; i < k->n_cidrs; i++) {
			struct anser_lpm_key p = { .prefixlen = 32 + k->cidrs[i].prefix };
			memcpy(p.data, k->cidrs[i].addr, 16);
			if (lpm_contains(&p, &a))
				return true;
		}
		return false;
	case ANSER_COND_DPORT:
		return in_ports(k, 0, &(unsigned){ port });
	case ANSER_COND_L4PROTO:
		return k->mask & (udp ? ANSER_L4_UDP : ANSER_L4_TCP);
	case ANSER_COND_IPVERSION:
		return k->mask & (v6 ? ANSER_IPV_6 : ANSER_IPV_4);
	case ANSER_COND_APP:
		if (!cgroup || !anser_cgroup_app_id(cgroup, app, sizeof(app)))
			return false;
		for (size_t i = 0; i < k->n_names; i++)
			if (strcmp(k->names[i], app) == 0)
				return true;
		return false;
	case ANSER_COND_CGROUP:
		for (size_t i = 0; cgroup && i < k->n_names; i++)
			if (anser_cgroup_path_under(cgroup, k->names[i]))
				return true;
		return false;
	default:
		return false; /* what the kernel does not see */
	}
}

unsigned anser_rule_refine(const struct anser_config *cfg, unsigned rule, const char *pname,
			   const char *cgroup, const uint8_t daddr[16], uint16_t port, int udp,
			   int v6)
{
	if (!cfg || rule >= cfg->n_rules)
		return rule;
	for (size_t j = rule; j < cfg->n_rules; j++) {
		if (j > rule && !anser_rules_mergeable(&cfg->rules[rule], &cfg->rules[j]))
			break;
		if (cond_holds(&cfg->rules[j].conds[0], pname ? pname : "", cgroup, daddr, port,
			       udp, v6))
			return (unsigned)j;
		if (cfg->rules[rule].n_conds != 1)
			break;
	}
	return rule;
}

unsigned anser_compiled_match(const struct anser_compiled *c, const char *pname, const char *cgroup,
			      const uint8_t daddr[16], uint16_t port, int udp, int v6)
{
	unsigned bit = compiled_bit(c, pname, cgroup, daddr, port, udp, v6, NULL);
	return bit >= c->info.n_rules - 1 ? ANSER_RULE_FALLBACK : c->info.rule_of[bit];
}

unsigned anser_compiled_match_name(const struct anser_compiled *c, const char *pname,
				   const char *cgroup, const uint8_t daddr[16], uint16_t port,
				   int udp, int v6, const char *name)
{
	unsigned bit = compiled_bit(c, pname, cgroup, daddr, port, udp, v6, name);
	return bit >= c->info.n_rules - 1 ? ANSER_RULE_FALLBACK : c->info.rule_of[bit];
}

static unsigned compiled_bit(const struct anser_compiled *c, const char *pname, const char *cgroup,
			     const uint8_t daddr[16], uint16_t port, int udp, int v6,
			     const char *name)
{
	const struct anser_rules *p = find_pname(c, pname), *d = find_dip(c, daddr);
	struct anser_rules cg = c->info.cg_default;

	if (c->cg)
		anser_cg_rules_eval(c->cg, cgroup, &cg);
	const struct anser_rules *l4 = &c->info.l4[ANSER_L4_INDEX(udp, v6)];
	const struct anser_rules *pr =
		c->port_class ? &c->port_rules[c->port_class[port]] : &c->info.port_default;

	/* as the kernel does for an address the DNS service named nothing,
	 * unless the flow's name is known */
	struct anser_rules named;
	const struct anser_rules *dom = &c->info.dom_default;
	if (name && c->dom) {
		anser_domain_rules_eval(c->dom, name, &named);
		dom = &named;
	}

	for (unsigned r = 0; r < c->info.n_rules; r++)
		if (rules_has(p, r) && rules_has(d, r) && rules_has(l4, r) && rules_has(pr, r) &&
		    rules_has(&cg, r) && rules_has(dom, r))
			return r;
	return c->info.n_rules - 1;
}
