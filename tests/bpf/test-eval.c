// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The kernel's rule engine, run for real with BPF_PROG_TEST_RUN: each
 * fixture loads a config through the same compiler and map writer anserd
 * uses, then asks the `anser_eval` program (same evaluate() as the cgroup
 * hooks) for the verdict of a flow. Also checks slot flipping, i.e. that
 * a reload's rules only take effect on activate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <bpf/bpf.h>
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/anser_abi.h"
#include "daemon/config/config.h"
#include "daemon/datapath/datapath.h"
#include "daemon/util/log.h"
#include "tests/rulegen.h"

static struct anser_datapath *dp;

struct fixture {
	const char *name;
	const char *rules; /* routing lines; fallback is added */
	const char *proto; /* "tcp" / "udp" */
	const char *addr;
	unsigned port;
	const char *pname;
	int outbound;
	int rule; /* 0-based, -1 fallback */
};

#define HDR                                                                                        \
	"node { n1: 'socks5://10.0.0.1:1080' }\n"                                                  \
	"group { proxy { policy: fixed(0) }\n other { policy: random } }\n"                        \
	"routing {\n"

static const struct fixture fixtures[] = {
	{ "pname hit", "pname(appA) -> proxy", "tcp", "192.0.2.1", 80, "appA", 2, 0 },
	{ "pname miss", "pname(appA) -> proxy", "tcp", "192.0.2.1", 80, "appB", 0, -1 },
	{ "pname long name exact", "pname(myVeryLongApplicationName_x) -> proxy", "tcp",
	  "192.0.2.1", 80, "myVeryLongApplicationName_x", 2, 0 },
	{ "pname prefix is no match", "pname(app) -> proxy", "tcp", "192.0.2.1", 80, "appA", 0,
	  -1 },
	{ "pname list", "pname(curl, appA, wget) -> other", "udp", "192.0.2.1", 53, "appA", 3, 0 },
	{ "dip v4 hit", "dip(10.0.0.0/8) -> block", "tcp", "10.1.2.3", 443, "x", 1, 0 },
	{ "dip v4 miss", "dip(10.0.0.0/8) -> block", "tcp", "11.1.2.3", 443, "x", 0, -1 },
	{ "dip v4 host", "dip(192.0.2.7) -> proxy", "tcp", "192.0.2.7", 1, "x", 2, 0 },
	{ "dip v4 host miss", "dip(192.0.2.7) -> proxy", "tcp", "192.0.2.8", 1, "x", 0, -1 },
	{ "dip v6 hit", "dip(2001:db8::/32) -> proxy", "tcp", "2001:db8:1::5", 443, "x", 2, 0 },
	{ "dip v6 miss", "dip(2001:db8::/32) -> proxy", "tcp", "2001:db9::5", 443, "x", 0, -1 },
	{ "dip v4 rule does not catch v6", "dip(0.0.0.0/0) -> proxy", "tcp", "2001:db8::1", 443,
	  "x", 0, -1 },
	/* v4 lives at ::ffff:0:0/96 in the trie, so ::/0 covers it, as in dae. */
	{ "dip ::/0 covers v4", "dip(::/0) -> proxy", "tcp", "192.0.2.1", 443, "x", 2, 0 },
	{ "dip v4-mapped destination", "dip(192.0.2.0/24) -> proxy", "tcp", "::ffff:192.0.2.9", 443,
	  "x", 2, 0 },
	{ "dport single", "dport(443) -> proxy", "tcp", "192.0.2.1", 443, "x", 2, 0 },
	{ "dport single miss", "dport(443) -> proxy", "tcp", "192.0.2.1", 444, "x", 0, -1 },
	{ "dport range low", "dport(1000-2000) -> proxy", "tcp", "192.0.2.1", 1000, "x", 2, 0 },
	{ "dport range high", "dport(1000-2000) -> proxy", "tcp", "192.0.2.1", 2000, "x", 2, 0 },
	{ "dport range below", "dport(1000-2000) -> proxy", "tcp", "192.0.2.1", 999, "x", 0, -1 },
	{ "dport range above", "dport(1000-2000) -> proxy", "tcp", "192.0.2.1", 2001, "x", 0, -1 },
	{ "dport full range", "dport(1-65535) -> proxy", "udp", "192.0.2.1", 65535, "x", 2, 0 },
	{ "l4proto tcp", "l4proto(tcp) -> proxy", "tcp", "192.0.2.1", 1, "x", 2, 0 },
	{ "l4proto tcp vs udp", "l4proto(tcp) -> proxy", "udp", "192.0.2.1", 1, "x", 0, -1 },
	{ "ipversion 6", "ipversion(6) -> proxy", "tcp", "2001:db8::1", 1, "x", 2, 0 },
	{ "ipversion 6 vs 4", "ipversion(6) -> proxy", "tcp", "192.0.2.1", 1, "x", 0, -1 },
	{ "negation", "!pname(appA) -> block", "tcp", "192.0.2.1", 1, "appB", 1, 0 },
	{ "negation miss", "!pname(appA) -> block", "tcp", "192.0.2.1", 1, "appA", 0, -1 },
	{ "and both", "pname(appA) && dport(53) -> other", "udp", "192.0.2.1", 53, "appA", 3, 0 },
	{ "and one fails", "pname(appA) && dport(53) -> other", "udp", "192.0.2.1", 54, "appA", 0,
	  -1 },
	{ "first match wins", "dport(80) -> block\n pname(appA) -> proxy", "tcp", "192.0.2.1", 80,
	  "appA", 1, 0 },
	{ "second rule", "dport(80) -> block\n pname(appA) -> proxy", "tcp", "192.0.2.1", 81,
	  "appA", 2, 1 },
	{ "failed rule resets", "pname(x) && dport(1) -> block\n dport(1) -> other", "tcp",
	  "192.0.2.1", 1, "y", 3, 1 },
	{ "negated dip and proto", "!dip(10.0.0.0/8) && l4proto(udp) -> proxy", "udp", "192.0.2.1",
	  1, "x", 2, 0 },
	/* this machine's own connections are no forwarded traffic: sip()
	 * never holds for them (gateway mode reads it), its negation does */
	{ "sip never holds here", "sip(0.0.0.0/0, ::/0) -> block", "tcp", "192.0.2.1", 80, "x", 0,
	  -1 },
	{ "negated sip holds here", "!sip(10.0.0.0/8) -> block", "tcp", "192.0.2.1", 80, "x", 1,
	  0 },
	{ "sip and dip entries apart", "sip(192.0.2.0/24) -> block\n dip(192.0.2.0/24) -> proxy",
	  "tcp", "192.0.2.1", 80, "x", 2, 1 },
};

