// SPDX-License-Identifier: GPL-2.0-or-later
#include "health.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../util/log.h"

#define HIST 10

struct nstate {
	_Atomic int alive; /* 1, 0, -1 unknown */
	int64_t last, mavg;
	int64_t hist[HIST];
	unsigned nhist, hpos;
};

struct hgroup {
	char *name;
	enum anser_policy policy;
	unsigned fixed_index;
	size_t n;
	size_t *nodes;
	int64_t *add_latency;
	_Atomic int sel[ANSER_NT_N];
};

struct anser_health {
	atomic_uint refs;
	size_t n_nodes, n_groups;
	char **keys;  /* name + '\n' + link, to carry state over */
	char **names; /* for logs */
	struct nstate (*node)[ANSER_NT_N];
	struct hgroup *groups;
	int64_t tolerance;
};

const char *anser_nettype_name(enum anser_nettype t)
{
	static const char *const n[] = { "tcp4", "tcp6", "udp4", "udp6" };
	return t < ANSER_NT_N ? n[t] : "?";
}

static void nstate_init(struct nstate *s)
{
	atomic_init(&s->alive, -1);
	s->last = s->mavg = ANSER_LATENCY_UNKNOWN;
	s->nhist = s->hpos = 0;
}

struct anser_health *anser_health_new(const struct anser_config *cfg,
				      const struct anser_health *prev)
{
	struct anser_health *h = g_new0(struct anser_health, 1);
	atomic_init(&h->refs, 1);
	h->n_nodes = cfg->n_nodes;
	h->n_groups = cfg->n_groups;
	h->tolerance = cfg->check.tolerance_ns;
	h->keys = g_new0(char *, h->n_nodes + 1);
	h->names = g_new0(char *, h->n_nodes + 1);
	h->node = g_malloc0_n(h->n_nodes + 1, sizeof(*h->node));
	for (size_t i = 0; i < h->n_nodes; i++) {
		const struct anser_node *n = &cfg->nodes[i];
		h->keys[i] =
			g_strdup_printf("%s\n%s", n->name ? n->name : "", n->link ? n->link : "");
		h->names[i] = g_strdup(n->name ? n->name : "?");
		size_t p = SIZE_MAX;
		for (size_t k = 0; prev && k < prev->n_nodes; k++)
			if (strcmp(prev->keys[k], h->keys[i]) == 0)
				p = k;
		for (int t = 0; t < ANSER_NT_N; t++) {
			struct nstate *s = &h->node[i][t];
			if (p == SIZE_MAX) {
				nstate_init(s);
				continue;
			}
			const struct nstate *o = &prev->node[p][t];
			atomic_init(&s->alive, atomic_load(&o->alive));
			s->last = o->last;
			s->mavg = o->mavg;
			memcpy(s->hist, o->hist, sizeof(s->hist));
			s->nhist = o->nhist;
			s->hpos = o->hpos;
		}
	}
	h->groups = g_new0(struct hgroup, h->n_groups + 1);
	for (size_t gi = 0; gi < h->n_groups; gi++) {
		const struct anser_group *g = &cfg->groups[gi];
		struct hgroup *hg = &h->groups[gi];
		hg->name = g_strdup(g->name);
		hg->policy = g->policy;
		hg->fixed_index = g->fixed_index;
		hg->n = g->n_nodes;
		hg->nodes = g_memdup2(g->nodes, g->n_nodes * sizeof(*g->nodes));
		hg->add_latency = g_new0(int64_t, g->n_nodes + 1);
		if (g->add_latency)
			memcpy(hg->add_latency, g->add_latency, g->n_nodes * sizeof(int64_t));
		for (int t = 0; t < ANSER_NT_N; t++)
			atomic_init(&hg->sel[t], -1);
	}
	anser_health_update(h);
	return h;
}

struct anser_health *anser_health_ref(struct anser_health *h)
{
	if (h)
		atomic_fetch_add(&h->refs, 1);
	return h;
}

