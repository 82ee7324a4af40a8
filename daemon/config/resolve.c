// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Cross-section checks, run once every section has been read: node names
 * are unique, group filters name real nodes, groups are not empty, and
 * every outbound a rule or the fallback names exists.
 */
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "../../bpf/anser_abi.h"
#include "config-private.h"

#define ERR(p, ...) cfg_diag(&(p)->sink, false, __VA_ARGS__)

struct name_ix {
	const char *name;
	size_t ix;
};

static int cmp_name_ix(const void *a, const void *b)
{
	const struct name_ix *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	return x->ix < y->ix ? -1 : x->ix > y->ix;
}

static int cmp_name_key(const void *key, const void *elem)
{
	return strcmp(key, ((const struct name_ix *)elem)->name);
}

static struct cfg_pos node_pos(const struct anser_node *n)
{
	return (struct cfg_pos){ n->line, n->col, n->file };
}

/* Nodes sorted by name; reports duplicates. */
static struct name_ix *index_nodes(struct cfg_parser *p)
{
	const struct anser_config *c = p->cfg;
	struct name_ix *ix = cfg_realloc_array(NULL, c->n_nodes, sizeof(*ix));

	for (size_t i = 0; i < c->n_nodes; i++)
		ix[i] = (struct name_ix){ c->nodes[i].name, i };
	if (c->n_nodes > 1)
		qsort(ix, c->n_nodes, sizeof(*ix), cmp_name_ix);
	for (size_t i = 1; i < c->n_nodes; i++) {
		if (strcmp(ix[i - 1].name, ix[i].name) == 0) {
			const struct anser_node *first = &c->nodes[ix[i - 1].ix];
			char *q = cfg_quote(ix[i].name, strlen(ix[i].name));
			struct cfg_pos at = node_pos(&c->nodes[ix[i].ix]);
			char *w = cfg_where(p, at.file, node_pos(first));
			ERR(p, at, "node name '%s' given twice (first at %s; rename one)", q, w);
			free(w);
			free(q);
		}
	}
	return ix;
}

static const char *suggest_node(const struct anser_config *c, const char *name)
{
	const char *best = NULL;
	unsigned best_d = 3;

	for (size_t i = 0; i < c->n_nodes; i++) {
		unsigned d = cfg_edit_distance(name, c->nodes[i].name);
		size_t len = strlen(c->nodes[i].name);
		if (d < best_d && d < (len > strlen(name) ? len : strlen(name))) {
			best = c->nodes[i].name;
			best_d = d;
		}
	}
	return best;
}

/* Does filter argument a match a node named `name` (or tagged `tag`)? */
static bool farg_matches(const struct cfg_farg *a, const char *s)
{
	if (!s)
		return false;
	switch (a->kind) {
	case CFG_FARG_KEYWORD:
		return strstr(s, a->val) != NULL;
	case CFG_FARG_REGEX:
		return g_regex_match(a->re, s, 0, NULL);
	default:
		return strcmp(s, a->val) == 0;
	}
}

static bool node_named(const struct anser_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_nodes; i++)
		if (strcmp(c->nodes[i].name, name) == 0)
			return true;
	return false;
}

/* Fetches a subscription (through the caller's fetcher) and adds its
 * nodes, tagged; a name already taken gets " (2)", " (3)"... */
