// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests of daemon/config: good configs decode to the expected
 * structures; every error path reports the right line:col and message. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpf/anser_abi.h"
#include "daemon/config/config-private.h"
#include "daemon/config/config.h"
#include "daemon/routing/routing.h"
#include "tests/geowriter.h"

static struct anser_config *parse_ok(const char *text)
{
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;
	int r = anser_config_parse_string("t.dae", text, strlen(text), &c, &d);

	if (r != 0) {
		char *s = anser_diags_format(&d);
		g_printerr("unexpected errors:\n%s", s);
		free(s);
	}
	g_assert_cmpint(r, ==, 0);
	g_assert_nonnull(c);
	g_assert_cmpuint(anser_diags_errors(&d), ==, 0);
	anser_diags_clear(&d);
	return c;
}

/* Asserts that parsing fails with an error at line:col whose message holds
 * `sub`. */
static bool check_error(const char *text, unsigned line, unsigned col, const char *sub)
{
	struct anser_diags d = { 0 };
	struct anser_config *c = (void *)1;
	int r = anser_config_parse_string("t.dae", text, strlen(text), &c, &d);
	bool found = false;

	if (r != -EINVAL)
		g_printerr("parsed, but should not have:\n%s\n", text);
	g_assert_cmpint(r, ==, -EINVAL);
	g_assert_null(c);
	for (size_t i = 0; i < d.n; i++) {
		if (!d.v[i].warning && d.v[i].line == line && d.v[i].col == col &&
		    strstr(d.v[i].message, sub))
			found = true;
	}
	if (!found) {
		char *s = anser_diags_format(&d);
		g_printerr("input:\n%s\nwanted %u:%u '%s', got:\n%s", text, line, col, sub, s);
		free(s);
	}
	anser_diags_clear(&d);
	return found;
}

static void expect_error(const char *text, unsigned line, unsigned col, const char *sub)
{
	g_assert_true(check_error(text, line, col, sub));
}

#define ROUTING_DIRECT "routing {\n fallback: direct\n}\n"

static const char example[] =
	"# comment to end of line\n"
	"global {\n"
	"    log_level: debug\n"
	"}\n"
	"node {\n"
	"    my_socks: 'socks5://user:p%40ss@10.201.0.2:1080'\n"
	"    'socks5://[fd00::2]:1080'\n"
	"    other: \"socks5://proxy.example.org:1081\"\n"
	"    bare: socks5://10.0.0.9:9\n"
	"}\n"
	"group {\n"
	"    proxy {\n"
	"        filter: name(my_socks, other)\n"
	"        policy: fixed(1)\n"
	"    }\n"
	"    all {\n"
	"        policy: random\n"
	"    }\n"
	"}\n"
	"routing {\n"
	"    pname(appA, curl) -> proxy\n"
	"    dip(10.0.0.0/8, 192.168.1.1, fd00::/8) && l4proto(tcp) -> direct\n"
	"    !dport(80, 8000-9000) && ipversion(6) -> block\n"
	"    l4proto(udp) -> all\n"
	"    fallback: direct\n"
	"}\n";

static void test_example(void)
{
	struct anser_config *c = parse_ok(example);

	g_assert_cmpstr(c->source, ==, "t.dae");
	g_assert_cmpstr(c->log_level, ==, "debug");
	g_assert_cmpuint(c->n_globals, ==, 1);
	g_assert_cmpstr(c->globals[0].key, ==, "log_level");
	g_assert_cmpstr(c->globals[0].value, ==, "debug");
	g_assert_cmpuint(c->globals[0].line, ==, 3);
	g_assert_cmpuint(c->globals[0].col, ==, 5);

	g_assert_cmpuint(c->n_nodes, ==, 4);
	struct anser_node *n = &c->nodes[0];
	g_assert_cmpstr(n->name, ==, "my_socks");
	g_assert_cmpstr(n->link, ==, "socks5://user:p%40ss@10.201.0.2:1080");
	g_assert_cmpint(n->proto, ==, ANSER_NODE_SOCKS5);
	g_assert_cmpstr(n->host, ==, "10.201.0.2");
	g_assert_cmpuint(n->port, ==, 1080);
	g_assert_cmpstr(n->user, ==, "user");
	g_assert_cmpstr(n->pass, ==, "p@ss");
	g_assert_cmpuint(n->line, ==, 6);
	g_assert_cmpuint(n->col, ==, 5);
	n = &c->nodes[1];
	g_assert_cmpstr(n->name, ==, "[fd00::2]:1080");
	g_assert_cmpstr(n->host, ==, "fd00::2");
	g_assert_null(n->user);
	g_assert_null(n->pass);
	g_assert_cmpstr(c->nodes[2].host, ==, "proxy.example.org");
	g_assert_cmpuint(c->nodes[2].port, ==, 1081);
	g_assert_cmpstr(c->nodes[3].name, ==, "bare");
	g_assert_cmpstr(c->nodes[3].host, ==, "10.0.0.9");

	g_assert_cmpuint(c->n_groups, ==, 2);
	struct anser_group *g = &c->groups[0];
	g_assert_cmpstr(g->name, ==, "proxy");
	g_assert_cmpint(g->policy, ==, ANSER_POLICY_FIXED);
	g_assert_cmpuint(g->fixed_index, ==, 1);
	g_assert_cmpuint(g->n_nodes, ==, 2);
	g_assert_cmpuint(g->nodes[0], ==, 0);
	g_assert_cmpuint(g->nodes[1], ==, 2);
	g_assert_cmpuint(g->line, ==, 12);
	g = &c->groups[1];
	g_assert_cmpint(g->policy, ==, ANSER_POLICY_RANDOM);
	g_assert_cmpuint(g->n_nodes, ==, 4);

	g_assert_cmpuint(c->n_rules, ==, 4);
	struct anser_rule *r = &c->rules[0];
	g_assert_cmpuint(r->n_conds, ==, 1);
	g_assert_cmpint(r->conds[0].type, ==, ANSER_COND_PNAME);
	g_assert_false(r->conds[0].negate);
	g_assert_cmpuint(r->conds[0].n_names, ==, 2);
	g_assert_cmpstr(r->conds[0].names[0], ==, "appA");
	g_assert_cmpstr(r->conds[0].names[1], ==, "curl");
	g_assert_cmpstr(r->outbound_name, ==, "proxy");
	g_assert_cmpuint(r->outbound, ==, ANSER_OUT_FIRST_GROUP);
	g_assert_cmpuint(r->line, ==, 21);
	g_assert_cmpuint(r->col, ==, 5);

	r = &c->rules[1];
	g_assert_cmpuint(r->n_conds, ==, 2);
	g_assert_cmpint(r->conds[0].type, ==, ANSER_COND_DIP);
	g_assert_cmpuint(r->conds[0].n_cidrs, ==, 3);
	static const uint8_t v4net[16] = { [10] = 0xff, [11] = 0xff, [12] = 10 };
	g_assert_cmpmem(r->conds[0].cidrs[0].addr, 16, v4net, 16);
	g_assert_cmpuint(r->conds[0].cidrs[0].prefix, ==, 104);
	static const uint8_t v4host[16] = {
		[10] = 0xff, [11] = 0xff, [12] = 192, [13] = 168, [14] = 1, [15] = 1
	};
	g_assert_cmpmem(r->conds[0].cidrs[1].addr, 16, v4host, 16);
	g_assert_cmpuint(r->conds[0].cidrs[1].prefix, ==, 128);
	static const uint8_t v6net[16] = { [0] = 0xfd };
	g_assert_cmpmem(r->conds[0].cidrs[2].addr, 16, v6net, 16);
	g_assert_cmpuint(r->conds[0].cidrs[2].prefix, ==, 8);
	g_assert_cmpint(r->conds[1].type, ==, ANSER_COND_L4PROTO);
	g_assert_cmpuint(r->conds[1].mask, ==, ANSER_L4_TCP);
	g_assert_cmpuint(r->conds[1].line, ==, 22);
	g_assert_cmpuint(r->conds[1].col, ==, 47);
	g_assert_cmpuint(r->outbound, ==, ANSER_OUT_DIRECT);

	r = &c->rules[2];
	g_assert_cmpint(r->conds[0].type, ==, ANSER_COND_DPORT);
	g_assert_true(r->conds[0].negate);
	g_assert_cmpuint(r->conds[0].n_ports, ==, 2);
	g_assert_cmpuint(r->conds[0].ports[0].lo, ==, 80);
	g_assert_cmpuint(r->conds[0].ports[0].hi, ==, 80);
	g_assert_cmpuint(r->conds[0].ports[1].lo, ==, 8000);
	g_assert_cmpuint(r->conds[0].ports[1].hi, ==, 9000);
	g_assert_cmpint(r->conds[1].type, ==, ANSER_COND_IPVERSION);
	g_assert_cmpuint(r->conds[1].mask, ==, ANSER_IPV_6);
	g_assert_cmpuint(r->outbound, ==, ANSER_OUT_BLOCK);

	g_assert_cmpuint(c->rules[3].outbound, ==, ANSER_OUT_FIRST_GROUP + 1);
	g_assert_cmpuint(c->fallback, ==, ANSER_OUT_DIRECT);
	g_assert_cmpstr(c->fallback_name, ==, "direct");

	g_assert_cmpstr(anser_config_outbound_name(c, 0), ==, "direct");
	g_assert_cmpstr(anser_config_outbound_name(c, 1), ==, "block");
	g_assert_cmpstr(anser_config_outbound_name(c, 2), ==, "proxy");
	g_assert_cmpstr(anser_config_outbound_name(c, 3), ==, "all");
	g_assert_null(anser_config_outbound_name(c, 4));
	anser_config_free(c);
}

static void test_builtin(void)
{
	struct anser_config *c = parse_ok(anser_config_builtin);

	g_assert_cmpstr(c->log_level, ==, "info");
	g_assert_cmpuint(c->n_rules, ==, 0);
	g_assert_cmpuint(c->n_nodes, ==, 0);
	g_assert_cmpuint(c->fallback, ==, ANSER_OUT_DIRECT);
	anser_config_free(c);
}

static void test_defaults_and_compact(void)
{
	/* no global section: log_level defaults to info; "key:value" glued;
	 * block comments; everything on few lines */
	struct anser_config *c = parse_ok("/* a\n block */ routing{dport(443)->block\n"
					  "fallback:block}");

	g_assert_cmpstr(c->log_level, ==, "info");
	g_assert_cmpuint(c->n_rules, ==, 1);
	g_assert_cmpuint(c->rules[0].line, ==, 2);
	g_assert_cmpuint(c->rules[0].col, ==, 19);
	g_assert_cmpuint(c->rules[0].outbound, ==, ANSER_OUT_BLOCK);
	g_assert_cmpuint(c->fallback, ==, ANSER_OUT_BLOCK);
	anser_config_free(c);

	/* dae does not care for newlines either */
	c = parse_ok("global{log_level:trace}node{n:socks5://h:1 m: 'socks5://h:2'}"
		     "group{g{policy:random}}routing{pname(a)->g fallback:g}");
	g_assert_cmpstr(c->log_level, ==, "trace");
	g_assert_cmpuint(c->n_nodes, ==, 2);
	g_assert_cmpstr(c->nodes[0].name, ==, "n");
	g_assert_cmpuint(c->groups[0].n_nodes, ==, 2);
	g_assert_cmpuint(c->rules[0].outbound, ==, ANSER_OUT_FIRST_GROUP);
	g_assert_cmpuint(c->fallback, ==, ANSER_OUT_FIRST_GROUP);
	anser_config_free(c);

	c = parse_ok("global {\n log_level:warn\n}\n" ROUTING_DIRECT);
	g_assert_cmpstr(c->log_level, ==, "warn");
	anser_config_free(c);
}

