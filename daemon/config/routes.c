// SPDX-License-Identifier: GPL-2.0-or-later
/* App routes: selectors read with the config's own parser, and configs
 * that put the routes before a base config's rules without copying it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../bpf/anser_abi.h"
#include "config-private.h"

/* The selector as the one condition of a rule, parsed by the real parser:
 * the same checks and messages as in a config file. */
static struct anser_config *parse_selector(const char *text, char **why)
{
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;

	*why = NULL;
	if (!text || !*text || strpbrk(text, "\n\r{}#")) {
		*why = cfg_strdup("a selector is one condition, like app(org.mozilla.firefox) or "
				  "pname(curl)");
		return NULL;
	}
	char *src = cfg_asprintf("routing {\n%s -> direct\nfallback: direct\n}\n", text);
	int r = anser_config_parse_string("selector", src, strlen(src), &c, &d);
	free(src);
	if (r < 0) {
		for (size_t i = 0; i < d.n; i++)
			if (!d.v[i].warning) {
				*why = cfg_strdup(d.v[i].message);
				break;
			}
	} else if (c->n_rules != 1 || c->rules[0].n_conds != 1 || c->rules[0].conds[0].negate ||
		   (c->rules[0].conds[0].type != ANSER_COND_APP &&
		    c->rules[0].conds[0].type != ANSER_COND_PNAME &&
		    c->rules[0].conds[0].type != ANSER_COND_CGROUP) ||
		   c->rules[0].conds[0].n_names != 1) {
		*why = cfg_strdup("a selector is one app(ID), pname(NAME) or cgroup(PATH) with one "
				  "value");
		anser_config_free(c);
		c = NULL;
	}
	if (!c && !*why)
		*why = cfg_strdup("not a selector");
	anser_diags_clear(&d);
	return c;
}

char *anser_selector_canonical(const char *text, char **why)
{
	struct anser_config *c = parse_selector(text, why);
	if (!c)
		return NULL;
	char *rule = anser_rule_format(c, 0); /* "app(x) -> direct" */
	anser_config_free(c);
	char *arrow = rule ? strstr(rule, " -> ") : NULL;
	if (arrow)
		*arrow = '\0';
	return rule;
}

static unsigned outbound_id(const struct anser_config *base, const char *name)
{
	if (strcmp(name, "direct") == 0)
		return ANSER_OUT_DIRECT;
	if (strcmp(name, "block") == 0)
		return ANSER_OUT_BLOCK;
	for (size_t i = 0; i < base->n_groups; i++)
		if (strcmp(base->groups[i].name, name) == 0)
			return (unsigned)(ANSER_OUT_FIRST_GROUP + i);
	return UINT32_MAX;
}

int anser_config_with_routes(struct anser_config *base, const struct anser_app_route *routes,
			     size_t n, const char *routes_file, struct anser_config **out,
			     size_t *skipped)
{
	struct anser_config *c = cfg_malloc0(sizeof(*c));

	*skipped = 0;
	*c = *base;
	c->refs = 1;
	c->base = anser_config_ref(base);
	c->rules = cfg_malloc0((n + base->n_rules + 1) * sizeof(*c->rules));
	c->files = cfg_malloc0((base->n_files + 1) * sizeof(*c->files));
	if (base->n_files)
		memcpy(c->files, base->files, base->n_files * sizeof(*c->files));
	c->files[base->n_files] = cfg_strdup(routes_file ? routes_file : "<app routes>");
	c->n_files = base->n_files + 1;
	c->n_routes = 0;
	for (size_t i = 0; i < n; i++) {
		char *why = NULL;
		unsigned id = outbound_id(base, routes[i].outbound);
		struct anser_config *sel =
			id == UINT32_MAX ? NULL : parse_selector(routes[i].selector, &why);
		free(why);
		if (!sel) {
			(*skipped)++;
			continue;
		}
		struct anser_rule *r = &c->rules[c->n_routes++];
		*r = sel->rules[0]; /* steal the rule */
		sel->rules[0] = (struct anser_rule){ 0 };
		sel->n_rules = 0;
		anser_config_free(sel);
		free(r->outbound_name);
		r->outbound_name = cfg_strdup(routes[i].outbound);
		r->outbound = id;
		r->file = (unsigned)base->n_files;
		r->line = (unsigned)(i + 1);
		r->col = 1;
	}
	if (base->n_rules) /* (no memcpy from NULL) */
		memcpy(c->rules + c->n_routes, base->rules, base->n_rules * sizeof(*c->rules));
	c->n_rules = c->n_routes + base->n_rules;
	*out = c;
	return 0;
}

void anser_config_apply_picks(struct anser_config *c, const struct anser_node_pick *picks, size_t n,
			      size_t *skipped)
{
	*skipped = 0;
	if (!c->base || !n)
		return;
	if (c->groups == c->base->groups && c->n_groups) {
		struct anser_group *g = cfg_malloc0(c->n_groups * sizeof(*g));
		memcpy(g, c->groups, c->n_groups * sizeof(*g));
		c->groups = g;
	}
	for (size_t i = 0; i < n; i++) {
		size_t gi, k = 0;
		for (gi = 0; gi < c->n_groups; gi++)
			if (strcmp(c->groups[gi].name, picks[i].group) == 0)
				break;
		struct anser_group *g = gi < c->n_groups ? &c->groups[gi] : NULL;
		for (; g && k < g->n_nodes; k++)
			if (strcmp(c->nodes[g->nodes[k]].name, picks[i].node) == 0)
				break;
		if (!g || k == g->n_nodes) {
			(*skipped)++;
			continue;
		}
		g->policy = ANSER_POLICY_FIXED;
		g->fixed_index = (unsigned)k;
	}
}
