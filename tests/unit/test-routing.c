// SPDX-License-Identifier: GPL-2.0-or-later
/* The rule compiler: rules to the kernel's rule-set tables, checked
 * against the rules' plain meaning; slots; limits; generation refcounts. */
#include <errno.h>
#include <arpa/inet.h>
#include <glib.h>
#include <string.h>

#include "daemon/config/config.h"
#include "daemon/routing/routing.h"
#include "daemon/util/conninfo.h"
#include "tests/rulegen.h"

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
	struct anser_config *cfg = rulegen_parse(cfg_text);
	struct anser_compiled c;

	g_assert_cmpint(anser_routing_compile(cfg, NULL, 1, &c), ==, 0);
	g_assert_cmpuint(c.info.n_rules, ==, 4); /* 3 rules and fallback */
	g_assert_cmpuint(c.info.outbound[0], ==, ANSER_OUT_FIRST_GROUP);
	g_assert_cmpuint(c.info.outbound[1], ==, ANSER_OUT_BLOCK);
	g_assert_cmpuint(c.info.outbound[2], ==, ANSER_OUT_DIRECT);
	g_assert_cmpuint(c.info.outbound[3], ==, ANSER_OUT_FIRST_GROUP);
	g_assert_cmpuint(c.info.lookups, ==, ANSER_LOOKUP_DIP | ANSER_LOOKUP_DPORT);
	/* Only rule 2 looks at protocol and IP version. */
	g_assert_cmpuint(c.info.l4[ANSER_L4_INDEX(1, 1)].w[0], ==, 0xf);
	g_assert_cmpuint(c.info.l4[ANSER_L4_INDEX(0, 1)].w[0], ==, 0xb);
	g_assert_cmpuint(c.info.l4[ANSER_L4_INDEX(1, 0)].w[0], ==, 0xb);
	/* Rules 2 and fallback need neither address nor port. */
	g_assert_cmpuint(c.info.dst_free.w[0], ==, 0xc);
	/* Names: both leave every rule possible; other names all but rule 0. */
	g_assert_cmpuint(c.n_pnames, ==, 2);
	g_assert_cmpstr(c.pnames[0].key.name, ==, "a");
	g_assert_cmpstr(c.pnames[1].key.name, ==, "b");
	g_assert_cmpuint(c.pnames[0].key.set, ==, 1);
	g_assert_cmpuint(c.pnames[0].rules.w[0], ==, 0xf);
	g_assert_cmpuint(c.info.pname_default.w[0], ==, 0xe);
	/* Two CIDRs in slot 1's trie; v4 /8 is 32 + 96 + 8 long. */
	g_assert_cmpuint(c.n_lpm, ==, 2);
	gboolean found_v4 = FALSE;
	for (size_t i = 0; i < c.n_lpm; i++) {
		g_assert_cmpuint(c.lpm[i].key.set, ==, (1u << 31) | ANSER_LPM_DIP);
		g_assert_cmpuint(c.lpm[i].rules.w[0], ==, 0xf);
		if (c.lpm[i].key.prefixlen == 32 + 104) {
			g_assert_cmpuint(c.lpm[i].key.data[10], ==, 0xff);
			g_assert_cmpuint(c.lpm[i].key.data[12], ==, 10);
			found_v4 = TRUE;
		}
	}
	g_assert_true(found_v4);
	g_assert_cmpuint(c.info.dip_default.w[0], ==, 0xd);
	/* Ports: 80 and 1000-1001 rule out rule 0, the rest do not. */
	g_assert_cmpuint(c.n_port_classes, ==, 2);
	g_assert_cmpuint(c.port_class[80], ==, c.port_class[1000]);
	g_assert_cmpuint(c.port_class[80], ==, c.port_class[1001]);
	g_assert_cmpuint(c.port_class[80], !=, c.port_class[81]);
	g_assert_cmpuint(c.port_class[0], ==, c.port_class[65535]);
	g_assert_cmpuint(c.port_rules[c.port_class[80]].w[0], ==, 0xe);
	g_assert_cmpuint(c.port_rules[c.port_class[999]].w[0], ==, 0xf);
	anser_compiled_clear(&c);

	g_assert_cmpint(anser_routing_compile(cfg, NULL, 0, &c), ==, 0);
	g_assert_cmpuint(c.pnames[0].key.set, ==, 0);
	g_assert_cmpuint(c.lpm[0].key.set, ==, ANSER_LPM_DIP);
	anser_compiled_clear(&c);
	anser_config_free(cfg);
}