static void test_dip_forms(void)
{
	struct anser_config *c = parse_ok("routing {\n"
					  " dip('10.1.2.3/8', ::1, ::ffff:1.2.3.4/120, 0.0.0.0/0,\n"
					  "     2001:db8::1/32, fd00::) -> block\n"
					  " fallback: direct\n"
					  "}\n");
	const struct anser_cond *d = &c->rules[0].conds[0];
	static const uint8_t ten[16] = { [10] = 0xff, [11] = 0xff, [12] = 10 };
	static const uint8_t one[16] = { [15] = 1 };
	static const uint8_t m[16] = { [10] = 0xff, [11] = 0xff, [12] = 1, [13] = 2, [14] = 3 };
	static const uint8_t any4[16] = { [10] = 0xff, [11] = 0xff };
	static const uint8_t db8[16] = { 0x20, 0x01, 0x0d, 0xb8 };

	g_assert_cmpuint(d->n_cidrs, ==, 6);
	g_assert_cmpmem(d->cidrs[0].addr, 16, ten, 16); /* host bits zeroed */
	g_assert_cmpuint(d->cidrs[0].prefix, ==, 104);
	g_assert_cmpmem(d->cidrs[1].addr, 16, one, 16);
	g_assert_cmpuint(d->cidrs[1].prefix, ==, 128);
	g_assert_cmpmem(d->cidrs[2].addr, 16, m, 16);
	g_assert_cmpuint(d->cidrs[2].prefix, ==, 120);
	g_assert_cmpmem(d->cidrs[3].addr, 16, any4, 16);
	g_assert_cmpuint(d->cidrs[3].prefix, ==, 96);
	g_assert_cmpmem(d->cidrs[4].addr, 16, db8, 16);
	g_assert_cmpuint(d->cidrs[4].prefix, ==, 32);
	g_assert_cmpuint(d->cidrs[5].prefix, ==, 128);
	anser_config_free(c);
}

static void test_filters(void)
{
	struct anser_config *c =
		parse_ok("node {\n a: 'socks5://1.1.1.1:1'\n b: 'socks5://h:2'\n"
			 " c: 'socks5://[::1]:3#ignored'\n"
			 " 'socks5://u@h2:4#Tokyo%201'\n}\n"
			 "group {\n"
			 " not_a { filter: !name(a)\n policy: random }\n"
			 " ac { filter: name(a)\n filter: name(c)\n policy: fixed(1) }\n"
			 "}\n" ROUTING_DIRECT);

	g_assert_cmpuint(c->n_nodes, ==, 4);
	g_assert_cmpstr(c->nodes[2].name, ==, "c");
	g_assert_cmpstr(c->nodes[3].name, ==, "Tokyo 1");
	g_assert_cmpstr(c->nodes[3].user, ==, "u");
	g_assert_cmpstr(c->nodes[3].pass, ==, "");
	g_assert_cmpuint(c->groups[0].n_nodes, ==, 3);
	g_assert_cmpuint(c->groups[0].nodes[0], ==, 1);
	g_assert_cmpuint(c->groups[1].n_nodes, ==, 2);
	g_assert_cmpuint(c->groups[1].nodes[0], ==, 0);
	g_assert_cmpuint(c->groups[1].nodes[1], ==, 2);
	anser_config_free(c);

	/* dae's filter language: keyword:, regex:, &&, !, subtag(), annotations,
	 * and the latency policies */
	struct anser_diags d = { 0 };
	const char *text =
		"node {\n hk1: 'socks5://1.1.1.1:1'\n hk2: 'socks5://1.1.1.1:2'\n"
		" jp1: 'socks5://1.1.1.1:3'\n 'ExpireAt-2027': 'socks5://1.1.1.1:4'\n}\n"
		"group {\n"
		" hk { filter: name(keyword: hk) && !name(hk2)\n"
		"      filter: name(regex: '^jp[0-9]$') [add_latency: -500ms]\n"
		"      policy: min_moving_avg }\n"
		" live { filter: !name(keyword: 'ExpireAt') && !subtag(sub1)\n"
		"        policy: min }\n"
		" none_sub { filter: subtag(regex: '.*') || name(hk1)\n policy: random }\n"
		"}\n" ROUTING_DIRECT;
	/* '||' is not dae's: an error, and a clear one */
	g_assert_cmpint(anser_config_parse_string("f.dae", text, strlen(text), &c, &d), ==,
			-EINVAL);
	g_autofree char *m = anser_diags_format(&d);
	g_assert_nonnull(strstr(m, "unexpected '|'"));
	anser_diags_clear(&d);
	g_autofree char *good = g_strdup(text);
	*strstr(good, " none_sub") = 0;
	g_autofree char *full = g_strconcat(good, "}\n" ROUTING_DIRECT, NULL);
	g_assert_cmpint(anser_config_parse_string("f.dae", full, strlen(full), &c, &d), ==, 0);
	g_autofree char *w = anser_diags_format(&d);
	g_assert_null(strstr(w, "needs latencies")); /* health checks run now */
	anser_diags_clear(&d);
	g_assert_cmpuint(c->groups[0].n_nodes, ==, 2); /* hk1, jp1 */
	g_assert_cmpuint(c->groups[0].nodes[0], ==, 0);
	g_assert_cmpuint(c->groups[0].nodes[1], ==, 2);
	g_assert_cmpint(c->groups[0].add_latency[0], ==, 0);
	g_assert_cmpint(c->groups[0].add_latency[1], ==, -500000000);
	g_assert_cmpint(c->groups[0].policy, ==, ANSER_POLICY_MIN_MOVING_AVG);
	g_assert_cmpuint(c->groups[1].n_nodes, ==, 3); /* not the expiring one */
	anser_config_free(c);
}

static void test_dial_mode(void)
{
	static const struct {
		const char *text;
		enum anser_dial_mode mode;
	} cases[] = {
		{ "ip", ANSER_DIAL_IP },
		{ "domain", ANSER_DIAL_DOMAIN },
		{ "'domain+'", ANSER_DIAL_DOMAIN_PLUS },
		{ "domain++", ANSER_DIAL_DOMAIN_PLUS_PLUS },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *text = g_strdup_printf(
			"global {\n dial_mode: %s\n sniffing_timeout: 250ms\n}\n" ROUTING_DIRECT,
			cases[i].text);
		struct anser_diags d = { 0 };
		struct anser_config *c = NULL;
		g_assert_cmpint(anser_config_parse_string("d.dae", text, strlen(text), &c, &d), ==,
				0);
		g_assert_cmpuint(d.n, ==, 0);
		g_assert_cmpint(c->dial_mode, ==, cases[i].mode);
		g_assert_cmpint(c->sniffing_timeout_ns, ==, 250000000LL);
		anser_config_free(c);
		anser_diags_clear(&d);
	}
}

static void test_warnings(void)
{
	const char *text = "global {\n tproxy_port: 12345\n check_interval: 10s\n"
			   " lan_interface: docker0, eth0\n}\n"
			   "dns { upstream { x: 'udp://1.1.1.1' } }\n"
			   "group {\n g { policy: random\n check_interval: 30s tcp_check_url: "
			   "'http://a', 'x' filter: name(n) }\n}\n"
			   "node { n: 'socks5://h:1' }\n" ROUTING_DIRECT;
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;

	g_assert_cmpint(anser_config_parse_string("w.dae", text, strlen(text), &c, &d), ==, 0);
	g_assert_nonnull(c);
	g_assert_cmpuint(anser_diags_errors(&d), ==, 0);
	g_assert_cmpuint(d.n, ==, 3);
	g_assert_cmpuint(c->groups[0].n_nodes, ==, 1);
	g_assert_cmpint(c->check.interval_ns, ==, 10000000000LL);
	g_assert_cmpstr(c->check.method, ==, "HEAD");
	/* dae's defaults */
	g_assert_cmpint(c->dial_mode, ==, ANSER_DIAL_DOMAIN);
	g_assert_cmpint(c->sniffing_timeout_ns, ==, 100000000LL);
	g_assert_cmpstr(c->check.tcp.host, ==, "cp.cloudflare.com");
	g_assert_true(c->check.tcp.v4 && c->check.tcp.v6);
	g_assert_cmpuint(c->check.udp.port, ==, 53);
	char *s = anser_diags_format(&d);
	g_assert_nonnull(strstr(s, "w.dae:2:2: warning: global option 'tproxy_port' is not needed "
				   "by anser (its listeners take free loopback ports"));
	/* gateway mode: decoded, no warning */
	g_assert_null(strstr(s, "lan_interface"));
	g_assert_cmpstr(c->lan_interfaces[0], ==, "docker0");
	g_assert_cmpstr(c->lan_interfaces[1], ==, "eth0");
	g_assert_null(c->lan_interfaces[2]);
	g_assert_null(strstr(s, "section 'dns'")); /* served: nothing to warn of */
	g_assert_nonnull(strstr(s, "w.dae:9:2: warning: group option 'check_interval' is not "
				   "supported yet, ignored\n"));
	g_assert_nonnull(strstr(s, "w.dae:9:22: warning: group option 'tcp_check_url' is not "
				   "supported yet, ignored\n"));
	g_assert_cmpstr(c->globals[2].value, ==, "docker0,eth0");
	free(s);
	anser_diags_clear(&d);
	anser_config_free(c);
}

static void test_check_options(void)
{
	const char *text = "global {\n tcp_check_url: 'http://s.test:8080/gen_204', '10.77.0.3', "
			   "'fd77::3'\n tcp_check_http_method: GET\n udp_check_dns: "
			   "'[fd77::3]:5353'\n check_tolerance: 50ms\n}\n" ROUTING_DIRECT;
	struct anser_config *c = parse_ok(text);
	const struct anser_check *k = &c->check;
	static const uint8_t a6[16] = { 0xfd, 0x77, [15] = 3 };
	g_assert_cmpstr(k->tcp.host, ==, "s.test");
	g_assert_cmpuint(k->tcp.port, ==, 8080);
	g_assert_cmpstr(k->tcp.path, ==, "/gen_204");
	g_assert_true(k->tcp.v4 && k->tcp.v6);
	g_assert_cmpmem(k->tcp.addr4, 4, "\x0a\x4d\x00\x03", 4);
	g_assert_cmpmem(k->tcp.addr6, 16, a6, 16);
	g_assert_cmpstr(k->method, ==, "GET");
	g_assert_cmpuint(k->udp.port, ==, 5353);
	g_assert_false(k->udp.v4);
	g_assert_true(k->udp.v6);
	g_assert_cmpint(k->tolerance_ns, ==, 50000000);
	g_assert_cmpint(k->interval_ns, ==, 30000000000LL);
	anser_config_free(c);
}

static void test_format(void)
{
	const char *text = "routing {\n fallback: proxyy\n}\n";
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;

	g_assert_cmpint(anser_config_parse_string("f.dae", text, strlen(text), &c, &d), ==,
			-EINVAL);
	char *s = anser_diags_format(&d);
	g_assert_cmpstr(s, ==,
			"f.dae:2:12: error: unknown outbound 'proxyy' (use direct, block or a "
			"group from the 'group' section)\n");
	free(s);
	g_assert_cmpuint(anser_diags_errors(&d), ==, 1);
	anser_diags_clear(&d);
	g_assert_cmpuint(d.n, ==, 0);
	s = anser_diags_format(&d);
	g_assert_cmpstr(s, ==, "");
	free(s);

	/* NULL diags is allowed */
	g_assert_cmpint(anser_config_parse_string("f.dae", text, strlen(text), &c, NULL), ==,
			-EINVAL);
}

static void test_not_nul_terminated(void)
{
	/* the parser must stop at len, whatever follows */
	const char full[] = "routing { fallback: direct }garbage{{{";
	struct anser_config *c = NULL;
	struct anser_diags d = { 0 };
	size_t len = strlen("routing { fallback: direct }");
	char *exact = g_memdup2(full, len);

	g_assert_cmpint(anser_config_parse_string("n", exact, len, &c, &d), ==, 0);
	anser_config_free(c);
	g_free(exact);

	/* a string cut by the end of input */
	exact = g_memdup2("routing { fallback: 'dir", 24);
	g_assert_cmpint(anser_config_parse_string("n", exact, 24, &c, &d), ==, -EINVAL);
	g_free(exact);
	anser_diags_clear(&d);
}

/* Group-writable or world-accessible config files are refused, with the
 * fix in the message; owner-only and group-readable ones are read. */