static void add_subscription(struct cfg_parser *p, const struct anser_subscription *sub)
{
	struct anser_config *c = p->cfg;
	struct cfg_pos pos = { sub->line, sub->col, sub->file };
	const char *tag = sub->tag ? sub->tag : sub->url;
	char *body = NULL, *why = NULL;
	size_t len = 0;

	int r = p->fetcher->fetch(p->fetcher->ud, sub, p->config_dir, &body, &len, &why);
	if (r < 0) {
		char *q = cfg_quote(tag, strlen(tag));
		cfg_diag(&p->sink, true, pos, "subscription '%s' brought no nodes: %s", q,
			 why ? why : strerror(-r));
		free(q);
		free(why);
		p->subscription_failed = true;
		return;
	}
	struct anser_node *v;
	size_t n, bad;
	struct anser_diags d = { 0 };
	r = anser_subscription_parse(body, len, &v, &n, &bad, &d);
	free(body);
	char *q = cfg_quote(tag, strlen(tag));
	if (r < 0) {
		cfg_diag(&p->sink, true, pos, "subscription '%s' brought no nodes: %s", q,
			 r == -ENOENT  ? "none of its entries is a usable node"
			 : r == -EFBIG ? "it is over 8 MiB"
				       : "it is neither SIP008 JSON nor a (base64) list of links");
		p->subscription_failed = true;
	} else if (bad) {
		cfg_diag(&p->sink, true, pos,
			 "subscription '%s': %zu of %zu entries skipped (the first: line %u: %s)",
			 q, bad, bad + n, d.n ? d.v[0].line : 0, d.n ? d.v[0].message : "?");
	}
	free(q);
	anser_diags_clear(&d);
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (c->n_nodes >= CFG_MAX_NODES) {
			anser_node_clear(&v[i]);
			continue;
		}
		struct anser_node *nd = &v[i];
		if (node_named(c, nd->name)) {
			for (unsigned k = 2;; k++) {
				char *alt = cfg_asprintf("%s (%u)", nd->name, k);
				if (!node_named(c, alt)) {
					free(nd->name);
					nd->name = alt;
					break;
				}
				free(alt);
			}
		}
		nd->subtag = sub->tag ? cfg_strdup(sub->tag) : NULL;
		nd->file = sub->file;
		nd->line = sub->line;
		nd->col = sub->col;
		cfg_reserve(&c->nodes, &p->cap_nodes, c->n_nodes, sizeof(*c->nodes));
		c->nodes[c->n_nodes++] = *nd;
	}
	free(v);
}

static void resolve_group(struct cfg_parser *p, size_t gi, const struct name_ix *ix)
{
	struct anser_config *c = p->cfg;
	struct anser_group *g = &c->groups[gi];
	const struct cfg_group_ast *ga = &p->gast[gi];
	bool *sel = cfg_malloc0(c->n_nodes + 1);
	int64_t *lat = cfg_malloc0((c->n_nodes + 1) * sizeof(*lat));
	bool unknown = false;

	if (ga->n_filters == 0)
		memset(sel, 1, c->n_nodes);
	/* plain names must name nodes (those of subscriptions are not known
	 * here: then only a warning) */
	for (size_t f = 0; f < ga->n_filters; f++)
		for (size_t k = 0; k < ga->filters[f].n_calls; k++) {
			const struct cfg_fcall *call = &ga->filters[f].calls[k];
			for (size_t i = 0; !call->subtag && i < call->n; i++) {
				const struct cfg_farg *a = &call->args[i];
				if (a->kind != CFG_FARG_NAME ||
				    bsearch(a->val, ix, c->n_nodes, sizeof(*ix), cmp_name_key))
					continue;
				const char *sug = suggest_node(c, a->val);
				char *q = cfg_quote(a->val, strlen(a->val));
				/* a name may come from a subscription that could not
				 * be fetched: a warning then, an error otherwise */
				bool subs = p->seen_any_subscription &&
					    (!p->fetcher || p->subscription_failed);
				char *qs = sug ? cfg_quote(sug, strlen(sug)) : NULL;
				cfg_diag(&p->sink, subs, a->pos,
					 "unknown node '%s' in the filter of group '%s'%s%s%s", q,
					 g->name, sug ? " (did you mean '" : "", sug ? qs : "",
					 sug	? "'?)"
					 : subs ? " (maybe of a subscription not fetched)"
						: " (name nodes from the 'node' section)");
				free(qs);
				free(q);
				unknown |= !subs;
			}
		}
	for (size_t n = 0; n < c->n_nodes; n++) {
		for (size_t f = 0; f < ga->n_filters && !sel[n]; f++) {
			const struct cfg_filter *fl = &ga->filters[f];
			bool all = true;
			for (size_t k = 0; k < fl->n_calls && all; k++) {
				const struct cfg_fcall *call = &fl->calls[k];
				/* nodes of the node section have no subscription tag */
				const char *s =
					call->subtag ? c->nodes[n].subtag : c->nodes[n].name;
				bool any = false;
				for (size_t i = 0; i < call->n && !any; i++)
					any = farg_matches(&call->args[i], s);
				all = any != call->negate;
			}
			if (all) {
				sel[n] = true;
				lat[n] = fl->add_latency_ns;
			}
		}
	}

	for (size_t n = 0; n < c->n_nodes; n++)
		g->n_nodes += sel[n];
	g->nodes = cfg_realloc_array(NULL, g->n_nodes, sizeof(*g->nodes));
	g->add_latency = cfg_realloc_array(NULL, g->n_nodes, sizeof(*g->add_latency));
	g->n_nodes = 0;
	for (size_t n = 0; n < c->n_nodes; n++)
		if (sel[n]) {
			g->add_latency[g->n_nodes] = lat[n];
			g->nodes[g->n_nodes++] = n;
		}

	struct cfg_pos gpos = { g->line, g->col, g->file };
	if (g->n_nodes == 0 && !unknown) {
		if (c->n_nodes == 0)
			ERR(p, gpos, "group '%s' has no nodes (the 'node' section lists none)",
			    g->name);
		else
			ERR(p, gpos, "group '%s' has no nodes (its filter matches none)", g->name);
	} else if (g->policy == ANSER_POLICY_FIXED && g->fixed_index >= g->n_nodes && !unknown) {
		ERR(p, ga->fixed_pos,
		    "fixed(%u) is out of range: group '%s' has %zu node%s (use 0..%zu)",
		    g->fixed_index, g->name, g->n_nodes, g->n_nodes == 1 ? "" : "s",
		    g->n_nodes - 1);
	}
	free(sel);
	free(lat);
}

