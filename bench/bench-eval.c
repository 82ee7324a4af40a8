// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The kernel's route decision, timed: the rule engine the cgroup hooks run
 * (bpf/anser.bpf.c evaluate(), here through its test entry anser_eval,
 * which also looks the process name up as a hook does once per thread),
 * over rule sets of 1 to 1023 rules, with BPF_PROG_TEST_RUN and `repeat`.
 * The kernel reports the mean time per run; the same measure of a program
 * that only returns is subtracted, so what is left is the decision.
 *
 * Usage: bench-eval [REPEAT]   (root; default 2000000 runs per row)
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <glib.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/anser_abi.h"
#include "daemon/config/config.h"
#include "daemon/datapath/datapath.h"

static unsigned repeat = 2000000;

/* Mean ns per run of prog on ctx, the median of 5 measurements. */
static double time_prog(int fd, const struct anser_eval_ctx *e)
{
	char pkt[sizeof(*e) + 64] = { 0 };
	double v[5];

	memcpy(pkt, e, sizeof(*e));
	for (int i = 0; i < 5; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
			    .repeat = repeat);
		if (bpf_prog_test_run_opts(fd, &opts) < 0) {
			fprintf(stderr, "test run failed: %s\n", strerror(errno));
			exit(1);
		}
		v[i] = opts.duration;
	}
	for (int i = 0; i < 5; i++) /* sort 5 */
		for (int j = i + 1; j < 5; j++)
			if (v[j] < v[i]) {
				double t = v[i];
				v[i] = v[j];
				v[j] = t;
			}
	return v[2];
}

/* A tc program that returns at once: the cost of a test run itself. */
static int empty_prog(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "empty", "GPL", insns, 2, NULL);
}

static struct anser_eval_ctx flow(const char *pname, const char *addr, unsigned port, bool udp)
{
	struct anser_eval_ctx e = { 0 };
	struct in_addr a4;

	e.proto = udp ? IPPROTO_UDP : IPPROTO_TCP;
	e.dport = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &a4) == 1) {
		e.family = AF_INET;
		e.daddr[10] = e.daddr[11] = 0xff;
		memcpy(e.daddr + 12, &a4, 4);
	} else {
		e.family = AF_INET6;
		inet_pton(AF_INET6, addr, e.daddr);
	}
	snprintf(e.pname, sizeof(e.pname), "%s", pname);
	return e;
}

static unsigned active;

static void load(struct anser_datapath *dp, const char *rules)
{
	char *text = g_strdup_printf("node { n: 'socks5://10.0.0.1:1080' }\n"
				     "group { proxy { policy: fixed(0) } }\n"
				     "routing {\n%s fallback: direct\n}\n",
				     rules);
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;

	if (anser_config_parse_string("bench", text, strlen(text), &c, &d) < 0) {
		char *s = anser_diags_format(&d);
		fprintf(stderr, "%s", s);
		exit(1);
	}
	anser_diags_clear(&d);
	unsigned slot = 1 - active;
	if (anser_datapath_load_rules(dp, c, slot) < 0 || anser_datapath_activate(dp, slot) < 0) {
		fprintf(stderr, "cannot load the rules\n");
		exit(1);
	}
	active = slot;
	anser_config_free(c);
	g_free(text);
}

struct row {
	const char *what;
	struct anser_eval_ctx e;
	int want_rule; /* -1: fallback */
};