static void test_file_mode(void)
{
	static const struct {
		mode_t mode;
		int ok;
		const char *what;
	} cases[] = {
		{ 0600, 1, NULL },
		{ 0400, 1, NULL },
		{ 0640, 1, NULL },
		{ 0644, 0, "accessible by others (mode 0644)" },
		{ 0604, 0, "accessible by others (mode 0604)" },
		{ 0601, 0, "accessible by others (mode 0601)" },
		{ 0620, 0, "group-writable (mode 0620)" },
		{ 0660, 0, "group-writable (mode 0660)" },
	};
	g_autofree char *dir = g_dir_make_tmp("anser-config-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "mode.dae", NULL);

	g_assert_true(g_file_set_contents(path, example, -1, NULL));
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct anser_config *c = NULL;
		struct anser_diags d = { 0 };
		g_assert_cmpint(chmod(path, cases[i].mode), ==, 0);
		int r = anser_config_parse_file(path, &c, &d);
		if (cases[i].ok) {
			g_assert_cmpint(r, ==, 0);
			anser_config_free(c);
		} else {
			g_assert_cmpint(r, ==, -EPERM);
			g_assert_null(c);
			g_assert_cmpuint(d.n, ==, 1);
			g_assert_nonnull(strstr(d.v[0].message, cases[i].what));
			g_autofree char *fix = g_strdup_printf("run 'chmod 600 %s'", path);
			g_assert_nonnull(strstr(d.v[0].message, fix));
		}
		anser_diags_clear(&d);
	}
	g_unlink(path);
	g_rmdir(dir);
}

/* A file in dir with mode 0600 (made with its directories). */
static void put(const char *dir, const char *name, const char *text)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autofree char *parent = g_path_get_dirname(path);

	g_assert_cmpint(g_mkdir_with_parents(parent, 0700), ==, 0);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	g_assert_cmpint(chmod(path, 0600), ==, 0);
}

/* Every diagnostic as "NAME:line:col: message" with NAME the path's last
 * part, joined by newlines. */
static char *short_diags(const struct anser_diags *d)
{
	GString *s = g_string_new(NULL);

	for (size_t i = 0; i < d->n; i++) {
		g_autofree char *base = g_path_get_basename(d->v[i].file);
		g_string_append_printf(s, "%s:%u:%u: %s%s\n", base, d->v[i].line, d->v[i].col,
				       d->v[i].warning ? "warning: " : "", d->v[i].message);
	}
	return g_string_free(s, FALSE);
}

/* include: globs relative to the entry file, name order, depth first;
 * rules keep their files; every problem named where it is. */