void anser_health_unref(struct anser_health *h)
{
	if (!h || atomic_fetch_sub(&h->refs, 1) != 1)
		return;
	for (size_t i = 0; i < h->n_nodes; i++) {
		g_free(h->keys[i]);
		g_free(h->names[i]);
	}
	g_free(h->keys);
	g_free(h->names);
	g_free(h->node);
	for (size_t gi = 0; gi < h->n_groups; gi++) {
		g_free(h->groups[gi].name);
		g_free(h->groups[gi].nodes);
		g_free(h->groups[gi].add_latency);
	}
	g_free(h->groups);
	g_free(h);
}

void anser_health_record(struct anser_health *h, size_t node, enum anser_nettype t,
			 int64_t latency_ns)
{
	if (!h || node >= h->n_nodes || t >= ANSER_NT_N)
		return;
	struct nstate *s = &h->node[node][t];
	int was = atomic_load(&s->alive);
	if (latency_ns < 0) {
		atomic_store(&s->alive, 0);
		s->last = ANSER_LATENCY_UNKNOWN;
		if (was != 0 && latency_ns == -1)
			log_warning("Node %s failed its %s check: new flows avoid it",
				    h->names[node], anser_nettype_name(t));
		return;
	}
	s->last = latency_ns;
	s->hist[s->hpos] = latency_ns;
	s->hpos = (s->hpos + 1) % HIST;
	if (s->nhist < HIST)
		s->nhist++;
	s->mavg = s->mavg == ANSER_LATENCY_UNKNOWN ? latency_ns : (s->mavg + latency_ns) / 2;
	atomic_store(&s->alive, 1);
	if (was == 0)
		log_info("Node %s passes its %s check again (%lld ms)", h->names[node],
			 anser_nettype_name(t), (long long)(latency_ns / 1000000));
}

static int64_t avg10(const struct nstate *s)
{
	if (s->nhist == 0)
		return ANSER_LATENCY_UNKNOWN;
	int64_t sum = 0;
	for (unsigned i = 0; i < s->nhist; i++)
		sum += s->hist[i];
	return sum / (int64_t)s->nhist;
}

/* What a latency policy compares, with the group's add_latency. */
static int64_t metric(const struct anser_health *h, const struct hgroup *g, size_t k,
		      enum anser_nettype t)
{
	const struct nstate *s = &h->node[g->nodes[k]][t];
	int64_t m;
	switch (g->policy) {
	case ANSER_POLICY_MIN_AVG10:
		m = avg10(s);
		break;
	case ANSER_POLICY_MIN_MOVING_AVG:
		m = s->mavg;
		break;
	default:
		m = s->last;
	}
	if (m == ANSER_LATENCY_UNKNOWN)
		return m;
	m += g->add_latency[k];
	return m < 0 ? 0 : m;
}

static bool is_latency(enum anser_policy p)
{
	return p == ANSER_POLICY_MIN || p == ANSER_POLICY_MIN_AVG10 ||
	       p == ANSER_POLICY_MIN_MOVING_AVG || p == ANSER_POLICY_MIN_LAST_LATENCY;
}

/* Index into g->nodes of the current choice, or SIZE_MAX. */
static size_t pos_of(const struct hgroup *g, int node)
{
	for (size_t k = 0; node >= 0 && k < g->n; k++)
		if (g->nodes[k] == (size_t)node)
			return k;
	return SIZE_MAX;
}

