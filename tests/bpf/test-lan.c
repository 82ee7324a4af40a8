// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Gateway mode's program (anser_lan_ingress), run for real with
 * BPF_PROG_TEST_RUN on packets built here: a fixture table of rules and
 * packets with the verdict the kernel must give (drop for block, pass
 * for everything else). Each match function v4 and v6, hit and miss, `!`
 * and `&&`, the ones only forwarded traffic has (sip(), mac(), sport(),
 * dscp()), what never holds for it (pname(), app()), fragments, L2 and L3
 * (tun) devices, marks and must, suspension, and packets it must leave
 * alone; then the flow cache: new flows against cached ones across
 * reloads, SYNs, mid-stream flows, block winning, fragments following
 * their first, reassembled datagrams (the sk_lookup program), and what
 * anserd's lookup finds.
 *
 * The test process unshares its network namespace: the veth pair and tun
 * device it makes, and the tcx links on them, are its own.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <glib.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/anser_abi.h"
#include "daemon/config/config.h"
#include "daemon/datapath/datapath.h"
#include "daemon/util/log.h"
#include "tests/rulegen.h"

#define TCX_NEXT (-1)
#define TCX_DROP 2

static struct anser_datapath *dp;
static unsigned active;
static int if_l2, if_l3; /* veth (Ethernet) and tun (no link-layer header) */

enum frag { WHOLE, FIRST_FRAG, LATER_FRAG, V6_FRAG_HDR, LATER_FRAG_V6 };

struct pkt {
	const char *proto; /* "tcp", "udp", "icmp" */
	const char *src, *dst;
	unsigned sport, dport;
	unsigned dscp;
	enum frag frag;
	bool l3;	    /* through the tun device */
	bool truncated;	    /* the IP header, no ports */
	unsigned tcp_flags; /* 0: an ACK in the middle of a connection */
	unsigned frag_id;   /* fragments' IP ID; 0: a new one for each packet */
};

struct fixture {
	const char *name;
	const char *rules; /* routing lines; fallback: direct is added */
	struct pkt p;
	int verdict;
};

#define HDR                                                                                        \
	"node { n1: 'socks5://10.0.0.1:1080' }\n"                                                  \
	"group { proxy { policy: fixed(0) } }\n"                                                   \
	"routing {\n"

#define V4(proto, dport)                                                                           \
	{                                                                                          \
		proto, "192.168.1.20", "203.0.113.5", 40000, dport, 0, WHOLE, false, false, 0, 0   \
	}
#define V6(proto, dport)                                                                           \
	{                                                                                          \
		proto, "fd00:1::20", "2001:db8::5", 40000, dport, 0, WHOLE, false, false, 0, 0     \
	}
#define V4TO(dst, dport)                                                                           \
	{                                                                                          \
		"tcp", "192.168.1.20", dst, 40000, dport, 0, WHOLE, false, false, 0, 0             \
	}
#define V6TO(dst, dport)                                                                           \
	{                                                                                          \
		"tcp", "fd00:1::20", dst, 40000, dport, 0, WHOLE, false, false, 0, 0               \
	}
#define V4F(frag, dport)                                                                           \
	{                                                                                          \
		"udp", "192.168.1.20", "203.0.113.5", 40000, dport, 0, frag, false, false, 0, 0    \
	}
#define V4D(dscp)                                                                                  \
	{                                                                                          \
		"tcp", "192.168.1.20", "203.0.113.5", 40000, 80, dscp, WHOLE, false, false, 0, 0   \
	}
#define V6D(dscp)                                                                                  \
	{                                                                                          \
		"udp", "fd00:1::20", "2001:db8::5", 40000, 80, dscp, WHOLE, false, false, 0, 0     \
	}
/* L3: the packet starts at the IP header. BPF_PROG_TEST_RUN still takes
 * bytes 12-13 for an Ethernet type, so these sources put one there:
 * 8.0.x.x (0x0800) and fd00:1:86dd:: (0x86dd). */
#define V4L3(proto, dport)                                                                         \
	{                                                                                          \
		proto, "8.0.1.20", "203.0.113.5", 40000, dport, 0, WHOLE, true, false, 0, 0        \
	}
#define V6L3(proto, dport)                                                                         \
	{                                                                                          \
		proto, "fd00:1:86dd::20", "2001:db8::5", 40000, dport, 0, WHOLE, true, false, 0, 0 \
	}