static unsigned resolve_outbound(struct cfg_parser *p, const char *name, struct cfg_pos pos)
{
	const struct anser_config *c = p->cfg;

	if (strcmp(name, "direct") == 0)
		return ANSER_OUT_DIRECT;
	if (strcmp(name, "block") == 0)
		return ANSER_OUT_BLOCK;
	for (size_t i = 0; i < c->n_groups; i++)
		if (strcmp(name, c->groups[i].name) == 0)
			return (unsigned)(ANSER_OUT_FIRST_GROUP + i);

	const char **cands = cfg_realloc_array(NULL, c->n_groups + 2, sizeof(*cands));
	cands[0] = "direct";
	cands[1] = "block";
	for (size_t i = 0; i < c->n_groups; i++)
		cands[2 + i] = c->groups[i].name;
	const char *sug = cfg_suggest(name, cands, c->n_groups + 2);
	char *q = cfg_quote(name, strlen(name));
	if (sug)
		ERR(p, pos, "unknown outbound '%s' (did you mean '%s'?)", q, sug);
	else
		ERR(p, pos,
		    "unknown outbound '%s' (use direct, block or a group from the 'group' section)",
		    q);
	free(q);
	free(cands);
	return ANSER_OUT_DIRECT;
}

/* Each dns routing action names an upstream or a built-in action. */
static void resolve_dns(struct cfg_parser *p)
{
	struct anser_dns *d = &p->cfg->dns;

	for (int resp = 0; resp < 2; resp++) {
		struct anser_dns_rule *v = resp ? d->response : d->request;
		size_t n = resp ? d->n_response : d->n_request;
		const char *builtin[2] = { resp ? "accept" : "asis", "reject" };
		for (size_t i = 0; i <= n; i++) {
			const char *a = i < n  ? v[i].action
					: resp ? d->response_fallback
					       : d->request_fallback;
			if (!a)
				continue;
			bool ok = strcmp(a, builtin[0]) == 0 || strcmp(a, builtin[1]) == 0;
			for (size_t u = 0; !ok && u < d->n_upstreams; u++)
				ok = strcmp(a, d->upstreams[u].name) == 0;
			if (ok)
				continue;
			const char **cands =
				cfg_realloc_array(NULL, d->n_upstreams + 2, sizeof(*cands));
			cands[0] = builtin[0];
			cands[1] = builtin[1];
			for (size_t u = 0; u < d->n_upstreams; u++)
				cands[2 + u] = d->upstreams[u].name;
			const char *sug = cfg_suggest(a, cands, d->n_upstreams + 2);
			char *q = cfg_quote(a, strlen(a));
			struct cfg_pos at = { i < n ? v[i].aline : d->fallback_line[resp],
					      i < n ? v[i].acol : d->fallback_col[resp],
					      i < n ? v[i].afile : d->fallback_file[resp] };
			if (sug)
				ERR(p, at, "unknown DNS %s action '%s' (did you mean '%s'?)",
				    resp ? "response" : "request", q, sug);
			else
				ERR(p, at, "unknown DNS %s action '%s' (%s, reject or an upstream)",
				    resp ? "response" : "request", q, builtin[0]);
			free(q);
			free(cands);
		}
	}
	/* upstream() conditions name upstreams too */
	for (size_t i = 0; i < d->n_response; i++)
		for (size_t k = 0; k < d->response[i].n_conds; k++) {
			const struct anser_cond *c = &d->response[i].conds[k];
			for (size_t j = 0; c->type == ANSER_COND_UPSTREAM && j < c->n_names; j++) {
				bool ok = false;
				for (size_t u = 0; !ok && u < d->n_upstreams; u++)
					ok = strcmp(c->names[j], d->upstreams[u].name) == 0;
				if (!ok) {
					char *q = cfg_quote(c->names[j], strlen(c->names[j]));
					ERR(p,
					    ((struct cfg_pos){ c->line, c->col,
							       d->response[i].file }),
					    "upstream(%s): no such upstream in dns { upstream { } "
					    "}",
					    q);
					free(q);
				}
			}
		}
	if (d->present && !d->request_fallback)
		d->request_fallback = cfg_strdup("asis");
	if (d->present && !d->response_fallback)
		d->response_fallback = cfg_strdup("accept");
}