bool anser_health_update(struct anser_health *h)
{
	bool changed = false;
	for (size_t gi = 0; gi < h->n_groups; gi++) {
		struct hgroup *g = &h->groups[gi];
		for (int t = 0; t < ANSER_NT_N; t++) {
			int cur = atomic_load(&g->sel[t]);
			int next = -1;
			if (g->policy == ANSER_POLICY_FIXED) {
				next = g->fixed_index < g->n ? (int)g->nodes[g->fixed_index] : -1;
			} else if (is_latency(g->policy)) {
				size_t best = SIZE_MAX;
				int64_t bm = 0;
				for (size_t k = 0; k < g->n; k++) {
					if (atomic_load(&h->node[g->nodes[k]][t].alive) == 0)
						continue;
					int64_t m = metric(h, g, k, (enum anser_nettype)t);
					if (best == SIZE_MAX || m < bm) {
						best = k;
						bm = m;
					}
				}
				size_t ck = pos_of(g, cur);
				next = best == SIZE_MAX ? -1 : (int)g->nodes[best];
				/* hysteresis: keep a live current node unless the best
				 * beats it by more than the tolerance */
				if (best != SIZE_MAX && ck != SIZE_MAX &&
				    atomic_load(&h->node[cur][t].alive) != 0) {
					int64_t cm = metric(h, g, ck, (enum anser_nettype)t);
					if (cm == bm || (cm != ANSER_LATENCY_UNKNOWN &&
							 bm != ANSER_LATENCY_UNKNOWN &&
							 cm - bm <= h->tolerance))
						next = cur;
				}
			} else {
				continue; /* random: picked per flow */
			}
			if (next == cur)
				continue;
			atomic_store(&g->sel[t], next);
			changed = true;
			if (!is_latency(g->policy))
				continue;
			if (next < 0)
				log_warning("Group %s has no live node for %s: new flows fail "
					    "until one "
					    "passes a check",
					    g->name, anser_nettype_name((enum anser_nettype)t));
			else if (cur >= 0)
				log_info("Group %s now uses node %s for %s", g->name,
					 h->names[next], anser_nettype_name((enum anser_nettype)t));
		}
	}
	return changed;
}

/* Per-thread xorshift64*: picking a node must not take a lock or a
 * syscall on the data path; it only has to be uniform, not secret. */
static uint64_t next_random(void)
{
	static _Thread_local uint64_t state;

	if (state == 0)
		state = g_random_int() | (uint64_t)g_random_int() << 32 | 1;
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 0x2545f4914f6cdd1dull;
}

int anser_group_pick(const struct anser_health *h, size_t group, enum anser_nettype t)
{
	if (!h || group >= h->n_groups || t >= ANSER_NT_N)
		return -1;
	const struct hgroup *g = &h->groups[group];
	if (g->n == 0)
		return -1;
	if (g->policy != ANSER_POLICY_RANDOM)
		return atomic_load_explicit(&g->sel[t], memory_order_relaxed);
	/* random among the nodes not known to be dead */
	size_t live = 0;
	for (size_t k = 0; k < g->n; k++)
		live += atomic_load_explicit(&h->node[g->nodes[k]][t].alive,
					     memory_order_relaxed) != 0;
	if (live == 0)
		return -1;
	size_t want = (size_t)(next_random() % live);
	for (size_t k = 0; k < g->n; k++) {
		if (atomic_load_explicit(&h->node[g->nodes[k]][t].alive, memory_order_relaxed) == 0)
			continue;
		if (want-- == 0)
			return (int)g->nodes[k];
	}
	return -1;
}

int anser_health_current(const struct anser_health *h, size_t group, enum anser_nettype t)
{
	if (!h || group >= h->n_groups || t >= ANSER_NT_N)
		return -1;
	return atomic_load(&h->groups[group].sel[t]);
}

void anser_health_stat(const struct anser_health *h, size_t node, enum anser_nettype t,
		       struct anser_node_stat *st)
{
	if (!h || node >= h->n_nodes || t >= ANSER_NT_N) {
		*st = (struct anser_node_stat){ -1, ANSER_LATENCY_UNKNOWN, ANSER_LATENCY_UNKNOWN,
						ANSER_LATENCY_UNKNOWN };
		return;
	}
	const struct nstate *s = &h->node[node][t];
	st->alive = atomic_load(&s->alive);
	st->last = s->last;
	st->avg10 = avg10(s);
	st->moving_avg = s->mavg;
}