static const struct fixture fixtures[] = {
	/* dip() */
	{ "dip v4 hit", "dip(203.0.113.0/24) -> block", V4("tcp", 80), TCX_DROP },
	{ "dip v4 miss", "dip(198.51.100.0/24) -> block", V4("tcp", 80), TCX_NEXT },
	{ "dip v4 host", "dip(203.0.113.5) -> block", V4("udp", 80), TCX_DROP },
	{ "dip v6 hit", "dip(2001:db8::/32) -> block", V6("tcp", 80), TCX_DROP },
	{ "dip v6 miss", "dip(2001:db9::/32) -> block", V6("tcp", 80), TCX_NEXT },
	{ "dip v4 rule, v6 packet", "dip(0.0.0.0/0) -> block", V6("tcp", 80), TCX_NEXT },
	{ "dip ::/0 covers v4", "dip(::/0) -> block", V4("tcp", 80), TCX_DROP },
	/* dport() */
	{ "dport v4 hit", "dport(443) -> block", V4("tcp", 443), TCX_DROP },
	{ "dport v4 miss", "dport(443) -> block", V4("tcp", 444), TCX_NEXT },
	{ "dport v6 hit", "dport(1000-2000) -> block", V6("udp", 2000), TCX_DROP },
	{ "dport v6 miss", "dport(1000-2000) -> block", V6("udp", 2001), TCX_NEXT },
	{ "dport is not sport", "dport(40000) -> block", V4("tcp", 80), TCX_NEXT },
	/* l4proto(), ipversion() */
	{ "l4proto udp hit", "l4proto(udp) -> block", V4("udp", 53), TCX_DROP },
	{ "l4proto udp vs tcp", "l4proto(udp) -> block", V4("tcp", 53), TCX_NEXT },
	{ "l4proto tcp v6", "l4proto(tcp) -> block", V6("tcp", 53), TCX_DROP },
	{ "ipversion 6 hit", "ipversion(6) -> block", V6("tcp", 1), TCX_DROP },
	{ "ipversion 6 vs v4", "ipversion(6) -> block", V4("tcp", 1), TCX_NEXT },
	{ "ipversion 4 hit", "ipversion(4) -> block", V4("udp", 1), TCX_DROP },
	/* ! and && */
	{ "negated dip hit", "!dip(10.0.0.0/8) -> block", V4("tcp", 80), TCX_DROP },
	{ "negated dip miss", "!dip(203.0.113.0/24) -> block", V4("tcp", 80), TCX_NEXT },
	{ "negated dport v6", "!dport(80) -> block", V6("tcp", 81), TCX_DROP },
	{ "and both hold", "dip(203.0.113.0/24) && dport(80) -> block", V4("tcp", 80), TCX_DROP },
	{ "and one fails", "dip(203.0.113.0/24) && dport(80) -> block", V4("tcp", 81), TCX_NEXT },
	{ "and with negation", "dip(2001:db8::/32) && !l4proto(udp) -> block", V6("tcp", 9),
	  TCX_DROP },
	{ "first match wins", "dport(80) -> direct\n dip(203.0.113.0/24) -> block", V4("tcp", 80),
	  TCX_NEXT },
	{ "second rule", "dport(80) -> direct\n dip(203.0.113.0/24) -> block", V4("tcp", 81),
	  TCX_DROP },
	{ "fallback block", "dport(80) -> direct\n fallback: block", V4("tcp", 81), TCX_DROP },
	/* forwarded flows have no process: pname() and app() never hold */
	{ "pname never holds", "pname(curl) -> block", V4("tcp", 80), TCX_NEXT },
	{ "negated pname holds", "!pname(curl) -> block", V4("tcp", 80), TCX_DROP },
	{ "app never holds", "app(org.mozilla.firefox) -> block", V6("tcp", 80), TCX_NEXT },
	/* sip(): the forwarded packet's source */
	{ "sip v4 hit", "sip(192.168.1.0/24) -> block", V4("tcp", 80), TCX_DROP },
	{ "sip v4 miss", "sip(192.168.2.0/24) -> block", V4("tcp", 80), TCX_NEXT },
	{ "sip v4 host", "sip(192.168.1.20) -> block", V4("udp", 80), TCX_DROP },
	{ "sip v6 hit", "sip(fd00:1::/64) -> block", V6("tcp", 80), TCX_DROP },
	{ "sip v6 miss", "sip(fd00:2::/64) -> block", V6("tcp", 80), TCX_NEXT },
	{ "sip is not dip", "sip(203.0.113.0/24) -> block", V4("tcp", 80), TCX_NEXT },
	{ "dip is not sip", "dip(192.168.1.0/24) -> block", V4("tcp", 80), TCX_NEXT },
	{ "negated sip holds", "!sip(10.9.9.9) -> block", V4("tcp", 80), TCX_DROP },
	{ "negated sip fails", "!sip(192.168.1.0/24) -> block", V4("tcp", 80), TCX_NEXT },
	{ "sip and dport", "sip(192.168.1.0/24) && dport(443) -> block", V4("tcp", 443), TCX_DROP },
	{ "sip and dport, other port", "sip(192.168.1.0/24) && dport(443) -> block", V4("tcp", 80),
	  TCX_NEXT },
	{ "sip and dip, nested prefixes",
	  "sip(192.168.0.0/16) && dip(203.0.113.0/24) -> direct\n sip(192.168.1.0/24) -> block",
	  V4("tcp", 80), TCX_NEXT },
	{ "sip longest prefix, second rule",
	  "sip(192.168.0.0/16) && dip(198.51.100.0/24) -> direct\n sip(192.168.1.0/24) -> block",
	  V4("tcp", 80), TCX_DROP },
	{ "sip on L3", "sip(8.0.0.0/16) -> block", V4L3("tcp", 80), TCX_DROP },
	/* sport(): the forwarded packet's source port (40000 here) */
	{ "sport v4 hit", "sport(40000) -> block", V4("tcp", 80), TCX_DROP },
	{ "sport v4 miss", "sport(40001) -> block", V4("tcp", 80), TCX_NEXT },
	{ "sport v6 range hit", "sport(39000-41000) -> block", V6("udp", 80), TCX_DROP },
	{ "sport v6 range miss", "sport(1-39999, 40001-65535) -> block", V6("udp", 80), TCX_NEXT },
	{ "negated sport", "!sport(40000) -> block", V4("tcp", 80), TCX_NEXT },
	{ "negated sport holds", "!sport(1-1000) -> block", V6("tcp", 80), TCX_DROP },
	{ "sport is not dport", "sport(80) -> block", V4("tcp", 80), TCX_NEXT },
	{ "sport and dport", "sport(40000) && dport(443) -> block", V4("tcp", 443), TCX_DROP },
	{ "sport and dport, other port", "sport(40000) && dport(443) -> block", V4("tcp", 80),
	  TCX_NEXT },
	/* dscp(): the top 6 bits of the TOS byte / traffic class */
	{ "dscp v4 hit", "dscp(46) -> block", V4D(46), TCX_DROP },
	{ "dscp v4 miss", "dscp(46) -> block", V4D(0), TCX_NEXT },
	{ "dscp v6 hit (bits in two bytes)", "dscp(10, 46) -> block", V6D(10), TCX_DROP },
	{ "dscp v6 hit, another value", "dscp(10, 46) -> block", V6D(46), TCX_DROP },
	{ "dscp v6 miss", "dscp(46) -> block", V6D(47), TCX_NEXT },
	{ "negated dscp", "!dscp(0) -> block", V4D(8), TCX_DROP },
	{ "negated dscp fails", "!dscp(8) -> block", V4D(8), TCX_NEXT },
	{ "dscp and sip", "dscp(46) && sip(192.168.1.0/24) -> block", V4D(46), TCX_DROP },
	{ "dscp and sport and dport", "dscp(46) && sport(40000) && dport(81) -> block", V6D(46),
	  TCX_NEXT },
	/* mac(): the source MAC of L2 devices (the packets come from
	 * 02:00:00:00:00:01) */
	{ "mac hit", "mac(02:00:00:00:00:01) -> block", V4("tcp", 80), TCX_DROP },
	{ "mac hit v6, in a list", "mac(02:00:00:00:00:09, 02:00:00:00:00:01) -> block",
	  V6("udp", 80), TCX_DROP },
	{ "mac miss", "mac(02:00:00:00:00:02) -> block", V4("tcp", 80), TCX_NEXT },
	{ "mac is the source, not the destination", "mac(02:00:00:00:00:02) -> block",
	  V6("tcp", 80), TCX_NEXT },
	{ "negated mac", "!mac(02:00:00:00:00:02) -> block", V4("tcp", 80), TCX_DROP },
	{ "mac and dport", "mac(02:00:00:00:00:01) && dport(443) -> block", V4("tcp", 80),
	  TCX_NEXT },
	{ "mac and sip", "mac(02:00:00:00:00:01) && sip(192.168.1.0/24) -> block", V4("tcp", 80),
	  TCX_DROP },
	{ "mac on L3: none", "mac(02:00:00:00:00:01) -> block", V4L3("tcp", 80), TCX_NEXT },
	{ "negated mac on L3 holds", "!mac(02:00:00:00:00:01) -> block", V4L3("tcp", 80),
	  TCX_DROP },
	/* marks and proxies do not drop: the kernel forwards */
	{ "direct with a mark passes", "dport(80) -> direct(mark: 7)", V4("tcp", 80), TCX_NEXT },
	{ "must changes nothing here", "dport(80) -> must_direct\n dport(80) -> block",
	  V4("tcp", 80), TCX_NEXT },
	{ "block(must) drops", "dport(80) -> block(must)", V6("udp", 80), TCX_DROP },
	{ "proxy passes (to anserd's listener)", "dport(80) -> proxy", V4("tcp", 80), TCX_NEXT },
	/* fragments: the first carries the ports, later ones follow it */
	{ "first fragment, blocked port", "dport(5000) -> block", V4F(FIRST_FRAG, 5000), TCX_DROP },
	{ "later fragment passes", "dport(80) -> direct\n l4proto(udp) -> block",
	  V4F(LATER_FRAG, 80), TCX_NEXT },
	{ "later fragment, payload looks blocked", "dport(5000) -> block", V4F(LATER_FRAG, 5000),
	  TCX_NEXT },
	{ "v6 first fragment decided", "l4proto(udp) -> block", V4F(V6_FRAG_HDR, 53), TCX_DROP },
	{ "v6 first fragment, other port", "dport(54) -> block", V4F(V6_FRAG_HDR, 53), TCX_NEXT },
	{ "v6 later fragment alone passes", "l4proto(udp) -> block", V4F(LATER_FRAG_V6, 53),
	  TCX_NEXT },
	/* L3 device (tun): no link-layer header */
	{ "L3 v4 hit", "dport(443) -> block", V4L3("udp", 443), TCX_DROP },
	{ "L3 v4 miss", "dport(443) -> block", V4L3("tcp", 80), TCX_NEXT },
	{ "L3 v6 hit", "dip(2001:db8::/32) -> block", V6L3("tcp", 53), TCX_DROP },
	{ "L3 v6 miss", "dip(2001:db9::/32) -> block", V6L3("udp", 53), TCX_NEXT },
	/* left alone */
	{ "icmp passes", "dip(203.0.113.0/24) -> block", V4("icmp", 0), TCX_NEXT },
	{ "loopback destination passes", "dip(0.0.0.0/0) -> block", V4TO("127.0.0.1", 80),
	  TCX_NEXT },
	{ "multicast destination passes", "dip(::/0) -> block", V6TO("ff02::1", 80), TCX_NEXT },
	{ "truncated packet passes",
	  "dport(80) -> block",
	  { "tcp", "192.168.1.20", "203.0.113.5", 40000, 80, 0, WHOLE, false, true, 0, 0 },
	  TCX_NEXT },
};