/* Random rule lists (negation, nesting, overlapping ranges, several
 * conditions of a kind in one rule): for many flows, the tables give the
 * same first match as reading the rules one by one. */
static void test_random_rules(void)
{
	GRand *rnd = g_rand_new_with_seed(11);
	unsigned hits[4] = { 0 };

	for (int round = 0; round < 60; round++) {
		char *text = rulegen_config(rnd, round < 50 ? 12 : 1023);
		struct anser_config *cfg = rulegen_parse(text);
		struct anser_compiled c;
		int cr = anser_routing_compile(cfg, NULL, (unsigned)round & 1, &c);
		if (cr == -E2BIG) { /* too many port classes: allowed, but rare */
			g_assert_nonnull(c.limit);
			goto next;
		}
		g_assert_cmpint(cr, ==, 0);
		for (int i = 0; i < 3000; i++) {
			struct rulegen_flow f;
			rulegen_flow(rnd, &f);
			unsigned want = rulegen_plain_match(cfg, &f);
			unsigned got = rulegen_compiled_match(cfg, &c, &f);
			if (got != want)
				g_error("round %d flow %s port %u udp %d v6 %d: rule %u, want "
					"%u\n%s",
					round, f.name, f.port, f.udp, f.v6, got, want, text);
			hits[want == ANSER_RULE_FALLBACK ? 0 : want == 0 ? 1 : want < 4 ? 2 : 3]++;
		}
		anser_compiled_clear(&c);
	next:
		anser_config_free(cfg);
		g_free(text);
	}
	/* The flows really exercise first, early, later rules and fallback. */
	for (int i = 0; i < 4; i++)
		g_assert_cmpuint(hits[i], >, 1000);
	g_rand_free(rnd);
}

/* Rules over the kernel's limits are refused with the limit named, not
 * truncated: port ranges in a staircase make more than 256 port sets. */
static void test_too_many(void)
{
	GString *t = g_string_new("routing {\n");
	for (int r = 0; r < 200; r++)
		g_string_append_printf(t, "  dport(%d-%d) -> %s\n", r + 1, r + 1001,
				       r % 2 ? "block" : "direct"); /* no merging */
	g_string_append(t, "  fallback: direct\n}\n");
	struct anser_config *cfg = rulegen_parse(t->str);
	struct anser_compiled c;
	g_assert_cmpint(anser_routing_compile(cfg, NULL, 0, &c), ==, -E2BIG);
	g_assert_null(c.lpm);
	g_assert_null(c.port_class);
	g_assert_nonnull(strstr(c.limit, "dport()"));
	anser_config_free(cfg);
	g_string_free(t, TRUE);
}

/* dae's merge: consecutive one-condition rules of the same kind and
 * outbound become one kernel rule; explain still names the rule that holds;
 * a config of thousands of such rules fits. */