static void test_include(void)
{
	g_autofree char *dir = g_dir_make_tmp("anser-include-XXXXXX", NULL);
	g_autofree char *entry = g_build_filename(dir, "config.dae", NULL);
	struct anser_config *c = NULL;
	struct anser_diags d = { 0 };

	put(dir, "config.dae",
	    "include {\n    config.d/*.dae\n    'extra.dae'\n}\n"
	    "routing {\n    pname(e) -> direct\n    fallback: proxy\n}\n");
	put(dir, "config.d/b.dae",
	    "routing {\n    pname(b) -> proxy\n}\n"
	    "include { config.d/nested/*.dae }\n");
	put(dir, "config.d/a.dae",
	    "node { n: 'socks5://10.0.0.1:1080' }\n"
	    "group { proxy { policy: fixed(0) } }\n"
	    "routing { pname(a) -> block }\n");
	put(dir, "config.d/nested/n.dae", "routing { pname(n) -> direct }\n");
	put(dir, "config.d/README", "not a config\n");
	put(dir, "extra.dae", "routing { pname(x) -> proxy }\n");
	/* a link out of the directory */
	g_autofree char *out = g_dir_make_tmp("anser-outside-XXXXXX", NULL);
	put(out, "o.dae", "routing { pname(o) -> direct }\n");
	g_autofree char *target = g_build_filename(out, "o.dae", NULL);
	g_autofree char *link = g_build_filename(dir, "link.dae", NULL);
	g_assert_cmpint(symlink(target, link), ==, 0);
	g_assert_cmpint(anser_config_parse_file(entry, &c, &d), ==, 0);
	g_assert_cmpuint(d.n, ==, 0);
	/* entry, config.d/a, config.d/b, its nested/n, extra */
	g_assert_cmpuint(c->n_files, ==, 5);
	g_assert_cmpstr(c->files[0], ==, entry);
	const char *order[] = { "e", "a", "b", "n", "x" };
	const char *file_of[] = { "config.dae", "a.dae", "b.dae", "n.dae", "extra.dae" };
	g_assert_cmpuint(c->n_rules, ==, 5);
	for (size_t i = 0; i < 5; i++) {
		g_autofree char *base = g_path_get_basename(c->files[c->rules[i].file]);
		g_assert_cmpstr(c->rules[i].conds[0].names[0], ==, order[i]);
		g_assert_cmpstr(base, ==, file_of[i]);
	}
	g_assert_cmpuint(c->fallback_file, ==, 0);
	g_assert_cmpuint(c->groups[0].file, ==, 1);
	anser_config_free(c);

	static const struct {
		const char *file, *text; /* written, then config.dae parsed */
		const char *want;	 /* a line of short_diags() */
	} cases[] = {
		/* a problem inside an included file names that file */
		{ "extra.dae", "routing { pname(x) -> proxyy }\n",
		  "extra.dae:1:23: unknown outbound 'proxyy' (did you mean 'proxy'?)" },
		{ "extra.dae", "routing { fallback: direct }\n",
		  "extra.dae:1:11: 'fallback:' given twice (first at" },
		{ "extra.dae", "group { proxy { policy: random } }\n",
		  "extra.dae:1:9: group 'proxy' given twice (first at" },
		{ "extra.dae", "include { config.dae }\n", "extra.dae:1:11: circular include: /" },
		{ "extra.dae", "include { config.d/a.dae }\n",
		  "config.d/a.dae' is read already (included by /" },
		{ "extra.dae", "include { link.dae }\n", "link.dae' is outside" },
		{ "extra.dae", "include { config.d/README }\n", "is not a .dae file" },
		{ "extra.dae", "include { nothing/*.dae }\n",
		  "extra.dae:1:11: warning: include pattern 'nothing/*.dae' matches no file" },
		{ "extra.dae", "include { missing.dae }\n", "missing.dae: No such file" },
		{ "extra.dae", "routing { pname(x) -> proxy\n",
		  "extra.dae:1:1: section 'routing'" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		put(dir, cases[i].file, cases[i].text);
		int r = anser_config_parse_file(entry, &c, &d);
		g_autofree char *got = short_diags(&d);
		if (!strstr(got, cases[i].want))
			g_error("case %zu: want '%s' in:\n%s", i, cases[i].want, got);
		if (!strstr(cases[i].want, "warning:")) {
			g_assert_cmpint(r, ==, -EINVAL);
			g_assert_null(c);
		}
		anser_config_free(c);
		c = NULL;
		anser_diags_clear(&d);
	}
	/* an included file others may write is refused like the entry file */
	put(dir, "extra.dae", "routing { pname(x) -> proxy }\n");
	g_autofree char *extra = g_build_filename(dir, "extra.dae", NULL);
	g_assert_cmpint(chmod(extra, 0666), ==, 0);
	g_assert_cmpint(anser_config_parse_file(entry, &c, &d), ==, -EINVAL);
	g_autofree char *got = short_diags(&d);
	g_assert_nonnull(strstr(got, "config.dae:3:5: refusing"));
	g_assert_nonnull(strstr(got, "chmod 600"));
	anser_diags_clear(&d);
	/* text has no directory: include is an error there */
	const char *text = "include { a.dae }\nrouting { fallback: direct }\n";
	g_assert_cmpint(anser_config_parse_string("t", text, strlen(text), &c, &d), ==, -EINVAL);
	g_assert_nonnull(strstr(d.v[0].message, "'include' works only in config files"));
	anser_diags_clear(&d);

	g_autofree char *cmd = g_strdup_printf("rm -rf '%s' '%s'", dir, out);
	g_assert_cmpint(system(cmd), ==, 0);
}

/* Data sets: geosite:/geoip: from files in the config's directory,
 * ext: files and domain-list-community directories, built-in private
 * sets; written out and from sets alike reach the compiled tables. */
static void test_sets(void)
{
	g_autofree char *dir = g_dir_make_tmp("anser-sets-XXXXXX", NULL);
	g_autofree char *entry = g_build_filename(dir, "config.dae", NULL);
	struct anser_config *c = NULL;
	struct anser_diags d = { 0 };
	struct geowriter w;
	const char *ads[] = { "ads", NULL };

	geo_begin(&w);
	geo_entry(&w, "CN");
	geo_domain(&w, 2, "a.cn", NULL);
	geo_domain(&w, 0, "baidu", NULL);
	geo_domain(&w, 3, "ad.example", ads);
	geo_entry(&w, "EMPTY");
	GByteArray *site = geo_end(&w);
	g_autofree char *site_path = g_build_filename(dir, "geosite.dat", NULL);
	g_assert_true(g_file_set_contents(site_path, (char *)site->data, site->len, NULL));
	g_autofree char *my_path = g_build_filename(dir, "my.dat", NULL);
	g_assert_true(g_file_set_contents(my_path, (char *)site->data, site->len, NULL));
	geo_begin(&w);
	geo_entry(&w, "CN");
	const uint8_t v4[4] = { 1, 2, 0, 0 };
	geo_cidr(&w, v4, 4, 16);
	GByteArray *ip = geo_end(&w);
	g_autofree char *ip_path = g_build_filename(dir, "geoip.dat", NULL);
	g_assert_true(g_file_set_contents(ip_path, (char *)ip->data, ip->len, NULL));
	put(dir, "lists/mine", "full:mine.example\n");

	put(dir, "config.dae",
	    "node { n: 'socks5://10.0.0.1:1080' }\n"
	    "group { proxy { policy: fixed(0) } }\n"
	    "routing {\n"
	    "    domain(geosite:cn@ads) -> block\n"
	    "    domain(x.org, full: y.org, geosite:cn, ext:lists:mine) -> direct\n"
	    "    domain(ext:my.dat:CN) && l4proto(udp) -> proxy\n"
	    "    dip(geoip:cn, 9.9.9.9, geoip:private) -> proxy\n"
	    "    fallback: direct\n"
	    "}\n");
	g_assert_cmpint(anser_config_parse_file(entry, &c, &d), ==, 0);
	g_autofree char *msgs = short_diags(&d);
	g_assert_nonnull(strstr(msgs, "domain() never holds without a dns section"));
	anser_diags_clear(&d);
	const struct anser_cond *dom = &c->rules[1].conds[0];
	g_assert_cmpuint(dom->n_written, ==, 2);
	g_assert_cmpuint(dom->n_sets, ==, 2);
	g_assert_cmpuint(dom->n_domains, ==, 2 + 3 + 1);
	g_assert_cmpuint(c->rules[0].conds[0].n_domains, ==, 1); /* @ads */
	const struct anser_cond *dip = &c->rules[3].conds[0];
	g_assert_cmpuint(dip->n_written, ==, 1);
	g_assert_cmpuint(dip->n_cidrs, >, 10);
	/* rules print their sets, not what the sets hold */
	g_autofree char *r1 = anser_rule_format(c, 1);
	g_assert_cmpstr(r1, ==,
			"domain(x.org, full: y.org, 'geosite:cn', 'ext:lists:mine') -> direct");
	g_autofree char *r3 = anser_rule_format(c, 3);
	g_assert_cmpstr(r3, ==, "dip(9.9.9.9, 'geoip:cn', 'geoip:private') -> proxy");

	struct anser_compiled comp;
	g_assert_cmpint(anser_routing_compile(c, NULL, 0, &comp), ==, 0);
	static const struct {
		const char *name;
		unsigned rule; /* first rule its name leaves possible */
	} names[] = {
		{ "ad.example", 0 },   { "www.a.cn", 1 },  { "x.org", 1 },     { "sub.y.org", 3 },
		{ "mine.example", 1 }, { "baidu.com", 1 }, { "other.net", 3 }, { NULL, 3 },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		struct anser_rules m;
		anser_domain_rules_eval(comp.dom, names[i].name, &m);
		unsigned first = 0;
		while (!((m.w[first / 64] >> (first % 64)) & 1))
			first++;
		if (first != names[i].rule)
			g_error("%s: first rule %u, want %u", names[i].name, first, names[i].rule);
	}
	/* the kernel's tables: no domain known, addresses from geoip */
	uint8_t a[16] = { [10] = 0xff, [11] = 0xff, [12] = 1, [13] = 2, [14] = 3, [15] = 4 };
	g_assert_cmpuint(anser_compiled_match(&comp, "x", NULL, a, 80, 0, 0), ==, 3);
	a[12] = 192, a[13] = 168;
	g_assert_cmpuint(anser_compiled_match(&comp, "x", NULL, a, 80, 0, 0), ==, 3);
	a[12] = 8;
	g_assert_cmpuint(anser_compiled_match(&comp, "x", NULL, a, 80, 0, 0), ==,
			 ANSER_RULE_FALLBACK);
	anser_compiled_clear(&comp);
	anser_config_free(c);

	/* an absolute ext: path is used as it is */
	g_autofree char *abs_rule = g_strdup_printf(
		"routing {\n    domain(ext:%s:cn) -> direct\n    fallback: direct\n}\n", my_path);
	put(dir, "config.dae", abs_rule);
	g_assert_cmpint(anser_config_parse_file(entry, &c, &d), ==, 0);
	g_assert_cmpuint(c->rules[0].conds[0].n_domains, ==, 3);
	anser_config_free(c);
	c = NULL;
	anser_diags_clear(&d);

	static const struct {
		const char *rule, *want;
	} bad[] = {
		{ "domain(geosite:cm)", "geosite.dat has no tag 'cm' (did you mean 'cn'?)" },
		{ "domain(geosite:empty)", "warning: 'geosite:empty' is empty" },
		{ "domain(ext:nothere.dat:cn)", "needs nothere.dat, which is not in" },
		{ "domain(ext:/nonexistent/x.dat:cn)",
		  "cannot read /nonexistent/x.dat: No such file" },
		{ "domain(ext:lists:nope)", "has no list 'nope'" },
		{ "dip(geoip:xx)", "geoip.dat has no tag 'xx'" },
		{ "dip(ext:geosite.dat:cn)", "is not a valid geoip file" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree char *text = g_strdup_printf(
			"routing {\n    %s -> direct\n    fallback: direct\n}\n", bad[i].rule);
		put(dir, "config.dae", text);
		anser_config_parse_file(entry, &c, &d);
		g_autofree char *got = short_diags(&d);
		if (!strstr(got, bad[i].want))
			g_error("%s: want '%s' in:\n%s", bad[i].rule, bad[i].want, got);
		anser_config_free(c);
		c = NULL;
		anser_diags_clear(&d);
	}
	g_byte_array_unref(site);
	g_byte_array_unref(ip);
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
}

/* dae's dns and subscription sections: read into the config. */
static void test_dns_section(void)
{
	const char *text = "subscription {\n"
			   "    my_sub: 'https://www.example.com/subscription/link'\n"
			   "    'https://example.com/no_tag_link'\n"
			   "    file://relative/path\n"
			   "}\n"
			   "dns {\n"
			   "    ipversion_prefer: 4\n"
			   "    fixed_domain_ttl {\n        ddns.example.org: 10\n        "
			   "'test.example.org': 3600\n    }\n"
			   "    upstream {\n"
			   "        googledns: 'tcp+udp://dns.google:53'\n"
			   "        alidns: 'udp://dns.alidns.com:53'\n"
			   "    }\n"
			   "    routing {\n"
			   "        request {\n"
			   "            qname(geosite:private) -> reject\n"
			   "            qname(suffix: abc.com, keyword: google) -> googledns\n"
			   "            qtype(a, AAAA, 65) -> alidns\n"
			   "            fallback: alidns\n"
			   "        }\n"
			   "        response {\n"
			   "            upstream(googledns) -> accept\n"
			   "            ip(geoip:private) && !qname(geosite:private) -> googledns\n"
			   "        }\n"
			   "    }\n"
			   "}\n"
			   "routing { fallback: direct }\n";
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;

	g_assert_cmpint(anser_config_parse_string("d.dae", text, strlen(text), &c, &d), ==, 0);
	g_assert_cmpuint(anser_diags_errors(&d), ==, 0);
	g_assert_cmpuint(d.n, ==, 1); /* subscriptions not fetched */
	anser_diags_clear(&d);
	g_assert_cmpuint(c->n_subscriptions, ==, 3);
	g_assert_cmpstr(c->subscriptions[0].tag, ==, "my_sub");
	g_assert_null(c->subscriptions[1].tag);
	g_assert_cmpstr(c->subscriptions[2].url, ==, "file://relative/path");
	const struct anser_dns *dns = &c->dns;
	g_assert_true(dns->present);
	g_assert_cmpuint(dns->n_options, ==, 1);
	g_assert_cmpuint(dns->n_fixed_ttl, ==, 2);
	g_assert_cmpstr(dns->fixed_ttl[1].key, ==, "test.example.org");
	g_assert_cmpuint(dns->n_upstreams, ==, 2);
	g_assert_cmpstr(dns->upstreams[1].url, ==, "udp://dns.alidns.com:53");
	g_assert_cmpuint(dns->n_request, ==, 3);
	g_assert_cmpuint(dns->request[0].conds[0].type, ==, ANSER_COND_QNAME);
	g_assert_cmpuint(dns->request[0].conds[0].n_domains, >, 3);
	g_assert_cmpuint(dns->request[2].conds[0].type, ==, ANSER_COND_QTYPE);
	g_assert_cmpuint(dns->request[2].conds[0].n_ports, ==, 3);
	g_assert_cmpuint(dns->request[2].conds[0].ports[1].lo, ==, 28);
	g_assert_cmpstr(dns->request[1].action, ==, "googledns");
	g_assert_cmpstr(dns->request_fallback, ==, "alidns");
	g_assert_cmpuint(dns->n_response, ==, 2);
	g_assert_cmpuint(dns->response[1].n_conds, ==, 2);
	g_assert_true(dns->response[1].conds[1].negate);
	g_assert_cmpstr(dns->response_fallback, ==, "accept"); /* dae's default */
	anser_config_free(c);
}

/* App routes: selectors in the config language, tried first, the base
 * config shared, not copied. */
static void test_app_routes(void)
{
	static const char *const good[][2] = {
		{ "app(org.mozilla.firefox)", "app(org.mozilla.firefox)" },
		{ " pname( curl )", "pname(curl)" },
		{ "app(google-chrome)", "app('google-chrome')" },
		{ "cgroup(/user.slice/)", "cgroup('/user.slice')" },
	};
	static const char *const bad[][2] = {
		{ "", "one condition" },
		{ "pname(a, b)", "one value" },
		{ "!app(x)", "with one value" },
		{ "dip(10.0.0.0/8)", "app(ID), pname(NAME) or cgroup(PATH)" },
		{ "app(x) && pname(y)", "one app(ID)" },
		{ "pname(a/b)", "contains '/'" },
		{ "app(x) } routing {", "one condition" },
		{ "frob(x)", "unknown function 'frob()'" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
		char *why = NULL;
		g_autofree char *c = anser_selector_canonical(good[i][0], &why);
		g_assert_null(why);
		g_assert_cmpstr(c, ==, good[i][1]);
		/* canonical forms read back to themselves */
		g_autofree char *again = anser_selector_canonical(c, &why);
		g_assert_cmpstr(again, ==, c);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *why = NULL;
		char *c = anser_selector_canonical(bad[i][0], &why);
		g_assert_null(c);
		if (!why || !strstr(why, bad[i][1]))
			g_error("%s: want '%s' in '%s'", bad[i][0], bad[i][1], why ? why : "");
		free(why);
	}

	struct anser_config *base =
		parse_ok("node { n: 'socks5://10.0.0.1:1080' }\n"
			 "group { proxy { policy: fixed(0) } }\n"
			 "routing {\n pname(curl) -> block\n fallback: direct\n}\n");
	struct anser_app_route routes[] = {
		{ "pname(curl)", "proxy" },
		{ "app(x)", "nosuchgroup" },
		{ "app(org.a.B)", "block" },
	};
	struct anser_config *c = NULL;
	size_t skipped = 0;
	g_assert_cmpint(anser_config_with_routes(base, routes, 3, "/var/lib/anser/app-routes", &c,
						 &skipped),
			==, 0);
	g_assert_cmpuint(skipped, ==, 1);
	g_assert_cmpuint(c->n_rules, ==, 3);
	g_assert_cmpuint(c->n_routes, ==, 2);
	g_assert_cmpuint(c->rules[0].outbound, ==, ANSER_OUT_FIRST_GROUP);
	g_assert_cmpuint(c->rules[1].outbound, ==, ANSER_OUT_BLOCK);
	g_assert_cmpuint(c->rules[1].line, ==, 3);
	g_assert_cmpstr(c->files[c->rules[0].file], ==, "/var/lib/anser/app-routes");
	g_autofree char *r2 = anser_rule_format(c, 2);
	g_assert_cmpstr(r2, ==, "pname(curl) -> block");
	g_assert_true(c->groups == base->groups); /* shared */
	/* the base outlives its first owner while a derived config holds it */
	anser_config_free(base);
	g_assert_cmpstr(c->groups[0].name, ==, "proxy");
	anser_config_free(c);
}

static void test_file(void)
{
	g_autofree char *dir = g_dir_make_tmp("anser-config-XXXXXX", NULL);
	g_autofree char *good = g_build_filename(dir, "good.dae", NULL);
	g_autofree char *big = g_build_filename(dir, "big.dae", NULL);
	g_autofree char *missing = g_build_filename(dir, "missing.dae", NULL);
	struct anser_config *c = NULL;
	struct anser_diags d = { 0 };

	g_assert_true(g_file_set_contents(good, example, -1, NULL));
	g_assert_cmpint(chmod(good, 0600), ==, 0);
	g_assert_cmpint(anser_config_parse_file(good, &c, &d), ==, 0);
	g_assert_cmpstr(c->source, ==, good);
	anser_config_free(c);

	g_assert_cmpint(anser_config_parse_file(missing, &c, &d), ==, -ENOENT);
	g_assert_null(c);
	g_assert_cmpuint(d.n, ==, 1);
	g_autofree char *want =
		g_strdup_printf("cannot read %s: No such file or directory", missing);
	g_assert_cmpstr(d.v[0].message, ==, want);
	g_autofree char *s = anser_diags_format(&d);
	g_assert_true(g_str_has_prefix(s, missing));
	g_assert_nonnull(strstr(s, ": error: cannot read"));
	anser_diags_clear(&d);

	g_assert_cmpint(anser_config_parse_file(dir, &c, &d), ==, -EISDIR);
	anser_diags_clear(&d);

	int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(ftruncate(fd, 16 * 1024 * 1024 + 1), ==, 0);
	close(fd);
	g_assert_cmpint(anser_config_parse_file(big, &c, &d), ==, -EFBIG);
	g_assert_nonnull(strstr(d.v[0].message, "larger than 16 MiB"));
	anser_diags_clear(&d);

	g_unlink(good);
	g_unlink(big);
	g_rmdir(dir);
}

static void test_too_many(void)
{
	GString *s = g_string_new("routing {\n");

	/* as written; what fits the kernel is checked when compiling */
	for (unsigned i = 0; i < 65001; i++)
		g_string_append(s, "dport(1) -> direct\n");
	g_string_append(s, "fallback: direct\n}\n");
	expect_error(s->str, 65002, 1, "too many routing rules");
	g_string_free(s, TRUE);

	s = g_string_new("node { a: 'socks5://h:1' }\ngroup {\n g {\n  policy: random\n");
	for (unsigned i = 0; i < 70; i++)
		g_string_append(s, "  filter: name(a)\n");
	g_string_append(s, " }\n}\n" ROUTING_DIRECT);
	expect_error(s->str, 4 + 65, 11, "too many 'filter:' lines in one group (at most 64");
	g_string_free(s, TRUE);

	/* many errors: the report is capped, and says so last */
	s = g_string_new("routing {\n");
	for (unsigned i = 0; i < 500; i++)
		g_string_append(s, "dport(0) -> direct\n");
	g_string_append(s, "}\n");
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;
	g_assert_cmpint(anser_config_parse_string("m", s->str, s->len, &c, &d), ==, -EINVAL);
	g_assert_cmpuint(d.n, <=, 100);
	g_assert_nonnull(strstr(d.v[d.n - 1].message, "too many problems"));
	anser_diags_clear(&d);
	g_string_free(s, TRUE);
}

struct bad {
	const char *text;
	unsigned line, col;
	const char *msg;
};

#define NODE_A "node {\n a: 'socks5://10.0.0.1:1080'\n}\n"

static const struct bad bad_inputs[] = {
	/* empty / structure */
	{ "", 1, 1, "the config is empty" },
	{ "# only a comment\n", 1, 1, "the config is empty" },
	{ "global { log_level: info }\n", 1, 1, "no 'routing' section" },
	{ "routing {\n pname(a) -> direct\n}\n", 1, 1, "no 'fallback:' line" },
	{ "rooting {\n}\n" ROUTING_DIRECT, 1, 1,
	  "unknown section 'rooting' (did you mean 'routing'?)" },
	{ "foo {\n}\n" ROUTING_DIRECT, 1, 1, "unknown section 'foo' (sections are" },
	{ "subscription {\n}\nsubscription {\n}\n" ROUTING_DIRECT, 3, 1,
	  "section 'subscription' given twice in this file" },
	{ ROUTING_DIRECT ROUTING_DIRECT, 4, 1, "section 'routing' given twice (first at line 1" },
	{ "routing {\n fallback: direct\n", 1, 1, "section 'routing' is not closed" },
	{ "}\n" ROUTING_DIRECT, 1, 1, "unexpected '}'" },
	{ "routing\n fallback: direct\n", 1, 1, "expected '{' after section name 'routing'" },
	{ "log_level: info\n" ROUTING_DIRECT, 1, 1, "'log_level' outside of a section" },
	{ "(\n" ROUTING_DIRECT, 1, 1, "expected a section name, found '('" },
	/* lexer */
	{ "routing {\n fallback: 'direct\n}\n", 2, 12, "unterminated string" },
	{ "/* routing {\n fallback: direct\n}\n", 1, 1, "unterminated comment" },
	{ "routing {\n pname(a) & dport(1) -> direct\n fallback: direct\n}\n", 2, 11, "stray '&'" },
	{ "routing {\n pname(a) || pname(b) -> direct\n fallback: direct\n}\n", 2, 11,
	  "there is no 'or'" },
	{ "routing {\n pname(a) -> direct $\n fallback: direct\n}\n", 2, 21,
	  "unexpected character '$'" },
	/* global */
	{ "global {\n log_level: loud\n}\n" ROUTING_DIRECT, 2, 13, "invalid log_level 'loud'" },
	{ "global {\n log_level: info\n log_level: debug\n}\n" ROUTING_DIRECT, 3, 2,
	  "global option 'log_level' given twice (first at line 2" },
	{ "global {\n log_level:\n}\n" ROUTING_DIRECT, 2, 2, "'log_level:' has no value" },
	{ "global {\n log_level: info debug\n}\n" ROUTING_DIRECT, 2, 18,
	  "expected 'key: value', found 'debug'" },
	{ "global {\n info\n}\n" ROUTING_DIRECT, 2, 2, "expected 'key: value', found 'info'" },
	{ "global {\n lan: a,\n}\n" ROUTING_DIRECT, 3, 1, "expected a value after ','" },
	{ "global {\n log_levl: info\n}\n" ROUTING_DIRECT, 2, 2,
	  "unknown global option 'log_levl' (did you mean 'log_level'?)" },
	{ "global {\n frobnicate: 1\n}\n" ROUTING_DIRECT, 2, 2,
	  "unknown global option 'frobnicate' (dae has no such option" },
	{ "global {\n check_interval: 30\n}\n" ROUTING_DIRECT, 2, 18,
	  "invalid check_interval '30': missing unit (ns, us, ms, s, m, h) (expected a duration" },
	{ "global {\n check_interval: -5s\n}\n" ROUTING_DIRECT, 2, 18,
	  "invalid check_interval '-5s' (expected a duration" },
	{ "global {\n sniffing_timeout: 1x\n}\n" ROUTING_DIRECT, 2, 20,
	  "invalid sniffing_timeout '1x': unknown unit" },
	{ "global {\n sniffing_timeout: 11s\n}\n" ROUTING_DIRECT, 2, 20,
	  "invalid sniffing_timeout '11s' (at most 10s; 0 turns sniffing off)" },
	{ "global {\n dial_mode: domian\n}\n" ROUTING_DIRECT, 2, 13,
	  "invalid dial_mode 'domian' (did you mean 'domain'?)" },
	{ "global {\n dial_mode: fqdn\n}\n" ROUTING_DIRECT, 2, 13,
	  "invalid dial_mode 'fqdn' (expected ip, domain, domain+ or domain++)" },
	{ "global {\n fail_mode: closd\n}\n" ROUTING_DIRECT, 2, 13,
	  "invalid fail_mode 'closd' (did you mean 'closed'?)" },
	{ "global {\n fail_mode: strict\n}\n" ROUTING_DIRECT, 2, 13,
	  "invalid fail_mode 'strict' (expected open or closed)" },
	{ "global {\n auto_config_kernel_parameter: yes\n}\n" ROUTING_DIRECT, 2, 32,
	  "invalid auto_config_kernel_parameter 'yes' (expected true or false)" },
	{ "global {\n tproxy_port: 70000\n}\n" ROUTING_DIRECT, 2, 15,
	  "invalid tproxy_port '70000' (expected a port, 0..65535)" },
	{ "global {\n allow_insecure: yes\n}\n" ROUTING_DIRECT, 2, 18,
	  "invalid allow_insecure 'yes' (expected true or false)" },
	{ "global {\n so_mark_from_dae: 0x10\n}\n" ROUTING_DIRECT, 2, 20,
	  "invalid so_mark_from_dae '0x10' (expected a whole number)" },
	{ "global {\n mptcp: true, false\n}\n" ROUTING_DIRECT, 2, 9,
	  "invalid mptcp 'true,false' (expected true or false)" },
	{ "global {\n tcp_check_url: 'http://cp.cloudflare.com'\n}\n" ROUTING_DIRECT, 2, 18,
	  "invalid tcp_check_url 'http://cp.cloudflare.com' (the host is a name: give its "
	  "addresses" },
	{ "global {\n tcp_check_url: 'https://1.1.1.1'\n}\n" ROUTING_DIRECT, 2, 18,
	  "https check URLs are not supported yet" },
	{ "global {\n tcp_check_url: 'http://h', 'nope'\n}\n" ROUTING_DIRECT, 2, 18,
	  "must be IPv4 or IPv6 literals" },
	{ "global {\n udp_check_dns: 'fd00::1:53'\n}\n" ROUTING_DIRECT, 2, 18,
	  "write IPv6 addresses in brackets" },
	{ "global {\n check_interval: 100ms\n}\n" ROUTING_DIRECT, 2, 18, "(at least 1s)" },
	{ "global {\n tcp_check_http_method: get\n}\n" ROUTING_DIRECT, 2, 25,
	  "an HTTP method in capitals" },
	/* node */
	{ "node {\n a: 'ss://YWVz@h:1'\n}\n" ROUTING_DIRECT, 2, 11,
	  "shadowsocks link has no 'method:password'" },
	{ "node {\n a: 'vmess://abc'\n}\n" ROUTING_DIRECT, 2, 14, "vmess link is neither" },
	{ "node {\n a: 'hy2://abc@h:1'\n}\n" ROUTING_DIRECT, 2, 6,
	  "node protocol 'hy2' is not supported (supported: socks5," },
	{ "node {\n a: 'socks5://h'\n}\n" ROUTING_DIRECT, 2, 16, "node link has no port" },
	{ "node {\n a: 'socks5://h:0'\n}\n" ROUTING_DIRECT, 2, 17, "invalid port '0'" },
	{ "node {\n a: 'socks5://h:65536'\n}\n" ROUTING_DIRECT, 2, 17, "invalid port '65536'" },
	{ "node {\n a: 'socks5://:1080'\n}\n" ROUTING_DIRECT, 2, 15, "node link has no host" },
	{ "node {\n a: 'socks5://fd00::1:1080'\n}\n" ROUTING_DIRECT, 2, 15,
	  "IPv6 address without brackets" },
	{ "node {\n a: 'socks5://[fd00::x]:1080'\n}\n" ROUTING_DIRECT, 2, 15,
	  "invalid IPv6 address 'fd00::x'" },
	{ "node {\n a: 'socks5://[::1'\n}\n" ROUTING_DIRECT, 2, 15, "missing ']'" },
	{ "node {\n a: 'socks5://300.1.1.1:1'\n}\n" ROUTING_DIRECT, 2, 15,
	  "invalid IPv4 address '300.1.1.1'" },
	{ "node {\n a: 'socks5://bad_host!:1'\n}\n" ROUTING_DIRECT, 2, 15, "invalid host name" },
	{ "node {\n a: 'socks5://u%zz:p@h:1'\n}\n" ROUTING_DIRECT, 2, 15, "invalid user name" },
	{ "node {\n a: 'socks5://h:1/path'\n}\n" ROUTING_DIRECT, 2, 18,
	  "a socks5 link has no path" },
	{ "node {\n a: 'socks5://h:1?x=1'\n}\n" ROUTING_DIRECT, 2, 18, "options in a socks5 link" },
	{ "node {\n a: 'hello'\n}\n" ROUTING_DIRECT, 2, 6, "not a node link: 'hello'" },
	{ "node {\n a: 'socks5://h:1'\n a: 'socks5://h:2'\n}\n" ROUTING_DIRECT, 3, 2,
	  "node name 'a' given twice (first at line 2" },
	{ "node {\n a:\n}\n" ROUTING_DIRECT, 2, 2, "'a:' has no value" },
	{ "node {\n justaword\n}\n" ROUTING_DIRECT, 2, 2,
	  "expected 'name: link' or a quoted link" },
	{ "node {\n aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: "
	  "'socks5://h:1'\n}\n" ROUTING_DIRECT,
	  2, 2, "node name 'aaaa" },
	{ NODE_A "group {\n g {\n  policy: min\n  when_dead: maybe\n }\n}\n" ROUTING_DIRECT, 7, 14,
	  "invalid when_dead 'maybe' (fail or direct)" },
	/* group */
	{ NODE_A "group {\n g {\n  filter: name(b)\n  policy: random\n }\n}\n" ROUTING_DIRECT, 6,
	  16, "unknown node 'b' in the filter of group 'g'" },
	{ NODE_A "group {\n g {\n  filter: name(aa)\n  policy: random\n }\n}\n" ROUTING_DIRECT, 6,
	  16, "(did you mean 'a'?)" },
	{ NODE_A "group {\n g {\n  policy: fixed(1)\n }\n}\n" ROUTING_DIRECT, 6, 17,
	  "fixed(1) is out of range: group 'g' has 1 node (use 0..0)" },
	{ NODE_A "group {\n g {\n  policy: fixed(x)\n }\n}\n" ROUTING_DIRECT, 6, 17,
	  "expected a node index" },
	{ NODE_A "group {\n g {\n  filter: name(a) [add_latency: soon]\n  policy: random\n "
		 "}\n}\n" ROUTING_DIRECT,
	  6, 33, "invalid duration 'soon' in add_latency" },
	{ NODE_A
	  "group {\n g {\n  filter: name(a) [weight: 2]\n  policy: random\n }\n}\n" ROUTING_DIRECT,
	  6, 20, "unknown filter annotation 'weight'" },
	{ NODE_A "group {\n g {\n  filter: name(a) [add_latency: 1s\n  policy: random\n "
		 "}\n}\n" ROUTING_DIRECT,
	  7, 3, "expected ']'" },
	{ NODE_A
	  "group {\n g {\n  filter: name(regex: '([')\n  policy: random\n }\n}\n" ROUTING_DIRECT,
	  6, 16, "invalid regular expression '(['" },
	{ NODE_A "group {\n g {\n  filter: name(zone: x)\n  policy: random\n }\n}\n" ROUTING_DIRECT,
	  6, 16, "unknown key 'zone' in name() (keyword: or regex:)" },
	{ NODE_A "group {\n g {\n  filter: tag(x)\n  policy: random\n }\n}\n" ROUTING_DIRECT, 6, 11,
	  "unknown filter 'tag()' (name(...) or subtag(...))" },
	{ NODE_A "group {\n g {\n  policy: fastest\n }\n}\n" ROUTING_DIRECT, 6, 11,
	  "unknown policy 'fastest'" },
	{ NODE_A "group {\n g {\n  policy: random\n  policy: random\n }\n}\n" ROUTING_DIRECT, 7, 3,
	  "two 'policy:' lines" },
	{ NODE_A "group {\n g {\n  filter: name(a)\n }\n}\n" ROUTING_DIRECT, 5, 2,
	  "group 'g' has no 'policy:' line" },
	{ "group {\n g {\n  policy: random\n }\n}\n" ROUTING_DIRECT, 2, 2,
	  "group 'g' has no nodes (the 'node' section lists none)" },
	{ NODE_A "group {\n g {\n  filter: !name(a)\n  policy: random\n }\n}\n" ROUTING_DIRECT, 5,
	  2, "its filter matches none" },
	{ NODE_A "group {\n g {\n  filter: subtag(x)\n  policy: random\n }\n}\n" ROUTING_DIRECT, 5,
	  2, "its filter matches none" },
	{ NODE_A "group {\n g {\n  fliter: name(a)\n  policy: random\n }\n}\n" ROUTING_DIRECT, 6, 3,
	  "unknown group option 'fliter' (did you mean 'filter'?)" },
	{ NODE_A "group {\n g {\n  policy: random\n  frob: 1\n }\n}\n" ROUTING_DIRECT, 7, 3,
	  "unknown group option 'frob' (dae has no such option" },
	{ NODE_A "group {\n g {\n  policy: random\n  check_interval: 30\n }\n}\n" ROUTING_DIRECT, 7,
	  19, "invalid check_interval '30': missing unit" },
	{ NODE_A "group {\n g {\n  policy: random\n  check_tolerance: fast\n }\n}\n" ROUTING_DIRECT,
	  7, 20, "invalid check_tolerance 'fast'" },
	{ NODE_A "group {\n direct {\n  policy: random\n }\n}\n" ROUTING_DIRECT, 5, 2,
	  "'direct' cannot name a group" },
	{ NODE_A "group {\n g { policy: random }\n g { policy: random }\n}\n" ROUTING_DIRECT, 6, 2,
	  "group 'g' given twice" },
	{ NODE_A "group {\n g { policy: random\n}\n" ROUTING_DIRECT, 4, 1,
	  "section 'group' is not closed (add '}' before line 7)" },
	{ NODE_A "group {\n g { policy: random\n", 5, 2, "group is not closed" },
	{ "global {\n log_level: info\n" ROUTING_DIRECT, 1, 1,
	  "section 'global' is not closed (add '}' before line 3)" },
	{ NODE_A "group {\n policy: random\n}\n" ROUTING_DIRECT, 5, 2,
	  "expected a group: 'name {'" },
	/* routing */
	{ "routing {\n pname(a) -> proxyy\n fallback: direct\n}\n", 2, 14,
	  "unknown outbound 'proxyy'" },
	{ NODE_A "group {\n proxy { policy: random }\n}\n"
		 "routing {\n pname(a) -> proxyy\n fallback: direct\n}\n",
	  8, 14, "unknown outbound 'proxyy' (did you mean 'proxy'?)" },
	{ "routing {\n pname(a) -> drect\n fallback: direct\n}\n", 2, 14,
	  "(did you mean 'direct'?)" },
	{ "routing {\n pname(a) -> block(mark: 1)\n fallback: direct\n}\n", 2, 20,
	  "a mark on 'block' means nothing: nothing is sent" },
	{ "routing {\n pname(a) -> direct(must, x)\n fallback: direct\n}\n", 2, 27,
	  "unknown outbound option 'x' (dae's are 'must' and 'mark: N')" },
	{ "routing {\n pname(a) -> direct(colour: red)\n fallback: direct\n}\n", 2, 21,
	  "unknown outbound option 'colour: red'" },
	{ "routing {\n pname(a) -> direct(mark: -1)\n fallback: direct\n}\n", 2, 21,
	  "invalid mark '-1' (a number up to 0xffffffff, like 0x100)" },
	{ "routing {\n pname(a) -> direct(mark: 0x100000000)\n fallback: direct\n}\n", 2, 21,
	  "invalid mark '0x100000000'" },
	{ "routing {\n pname(a) -> direct(mark: 12ab)\n fallback: direct\n}\n", 2, 21,
	  "invalid mark '12ab'" },
	{ "routing {\n pname(a) -> must_nosuch\n fallback: direct\n}\n", 2, 14,
	  "unknown outbound 'nosuch'" },
	{ "routing {\n fallback: must_rules\n}\n", 2, 12,
	  "'fallback: must_rules' decides nothing" },
	{ "routing {\n domain(geosite:cn) -> direct\n fallback: direct\n}\n", 2, 9,
	  "'geosite:cn' needs geosite.dat, which is not in" },
	{ "routing {\n domain(regex: '([') -> direct\n fallback: direct\n}\n", 2, 9,
	  "invalid regular expression '(['" },
	{ "routing {\n domain(suffix: 'a b') -> direct\n fallback: direct\n}\n", 2, 9,
	  "invalid domain 'a b'" },
	{ "routing {\n domain(zone: a) -> direct\n fallback: direct\n}\n", 2, 9,
	  "unknown domain() key 'zone'" },
	{ "routing {\n domain(ext:x) -> direct\n fallback: direct\n}\n", 2, 9,
	  "'ext:x' is not ext:FILE:TAG" },
	{ "routing {\n domain(geosite:cn@) -> direct\n fallback: direct\n}\n", 2, 9,
	  "empty attribute" },
	{ "routing {\n dip(geoip:cn@x) -> direct\n fallback: direct\n}\n", 2, 6,
	  "addresses have no attributes" },
	{ "routing {\n dip(geosite:cn) -> direct\n fallback: direct\n}\n", 2, 6,
	  "unknown data set 'geosite:cn' (geoip:TAG or ext:FILE:TAG)" },
	{ "routing {\n qname(a.com) -> direct\n fallback: direct\n}\n", 2, 2,
	  "qname() is a DNS condition: it belongs in dns" },
	{ "dns {\n upstream {\n  g: 'ftp://dns.google'\n }\n}\n" ROUTING_DIRECT, 3, 7,
	  "invalid upstream 'ftp://dns.google'" },
	{ "dns {\n upstream {\n  g: 'udp://:53'\n }\n}\n" ROUTING_DIRECT, 3, 7,
	  "upstream 'udp://:53' has no host" },
	{ "dns {\n upstream {\n  asis: 'udp://1.1.1.1'\n }\n}\n" ROUTING_DIRECT, 3, 3,
	  "'asis' cannot name an upstream" },
	{ "dns {\n upstream {\n  g: 'udp://1.1.1.1'\n  g: 'udp://8.8.8.8'\n }\n}\n" ROUTING_DIRECT,
	  4, 3, "upstream 'g' given twice (first at line 3)" },
	{ "dns {\n upstream { goog: 'udp://1.1.1.1' }\n routing {\n  request {\n"
	  "   qname(a.com) -> gogo\n  }\n }\n}\n" ROUTING_DIRECT,
	  5, 20, "unknown DNS request action 'gogo' (did you mean 'goog'?)" },
	{ "dns {\n routing {\n  response {\n   fallback: asis\n  }\n }\n}\n" ROUTING_DIRECT, 4, 14,
	  "unknown DNS response action 'asis'" },
	{ "dns {\n routing {\n  request {\n   pname(curl) -> asis\n  }\n }\n}\n" ROUTING_DIRECT, 4,
	  4, "pname() is not a DNS request condition (request: qname, qtype)" },
	{ "dns {\n routing {\n  request {\n   ip(1.1.1.1) -> asis\n  }\n }\n}\n" ROUTING_DIRECT, 4,
	  4, "ip() is not a DNS request condition" },
	{ "dns {\n routing {\n  response {\n   upstream(nope) -> reject\n  }\n "
	  "}\n}\n" ROUTING_DIRECT,
	  4, 4, "upstream(nope): no such upstream" },
	{ "dns {\n routing {\n  request {\n   qtype(bogus) -> asis\n  }\n }\n}\n" ROUTING_DIRECT, 4,
	  10, "unknown query type 'bogus'" },
	{ "dns {\n routing {\n  request {\n   fallback: asis\n   fallback: reject\n  }\n "
	  "}\n}\n" ROUTING_DIRECT,
	  5, 4, "'fallback:' given twice" },
	{ "dns {\n ipversion_prefer: 5\n}\n" ROUTING_DIRECT, 2, 20,
	  "ipversion_prefer is 0 (none), 4 or 6" },
	{ "dns {\n virtual_address: '10.30.30.30', 'dns.test'\n}\n" ROUTING_DIRECT, 2, 20,
	  "virtual_address: 'dns.test' is not an IPv4 or IPv6 address" },
	{ "dns {\n virtual_address: '10.30.30.30', '10.0.0.1'\n}\n" ROUTING_DIRECT, 2, 20,
	  "virtual_address: one IPv4 and one IPv6 address at most" },
	{ "dns {\n ipversion_prefr: 4\n}\n" ROUTING_DIRECT, 2, 2,
	  "unknown dns option 'ipversion_prefr' (did you mean 'ipversion_prefer'?)" },
	{ "dns {\n fixed_domain_ttl {\n  a.com: soon\n }\n}\n" ROUTING_DIRECT, 3, 10,
	  "invalid TTL 'soon'" },
	{ "dns {\n cache { }\n}\n" ROUTING_DIRECT, 2, 2, "unknown dns block 'cache'" },
	{ "dns {\n upstream: x\n}\n" ROUTING_DIRECT, 2, 2,
	  "'upstream' is a block: write 'upstream { ... }'" },
	{ "dns { }\ndns { }\n" ROUTING_DIRECT, 2, 1, "section 'dns' given twice in this file" },
	{ "subscription {\n s: 'ftp://x'\n}\n" ROUTING_DIRECT, 2, 6,
	  "invalid subscription 'ftp://x'" },
	{ "routing {\n sip(10.0.0.300) -> direct\n fallback: direct\n}\n", 2, 6,
	  "invalid address '10.0.0.300' in sip()" },
	{ "routing {\n sport(70000) -> direct\n fallback: direct\n}\n", 2, 8,
	  "invalid port '70000' in sport()" },
	{ "routing {\n mac(02:42:ac:11:00) -> direct\n fallback: direct\n}\n", 2, 6,
	  "invalid MAC address '02:42:ac:11:00'" },
	{ "routing {\n mac('02-42-ac-11-00-02') -> direct\n fallback: direct\n}\n", 2, 7,
	  "invalid MAC address" },
	{ "routing {\n dscp(64) -> direct\n fallback: direct\n}\n", 2, 7,
	  "invalid DSCP value '64' in dscp() (0..63)" },
	{ "routing {\n network(HomeWifi) -> direct\n fallback: direct\n}\n", 2, 10,
	  "network('HomeWifi') needs a key: network(id: ...), network(ssid: ...)" },
	{ "routing {\n network(sssid: HomeWifi) -> direct\n fallback: direct\n}\n", 2, 10,
	  "unknown key 'sssid' in network() (did you mean 'ssid'?)" },
	{ "routing {\n network(metered: maybe) -> direct\n fallback: direct\n}\n", 2, 10,
	  "network(metered: 'maybe'): write yes or no" },
	{ "routing {\n network(id: '') -> direct\n fallback: direct\n}\n", 2, 10,
	  "network(id: '') is empty" },
	{ "routing {\n app() -> direct\n fallback: direct\n}\n", 2, 2,
	  "app() needs at least one argument" },
	{ "routing {\n app(org/x) -> direct\n fallback: direct\n}\n", 2, 6,
	  "invalid application id 'org/x' in app()" },
	{ "routing {\n app('a b') -> direct\n fallback: direct\n}\n", 2, 7,
	  "invalid application id 'a b'" },
	{ "routing {\n cgroup(user.slice) -> direct\n fallback: direct\n}\n", 2, 9,
	  "cgroup path 'user.slice' must start with '/'" },
	{ "routing {\n cgroup('/a//b') -> direct\n fallback: direct\n}\n", 2, 10,
	  "has an empty, '.' or '..' part" },
	{ "routing {\n cgroup('/a/../b') -> direct\n fallback: direct\n}\n", 2, 10,
	  "has an empty, '.' or '..' part" },
	{ "routing {\n cgroup(a: b) -> direct\n fallback: direct\n}\n", 2, 9,
	  "cgroup(a: ...) is not supported yet" },
	{ "routing {\n pnam(a) -> direct\n fallback: direct\n}\n", 2, 2,
	  "unknown function 'pnam()' (did you mean 'pname()'?)" },
	{ "routing {\n frobnicate(a) -> direct\n fallback: direct\n}\n", 2, 2,
	  "unknown function 'frobnicate()' (supported: pname" },
	{ "routing {\n dip(10.0.0.0/33) -> direct\n fallback: direct\n}\n", 2, 6,
	  "an IPv4 prefix length is 0..32" },
	{ "routing {\n dip(fd00::/129) -> direct\n fallback: direct\n}\n", 2, 6,
	  "an IPv6 prefix length is 0..128" },
	{ "routing {\n dip(10.0.0.0/x) -> direct\n fallback: direct\n}\n", 2, 6,
	  "the prefix length must be a number" },
	{ "routing {\n dip(10.0.0.256) -> direct\n fallback: direct\n}\n", 2, 6,
	  "invalid address '10.0.0.256'" },
	{ "routing {\n dip(geoip: cn) -> direct\n fallback: direct\n}\n", 2, 6,
	  "'geoip:cn' needs geoip.dat" },
	{ "routing {\n dport(0) -> direct\n fallback: direct\n}\n", 2, 8, "invalid port '0'" },
	{ "routing {\n dport(65536) -> direct\n fallback: direct\n}\n", 2, 8,
	  "invalid port '65536'" },
	{ "routing {\n dport(80, 9000-8000) -> direct\n fallback: direct\n}\n", 2, 12,
	  "port range '9000-8000' is backwards (write 8000-9000)" },
	{ "routing {\n dport(http) -> direct\n fallback: direct\n}\n", 2, 8,
	  "invalid port 'http'" },
	{ "routing {\n l4proto(icmp) -> direct\n fallback: direct\n}\n", 2, 10,
	  "unknown protocol 'icmp'" },
	{ "routing {\n ipversion(5) -> direct\n fallback: direct\n}\n", 2, 12,
	  "unknown IP version '5'" },
	{ "routing {\n pname() -> direct\n fallback: direct\n}\n", 2, 2,
	  "pname() needs at least one argument" },
	{ "routing {\n pname(a,) -> direct\n fallback: direct\n}\n", 2, 10,
	  "remove the trailing ','" },
	{ "routing {\n pname(a b) -> direct\n fallback: direct\n}\n", 2, 10,
	  "expected ',' or ')', found 'b'" },
	{ "routing {\n pname(/usr/bin/curl) -> direct\n fallback: direct\n}\n", 2, 8,
	  "contains '/'" },
	{ "routing {\n pname(aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa) -> "
	  "direct\n fallback: direct\n}\n",
	  2, 8, "is too long" },
	{ "routing {\n pname(a) direct\n fallback: direct\n}\n", 2, 11,
	  "expected '&&' or '->', found 'direct'" },
	{ "routing {\n pname(a) ->\n fallback: direct\n}\n", 3, 2, "expected an outbound" },
	{ "routing {\n pname -> direct\n fallback: direct\n}\n", 2, 8,
	  "expected '(' after 'pname'" },
	{ "routing {\n !!pname(a) -> direct\n fallback: direct\n}\n", 2, 3,
	  "expected a function after '!'" },
	{ "routing {\n fallback: direct\n fallback: block\n}\n", 3, 2, "'fallback:' given twice" },
	{ "routing {\n fallbak: direct\n}\n", 2, 2, "unknown routing option 'fallbak'" },
	{ "routing {\n 'x' -> direct\n fallback: direct\n}\n", 2, 2,
	  "expected a rule or 'fallback:'" },
	{ "routing {\n pname(a) -> direct 'x'\n fallback: direct\n}\n", 2, 21,
	  "expected a rule or 'fallback:', found 'x'" },
	{ "routing {\n pname(a) -> direct\n fallback: [x]\n}\n", 3, 12,
	  "expected an outbound, found '['" },
};

static void test_bad(void)
{
	unsigned failed = 0;

	for (size_t i = 0; i < G_N_ELEMENTS(bad_inputs); i++)
		failed += !check_error(bad_inputs[i].text, bad_inputs[i].line, bad_inputs[i].col,
				       bad_inputs[i].msg);
	g_assert_cmpuint(failed, ==, 0);
}

static bool has_diag(const struct anser_diags *d, unsigned line, unsigned col, const char *sub)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].line == line && d->v[i].col == col && strstr(d->v[i].message, sub))
			return true;
	return false;
}