static void eval_cg(const char *proto, const char *addr, unsigned port, const char *pname,
		    uint64_t cgroup_id, int *outbound, int *rule)
{
	struct anser_eval_ctx e = { .cgroup_id = cgroup_id };
	char pkt[sizeof(e) + 64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .repeat = 1);

	e.proto = strcmp(proto, "tcp") == 0 ? IPPROTO_TCP : IPPROTO_UDP;
	e.dport = htons((uint16_t)port);
	struct in_addr a4;
	if (inet_pton(AF_INET, addr, &a4) == 1) {
		e.family = AF_INET;
		e.daddr[10] = e.daddr[11] = 0xff;
		memcpy(e.daddr + 12, &a4, 4);
	} else {
		g_assert_cmpint(inet_pton(AF_INET6, addr, e.daddr), ==, 1);
		e.family = (memcmp(e.daddr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) ? AF_INET
										      : AF_INET6;
	}
	strncpy(e.pname, pname, sizeof(e.pname) - 1);
	memcpy(pkt, &e, sizeof(e));
	g_assert_cmpint(bpf_prog_test_run_opts(anser_datapath_eval_fd(dp), &opts), ==, 0);
	g_assert_cmpint((int)opts.retval, !=, -1);
	*outbound = (int)(opts.retval & 0xffff);
	int r = (int)(opts.retval >> 16);
	*rule = r == ANSER_RULE_FALLBACK ? -1 : r;
}

static void eval(const char *proto, const char *addr, unsigned port, const char *pname,
		 int *outbound, int *rule)
{
	eval_cg(proto, addr, port, pname, 0, outbound, rule);
}

static unsigned active;

/* Random rule lists in the real kernel: for many flows, the first match is
 * the one the rules' plain meaning gives. */
static void test_random_rules(void)
{
	GRand *rnd = g_rand_new_with_seed(5);
	unsigned checked = 0;

	for (int round = 0; round < 12; round++) {
		char *text = rulegen_config(rnd, round < 10 ? 12 : 1023);
		struct anser_config *cfg = rulegen_parse(text);
		unsigned slot = 1 - active;
		if (anser_datapath_load_rules(dp, cfg, slot) == -E2BIG)
			goto next; /* too many port classes: rare, and allowed */
		/* made-up cgroup ids: the program looks them up as they are */
		for (size_t k = 0; rulegen_cgroups[k]; k++)
			g_assert_cmpint(anser_datapath_file_cgroup(dp, slot, k + 1,
								   rulegen_cgroups[k], true),
					>=, 0);
		g_assert_cmpint(anser_datapath_activate(dp, slot), ==, 0);
		active = slot;
		for (int i = 0; i < 400; i++) {
			struct rulegen_flow f;
			char addr[INET6_ADDRSTRLEN];
			int out, rule;
			rulegen_flow(rnd, &f);
			if (f.v6)
				inet_ntop(AF_INET6, f.addr, addr, sizeof(addr));
			else
				inet_ntop(AF_INET, f.addr + 12, addr, sizeof(addr));
			eval_cg(f.udp ? "udp" : "tcp", addr, f.port, f.name, f.cgroup_id, &out,
				&rule);
			unsigned want = rulegen_plain_match(cfg, &f);
			unsigned got = rulegen_refine(
				cfg, (unsigned)(rule < 0 ? ANSER_RULE_FALLBACK : rule), &f);
			if (got != want)
				g_error("round %d: %s %s port %u from %s in %s: rule %d, want "
					"%u\n%s",
					round, f.udp ? "udp" : "tcp", addr, f.port, f.name,
					f.cgroup, rule, want, text);
			unsigned want_out = want == ANSER_RULE_FALLBACK ? cfg->fallback
									: cfg->rules[want].outbound;
			g_assert_cmpint(out, ==, (int)want_out);
			checked++;
		}
	next:
		anser_config_free(cfg);
		g_free(text);
	}
	g_assert_cmpuint(checked, >=, 4000);
	g_rand_free(rnd);
}

static void load(const char *rules, bool flip)
{
	char *text = g_strdup_printf(HDR "%s\nfallback: direct\n}\n", rules);
	struct anser_config *cfg = rulegen_parse(text);
	unsigned slot = 1 - active;
	g_assert_cmpint(anser_datapath_load_rules(dp, cfg, slot), ==, 0);
	if (flip) {
		g_assert_cmpint(anser_datapath_activate(dp, slot), ==, 0);
		active = slot;
	}
	anser_config_free(cfg);
	g_free(text);
}

/* Every rule position the kernel's rule sets have (each bit of every
 * word) is found as the first match: rule i catches 10.i/256.i%256.0/24. */
static void test_every_position(void)
{
	GString *rules = g_string_new(NULL);

	for (unsigned i = 0; i < ANSER_MAX_RULES - 1; i++)
		/* neighbours differ in outbound: no two rules merge */
		g_string_append_printf(rules, "dip(10.%u.%u.0/24) -> %s\n", i / 256, i % 256,
				       i % 2 == 0 ? "block" : "proxy");
	load(rules->str, true);
	for (unsigned i = 0; i < ANSER_MAX_RULES - 1; i++) {
		char addr[32];
		int out, rule;
		g_snprintf(addr, sizeof(addr), "10.%u.%u.7", i / 256, i % 256);
		eval("tcp", addr, 80, "x", &out, &rule);
		g_assert_cmpint(rule, ==, (int)i);
		g_assert_cmpint(out, ==, i % 2 == 0 ? 1 : 2);
	}
	int out, rule;
	eval("tcp", "10.255.0.7", 80, "x", &out, &rule);
	g_assert_cmpint(rule, ==, -1);
	g_assert_cmpint(out, ==, 0);
	g_string_free(rules, TRUE);
}

/* The verifier walks each program's paths at load time; the kernel stops
 * at a million instructions. Stay far below, so rule engine changes
 * show up here long before a kernel refuses the programs (and loading
 * stays fast: walking a million took over a second). */
static void test_verifier_budget(void)
{
	uint32_t n = anser_datapath_verified_max(dp);

	g_test_message("most instructions verified for one program: %u", n);
	g_assert_cmpuint(n, >, 0);
	g_assert_cmpuint(n, <, 150000);
}

static void test_fixture(gconstpointer data)
{
	const struct fixture *f = data;
	int out, rule;

	load(f->rules, true);
	eval(f->proto, f->addr, f->port, f->pname, &out, &rule);
	g_assert_cmpint(out, ==, f->outbound);
	g_assert_cmpint(rule, ==, f->rule);
}

/* Rules written into the inactive slot do nothing until activate(). */
static void test_slot_flip(void)
{
	int out, rule;

	load("pname(appA) -> proxy", true);
	eval("tcp", "192.0.2.1", 80, "appA", &out, &rule);
	g_assert_cmpint(out, ==, 2);
	load("pname(appA) -> block", false);
	eval("tcp", "192.0.2.1", 80, "appA", &out, &rule);
	g_assert_cmpint(out, ==, 2);
	g_assert_cmpint(anser_datapath_activate(dp, 1 - active), ==, 0);
	active = 1 - active;
	eval("tcp", "192.0.2.1", 80, "appA", &out, &rule);
	g_assert_cmpint(out, ==, 1);
}

/* Reusing a slot removes the sets the previous generation left there. */
static void test_slot_reuse_cleans(void)
{
	int out, rule;

	load("dip(198.51.100.0/24) -> block", true);
	load("dip(203.0.113.0/24) -> block", true);
	load("dip(203.0.113.0/24) -> block", true);
	eval("tcp", "198.51.100.1", 80, "x", &out, &rule);
	g_assert_cmpint(out, ==, 0);
	eval("tcp", "203.0.113.1", 80, "x", &out, &rule);
	g_assert_cmpint(out, ==, 1);
}

int main(int argc, char **argv)
{
	if (geteuid() != 0) {
		g_printerr("needs root to load BPF programs\n");
		return 77;
	}
	g_test_init(&argc, &argv, NULL);
	anser_log_set_level(ANSER_LOG_WARNING);
	int r = anser_datapath_new(NULL, ANSER_DATAPATH_EVAL, &dp);
	if (r < 0) {
		g_printerr("cannot load the BPF object: %s\n", strerror(-r));
		return 1;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(fixtures); i++) {
		char *path = g_strdup_printf("/bpf/eval/%s", fixtures[i].name);
		for (char *p = path; *p; p++)
			if (*p == ' ')
				*p = '-';
		g_test_add_data_func(path, &fixtures[i], test_fixture);
		g_free(path);
	}
	g_test_add_func("/bpf/slots/flip", test_slot_flip);
	g_test_add_func("/bpf/slots/reuse-cleans", test_slot_reuse_cleans);
	g_test_add_func("/bpf/eval/random-rules", test_random_rules);
	g_test_add_func("/bpf/eval/every-rule-position", test_every_position);
	g_test_add_func("/bpf/verifier-budget", test_verifier_budget);
	r = g_test_run();
	anser_datapath_free(dp);
	return r;
}