static void run(struct anser_datapath *dp, const char *name, const char *rules,
		const struct row *rows, size_t n, double base)
{
	int fd = anser_datapath_eval_fd(dp);

	load(dp, rules);
	for (size_t i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, one, .repeat = 1);
		char pkt[sizeof(rows[i].e) + 64] = { 0 };
		memcpy(pkt, &rows[i].e, sizeof(rows[i].e));
		one.data_in = pkt;
		one.data_size_in = sizeof(pkt);
		if (bpf_prog_test_run_opts(fd, &one) < 0) {
			fprintf(stderr, "test run failed: %s\n", strerror(errno));
			exit(1);
		}
		int rule = (int)(one.retval >> 16);
		if (rule == ANSER_RULE_FALLBACK)
			rule = -1;
		if (rule != rows[i].want_rule) {
			fprintf(stderr, "%s / %s: rule %d, want %d\n", name, rows[i].what, rule,
				rows[i].want_rule);
			exit(1);
		}
		double ns = time_prog(fd, &rows[i].e);
		printf("| %s | %s | %.1f ns | %.1f ns |\n", name, rows[i].what, ns, ns - base);
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	struct anser_datapath *dp = NULL;

	if (argc > 1)
		repeat = (unsigned)strtoul(argv[1], NULL, 10);
	if (repeat == 0) {
		fprintf(stderr, "usage: bench-eval [REPEAT]\n");
		return 2;
	}
	int r = anser_datapath_new(NULL, ANSER_DATAPATH_EVAL, &dp);
	if (r < 0) {
		fprintf(stderr, "cannot load the BPF programs (root needed): %s\n", strerror(-r));
		return 1;
	}
	int empty = empty_prog();
	if (empty < 0) {
		fprintf(stderr, "cannot load the empty program: %s\n", strerror(errno));
		return 1;
	}
	struct anser_eval_ctx any = flow("x", "192.0.2.1", 443, false);
	double base = time_prog(empty, &any);
	printf("BPF_PROG_TEST_RUN, %u runs per measurement, median of 5; an empty program "
	       "takes %.1f ns per run, subtracted in the last column.\n\n",
	       repeat, base);
	printf("| rule set | flow | per run | decision |\n|---|---|---|---|\n");

	/* One rule. */
	const struct row one[] = {
		{ "matches rule 1", flow("firefox", "192.0.2.1", 443, false), 0 },
		{ "fallback", flow("curl", "192.0.2.1", 443, false), -1 },
	};
	run(dp, "1 rule: pname(firefox)", "pname(firefox) -> proxy\n", one, G_N_ELEMENTS(one),
	    base);

	/* 1023 dip() rules: one trie lookup finds the first that holds. */
	GString *dips = g_string_new(NULL);
	for (unsigned i = 0; i < 1023; i++)
		g_string_append_printf(dips, "dip(10.%u.%u.0/24) -> %s\n", i / 256, i % 256,
				       i % 2 ? "proxy" : "block");
	const struct row dip[] = {
		{ "matches rule 1", flow("x", "10.0.0.9", 443, false), 0 },
		{ "matches rule 512", flow("x", "10.1.255.9", 443, false), 511 },
		{ "matches rule 1023", flow("x", "10.3.254.9", 443, false), 1022 },
		{ "fallback", flow("x", "192.0.2.1", 443, false), -1 },
	};
	run(dp, "1023 rules: dip(one /24 each)", dips->str, dip, G_N_ELEMENTS(dip), base);
	g_string_free(dips, TRUE);

	/* 1023 mixed rules: process names, ports, addresses, protocols. */
	GString *mix = g_string_new(NULL);
	for (unsigned i = 0; i < 1023; i++) {
		switch (i % 4) {
		case 0:
			g_string_append_printf(mix, "pname(app%u) -> proxy\n", i);
			break;
		case 1: /* the kernel has 256 port classes: 200 ports, then names */
			if (i < 800)
				g_string_append_printf(mix, "dport(%u) && l4proto(udp) -> block\n",
						       1000 + i);
			else
				g_string_append_printf(mix, "l4proto(udp) && pname(u%u) -> block\n",
						       i);
			break;
		case 2:
			g_string_append_printf(mix, "dip(10.%u.%u.0/24) && !pname(curl) -> proxy\n",
					       i / 256, i % 256);
			break;
		default:
			g_string_append_printf(mix, "ipversion(6) && pname(v6app%u) -> direct\n",
					       i);
			break;
		}
	}
	const struct row mixed[] = {
		{ "matches rule 1 (pname)", flow("app0", "192.0.2.1", 443, false), 0 },
		{ "matches rule 1021 (pname)", flow("app1020", "192.0.2.1", 443, false), 1020 },
		{ "matches rule 798 (dport, l4proto)", flow("x", "192.0.2.1", 1797, true), 797 },
		{ "matches rule 1022 (l4proto, pname)", flow("u1021", "192.0.2.1", 53, true),
		  1021 },
		{ "matches rule 1020 (ipversion, pname)",
		  flow("v6app1019", "2001:db8::1", 443, false), 1019 },
		{ "fallback", flow("x", "192.0.2.1", 443, false), -1 },
	};
	run(dp, "1023 rules: pname, dport+l4proto, dip+!pname, ipversion+pname", mix->str, mixed,
	    G_N_ELEMENTS(mixed), base);
	g_string_free(mix, TRUE);
	anser_datapath_free(dp);
	return 0;
}