static void test_nul_byte(void)
{
	static const char text[] = "routing {\n fallback: dir\0ect\n}\n";
	static const char str[] = "routing {\n fallback: 'dir\0ect'\n}\n";
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;

	g_assert_cmpint(anser_config_parse_string("z", text, sizeof(text) - 1, &c, &d), ==,
			-EINVAL);
	g_assert_true(has_diag(&d, 2, 15, "NUL byte in the config"));
	anser_diags_clear(&d);

	g_assert_cmpint(anser_config_parse_string("z", str, sizeof(str) - 1, &c, &d), ==, -EINVAL);
	g_assert_true(has_diag(&d, 2, 16, "NUL byte in string"));
	anser_diags_clear(&d);
}

/* --validate's form: each diagnostic quotes its line with a caret under
 * the column (tabs kept, a UTF-8 character one column wide). */
static void test_excerpts(void)
{
	static const char text[] = "routing {\n"
				   "\tpname(\xc3\xa4) -> nowhere\n"
				   " fallback: direct\n"
				   "}\n";
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;

	g_assert_cmpint(anser_config_parse_string("t.dae", text, strlen(text), &c, &d), ==,
			-EINVAL);
	g_assert_cmpuint(d.n, ==, 1);
	g_assert_cmpuint(d.v[0].line, ==, 2);
	g_assert_cmpuint(d.v[0].col, ==, 15); /* bytes: the a-umlaut takes two */
	char *plain = anser_diags_format(&d), *s = anser_diags_format_excerpts(&d);
	char *want =
		g_strdup_printf("%s    \tpname(\xc3\xa4) -> nowhere\n    \t            ^\n", plain);
	g_assert_cmpstr(s, ==, want);
	g_free(want);
	free(plain);
	free(s);
	anser_diags_clear(&d);

	/* A problem on the last line, which has no newline. */
	static const char last[] = "routing {\n fallback: direct\n} x";
	g_assert_cmpint(anser_config_parse_string("t.dae", last, strlen(last), &c, &d), ==,
			-EINVAL);
	s = anser_diags_format_excerpts(&d);
	g_assert_nonnull(strstr(s, "\n    } x\n      ^\n"));
	free(s);
	anser_diags_clear(&d);
}

