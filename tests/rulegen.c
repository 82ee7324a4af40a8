// SPDX-License-Identifier: GPL-2.0-or-later
/* Random routing rules and flows, and the rules' plain meaning: the
 * reference the rule compiler and the kernel's engine are checked against. */
#include "rulegen.h"

#include <stdlib.h>
#include <string.h>

#include "bpf/anser_abi.h"
#include "daemon/routing/routing.h"

static gboolean cidr_has(const struct anser_cidr *c, const uint8_t *a)
{
	for (unsigned b = 0; b < c->prefix; b++)
		if ((c->addr[b / 8] ^ a[b / 8]) & (0x80 >> (b % 8)))
			return FALSE;
	return TRUE;
}

static gboolean cond_in(const struct anser_cond *c, const struct rulegen_flow *f)
{
	switch (c->type) {
	case ANSER_COND_PNAME:
		for (size_t i = 0; i < c->n_names; i++)
			if (strcmp(c->names[i], f->name) == 0)
				return TRUE;
		return FALSE;
	case ANSER_COND_DIP:
		for (size_t i = 0; i < c->n_cidrs; i++)
			if (cidr_has(&c->cidrs[i], f->addr))
				return TRUE;
		return FALSE;
	case ANSER_COND_DPORT:
		for (size_t i = 0; i < c->n_ports; i++)
			if (f->port >= c->ports[i].lo && f->port <= c->ports[i].hi)
				return TRUE;
		return FALSE;
	case ANSER_COND_L4PROTO:
		return (c->mask & (f->udp ? ANSER_L4_UDP : ANSER_L4_TCP)) != 0;
	case ANSER_COND_IPVERSION:
		return (c->mask & (f->v6 ? ANSER_IPV_6 : ANSER_IPV_4)) != 0;
	case ANSER_COND_APP: {
		char app[256];
		if (!f->cgroup || !anser_cgroup_app_id(f->cgroup, app, sizeof(app)))
			return FALSE;
		for (size_t i = 0; i < c->n_names; i++)
			if (strcmp(c->names[i], app) == 0)
				return TRUE;
		return FALSE;
	}
	case ANSER_COND_DOMAIN:
	case ANSER_COND_SIP:
	case ANSER_COND_SPORT:
	case ANSER_COND_MAC:
	case ANSER_COND_DSCP:
	case ANSER_COND_NETWORK: /* compiled for no network */
	case ANSER_COND_QNAME:
	case ANSER_COND_QTYPE:
	case ANSER_COND_IP:
	case ANSER_COND_UPSTREAM:
		return FALSE; /* no domain known yet; no forwarded traffic */
	case ANSER_COND_CGROUP:
		for (size_t i = 0; f->cgroup && i < c->n_names; i++) {
			size_t n = strlen(c->names[i]);
			if (strcmp(c->names[i], "/") == 0 ||
			    (strncmp(f->cgroup, c->names[i], n) == 0 &&
			     (f->cgroup[n] == 0 || f->cgroup[n] == '/')))
				return TRUE;
		}
		return FALSE;
	}
	g_assert_not_reached();
}

/* First rule whose conditions all hold, straight from the config. */
unsigned rulegen_plain_match(const struct anser_config *cfg, const struct rulegen_flow *f)
{
	for (size_t r = 0; r < cfg->n_rules; r++) {
		gboolean ok = TRUE;
		for (size_t k = 0; ok && k < cfg->rules[r].n_conds; k++)
			ok = cond_in(&cfg->rules[r].conds[k], f) != cfg->rules[r].conds[k].negate;
		if (ok)
			return (unsigned)r;
	}
	return ANSER_RULE_FALLBACK;
}

unsigned rulegen_refine(const struct anser_config *cfg, unsigned rule, const struct rulegen_flow *f)
{
	if (rule == ANSER_RULE_FALLBACK)
		return rule;
	return anser_rule_refine(cfg, rule, f->name, f->cgroup, f->addr, f->port, f->udp, f->v6);
}

unsigned rulegen_compiled_match(const struct anser_config *cfg, const struct anser_compiled *c,
				const struct rulegen_flow *f)
{
	return rulegen_refine(
		cfg, anser_compiled_match(c, f->name, f->cgroup, f->addr, f->port, f->udp, f->v6),
		f);
}

static const char *const names[] = { "a", "b", "c", "d", "e" };

const char *const rulegen_cgroups[] = {
	"/",
	"/user.slice",
	"/user.slice/app-gnome-a-12.scope",
	"/user.slice/app-flatpak-b-3.scope",
	"/user.slice/app-c@x1.service",
	"/user.slice/app-gnome-c-5.scope/sub",
	"/app.slice/app-d.slice",
	"/app.slice/app-d.slice/vte-spawn-9.scope",
	"/other",
	NULL,
};
static const char *const cg_prefixes[] = { "/", "/user.slice", "/user.slice/app-gnome-c-5.scope",
					   "/app.slice", "/nothing" };

/* A random condition over a small space, so flows hit them often:
 * addresses 10.0.x.y (nested prefixes of 10.0.0.0/16) and fd00::/120,
 * ports 0..99 and a few high ones. */