static void test_merge(void)
{
	struct anser_config *cfg =
		rulegen_parse("node { n: 'socks5://10.0.0.1:1080' }\n"
			      "group { proxy { policy: fixed(0) } }\n"
			      "routing {\n"
			      "  dip(10.1.0.0/16) -> direct\n" /* 0 \ one kernel rule */
			      "  dip(10.2.0.0/16, 10.3.0.0/16) -> direct\n" /* 1 / */
			      "  pname(a) -> direct\n"			    /* 2: another kind */
			      "  !dip(10.4.0.0/16) -> block\n"		    /* 3: negated */
			      "  dip(10.4.1.0/24) -> block\n"		    /* 4 \ one */
			      "  dip(10.4.2.0/24) -> block\n"		    /* 5 / */
			      "  dip(10.4.3.0/24) -> proxy\n"		  /* 6: another outbound */
			      "  dip(10.4.4.0/24) && pname(b) -> proxy\n" /* 7: two conditions */
			      "  fallback: direct\n}\n");
	struct anser_compiled c;
	uint8_t a[16] = { [10] = 0xff, [11] = 0xff, [12] = 10 };

	g_assert_cmpint(anser_routing_compile(cfg, NULL, 0, &c), ==, 0);
	g_assert_cmpuint(c.info.n_rules, ==, 6 + 1);
	static const uint16_t first[] = { 0, 2, 3, 4, 6, 7, ANSER_RULE_FALLBACK };
	for (size_t k = 0; k < G_N_ELEMENTS(first); k++)
		g_assert_cmpuint(c.info.rule_of[k], ==, first[k]);
	static const struct {
		uint8_t b;
		unsigned kernel, exact;
	} flows[] = { { 1, 0, 0 }, { 3, 0, 1 }, { 4, 4, 4 }, { 9, 3, 3 } };
	for (size_t i = 0; i < G_N_ELEMENTS(flows); i++) {
		a[13] = flows[i].b;
		a[14] = 1;
		unsigned r = anser_compiled_match(&c, "x", NULL, a, 80, 0, 0);
		g_assert_cmpuint(r, ==, flows[i].kernel);
		g_assert_cmpuint(anser_rule_refine(cfg, r, "x", NULL, a, 80, 0, 0), ==,
				 flows[i].exact);
	}
	a[13] = 4, a[14] = 2;
	g_assert_cmpuint(anser_rule_refine(cfg, anser_compiled_match(&c, "x", NULL, a, 80, 0, 0),
					   "x", NULL, a, 80, 0, 0),
			 ==, 5);
	anser_compiled_clear(&c);
	anser_config_free(cfg);

	/* 3000 rules, but one after merging */
	GString *t = g_string_new("routing {\n");
	for (int r = 0; r < 3000; r++)
		g_string_append_printf(t, "  dip(10.%d.%d.0/24) -> block\n", r / 256, r % 256);
	g_string_append(t, "  fallback: direct\n}\n");
	cfg = rulegen_parse(t->str);
	g_assert_cmpint(anser_routing_compile(cfg, NULL, 0, &c), ==, 0);
	g_assert_cmpuint(c.info.n_rules, ==, 2);
	g_assert_cmpuint(c.n_lpm, ==, 3000);
	a[12] = 10, a[13] = 11, a[14] = 183;
	g_assert_cmpuint(anser_rule_refine(cfg, anser_compiled_match(&c, "x", NULL, a, 80, 0, 0),
					   "x", NULL, a, 80, 0, 0),
			 ==, 11 * 256 + 183);
	anser_compiled_clear(&c);
	anser_config_free(cfg);
	g_string_free(t, TRUE);
}

static void test_gen_refs(void)
{
	struct anser_config *cfg = rulegen_parse(cfg_text);
	struct anser_gen *g = anser_gen_new(cfg, 7, 3);

	g_assert_nonnull(g);
	g_assert_cmpuint(g->slot, ==, 1);
	g_assert_cmpuint(g->number, ==, 7);
	g_assert_true(anser_gen_ref(g) == g);
	anser_gen_unref(g);
	anser_gen_unref(g); /* frees cfg too: valgrind/ASan check it */
	anser_gen_unref(NULL);
}

/* Compiled for slot 0 and re-keyed for slot 1 is what compiling for slot 1
 * gives (reload compiles once, when it checks the config). */