void cfg_resolve(struct cfg_parser *p)
{
	struct anser_config *c = p->cfg;
	struct cfg_pos top = { 1, 1, 0 };

	if (!p->any_token && p->sink.n_errors == 0) {
		ERR(p, top,
		    "the config is empty (the smallest config is 'routing { fallback: direct }')");
		return;
	}
	if (!p->seen_any[SEC_ROUTING]) {
		ERR(p, top,
		    "the config has no 'routing' section (add 'routing { fallback: direct }')");
	} else if (!p->has_fallback) {
		ERR(p, p->sec_pos[SEC_ROUTING],
		    "routing section has no 'fallback:' line (add 'fallback: direct' as its last "
		    "line)");
	}
	if (!c->log_level)
		c->log_level = cfg_strdup("info");

	for (size_t i = 0; p->fetcher && i < c->n_subscriptions && !p->sink.full; i++)
		add_subscription(p, &c->subscriptions[i]);

	struct name_ix *ix = index_nodes(p);
	for (size_t gi = 0; gi < c->n_groups; gi++)
		resolve_group(p, gi, ix);
	free(ix);

	for (size_t i = 0; i < c->n_rules; i++)
		c->rules[i].outbound =
			resolve_outbound(p, c->rules[i].outbound_name, p->out_pos[i]);
	if (c->fallback_name)
		c->fallback = resolve_outbound(p, c->fallback_name, p->fallback_pos);
	resolve_dns(p);
	/* (with domain++, names sniffed from proxied flows count too) */
	if (p->seen_domain && !(c->dns.present && c->dns.n_upstreams) &&
	    c->dial_mode != ANSER_DIAL_DOMAIN_PLUS_PLUS)
		cfg_diag(
			&p->sink, true, p->domain_pos,
			"domain() never holds without a dns section that has an upstream: names "
			"come from the answers of anser's DNS service (add 'dns { upstream { ... } "
			"}', or 'dial_mode: domain++' in global for names sniffed from proxied "
			"flows)");
	c->fallback_file = p->fallback_pos.file;
	c->fallback_line = p->fallback_pos.line;
	c->fallback_col = p->fallback_pos.col;
}