static void random_cond(GRand *rnd, GString *t)
{
	if (g_rand_boolean(rnd) && g_rand_boolean(rnd))
		g_string_append_c(t, '!');
	switch (g_rand_int_range(rnd, 0, 7)) {
	case 0: {
		g_string_append(t, "pname(");
		int n = g_rand_int_range(rnd, 1, 3);
		for (int i = 0; i < n; i++)
			g_string_append_printf(t, "%s%s", i ? ", " : "",
					       names[g_rand_int_range(rnd, 0, 5)]);
		break;
	}
	case 1: {
		g_string_append(t, "dip(");
		int n = g_rand_int_range(rnd, 1, 4);
		for (int i = 0; i < n; i++) {
			unsigned len = (unsigned)g_rand_int_range(rnd, 16, 33);
			uint32_t a = (10u << 24) | (uint32_t)g_rand_int_range(rnd, 0, 1024);
			a &= len ? ~0u << (32 - len) : 0;
			if (g_rand_int_range(rnd, 0, 6) == 0)
				g_string_append_printf(t, "%sfd00::%x/%u", i ? ", " : "", a & 0xff,
						       120 + len % 9);
			else
				g_string_append_printf(t, "%s%u.%u.%u.%u/%u", i ? ", " : "",
						       a >> 24, (a >> 16) & 255, (a >> 8) & 255,
						       a & 255, len);
		}
		break;
	}
	case 2: {
		g_string_append(t, "dport(");
		int n = g_rand_int_range(rnd, 1, 4);
		for (int i = 0; i < n; i++) {
			unsigned lo = (unsigned)g_rand_int_range(rnd, 1, 100);
			if (g_rand_boolean(rnd))
				g_string_append_printf(t, "%s%u", i ? ", " : "", lo);
			else
				g_string_append_printf(t, "%s%u-%u", i ? ", " : "", lo,
						       lo + (unsigned)g_rand_int_range(rnd, 0, 40));
		}
		break;
	}
	case 3:
		g_string_append(t, g_rand_boolean(rnd) ? "l4proto(tcp" : "l4proto(udp");
		break;
	case 5: {
		g_string_append(t, "app(");
		int n = g_rand_int_range(rnd, 1, 3);
		for (int i = 0; i < n; i++)
			g_string_append_printf(t, "%s%s", i ? ", " : "",
					       names[g_rand_int_range(rnd, 0, 5)]);
		break;
	}
	case 6: {
		g_string_append(t, "cgroup(");
		int n = g_rand_int_range(rnd, 1, 3);
		for (int i = 0; i < n; i++)
			g_string_append_printf(t, "%s'%s'", i ? ", " : "",
					       cg_prefixes[g_rand_int_range(rnd, 0, 5)]);
		break;
	}
	default:
		g_string_append(t, g_rand_boolean(rnd) ? "ipversion(4" : "ipversion(6");
		break;
	}
	g_string_append(t, ")");
}

void rulegen_flow(GRand *rnd, struct rulegen_flow *f)
{
	memset(f, 0, sizeof(*f));
	f->name = g_rand_int_range(rnd, 0, 6) ? names[g_rand_int_range(rnd, 0, 5)] : "zz";
	int cg = g_rand_int_range(rnd, 0, (int)G_N_ELEMENTS(rulegen_cgroups) - 1);
	f->cgroup = rulegen_cgroups[cg];
	f->cgroup_id = (uint64_t)cg + 1;
	f->v6 = g_rand_int_range(rnd, 0, 5) == 0;
	f->udp = g_rand_boolean(rnd);
	if (f->v6) {
		f->addr[0] = 0xfd;
		f->addr[15] = (uint8_t)g_rand_int_range(rnd, 0, 256);
	} else {
		uint32_t a = (10u << 24) | (uint32_t)g_rand_int_range(rnd, 0, 1100);
		if (g_rand_int_range(rnd, 0, 10) == 0)
			a = (uint32_t)g_rand_int(rnd);
		f->addr[10] = f->addr[11] = 0xff;
		f->addr[12] = (uint8_t)(a >> 24);
		f->addr[13] = (uint8_t)(a >> 16);
		f->addr[14] = (uint8_t)(a >> 8);
		f->addr[15] = (uint8_t)a;
	}
	f->port = g_rand_int_range(rnd, 0, 8) ? (uint16_t)g_rand_int_range(rnd, 0, 150)
					      : (uint16_t)g_rand_int_range(rnd, 0, 65536);
}

/* One random `routing` section (with a node and a group `proxy`) of 1 to
 * max_rules - 1 rules, each of 1 to 3 conditions. */
char *rulegen_config(GRand *rnd, int max_rules)
{
	GString *t = g_string_new("node { n: 'socks5://10.0.0.1:1080' }\n"
				  "group { proxy { policy: fixed(0) } }\nrouting {\n");
	int n_rules = g_rand_int_range(rnd, 1, max_rules);

	for (int r = 0; r < n_rules; r++) {
		int n = g_rand_int_range(rnd, 1, 4);
		g_string_append(t, "  ");
		for (int k = 0; k < n; k++) {
			if (k)
				g_string_append(t, " && ");
			random_cond(rnd, t);
		}
		g_string_append_printf(t, " -> %s\n", (r % 3) ? "direct" : "proxy");
	}
	g_string_append(t, "  fallback: block\n}\n");
	return g_string_free(t, FALSE);
}

struct anser_config *rulegen_parse(const char *text)
{
	struct anser_config *cfg = NULL;
	struct anser_diags d = { 0 };
	int r = anser_config_parse_string("rules", text, strlen(text), &cfg, &d);

	if (r < 0) {
		char *msg = anser_diags_format(&d);
		g_printerr("%s\n", msg);
		free(msg);
	}
	g_assert_cmpint(r, ==, 0);
	anser_diags_clear(&d);
	return cfg;
}
