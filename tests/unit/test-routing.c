// SPDX-License-Identifier: GPL-2.0-or-later
/* The rule compiler: port ranges to prefixes, rules to matcher runs, set
 * ids per slot, generation refcounts. */
#include <errno.h>
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
	g_assert_cmpuint(c.lookups, ==, ANSER_LOOKUP_DIP | ANSER_LOOKUP_DPORT);
	/* Each set condition owns bit 0 of its kind; pname sets carry the slot. */
	g_assert_cmpuint(c.matchers[0].arg, ==, 0);
	g_assert_cmpuint(c.matchers[1].arg, ==, 0);
	g_assert_cmpuint(c.matchers[2].arg, ==, 0);
	g_assert_cmpuint(c.matchers[0].set >> 31, ==, 1);
	/* CIDR keys: v4 /8 -> 32 + 96 + 8, in slot 1's dip trie, with bit 0 */
	gboolean found_v4 = FALSE;
	for (size_t i = 0; i < c.n_lpm; i++) {
		g_assert_cmpuint(c.lpm[i].key.set >> 31, ==, 1);
		g_assert_cmpuint(c.lpm[i].bits.w[0], ==, 1);
		if (c.lpm[i].key.set == ((1u << 31) | ANSER_LPM_DIP) &&
		    c.lpm[i].key.prefixlen == 32 + 104) {
			g_assert_cmpuint(c.lpm[i].key.data[10], ==, 0xff);
			g_assert_cmpuint(c.lpm[i].key.data[12], ==, 10);
			found_v4 = TRUE;
		}
	}
	g_assert_true(found_v4);
	anser_compiled_clear(&c);

	g_assert_cmpint(anser_routing_compile(cfg, 0, &c), ==, 0);
	g_assert_cmpuint(c.matchers[0].set >> 31, ==, 0);
	anser_compiled_clear(&c);
	anser_config_free(cfg);
}

/* What the kernel's trie answers for key: the longest prefix containing
 * it, found here by brute force. */
static const struct anser_lpm_entry *longest(const struct anser_compiled *c,
					     const struct anser_lpm_key *k)
{
	const struct anser_lpm_entry *best = NULL;
	for (size_t i = 0; i < c->n_lpm; i++) {
		const struct anser_lpm_key *e = &c->lpm[i].key;
		unsigned bits = e->prefixlen - 32;
		gboolean in = e->set == k->set;
		for (unsigned b = 0; in && b < bits; b++)
			in = ((e->data[b / 8] ^ k->data[b / 8]) & (0x80 >> (b % 8))) == 0;
		if (in && (!best || e->prefixlen > best->key.prefixlen))
			best = &c->lpm[i];
	}
	return best;
}

/* Nested and overlapping CIDRs and port ranges over many rules: for every
 * address and port, the longest match carries exactly the bits of the
 * conditions that contain it. */
static void test_lpm_union(void)
{
	GString *t = g_string_new("node { n: 'socks5://10.0.0.1:1080' }\n"
				  "group { proxy { policy: fixed(0) } }\nrouting {\n");
	GRand *rnd = g_rand_new_with_seed(7);
	enum { RULES = 40, PER = 4 };
	unsigned nets[RULES][PER], lens[RULES][PER], plo[RULES], phi[RULES];

	for (int r = 0; r < RULES; r++) {
		g_string_append(t, "  dip(");
		for (int i = 0; i < PER; i++) {
			lens[r][i] = (unsigned)g_rand_int_range(rnd, 4, 13); /* in 12 bits */
			unsigned mask = (0xfffu << (12 - lens[r][i])) & 0xfff;
			nets[r][i] = (unsigned)g_rand_int_range(rnd, 0, 4096) & mask;
			/* 10.0.0.0/8 space: the 12 bits are the second and half the third octet */
			g_string_append_printf(t, "%s10.%u.%u.0/%u", i ? ", " : "", nets[r][i] >> 4,
					       (nets[r][i] & 15) << 4, 8 + lens[r][i]);
		}
		plo[r] = (unsigned)g_rand_int_range(rnd, 0, 2000);
		phi[r] = plo[r] + (unsigned)g_rand_int_range(rnd, 0, 300);
		g_string_append_printf(t, ") && dport(%u-%u) -> direct\n", plo[r], phi[r]);
	}
	g_string_append(t, "  fallback: proxy\n}\n");
	struct anser_config *cfg = parse(t->str);
	struct anser_compiled c;
	g_assert_cmpint(anser_routing_compile(cfg, 0, &c), ==, 0);

	for (unsigned a = 0; a < 4096; a++) {
		struct anser_lpm_key k = { .prefixlen = 160, .set = ANSER_LPM_DIP };
		k.data[10] = k.data[11] = 0xff;
		k.data[12] = 10;
		k.data[13] = (uint8_t)(a >> 4);
		k.data[14] = (uint8_t)((a & 15) << 4);
		const struct anser_lpm_entry *e = longest(&c, &k);
		for (int r = 0; r < RULES; r++) {
			gboolean want = FALSE;
			for (int i = 0; i < PER; i++)
				want |= (a >> (12 - lens[r][i])) ==
					(nets[r][i] >> (12 - lens[r][i]));
			unsigned bit = c.matchers[2 * r].arg;
			gboolean got = e && ((e->bits.w[bit / 64] >> (bit % 64)) & 1);
			g_assert_cmpint(got, ==, want);
		}
	}
	for (unsigned p = 0; p < 2400; p++) {
		struct anser_lpm_key k = { .prefixlen = 48, .set = ANSER_LPM_DPORT };
		k.data[0] = (uint8_t)(p >> 8);
		k.data[1] = (uint8_t)p;
		const struct anser_lpm_entry *e = longest(&c, &k);
		for (int r = 0; r < RULES; r++) {
			unsigned bit = c.matchers[2 * r + 1].arg;
			gboolean got = e && ((e->bits.w[bit / 64] >> (bit % 64)) & 1);
			g_assert_cmpint(got, ==, p >= plo[r] && p <= phi[r]);
		}
	}
	anser_compiled_clear(&c);
	anser_config_free(cfg);
	g_rand_free(rnd);
	g_string_free(t, TRUE);
}

/* More dip() conditions than bits: refused, not truncated. */
static void test_too_many(void)
{
	GString *t = g_string_new("routing {\n");
	for (int r = 0; r <= ANSER_DIP_BITS; r++)
		g_string_append_printf(t, "  dip(10.%d.%d.0/24) -> block\n", r / 256, r % 256);
	g_string_append(t, "  fallback: direct\n}\n");
	struct anser_config *cfg = parse(t->str);
	struct anser_compiled c;
	g_assert_cmpint(anser_routing_compile(cfg, 0, &c), ==, -E2BIG);
	g_assert_null(c.matchers);
	anser_config_free(cfg);
	g_string_free(t, TRUE);
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
	g_test_add_func("/routing/lpm-union", test_lpm_union);
	g_test_add_func("/routing/too-many", test_too_many);
	g_test_add_func("/routing/gen-refs", test_gen_refs);
	return g_test_run();
}
