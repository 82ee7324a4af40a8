// SPDX-License-Identifier: GPL-2.0-or-later
/* The rule compiler: port ranges to prefixes, rules to matcher runs, set
 * ids per slot, generation refcounts. */
#include <glib.h>
#include <string.h>

#include "daemon/config/config.h"
#include "daemon/routing/routing.h"

struct ranges {
	uint32_t covered[65536 / 32];
	unsigned n;
};

static void mark(uint16_t port, unsigned bits, void *ud)
{
	struct ranges *r = ud;
	uint32_t size = 1u << (16 - bits);
	g_assert_cmpuint(port % size, ==, 0); /* aligned block */
	for (uint32_t p = port; p < port + size; p++) {
		g_assert_false(r->covered[p / 32] & (1u << (p % 32))); /* no overlap */
		r->covered[p / 32] |= 1u << (p % 32);
	}
	r->n++;
}

static void check_range(unsigned lo, unsigned hi, unsigned max_blocks)
{
	struct ranges *r = g_new0(struct ranges, 1);
	anser_port_range_prefixes((uint16_t)lo, (uint16_t)hi, mark, r);
	for (unsigned p = 0; p < 65536; p++) {
		gboolean in = (r->covered[p / 32] >> (p % 32)) & 1;
		g_assert_cmpint(in, ==, p >= lo && p <= hi);
	}
	g_assert_cmpuint(r->n, <=, max_blocks);
	g_free(r);
}

static void test_port_prefixes(void)
{
	check_range(80, 80, 1);
	check_range(0, 65535, 1);
	check_range(1, 65535, 16);
	check_range(1000, 2000, 30);
	check_range(8000, 8999, 30);
	check_range(65535, 65535, 1);
	check_range(1024, 2047, 1);
	check_range(1023, 2048, 3);
}

static struct anser_config *parse(const char *text)
{
	struct anser_config *cfg = NULL;
	struct anser_diags d = { 0 };
	int r = anser_config_parse_string("t", text, strlen(text), &cfg, &d);
	if (r < 0) {
		char *s = anser_diags_format(&d);
		g_printerr("%s\n", s);
		free(s);
	}
	g_assert_cmpint(r, ==, 0);
	anser_diags_clear(&d);
	return cfg;
}

static const char cfg_text[] = "node { n: 'socks5://10.0.0.1:1080' }\n"
			       "group { proxy { policy: fixed(0) } }\n"
			       "routing {\n"
			       "  pname(a, b) && !dport(80, 1000-1001) -> proxy\n"
			       "  dip(10.0.0.0/8, fd00::/8) -> block\n"
			       "  l4proto(udp) && ipversion(6) -> direct\n"
			       "  fallback: proxy\n"
			       "}\n";

static void test_compile_layout(void)
{
	struct anser_config *cfg = parse(cfg_text);
	struct anser_compiled c;

	g_assert_cmpint(anser_routing_compile(cfg, 1, &c), ==, 0);
	/* rule 0: 2 matchers, rule 1: 1, rule 2: 2, fallback: 1 */
	g_assert_cmpuint(c.n_matchers, ==, 6);
	g_assert_cmpuint(c.matchers[0].type, ==, ANSER_M_PNAME);
	g_assert_cmpuint(c.matchers[0].rule_end, ==, 0);
	g_assert_cmpuint(c.matchers[1].type, ==, ANSER_M_DPORT);
	g_assert_cmpuint(c.matchers[1].negate, ==, 1);
	g_assert_cmpuint(c.matchers[1].rule_end, ==, 1);
	g_assert_cmpuint(c.matchers[1].outbound, ==, ANSER_OUT_FIRST_GROUP);
	g_assert_cmpuint(c.matchers[1].rule, ==, 0);
	g_assert_cmpuint(c.matchers[2].type, ==, ANSER_M_DIP);
	g_assert_cmpuint(c.matchers[2].outbound, ==, ANSER_OUT_BLOCK);
	g_assert_cmpuint(c.matchers[3].type, ==, ANSER_M_L4PROTO);
	g_assert_cmpuint(c.matchers[3].arg, ==, ANSER_L4_UDP);
	g_assert_cmpuint(c.matchers[4].type, ==, ANSER_M_IPVERSION);
	g_assert_cmpuint(c.matchers[4].arg, ==, ANSER_IPV_6);
	g_assert_cmpuint(c.matchers[4].outbound, ==, ANSER_OUT_DIRECT);
	g_assert_cmpuint(c.matchers[5].type, ==, ANSER_M_TRUE);
	g_assert_cmpuint(c.matchers[5].rule, ==, ANSER_RULE_FALLBACK);
	g_assert_cmpuint(c.matchers[5].outbound, ==, ANSER_OUT_FIRST_GROUP);
	/* names */
	g_assert_cmpuint(c.n_pnames, ==, 2);
	g_assert_cmpstr(c.pnames[0].name, ==, "a");
	g_assert_cmpuint(c.pnames[0].set, ==, c.matchers[0].set);
	/* 80 -> 1 block, 1000-1001 -> 1 block, 2 CIDRs */
	g_assert_cmpuint(c.n_lpm, ==, 4);
	/* Every set id of slot 1 has the slot bit; distinct per matcher. */
	g_assert_cmpuint(c.matchers[0].set >> 31, ==, 1);
	g_assert_cmpuint(c.matchers[1].set >> 31, ==, 1);
	g_assert_cmpuint(c.matchers[0].set, !=, c.matchers[1].set);
	/* CIDR keys: v4 /8 -> 32 + 96 + 8 */
	gboolean found_v4 = FALSE;
	for (size_t i = 0; i < c.n_lpm; i++)
		if (c.lpm[i].set == c.matchers[2].set && c.lpm[i].prefixlen == 32 + 104) {
			g_assert_cmpuint(c.lpm[i].data[10], ==, 0xff);
			g_assert_cmpuint(c.lpm[i].data[12], ==, 10);
			found_v4 = TRUE;
		}
	g_assert_true(found_v4);
	anser_compiled_clear(&c);

	g_assert_cmpint(anser_routing_compile(cfg, 0, &c), ==, 0);
	g_assert_cmpuint(c.matchers[0].set >> 31, ==, 0);
	anser_compiled_clear(&c);
	anser_config_free(cfg);
}

static void test_gen_refs(void)
{
	struct anser_config *cfg = parse(cfg_text);
	struct anser_gen *g = anser_gen_new(cfg, 7, 3);

	g_assert_nonnull(g);
	g_assert_cmpuint(g->slot, ==, 1);
	g_assert_cmpuint(g->number, ==, 7);
	g_assert_true(anser_gen_ref(g) == g);
	anser_gen_unref(g);
	anser_gen_unref(g); /* frees cfg too: valgrind/ASan check it */
	anser_gen_unref(NULL);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/routing/port-prefixes", test_port_prefixes);
	g_test_add_func("/routing/compile-layout", test_compile_layout);
	g_test_add_func("/routing/gen-refs", test_gen_refs);
	return g_test_run();
}