static void test_no_secret_in_errors(void)
{
	static const char text[] = "node {\n"
				   " a: 'socks5://alice:s3cr3t@h:99999'\n"
				   " b: 'alice:s3cr3t@h'\n"
				   "}\n"
				   "global { x: y 'socks5://bob:s3cr3t@h:1' }\n"
				   "routing {\n"
				   " pname(a) -> 'socks5://bob:s3cr3t@h:1'\n"
				   " fallback: direct\n"
				   "}\n";
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;

	g_assert_cmpint(anser_config_parse_string("s", text, strlen(text), &c, &d), ==, -EINVAL);
	char *s = anser_diags_format(&d);
	g_assert_null(strstr(s, "s3cr3t"));
	g_assert_nonnull(strstr(s, "invalid port '99999'"));
	g_assert_nonnull(strstr(s, "found 'socks5://...@h:1'"));
	g_assert_nonnull(strstr(s, "unknown outbound 'socks5://...@h:1'"));
	free(s);
	/* --validate quotes the lines, with the passwords masked */
	s = anser_diags_format_excerpts(&d);
	g_assert_null(strstr(s, "s3cr3t"));
	g_assert_nonnull(strstr(s, "'socks5://alice:******@h:99999'"));
	g_assert_nonnull(strstr(s, "'alice:******@h'"));
	g_assert_nonnull(strstr(s, "'socks5://bob:******@h:1'"));
	free(s);
	anser_diags_clear(&d);
}