static void test_set_slot(void)
{
	GRand *rnd = g_rand_new_with_seed(11);

	for (int round = 0; round < 20; round++) {
		char *text = rulegen_config(rnd, 40);
		struct anser_config *cfg = rulegen_parse(text);
		struct anser_compiled a, b;
		if (anser_routing_compile(cfg, NULL, 0, &a) == -E2BIG)
			goto next;
		g_assert_cmpint(anser_routing_compile(cfg, NULL, 1, &b), ==, 0);
		anser_compiled_set_slot(&a, 1);
		g_assert_cmpuint(a.n_lpm, ==, b.n_lpm);
		g_assert_cmpuint(a.n_pnames, ==, b.n_pnames);
		g_assert_true(a.n_lpm == 0 || memcmp(a.lpm, b.lpm, a.n_lpm * sizeof(*a.lpm)) == 0);
		g_assert_true(a.n_pnames == 0 ||
			      memcmp(a.pnames, b.pnames, a.n_pnames * sizeof(*a.pnames)) == 0);
		g_assert_true(memcmp(&a.info, &b.info, sizeof(a.info)) == 0);
		anser_compiled_set_slot(&a, 0);
		anser_compiled_clear(&b);
		g_assert_cmpint(anser_routing_compile(cfg, NULL, 0, &b), ==, 0);
		g_assert_true(a.n_lpm == 0 || memcmp(a.lpm, b.lpm, a.n_lpm * sizeof(*a.lpm)) == 0);
		g_assert_true(a.n_pnames == 0 ||
			      memcmp(a.pnames, b.pnames, a.n_pnames * sizeof(*a.pnames)) == 0);
		anser_compiled_clear(&a);
		anser_compiled_clear(&b);
	next:
		anser_config_free(cfg);
		g_free(text);
	}
	g_rand_free(rnd);
}

/* direct(mark: N) reaches the kernel's table by rule bit, the fallback's
 * in the last; without marks the kernel does not look. */
static void test_marks(void)
{
	struct anser_config *cfg = rulegen_parse("routing {\n pname(a) -> direct(mark: 0x100)\n"
						 " pname(b) -> direct\n"
						 " fallback: direct(mark: 7)\n}\n");
	struct anser_compiled c;

	g_assert_cmpint(anser_routing_compile(cfg, NULL, 0, &c), ==, 0);
	g_assert_cmpuint(c.info.n_rules, ==, 3);
	g_assert_cmpuint(c.info.mark[0], ==, 0x100);
	g_assert_cmpuint(c.info.mark[1], ==, 0);
	g_assert_cmpuint(c.info.mark[2], ==, 7);
	g_assert_true(c.info.lookups & ANSER_LOOKUP_MARK);
	anser_compiled_clear(&c);
	anser_config_free(cfg);

	cfg = rulegen_parse("routing {\n pname(a) -> direct\n fallback: direct\n}\n");
	g_assert_cmpint(anser_routing_compile(cfg, NULL, 0, &c), ==, 0);
	g_assert_false(c.info.lookups & ANSER_LOOKUP_MARK);
	anser_compiled_clear(&c);
	anser_config_free(cfg);
}

