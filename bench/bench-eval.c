// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The kernel's route decision, timed: the rule engine the cgroup hooks run
 * (bpf/anser.bpf.c evaluate(), here through its test entry anser_eval,
 * which also looks the process name up as a hook does once per thread),
 * over rule sets of 1 to 1023 rules, with BPF_PROG_TEST_RUN and `repeat`.
 * The kernel reports the mean time per run; the same measure of a program
 * that only returns is subtracted, so what is left is the decision.
 *
 * Then gateway mode's program (anser_lan_ingress) per forwarded packet.
 *
 * Usage: bench-eval [REPEAT]   (root; default 2000000 runs per row)
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <glib.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/anser_abi.h"
#include "daemon/config/config.h"
#include "daemon/datapath/datapath.h"

static unsigned repeat = 2000000;

/* Mean ns per run of prog on data (and an __sk_buff ctx, if given), the
 * median of 5 measurements. */
static double time_run(int fd, const void *data, size_t len, struct __sk_buff *ctx)
{
	double v[5];

	for (int i = 0; i < 5; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = (uint32_t)len,
			    .ctx_in = ctx, .ctx_size_in = ctx ? sizeof(*ctx) : 0, .repeat = repeat);
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

static double time_prog(int fd, const struct anser_eval_ctx *e)
{
	char pkt[sizeof(*e) + 64] = { 0 };

	memcpy(pkt, e, sizeof(*e));
	return time_run(fd, pkt, sizeof(pkt), NULL);
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

/* An Ethernet + IPv4 + TCP header, 10.88.1.2:40000 -> dst:dport, with
 * TCP flags `flags` (0x02: a SYN, a new flow; 0x10: an ACK). */
static size_t v4_packet(uint8_t *b, size_t len, const char *dst, unsigned dport, unsigned flags)
{
	struct in_addr s4, d4;

	memset(b, 0, len);
	memcpy(b, "\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00", 14);
	b[14] = 0x45;
	b[17] = 40;
	b[22] = 64;
	b[23] = IPPROTO_TCP;
	inet_pton(AF_INET, "10.88.1.2", &s4);
	inet_pton(AF_INET, dst, &d4);
	memcpy(b + 26, &s4, 4);
	memcpy(b + 30, &d4, 4);
	b[34] = 40000 >> 8;
	b[35] = 40000 & 0xff;
	b[36] = (uint8_t)(dport >> 8);
	b[37] = (uint8_t)dport;
	b[46] = 0x50;
	b[47] = (uint8_t)flags;
	return 54;
}

/* Gateway mode's program per forwarded packet (anser_lan_ingress), on a
 * veth of a network namespace of our own: the same rules bench_gateway.py
 * loads (1000 that never hold for its flows), one rule, and the 1000 with
 * a flow the last one blocks. */
static int gateway(int empty)
{
	struct anser_datapath *dp = NULL;
	uint8_t pkt[64];

	if (unshare(CLONE_NEWNET) < 0 ||
	    system("ip link set lo up && ip link add lan0 type veth peer name lan1 && "
		   "ip link set lan0 up") != 0) {
		fprintf(stderr, "no network namespace of our own: gateway rows left out\n");
		return 0;
	}
	int ifindex = (int)if_nametoindex("lan0");
	if (anser_datapath_new(NULL, ANSER_DATAPATH_GATEWAY, &dp) < 0 ||
	    anser_datapath_set_lan(dp, &ifindex, 1) < 0) {
		fprintf(stderr, "cannot load the gateway program\n");
		return 1;
	}
	struct __sk_buff ctx = { .ifindex = (uint32_t)ifindex };
	size_t n = v4_packet(pkt, sizeof(pkt), "10.88.2.2", 5201, 0x10);
	double base = time_run(empty, pkt, n, &ctx);
	printf("\nGateway mode: anser_lan_ingress per forwarded packet (Ethernet, IPv4, TCP); "
	       "an empty program takes %.1f ns per run here.\n\n",
	       base);
	printf("A SYN is decided by the rules every run (on the same addresses each time, so "
	       "it rewrites its cache entry in place); an ACK is found in the flow cache.\n\n");
	printf("| rule set | packet | per run | the program |\n|---|---|---|---|\n");
	GString *many = g_string_new(NULL);
	for (unsigned i = 0; i < 1000; i++) { /* as bench/bench_gateway.py */
		unsigned a = i / 250, b = i % 250;
		switch (i % 4) {
		case 0:
			g_string_append_printf(many, "dip(10.%u.%u.0/24) -> block\n", 100 + a, b);
			break;
		case 1:
			g_string_append_printf(many, "dport(%u) && l4proto(udp) -> block\n",
					       20000 + i);
			break;
		case 2:
			g_string_append_printf(many,
					       "dip(172.%u.%u.%u/32) && dport(443) -> block\n",
					       16 + a, b, i % 250);
			break;
		default:
			g_string_append_printf(many, "dip(fd00:%x::/48) -> block\n", i);
		}
	}
	const struct {
		const char *what, *rules, *dst;
		unsigned port;
		int verdict;
	} rows[] = {
		{ "1 rule: dport(9999) -> block", "dport(9999) -> block\n", "10.88.2.2", 5201, -1 },
		{ "1000 rules (bench_gateway.py)", many->str, "10.88.2.2", 5201, -1 },
		{ "1000 rules (bench_gateway.py)", many->str, "172.19.248.248", 443, 2 },
	};
	int fd = anser_datapath_lan_fd(dp);
	for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
		load(dp, rows[i].rules);
		for (int syn = 1; syn >= 0; syn--) {
			n = v4_packet(pkt, sizeof(pkt), rows[i].dst, rows[i].port,
				      syn ? 0x02 : 0x10);
			LIBBPF_OPTS(bpf_test_run_opts, one, .data_in = pkt,
				    .data_size_in = (uint32_t)n, .ctx_in = &ctx,
				    .ctx_size_in = sizeof(ctx), .repeat = 1);
			if (bpf_prog_test_run_opts(fd, &one) < 0 ||
			    (int)one.retval != rows[i].verdict) {
				fprintf(stderr, "%s: verdict %d, want %d\n", rows[i].what,
					(int)one.retval, rows[i].verdict);
				return 1;
			}
			double ns = time_run(fd, pkt, n, &ctx);
			printf("| %s | %s to %s:%u, %s | %.1f ns | %.1f ns |\n", rows[i].what,
			       syn ? "SYN" : "ACK", rows[i].dst, rows[i].port,
			       rows[i].verdict == 2 ? "dropped" : "passed", ns, ns - base);
			fflush(stdout);
		}
	}
	/* what the verifier and the JIT made of the gateway's programs */
	printf("\n| program | instructions (xlated) | JITed bytes | verifier walked |\n"
	       "|---|---|---|---|\n");
	const int pfds[] = { fd, anser_datapath_lan_lookup_fd(dp) };
	for (size_t i = 0; i < G_N_ELEMENTS(pfds); i++) {
		struct bpf_prog_info info = { 0 };
		__u32 il = sizeof(info);
		if (pfds[i] < 0 || bpf_obj_get_info_by_fd(pfds[i], &info, &il) < 0)
			continue;
		printf("| %s | %u | %u | %u |\n", info.name, info.xlated_prog_len / 8,
		       info.jited_prog_len, info.verified_insns);
	}
	g_string_free(many, TRUE);
	anser_datapath_set_lan(dp, NULL, 0);
	anser_datapath_free(dp);
	return 0;
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
	return gateway(empty);
}