#define HDR                                                                                        \
	"node { n1: 'socks5://10.0.0.1:1080' }\n"                                                  \
	"group { proxy { policy: fixed(0) } }\n"

/* Valid routing sections and the rules they mean, written back in the
 * canonical form (anser_rule_format): spacing, comments, quoting, lists,
 * negation, conjunction, line breaks, address and port forms. */
static void test_good_snippets(void)
{
	static const struct {
		const char *routing; /* rules before the fallback */
		const char *want;    /* canonical rules, "; " between them */
		const char *fallback;
	} cases[] = {
		{ "pname(curl) -> proxy", "pname(curl) -> proxy", "direct" },
		{ "pname( curl ) -> proxy", "pname(curl) -> proxy", "direct" },
		{ "pname(curl)->proxy", "pname(curl) -> proxy", "direct" },
		{ "pname('curl') -> 'proxy'", "pname(curl) -> proxy", "direct" },
		{ "pname(\"my app\") -> proxy", "pname('my app') -> proxy", "direct" },
		{ "pname(a, b,c) -> block", "pname(a, b, c) -> block", "direct" },
		{ "pname(a) && pname(b) -> block", "pname(a) && pname(b) -> block", "direct" },
		{ "!pname(a) -> direct", "!pname(a) -> direct", "direct" },
		{ "! pname(a) -> direct", "!pname(a) -> direct", "direct" },
		{ "pname(a) &&\n    dport(80) -> proxy", "pname(a) && dport(80) -> proxy",
		  "direct" },
		{ "pname(a) # a comment\n -> proxy", "pname(a) -> proxy", "direct" },
		{ "/* before */ pname(a) -> proxy /* after */", "pname(a) -> proxy", "direct" },
		{ "pname(a) /* multi\n line */ -> proxy", "pname(a) -> proxy", "direct" },
		{ "dip(10.0.0.0/8) -> direct", "dip(10.0.0.0/8) -> direct", "direct" },
		{ "dip(192.168.1.1) -> direct", "dip(192.168.1.1) -> direct", "direct" },
		{ "dip(0.0.0.0/0) -> proxy", "dip(0.0.0.0/0) -> proxy", "direct" },
		{ "dip(::/0) -> proxy", "dip(::/0) -> proxy", "direct" },
		{ "dip(fd00::/8, 2001:db8::1) -> block", "dip(fd00::/8, 2001:db8::1) -> block",
		  "direct" },
		{ "dip('10.1.0.0/16') -> direct", "dip(10.1.0.0/16) -> direct", "direct" },
		{ "dip(::ffff:10.0.0.0/104) -> direct", "dip(10.0.0.0/8) -> direct", "direct" },
		{ "dport(443) -> proxy", "dport(443) -> proxy", "direct" },
		{ "dport(1-65535) -> proxy", "dport(1-65535) -> proxy", "direct" },
		{ "dport(80, 443, 8000-8080) -> proxy", "dport(80, 443, 8000-8080) -> proxy",
		  "direct" },
		{ "l4proto(tcp) -> proxy", "l4proto(tcp) -> proxy", "direct" },
		{ "l4proto(udp) -> block", "l4proto(udp) -> block", "direct" },
		{ "ipversion(4) -> proxy", "ipversion(4) -> proxy", "direct" },
		{ "ipversion(6) -> block", "ipversion(6) -> block", "direct" },
		{ "l4proto(udp) && dport(53) -> direct\n pname(x) -> proxy",
		  "l4proto(udp) && dport(53) -> direct; pname(x) -> proxy", "direct" },
		{ "", "", "proxy" },
		{ "", "", "block" },
		{ "pname(a) -> direct", "pname(a) -> direct", "proxy" },
		{ "pname(a.b-c_d) -> proxy", "pname('a.b-c_d') -> proxy", "direct" },
		{ "pname(x) -> proxy\n pname(x) -> block", "pname(x) -> proxy; pname(x) -> block",
		  "direct" },
		{ "dip(1.1.1.1) -> must_direct", "dip(1.1.1.1) -> direct(must)", "direct" },
		{ "dip(1.1.1.1) -> direct(must)", "dip(1.1.1.1) -> direct(must)", "direct" },
		{ "pname(a) -> must_proxy", "pname(a) -> proxy(must)", "direct" },
		{ "pname(a) -> proxy( must )", "pname(a) -> proxy(must)", "direct" },
		{ "dport(53) -> must_rules\n pname(a) -> proxy", "pname(a) -> proxy", "direct" },
		{ "l4proto(udp) -> must_rules", "", "proxy" },
		{ "pname(a) -> direct(mark: 0x100)", "pname(a) -> direct(mark: 0x100)", "direct" },
		{ "pname(a) -> proxy(mark: 0x55)", "pname(a) -> proxy(mark: 0x55)", "direct" },
		{ "pname(a) -> direct(mark: 256)", "pname(a) -> direct(mark: 0x100)", "direct" },
		{ "pname(a) -> direct(mark:0x2)", "pname(a) -> direct(mark: 0x2)", "direct" },
		{ "pname(a) -> must_direct(mark: 0x1)", "pname(a) -> direct(must, mark: 0x1)",
		  "direct" },
		{ "pname(a) -> direct(mark: 0x1, must)", "pname(a) -> direct(must, mark: 0x1)",
		  "direct" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *text = g_strdup_printf(HDR "routing {\n %s\n fallback: %s\n}\n",
					     cases[i].routing, cases[i].fallback);
		struct anser_config *c = parse_ok(text);
		GString *got = g_string_new(NULL);
		for (size_t k = 0; k < c->n_rules; k++) {
			char *s = anser_rule_format(c, k);
			g_string_append_printf(got, "%s%s", k ? "; " : "", s);
			free(s);
		}
		if (strcmp(got->str, cases[i].want) != 0)
			g_error("case %zu: %s\nwant %s\ngot  %s", i, text, cases[i].want, got->str);
		g_assert_cmpstr(anser_config_outbound_name(c, c->fallback), ==, cases[i].fallback);
		g_string_free(got, TRUE);
		anser_config_free(c);
		g_free(text);
	}
	struct anser_config *c = parse_ok(HDR "routing {\n fallback: must_proxy\n}\n");
	g_assert_cmpstr(anser_config_outbound_name(c, c->fallback), ==, "proxy");
	g_assert_true(c->fallback_must);
	char *fb = anser_fallback_format(c);
	g_assert_cmpstr(fb, ==, "fallback: proxy(must)");
	free(fb);
	anser_config_free(c);
	c = parse_ok(HDR "routing {\n fallback: direct(mark: 0x10)\n}\n");
	g_assert_cmpuint(c->fallback_mark, ==, 0x10);
	fb = anser_fallback_format(c);
	g_assert_cmpstr(fb, ==, "fallback: direct(mark: 0x10)");
	free(fb);
	anser_config_free(c);
	c = parse_ok(HDR "routing {\n fallback: direct\n}\n");
	g_assert_false(c->fallback_must);
	anser_config_free(c);
}

/* Each rule formatted back to text: the canonical form below, and the
 * parser reads that form back to the same rule (formatting it again gives
 * the same text). */
static void test_format_round_trip(void)
{
	static const char *const cases[][2] = {
		{ "pname(curl) -> proxy", "pname(curl) -> proxy" },
		{ "pname(curl,wget, 'my app') -> direct", "pname(curl, wget, 'my app') -> direct" },
		{ "pname(\"it's\") -> block", "pname('it\\'s') -> block" },
		{ "!pname(a) && l4proto(udp) -> proxy", "!pname(a) && l4proto(udp) -> proxy" },
		{ "dip(10.0.0.0/8, 192.168.1.1, 10.1.2.3/32) -> direct",
		  "dip(10.0.0.0/8, 192.168.1.1, 10.1.2.3) -> direct" },
		{ "dip(2001:db8::/32, ::1, fe80::1/128) -> block",
		  "dip(2001:db8::/32, ::1, fe80::1) -> block" },
		{ "dip(10.1.2.3/8) -> direct", "dip(10.0.0.0/8) -> direct" },
		{ "dport(443, 8000-9000, 53-53) -> proxy", "dport(443, 8000-9000, 53) -> proxy" },
		{ "l4proto(tcp) && ipversion(6) -> proxy",
		  "l4proto(tcp) && ipversion(6) -> proxy" },
		{ "ipversion(4) && !dport(80) -> block", "ipversion(4) && !dport(80) -> block" },
		{ "app(org.mozilla.firefox, google-chrome) -> proxy",
		  "app(org.mozilla.firefox, 'google-chrome') -> proxy" },
		{ "!app(a) && cgroup(/user.slice, '/a b/') -> direct",
		  "!app(a) && cgroup('/user.slice', '/a b') -> direct" },
		{ "cgroup(/) -> block", "cgroup('/') -> block" },
		{ "sip(10.0.0.0/8, geoip:private) && sport(1024-65535) -> direct",
		  "sip(10.0.0.0/8, 'geoip:private') && sport(1024-65535) -> direct" },
		{ "mac(02:42:AC:11:00:02, 'aa:bb:cc:dd:ee:ff') && dscp(46, 0, 8) -> proxy",
		  "mac('02:42:ac:11:00:02', 'aa:bb:cc:dd:ee:ff') && dscp(0, 8, 46) -> proxy" },
		{ "domain(a.com, suffix: b.com, full:c.com, keyword: ads, regex: '^x\\.y$') -> "
		  "direct",
		  "domain(a.com, b.com, full: c.com, keyword: ads, regex: '^x\\\\.y$') -> "
		  "direct" },
		{ "network(ssid: 'Home Wifi', type: vpn) && !network(metered: true) -> block",
		  "network(ssid: 'Home Wifi', type: vpn) && !network(metered: yes) -> block" },
		{ "!domain(geosite:private) && dip(geoip: private) -> proxy",
		  "!domain('geosite:private') && dip('geoip:private') -> proxy" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *text =
			g_strdup_printf(HDR "routing {\n %s\n fallback: direct\n}\n", cases[i][0]);
		struct anser_config *c = parse_ok(text);
		g_assert_cmpuint(c->n_rules, ==, 1);
		char *s = anser_rule_format(c, 0);
		g_assert_cmpstr(s, ==, cases[i][1]);
		char *again = g_strdup_printf(HDR "routing {\n %s\n fallback: direct\n}\n", s);
		struct anser_config *c2 = parse_ok(again);
		char *s2 = anser_rule_format(c2, 0);
		g_assert_cmpstr(s2, ==, s);
		g_assert_null(anser_rule_format(c2, 1));
		free(s);
		free(s2);
		g_free(text);
		g_free(again);
		anser_config_free(c);
		anser_config_free(c2);
	}
}

/* Durations as Go's time.ParseDuration reads them (what dae uses). */
static void test_durations(void)
{
	static const struct {
		const char *in;
		int64_t ns;
	} good[] = {
		{ "0", 0 },
		{ "-0", 0 },
		{ "30s", 30000000000 },
		{ "50ms", 50000000 },
		{ "1m30s", 90000000000 },
		{ "2h45m", 9900000000000 },
		{ "1.5h", 5400000000000 },
		{ ".5s", 500000000 },
		{ "1.s", 1000000000 },
		{ "-1m", -60000000000 },
		{ "+10us", 10000 },
		{ "10\xc2\xb5s", 10000 },
		{ "10\xce\xbcs", 10000 },
		{ "7ns", 7 },
		{ "1h1m1s1ms1us1ns", 3661001001001 },
		{ "0.000000001s", 1 },
		{ "2562047h", 9223369200000000000 },
	};
	static const char *const bad[] = {
		"", "-", "5", "s", "1x", "1.2.3s", "1 s", "10sec", "2562048h", "1e3s", ".s", "1s5",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
		int64_t ns = -42;
		const char *why = "unset";
		if (cfg_parse_duration(good[i].in, &ns, &why) != 0)
			g_error("'%s' refused: %s", good[i].in, why);
		g_assert_cmpint(ns, ==, good[i].ns);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		int64_t ns;
		const char *why = NULL;
		if (cfg_parse_duration(bad[i], &ns, &why) == 0)
			g_error("'%s' accepted as %" G_GINT64_FORMAT, bad[i], ns);
		g_assert_nonnull(why);
	}
	const char *why;
	int64_t ns;
	g_assert_cmpint(cfg_parse_duration("30", &ns, &why), ==, -1);
	g_assert_cmpstr(why, ==, "missing unit (ns, us, ms, s, m, h)");
	g_assert_cmpint(cfg_parse_duration("30sec", &ns, &why), ==, -1);
	g_assert_cmpstr(why, ==, "unknown unit (ns, us, ms, s, m, h)");
}

static void test_bools_and_numbers(void)
{
	static const char *const yes[] = { "1", "t", "T", "true", "TRUE", "True" };
	static const char *const no[] = { "0", "f", "F", "false", "FALSE", "False" };
	static const char *const bad[] = { "", "yes", "no", "on", "tRUE", "2", "true ", "falsey" };
	bool b;

	for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
		b = false;
		g_assert_cmpint(cfg_parse_bool(yes[i], &b), ==, 0);
		g_assert_true(b);
		g_assert_cmpint(cfg_parse_bool(no[i], &b), ==, 0);
		g_assert_false(b);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_cmpint(cfg_parse_bool(bad[i], &b), ==, -1);

	uint64_t v;
	g_assert_cmpint(cfg_parse_uint("65535", 65535, &v), ==, 0);
	g_assert_cmpuint(v, ==, 65535);
	g_assert_cmpint(cfg_parse_uint("65536", 65535, &v), ==, -1);
	g_assert_cmpint(cfg_parse_uint("18446744073709551615", UINT64_MAX, &v), ==, 0);
	g_assert_cmpuint(v, ==, UINT64_MAX);
	g_assert_cmpint(cfg_parse_uint("18446744073709551616", UINT64_MAX, &v), ==, -1);
	g_assert_cmpint(cfg_parse_uint("", 10, &v), ==, -1);
	g_assert_cmpint(cfg_parse_uint("-1", 10, &v), ==, -1);
	g_assert_cmpint(cfg_parse_uint("9", 5, &v), ==, -1);
	g_assert_cmpint(cfg_parse_uint("5", 5, &v), ==, 0);
}

static void test_recovery(void)
{
	/* several independent errors are all reported, in source order */
	const char *text = "global {\n log_level: loud\n}\n"
			   "routing {\n dport(0) -> direct\n"
			   " dip(10.0.0.0/8,\n   1.2.3.4/40) -> direct\n"
			   " pname(a) -> nowhere\n"
			   " fallback: direct\n}\n";
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;

	g_assert_cmpint(anser_config_parse_string("r", text, strlen(text), &c, &d), ==, -EINVAL);
	g_assert_cmpuint(d.n, ==, 4);
	g_assert_cmpuint(d.v[0].line, ==, 2);
	g_assert_cmpuint(d.v[1].line, ==, 5);
	g_assert_cmpuint(d.v[2].line, ==, 7);
	g_assert_cmpuint(d.v[2].col, ==, 4);
	g_assert_cmpuint(d.v[3].line, ==, 8);
	anser_diags_clear(&d);
}

/* wan_interface: names, globs and auto, each checked */
static void test_wan_interface(void)
{
	struct anser_config *c =
		parse_ok("global {\n wan_interface: auto, 'wl*', eth0\n}\n" ROUTING_DIRECT);
	g_assert_nonnull(c->wan_interfaces);
	g_assert_cmpstr(c->wan_interfaces[0], ==, "auto");
	g_assert_cmpstr(c->wan_interfaces[1], ==, "wl*");
	g_assert_cmpstr(c->wan_interfaces[2], ==, "eth0");
	g_assert_null(c->wan_interfaces[3]);
	anser_config_free(c);
	c = parse_ok(ROUTING_DIRECT);
	g_assert_null(c->wan_interfaces); /* auto */
	anser_config_free(c);
	expect_error("global {\n wan_interface: eth0, 'averyveryverylongname'\n}\n" ROUTING_DIRECT,
		     2, 17, "invalid interface 'averyveryverylongname' (expected 'auto'");
	expect_error("global {\n wan_interface: 'a/b'\n}\n" ROUTING_DIRECT, 2, 18,
		     "invalid interface 'a/b'");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/config/example", test_example);
	g_test_add_func("/config/wan-interface", test_wan_interface);
	g_test_add_func("/config/builtin", test_builtin);
	g_test_add_func("/config/file-mode", test_file_mode);
	g_test_add_func("/config/defaults-compact", test_defaults_and_compact);
	g_test_add_func("/config/dip-forms", test_dip_forms);
	g_test_add_func("/config/filters", test_filters);
	g_test_add_func("/config/warnings", test_warnings);
	g_test_add_func("/config/dial_mode", test_dial_mode);
	g_test_add_func("/config/check-options", test_check_options);
	g_test_add_func("/config/format", test_format);
	g_test_add_func("/config/not-nul-terminated", test_not_nul_terminated);
	g_test_add_func("/config/file", test_file);
	g_test_add_func("/config/include", test_include);
	g_test_add_func("/config/sets", test_sets);
	g_test_add_func("/config/dns-section", test_dns_section);
	g_test_add_func("/config/app-routes", test_app_routes);
	g_test_add_func("/config/too-many", test_too_many);
	g_test_add_func("/config/bad", test_bad);
	g_test_add_func("/config/nul-byte", test_nul_byte);
	g_test_add_func("/config/no-secret-in-errors", test_no_secret_in_errors);
	g_test_add_func("/config/excerpts", test_excerpts);
	g_test_add_func("/config/format-round-trip", test_format_round_trip);
	g_test_add_func("/config/good-snippets", test_good_snippets);
	g_test_add_func("/config/durations", test_durations);
	g_test_add_func("/config/bools-and-numbers", test_bools_and_numbers);
	g_test_add_func("/config/recovery", test_recovery);
	return g_test_run();
}