/* Application ids from cgroup paths, by systemd's naming convention. */
static void test_app_ids(void)
{
	static const char *const cases[][2] = {
		{ "/user.slice/user-1000.slice/user@1000.service/app.slice/"
		  "app-gnome-org.mozilla.firefox-4242.scope",
		  "org.mozilla.firefox" },
		{ "/user.slice/app-flatpak-org.telegram.desktop-12.scope", "org.telegram.desktop" },
		{ "/app-firefox-1.scope", "firefox" },
		{ "/app-gnome-google\\x2dchrome-77.scope", "google-chrome" },
		{ "/app.slice/app-org.gnome.Terminal.slice/vte-spawn-1.scope",
		  "org.gnome.Terminal" },
		{ "/app.slice/app-org.kde.konsole@0a1b.service", "org.kde.konsole" },
		{ "/app.slice/app-dbus\\x2d:1.2\\x2dorg.a.B@1.service", "dbus-:1.2-org.a.B" },
		{ "/app.slice/app-KDE-org.kde.dolphin.service", "org.kde.dolphin" },
		/* the deepest application wins; parts below belong to it */
		{ "/app-a.slice/app-gnome-b-1.scope/tab", "b" },
		/* not applications */
		{ "/user.slice", "" },
		{ "/app.slice", "" },
		{ "/app-.scope", "" },
		{ "/app-x.scope", "" }, /* a scope needs -<random> */
		{ "/app-gnome--1.scope", "" },
		{ "/app-a\\x2fb.slice", "" }, /* no '/' in ids */
		{ "/", "" },
		{ "", "" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char buf[256];
		size_t n = anser_cgroup_app_id(cases[i][0], buf, sizeof(buf));
		if (!n)
			buf[0] = 0;
		g_assert_cmpstr(buf, ==, cases[i][1]);
		g_assert_cmpuint(n, ==, strlen(cases[i][1]));
	}
	char small[4];
	g_assert_cmpuint(anser_cgroup_app_id("/app-gnome-abcd-1.scope", small, sizeof(small)), ==,
			 0);
}

/* Conditions only forwarded traffic can meet, and domain(), never hold
 * for this machine's own flows; their negations always do. */
static void test_unseen(void)
{
	struct anser_config *cfg =
		rulegen_parse("routing {\n"
			      "  sip(0.0.0.0/0, ::/0) -> block\n"
			      "  sport(1-65535) && pname(a) -> block\n"
			      "  domain(a.com) && pname(a) -> block\n"
			      "  !mac(02:42:ac:11:00:02) && !dscp(0) && pname(a) -> direct\n"
			      "  fallback: block\n}\n");
	struct anser_compiled c;
	uint8_t addr[16] = { [10] = 0xff, [11] = 0xff, [12] = 10, [15] = 1 };

	g_assert_cmpint(anser_routing_compile(cfg, NULL, 0, &c), ==, 0);
	g_assert_cmpuint(anser_compiled_match(&c, "a", NULL, addr, 80, 0, 0), ==, 3);
	g_assert_cmpuint(anser_compiled_match(&c, "b", NULL, addr, 80, 1, 0), ==,
			 ANSER_RULE_FALLBACK);
	anser_compiled_clear(&c);
	anser_config_free(cfg);
}

/* Addresses as listings show them (formatted without printf for speed):
 * checked against inet_ntop + printf. */
static void test_sockaddr_str(void)
{
	static const char *const v4[] = { "0.0.0.0", "1.2.3.4", "10.77.0.3", "255.255.255.255",
					  "100.9.10.99" };
	static const unsigned ports[] = { 0, 1, 9, 10, 99, 100, 8080, 65535 };
	for (size_t i = 0; i < G_N_ELEMENTS(v4); i++)
		for (size_t k = 0; k < G_N_ELEMENTS(ports); k++) {
			struct sockaddr_storage ss = { 0 };
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			char buf[64], want[64];
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)ports[k]);
			inet_pton(AF_INET, v4[i], &s4->sin_addr);
			g_snprintf(want, sizeof(want), "%s:%u", v4[i], ports[k]);
			g_assert_cmpstr(anser_sockaddr_str(&ss, buf, sizeof(buf)), ==, want);
			/* the same address v4-mapped */
			struct sockaddr_storage m = { 0 };
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&m;
			s6->sin6_family = AF_INET6;
			s6->sin6_port = s4->sin_port;
			s6->sin6_addr.s6_addr[10] = s6->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&s6->sin6_addr.s6_addr[12], &s4->sin_addr, 4);
			g_assert_cmpstr(anser_sockaddr_str(&m, buf, sizeof(buf)), ==, want);
		}
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	char buf[64];
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(443);
	inet_pton(AF_INET6, "2001:db8::1", &s6->sin6_addr);
	g_assert_cmpstr(anser_sockaddr_str(&ss, buf, sizeof(buf)), ==, "[2001:db8::1]:443");
}

/* network(): each key, globs, metered, negation, && with a kernel
 * condition, several values (any holds), no network at all; rules of
 * network() are not merged. */