static void load(const char *rules)
{
	/* a fixture may give its own fallback */
	char *text = g_strdup_printf(HDR "%s\n%s}\n", rules,
				     strstr(rules, "fallback:") ? "" : "fallback: direct\n");
	struct anser_config *cfg = rulegen_parse(text);
	unsigned slot = 1 - active;
	g_assert_cmpint(anser_datapath_load_rules(dp, cfg, slot), ==, 0);
	g_assert_cmpint(anser_datapath_activate(dp, slot), ==, 0);
	active = slot;
	anser_config_free(cfg);
	g_free(text);
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static unsigned next_id(const struct pkt *p)
{
	static unsigned counter = 1;
	return p->frag_id ? p->frag_id : (counter++ & 0xffff);
}

/* Ethernet + IP + L4 header into buf; its length. */
static size_t build(const struct pkt *p, uint8_t *buf, size_t len)
{
	struct in6_addr s6, d6;
	struct in_addr s4, d4;
	bool v6 = strchr(p->src, ':') != NULL;
	unsigned proto = strcmp(p->proto, "tcp") == 0	? IPPROTO_TCP
			 : strcmp(p->proto, "udp") == 0 ? IPPROTO_UDP
							: (v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	/* UDP carries 32 bytes of data: BPF_PROG_TEST_RUN refused the shortest
	 * packets "from" the L3 device with EINVAL */
	size_t off = p->l3 ? 0 : 14, l4len = proto == IPPROTO_TCP ? 20 : 40;

	g_assert_cmpuint(len, >=, 128);
	memset(buf, 0, len);
	if (!p->l3) {
		memcpy(buf, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
		put16(buf + 12, v6 ? 0x86dd : 0x0800);
	}
	if (!v6) {
		g_assert_cmpint(inet_pton(AF_INET, p->src, &s4), ==, 1);
		g_assert_cmpint(inet_pton(AF_INET, p->dst, &d4), ==, 1);
		uint8_t *ip = buf + off;
		ip[0] = 0x45;
		ip[1] = (uint8_t)(p->dscp << 2);
		put16(ip + 2, (unsigned)(20 + l4len));
		if (p->frag == FIRST_FRAG)
			put16(ip + 6, 0x2000); /* MF, offset 0 */
		else if (p->frag == LATER_FRAG)
			put16(ip + 6, 0x0010); /* offset 128 bytes, last */
		put16(ip + 4, next_id(p));
		ip[8] = 64;
		ip[9] = (uint8_t)proto;
		memcpy(ip + 12, &s4, 4);
		memcpy(ip + 16, &d4, 4);
		off += 20;
	} else {
		g_assert_cmpint(inet_pton(AF_INET6, p->src, &s6), ==, 1);
		g_assert_cmpint(inet_pton(AF_INET6, p->dst, &d6), ==, 1);
		uint8_t *ip = buf + off;
		ip[0] = (uint8_t)(0x60 | (p->dscp >> 2)); /* traffic class = dscp << 2 */
		ip[1] = (uint8_t)((p->dscp & 3) << 6);
		put16(ip + 4, (unsigned)l4len);
		ip[6] = (uint8_t)proto;
		ip[7] = 64;
		memcpy(ip + 8, &s6, 16);
		memcpy(ip + 24, &d6, 16);
		off += 40;
	}
	if (p->l3) /* see V4L3: what the test run reads as the Ethernet type */
		g_assert_cmpuint((unsigned)buf[12] << 8 | buf[13], ==, v6 ? 0x86dd : 0x0800);
	if (p->truncated)
		return off;
	put16(buf + off, p->sport);
	put16(buf + off + 2, p->dport);
	if (proto == IPPROTO_TCP) {
		buf[off + 12] = 0x50; /* data offset 5 */
		buf[off + 13] = (uint8_t)(p->tcp_flags ? p->tcp_flags : 0x10);
	}
	return off + l4len;
}

/* An IPv4/UDP packet turned into the IPv6 one whose next header is a
 * fragment header (the ports follow it, where the program does not look). */
static size_t build_v6_frag(const struct pkt *p, uint8_t *buf, size_t len)
{
	struct pkt q = *p;
	q.src = "fd00:1::20";
	q.dst = "2001:db8::5";
	q.frag = WHOLE;
	size_t n = build(&q, buf, len);
	uint8_t *ip = buf + 14;
	/* insert 8 bytes of fragment header after the 40-byte header */
	memmove(ip + 48, ip + 40, n - 14 - 40);
	memset(ip + 40, 0, 8);
	ip[40] = IPPROTO_UDP; /* the fragment header's next header */
	unsigned id = next_id(p);
	put16(ip + 46, id);
	if (p->frag == LATER_FRAG_V6)
		put16(ip + 42, 16 << 3); /* offset 128 bytes, last */
	else
		put16(ip + 42, 1); /* offset 0, more to come */
	ip[6] = 44;		   /* IPPROTO_FRAGMENT */
	put16(ip + 4, 8 + 8);
	return n + 8;
}

/* The verdict on p; *mark (when not NULL): the mark the program left. */
static int run_mark(const struct pkt *p, uint32_t *mark)
{
	uint8_t buf[256];
	size_t n = p->frag == V6_FRAG_HDR || p->frag == LATER_FRAG_V6
			   ? build_v6_frag(p, buf, sizeof(buf))
			   : build(p, buf, sizeof(buf));
	struct __sk_buff ctx = { .ifindex = (uint32_t)(p->l3 ? if_l3 : if_l2) }, out = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf, .data_size_in = (uint32_t)n,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .ctx_out = &out,
		    .ctx_size_out = sizeof(out), .repeat = 1);

	g_assert_cmpint(bpf_prog_test_run_opts(anser_datapath_lan_fd(dp), &opts), ==, 0);
	if (mark)
		*mark = out.mark;
	return (int)opts.retval;
}

static int run(const struct pkt *p)
{
	return run_mark(p, NULL);
}

static void test_fixture(gconstpointer data)
{
	const struct fixture *f = data;

	load(f->rules);
	g_assert_cmpint(run(&f->p), ==, f->verdict);
}

/* Suspended (anserctl disable): nothing is dropped. */
static void test_suspended(void)
{
	const struct pkt p = V4("tcp", 80);

	load("dport(80) -> block");
	g_assert_cmpint(run(&p), ==, TCX_DROP);
	anser_datapath_set_enabled(dp, false);
	g_assert_cmpint(run(&p), ==, TCX_NEXT);
	anser_datapath_set_enabled(dp, true);
	g_assert_cmpint(run(&p), ==, TCX_DROP);
}

/* A reload's rules hold from the activation on, for the next packet. */
static void test_reload(void)
{
	const struct pkt p = V6("udp", 53);

	load("dport(53) -> block");
	g_assert_cmpint(run(&p), ==, TCX_DROP);
	load("dport(54) -> block");
	g_assert_cmpint(run(&p), ==, TCX_NEXT);
}

/* The same flow through the L2 and the L3 device: one verdict. */
static void test_l2_l3_agree(void)
{
	const char *rules = "dip(203.0.113.0/24) && dport(22) -> block";
	struct pkt a = V4L3("tcp", 22), b = V4L3("tcp", 22);
	a.l3 = false; /* the same addresses, with an Ethernet header */

	load(rules);
	for (unsigned port = 20; port < 25; port++) {
		a.dport = b.dport = port;
		g_assert_cmpint(run(&a), ==, run(&b));
		g_assert_cmpint(run(&a), ==, port == 22 ? TCX_DROP : TCX_NEXT);
	}
}

/* --- the flow cache and the hand-over to anserd ---
 *
 * BPF_PROG_TEST_RUN's packets are not at tc ingress, where bpf_sk_assign()
 * works, so a SYN is never handed to a listener here (it fails open);
 * int-gw_proxy hands real ones. What the tests see is the verdict, the
 * mark that sends a packet of a proxied connection to anserd, and the
 * decision kept in the cache (what anserd's lookup finds). */

#define SYN   0x02
#define ACK   0x10
#define NONE  (-1)
#define PROXY ANSER_OUT_FIRST_GROUP

static struct pkt tcp_pkt(unsigned sport, unsigned flags)
{
	struct pkt p = V4("tcp", 80);
	p.sport = sport;
	p.tcp_flags = flags;
	return p;
}

/* The outbound cached for p's flow, NONE if it has no entry. */
static int cached(const struct pkt *p)
{
	bool v6 = strchr(p->src, ':') != NULL;
	struct sockaddr_storage src = { 0 }, dst = { 0 };
	struct anser_flow f;

	if (v6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&src,
				    *d = (struct sockaddr_in6 *)&dst;
		s->sin6_family = d->sin6_family = AF_INET6;
		inet_pton(AF_INET6, p->src, &s->sin6_addr);
		inet_pton(AF_INET6, p->dst, &d->sin6_addr);
		s->sin6_port = htons((uint16_t)p->sport);
		d->sin6_port = htons((uint16_t)p->dport);
	} else {
		struct sockaddr_in *s = (struct sockaddr_in *)&src, *d = (struct sockaddr_in *)&dst;
		s->sin_family = d->sin_family = AF_INET;
		inet_pton(AF_INET, p->src, &s->sin_addr);
		inet_pton(AF_INET, p->dst, &d->sin_addr);
		s->sin_port = htons((uint16_t)p->sport);
		d->sin_port = htons((uint16_t)p->dport);
	}
	int proto = strcmp(p->proto, "tcp") == 0 ? IPPROTO_TCP : IPPROTO_UDP;
	int r = anser_datapath_lan_lookup(dp, proto, (struct sockaddr *)&src,
					  (struct sockaddr *)&dst, &f);
	if (r == -ENOENT)
		return NONE;
	if (r == -EACCES)
		return ANSER_OUT_BLOCK;
	g_assert_cmpint(r, ==, 0);
	return f.outbound;
}

/* verdict, whether it was marked for anserd, and the flow's cache entry
 * afterwards */
#define EXPECT(p, verdict, handed, entry)                                                          \
	do {                                                                                       \
		uint32_t mark_ = 0;                                                                \
		g_assert_cmpint(run_mark(&(p), &mark_), ==, (verdict));                            \
		g_assert_cmpuint(mark_ == ANSER_LAN_MARK, ==, (handed));                           \
		g_assert_cmpint(cached(&(p)), ==, (entry));                                        \
	} while (0)

/* A new flow is decided and cached; the rest of a proxied connection is
 * marked for anserd from the cache (no socket lookup). */
static void test_new_flow_cached(void)
{
	struct pkt syn = tcp_pkt(41000, SYN), ack = tcp_pkt(41000, ACK);
	struct pkt udp = V6("udp", 80), other = V6("udp", 81);
	udp.sport = other.sport = 41000;

	load("dport(80) -> proxy\n dport(81) -> block");
	g_assert_cmpint(cached(&syn), ==, NONE);
	EXPECT(syn, TCX_NEXT, false, PROXY);
	EXPECT(ack, TCX_NEXT, true, PROXY);
	EXPECT(udp, TCX_NEXT, false, PROXY);
	EXPECT(other, TCX_DROP, false, ANSER_OUT_BLOCK);
	struct pkt direct = tcp_pkt(41000, SYN);
	direct.dport = 82;
	EXPECT(direct, TCX_NEXT, false, ANSER_OUT_DIRECT);
}

/* A cached flow keeps its path through a reload; a new flow, and a new
 * SYN on the same addresses, take the new rules. */
static void test_cached_keeps_path(void)
{
	struct pkt syn = tcp_pkt(41002, SYN), ack = tcp_pkt(41002, ACK);
	struct pkt other = tcp_pkt(41003, SYN);

	load("dport(80) -> direct");
	EXPECT(syn, TCX_NEXT, false, ANSER_OUT_DIRECT);
	load("dport(80) -> proxy");
	EXPECT(ack, TCX_NEXT, false, ANSER_OUT_DIRECT); /* cached: direct still */
	EXPECT(other, TCX_NEXT, false, PROXY);		/* new: proxied */
	EXPECT(syn, TCX_NEXT, false, PROXY);		/* a new connection, old addresses */
	EXPECT(ack, TCX_NEXT, true, PROXY);
	load("dport(80) -> direct");
	EXPECT(ack, TCX_NEXT, true, PROXY); /* proxied it stays */
	/* UDP the same: the flow keeps its path, a new source takes the rules */
	struct pkt u1 = V6("udp", 80), u2 = V6("udp", 80);
	u1.sport = 41004;
	u2.sport = 41005;
	EXPECT(u1, TCX_NEXT, false, ANSER_OUT_DIRECT);
	load("dport(80) -> proxy");
	EXPECT(u1, TCX_NEXT, false, ANSER_OUT_DIRECT);
	EXPECT(u2, TCX_NEXT, false, PROXY);
}

/* A reload that blocks a cached flow drops it at once, and one that
 * unblocks it lets it go as the rules say (not to anserd mid-stream). */
static void test_block_wins(void)
{
	struct pkt syn = tcp_pkt(41010, SYN), ack = tcp_pkt(41010, ACK);

	load("dport(80) -> proxy");
	EXPECT(syn, TCX_NEXT, false, PROXY);
	load("dport(80) -> block");
	EXPECT(ack, TCX_DROP, false, ANSER_OUT_BLOCK);
	load("dport(80) -> direct");
	EXPECT(ack, TCX_NEXT, false, ANSER_OUT_DIRECT);
	load("dport(80) -> block");
	EXPECT(ack, TCX_DROP, false, ANSER_OUT_BLOCK);
	/* unblocked to a proxy in the middle: anserd has no connection for
	 * it, so it goes on forwarded */
	load("dport(80) -> proxy");
	EXPECT(ack, TCX_NEXT, false, ANSER_OUT_DIRECT);
}

/* A TCP flow first seen in its middle (begun before anserd, or evicted)
 * that the rules would proxy goes on forwarded: anserd has no connection
 * for it. */
static void test_midstream_direct(void)
{
	struct pkt ack = tcp_pkt(41020, ACK);

	load("dport(80) -> proxy");
	EXPECT(ack, TCX_NEXT, false, ANSER_OUT_DIRECT);
	EXPECT(ack, TCX_NEXT, false, ANSER_OUT_DIRECT);
}

/* Suspended: cached flows keep their path (a proxied connection goes on
 * through anserd), none is blocked, new ones are forwarded and not
 * remembered. */
static void test_suspended_cache(void)
{
	struct pkt syn = tcp_pkt(41040, SYN), ack = tcp_pkt(41040, ACK);
	struct pkt blocked = V4("udp", 81), fresh = tcp_pkt(41041, SYN);
	blocked.sport = 41040;

	load("dport(80) -> proxy\n dport(81) -> block");
	EXPECT(syn, TCX_NEXT, false, PROXY);
	EXPECT(blocked, TCX_DROP, false, ANSER_OUT_BLOCK);
	anser_datapath_set_enabled(dp, false);
	EXPECT(ack, TCX_NEXT, true, PROXY);
	EXPECT(blocked, TCX_NEXT, false, ANSER_OUT_BLOCK);
	EXPECT(fresh, TCX_NEXT, false, NONE);
	anser_datapath_set_enabled(dp, true);
	EXPECT(blocked, TCX_DROP, false, ANSER_OUT_BLOCK);
	fresh.tcp_flags = ACK;
	EXPECT(fresh, TCX_NEXT, false, ANSER_OUT_DIRECT); /* decided now, mid-stream */
}

/* Later fragments (no ports) follow their first fragment's flow, by IP
 * ID and addresses: dropped with a blocked one, marked for anserd with a
 * proxied one, forwarded otherwise and when their first never came. */
static void test_fragments(void)
{
	struct pkt first = V4F(FIRST_FRAG, 5000), later = V4F(LATER_FRAG, 5000);

	load("dport(5000) -> block\n dport(5001) -> proxy");
	first.frag_id = later.frag_id = 77;
	EXPECT(first, TCX_DROP, false, ANSER_OUT_BLOCK);
	g_assert_cmpint(run(&later), ==, TCX_DROP);
	later.frag_id = 78; /* another datagram's */
	g_assert_cmpint(run(&later), ==, TCX_NEXT);
	first.dport = 5001;
	first.sport = later.sport = 40001;
	first.frag_id = later.frag_id = 79;
	EXPECT(first, TCX_NEXT, false, PROXY);
	uint32_t mark = 0;
	g_assert_cmpint(run_mark(&later, &mark), ==, TCX_NEXT);
	g_assert_cmpuint(mark, ==, ANSER_LAN_MARK);
	/* a direct flow's fragments are forwarded, and not remembered */
	first.dport = 5002;
	first.frag_id = later.frag_id = 80;
	EXPECT(first, TCX_NEXT, false, ANSER_OUT_DIRECT);
	mark = 0;
	g_assert_cmpint(run_mark(&later, &mark), ==, TCX_NEXT);
	g_assert_cmpuint(mark, ==, 0);
	/* IPv6: the fragment header's ID */
	struct pkt f6 = V4F(V6_FRAG_HDR, 5000), l6 = V4F(LATER_FRAG_V6, 5000);
	f6.frag_id = l6.frag_id = 81;
	g_assert_cmpint(run(&f6), ==, TCX_DROP);
	g_assert_cmpint(run(&l6), ==, TCX_DROP);
	l6.frag_id = 82;
	g_assert_cmpint(run(&l6), ==, TCX_NEXT);
	/* suspended: nothing is blocked, fragments neither */
	l6.frag_id = 81;
	anser_datapath_set_enabled(dp, false);
	g_assert_cmpint(run(&l6), ==, TCX_NEXT);
	anser_datapath_set_enabled(dp, true);
	g_assert_cmpint(run(&l6), ==, TCX_DROP);
}

/* The sk_lookup program: a datagram the kernel put together from the
 * fragments of a proxied LAN flow goes to anserd's UDP listener; other
 * flows' datagrams are left to the kernel. */
static void test_reassembled(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int ufd = socket(AF_INET, SOCK_DGRAM, 0);
	uint64_t cookie = 0;
	socklen_t cl = sizeof(cookie);

	g_assert_cmpint(bind(ufd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
	g_assert_cmpint(getsockopt(ufd, SOL_SOCKET, SO_COOKIE, &cookie, &cl), ==, 0);
	g_assert_cmpint(anser_datapath_set_lan_socks(dp, ufd, -1), ==, 0);
	load("dport(5001) -> proxy");
	struct pkt first = V4F(FIRST_FRAG, 5001);
	first.sport = 40100;
	EXPECT(first, TCX_NEXT, false, PROXY);
	struct pkt direct = first;
	direct.dport = 5002;
	EXPECT(direct, TCX_NEXT, false, ANSER_OUT_DIRECT);

	struct bpf_sk_lookup ctx = {
		.family = AF_INET,
		.protocol = IPPROTO_UDP,
		.remote_port = htons(40100),
		.local_port = 5001, /* (the test run takes no ingress_ifindex) */
	};
	inet_pton(AF_INET, first.src, &ctx.remote_ip4);
	inet_pton(AF_INET, first.dst, &ctx.local_ip4);
	int pfd = anser_datapath_lan_lookup_fd(dp);
	g_assert_cmpint(pfd, >=, 0);
	for (int c = 0; c < 4; c++) {
		/* 0: the proxied flow; 1: the direct one; 2: a source with no
		 * flow; 3: TCP */
		struct bpf_sk_lookup in = ctx, out = { 0 };
		if (c == 1)
			in.local_port = 5002; /* the direct flow */
		else if (c == 2)
			in.remote_port = htons(40101);
		else if (c == 3)
			in.protocol = IPPROTO_TCP;
		LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &in, .ctx_size_in = sizeof(in),
			    .ctx_out = &out, .ctx_size_out = sizeof(out), .repeat = 1);
		g_assert_cmpint(bpf_prog_test_run_opts(pfd, &opts), ==, 0);
		g_assert_cmpint(opts.retval, ==, 1); /* SK_PASS */
		g_assert_cmpuint(out.cookie, ==, c == 0 ? cookie : 0);
	}
	g_assert_cmpint(anser_datapath_set_lan_socks(dp, -1, -1), ==, 0);
	close(ufd);
}

/* What anserd's lookup returns for a flow (the proxy asks with the client
 * and the original destination). */
static void test_lookup(void)
{
	struct pkt syn = tcp_pkt(41050, SYN);
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(41050) };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(80) };
	struct anser_flow f;

	inet_pton(AF_INET, syn.src, &src.sin_addr);
	inet_pton(AF_INET, syn.dst, &dst.sin_addr);
	load("dport(79) -> direct\n dport(80) -> proxy");
	EXPECT(syn, TCX_NEXT, false, PROXY);
	g_assert_cmpint(anser_datapath_lan_lookup(dp, IPPROTO_TCP, (struct sockaddr *)&src,
						  (struct sockaddr *)&dst, &f),
			==, 0);
	g_assert_cmpuint(f.outbound, ==, ANSER_OUT_FIRST_GROUP);
	g_assert_cmpuint(f.rule, ==, 1);
	g_assert_cmpuint(f.family, ==, AF_INET);
	g_assert_cmpuint(f.proto, ==, IPPROTO_TCP);
	g_assert_cmpuint(f.flags, ==, ANSER_FLOW_F_LAN | ANSER_FLOW_F_PROXIED);
	g_assert_cmpuint(f.dport, ==, htons(80));
	g_assert_cmpstr(f.pname, ==, "192.168.1.20");
	g_assert_cmpint(anser_datapath_lan_lookup(dp, IPPROTO_UDP, (struct sockaddr *)&src,
						  (struct sockaddr *)&dst, &f),
			==, -ENOENT);
	/* a v6 socket may report a v4 client mapped */
	struct sockaddr_in6 src6 = { .sin6_family = AF_INET6, .sin6_port = htons(41050) };
	struct sockaddr_in6 dst6 = { .sin6_family = AF_INET6, .sin6_port = htons(80) };
	inet_pton(AF_INET6, "::ffff:192.168.1.20", &src6.sin6_addr);
	inet_pton(AF_INET6, "::ffff:203.0.113.5", &dst6.sin6_addr);
	g_assert_cmpint(anser_datapath_lan_lookup(dp, IPPROTO_TCP, (struct sockaddr *)&src6,
						  (struct sockaddr *)&dst6, &f),
			==, 0);
}

static void sh(const char *cmd)
{
	int r = system(cmd);
	if (r != 0)
		g_error("%s: %d", cmd, r);
}

int main(int argc, char **argv)
{
	if (geteuid() != 0) {
		g_printerr("needs root to load BPF programs\n");
		return 77;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		g_printerr("cannot make a network namespace: %s\n", strerror(errno));
		return 77;
	}
	sh("ip link set lo up && ip link add lan0 type veth peer name lan1 && ip link set lan0 up "
	   "&& "
	   "ip link set lan1 up");
	if (system("ip tuntap add tun0 mode tun 2>/dev/null && ip link set tun0 up") != 0) {
		g_printerr("no tun device here\n");
		return 77;
	}
	if_l2 = (int)if_nametoindex("lan0");
	if_l3 = (int)if_nametoindex("tun0");
	g_test_init(&argc, &argv, NULL);
	anser_log_set_level(ANSER_LOG_WARNING);
	int r = anser_datapath_new(NULL, ANSER_DATAPATH_GATEWAY, &dp);
	if (r < 0) {
		g_printerr("cannot load the BPF object: %s\n", strerror(-r));
		return 1;
	}
	/* the program learns each interface's kind (L2 or L3) from here */
	const int ifs[] = { if_l2, if_l3 };
	g_assert_cmpint(anser_datapath_set_lan(dp, ifs, 2), ==, 0);
	for (size_t i = 0; i < G_N_ELEMENTS(fixtures); i++) {
		char *path = g_strdup_printf("/bpf/lan/%s", fixtures[i].name);
		for (char *p = path; *p; p++)
			if (*p == ' ' || *p == ',' || (*p == '/' && p > path + 9))
				*p = '-';
		g_test_add_data_func(path, &fixtures[i], test_fixture);
		g_free(path);
	}
	g_test_add_func("/bpf/lan/suspended", test_suspended);
	g_test_add_func("/bpf/lan/reload", test_reload);
	g_test_add_func("/bpf/lan/l2-l3-agree", test_l2_l3_agree);
	g_test_add_func("/bpf/lan/cache/new-flow-cached", test_new_flow_cached);
	g_test_add_func("/bpf/lan/cache/cached-flow-keeps-path", test_cached_keeps_path);
	g_test_add_func("/bpf/lan/cache/block-wins", test_block_wins);
	g_test_add_func("/bpf/lan/cache/midstream-goes-direct", test_midstream_direct);
	g_test_add_func("/bpf/lan/cache/suspended", test_suspended_cache);
	g_test_add_func("/bpf/lan/cache/lookup", test_lookup);
	g_test_add_func("/bpf/lan/cache/fragments", test_fragments);
	g_test_add_func("/bpf/lan/cache/reassembled", test_reassembled);
	r = g_test_run();
	anser_datapath_set_lan(dp, NULL, 0);
	anser_datapath_free(dp);
	return r;
}