static void test_network(void)
{
	struct anser_config *cfg =
		rulegen_parse("routing {\n"
			      "  network(ssid: HomeWifi) -> block\n"
			      "  network(type: vpn) && dip(10.0.0.0/8) -> direct\n"
			      "  network(type: vpn) -> block\n"
			      "  network(id: 'Office*', uuid: 1234) && dport(25) -> block\n"
			      "  !network(iface: 'wlp*') && dport(53) -> block\n"
			      "  network(metered: yes) && dport(8080) -> block\n"
			      "  fallback: direct\n"
			      "}\n");
	uint8_t ten[16] = { [10] = 0xff, [11] = 0xff, [12] = 10, [15] = 1 };
	uint8_t other[16] = { [10] = 0xff, [11] = 0xff, [12] = 192, [15] = 1 };
	struct anser_network home = { "Home", "u-1", "wifi", "HomeWifi", "wlp2s0", false, NULL },
			     vpn = { "Work VPN", "u-2", "vpn", "", "tun0", false, NULL },
			     office = { "Office 3", "u-3", "ethernet", "", "eth0", true, NULL },
			     by_uuid = { "x", "1234", "ethernet", "", "wlp3s0", false, NULL },
			     none = { "", "", "", "", "", false, NULL };
	const struct {
		const struct anser_network *net;
		const uint8_t *dst;
		uint16_t port;
		unsigned rule;
	} cases[] = {
		{ &home, other, 443, 0 },
		{ &vpn, ten, 443, 1 },
		{ &vpn, other, 443, 2 },
		{ &office, other, 25, 3 },
		{ &by_uuid, other, 25, 3 },
		{ &home, other, 53, 0 },
		{ &office, other, 53, 4 },
		{ &by_uuid, other, 53, ANSER_RULE_FALLBACK },
		{ &office, other, 8080, 5 },
		{ &by_uuid, other, 8080, ANSER_RULE_FALLBACK },
		{ &none, other, 443, ANSER_RULE_FALLBACK },
		{ &none, ten, 443, ANSER_RULE_FALLBACK },
		{ &none, other, 53, 4 }, /* !network() holds without a network */
		{ NULL, other, 53, 4 },
		{ NULL, other, 8080, ANSER_RULE_FALLBACK },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct anser_compiled c;
		g_assert_cmpint(anser_routing_compile(cfg, cases[i].net, 0, &c), ==, 0);
		g_assert_true(c.network);
		unsigned want = cases[i].rule;
		unsigned got =
			anser_compiled_match(&c, "x", NULL, cases[i].dst, cases[i].port, 0, 0);
		if (got != want)
			g_error("case %zu: rule %u, want %u", i, got, want);
		anser_compiled_clear(&c);
	}
	anser_config_free(cfg);

	/* two network() rules with one outbound stay two rules */
	cfg = rulegen_parse("routing {\n  network(id: a) -> block\n  network(id: b) -> block\n"
			    "  fallback: direct\n}\n");
	struct anser_compiled c;
	g_assert_cmpint(anser_routing_compile(cfg, NULL, 0, &c), ==, 0);
	g_assert_cmpuint(c.info.n_rules, ==, 3);
	anser_compiled_clear(&c);
	anser_config_free(cfg);
	cfg = rulegen_parse("routing {\n  dport(1) -> block\n  fallback: direct\n}\n");
	g_assert_cmpint(anser_routing_compile(cfg, NULL, 0, &c), ==, 0);
	g_assert_false(c.network);
	anser_compiled_clear(&c);
	anser_config_free(cfg);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/routing/compile-layout", test_compile_layout);
	g_test_add_func("/routing/app-ids", test_app_ids);
	g_test_add_func("/routing/sockaddr-str", test_sockaddr_str);
	g_test_add_func("/routing/unseen", test_unseen);
	g_test_add_func("/routing/random-rules", test_random_rules);
	g_test_add_func("/routing/too-many", test_too_many);
	g_test_add_func("/routing/merge", test_merge);
	g_test_add_func("/routing/gen-refs", test_gen_refs);
	g_test_add_func("/routing/set-slot", test_set_slot);
	g_test_add_func("/routing/marks", test_marks);
	g_test_add_func("/routing/network", test_network);
	return g_test_run();
}
