// SPDX-License-Identifier: GPL-2.0-or-later
/* Geodata readers on files the test writes itself, and the domain()
 * matcher against a plain reading of its patterns. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/geodata/geodata.h"
#include "daemon/routing/domain.h"
#include "tests/geowriter.h"

struct collected {
	GPtrArray *v; /* "kind:value" or "addr/prefix" strings */
};

static int collect_domain(void *ud, enum anser_domain_kind kind, const char *value, size_t len)
{
	static const char *const names[] = { "suffix", "full", "keyword", "regex" };
	struct collected *c = ud;
	g_ptr_array_add(c->v, g_strdup_printf("%s:%.*s", names[kind], (int)len, value));
	return 0;
}

static int collect_cidr(void *ud, const uint8_t a[16], unsigned prefix)
{
	struct collected *c = ud;
	GString *s = g_string_new(NULL);
	for (int i = 0; i < 16; i++)
		g_string_append_printf(s, "%02x", a[i]);
	g_string_append_printf(s, "/%u", prefix);
	g_ptr_array_add(c->v, g_string_free(s, FALSE));
	return 0;
}

static char *joined(struct collected *c)
{
	g_ptr_array_add(c->v, NULL);
	char *s = g_strjoinv(" ", (char **)c->v->pdata);
	g_ptr_array_set_size(c->v, 0);
	return s;
}

static GByteArray *sample_geosite(void)
{
	struct geowriter w;
	const char *cn[] = { "cn", NULL }, *ads[] = { "ads", "cn", NULL };

	geo_begin(&w);
	geo_entry(&w, "GOOGLE");
	geo_domain(&w, 2, "google.com", NULL);
	geo_domain(&w, 3, "www.google.cn", cn);
	geo_entry(&w, "CN");
	geo_domain(&w, 2, "example.cn", NULL);
	geo_domain(&w, 3, "full.example.com", cn);
	geo_domain(&w, 0, "baidu", ads);
	geo_domain(&w, 1, "^x[0-9]+\\.test$", NULL);
	return geo_end(&w);
}

static void test_geosite(void)
{
	GByteArray *b = sample_geosite();
	struct collected c = { g_ptr_array_new_with_free_func(g_free) };
	const char *why = NULL;

	g_assert_cmpint(
		anser_geosite_read(b->data, b->len, "cn", NULL, false, collect_domain, &c, &why),
		==, 4);
	g_autofree char *all = joined(&c);
	g_assert_cmpstr(
		all, ==,
		"suffix:example.cn full:full.example.com keyword:baidu regex:^x[0-9]+\\.test$");
	g_assert_cmpint(
		anser_geosite_read(b->data, b->len, "Cn", "cn", false, collect_domain, &c, &why),
		==, 2);
	g_autofree char *with = joined(&c);
	g_assert_cmpstr(with, ==, "full:full.example.com keyword:baidu");
	g_assert_cmpint(
		anser_geosite_read(b->data, b->len, "cn", "ads", true, collect_domain, &c, &why),
		==, 3);
	g_autofree char *without = joined(&c);
	g_assert_cmpstr(without, ==,
			"suffix:example.cn full:full.example.com regex:^x[0-9]+\\.test$");
	g_assert_cmpint(
		anser_geosite_read(b->data, b->len, "nope", NULL, false, collect_domain, &c, &why),
		==, -ENOENT);

	/* every cut of the file is an error or a shorter answer, never a
	 * read past the end (ASan watches) */
	for (guint n = 0; n < b->len; n++) {
		uint8_t *cut = g_memdup2(b->data, n);
		long r = anser_geosite_read(cut, n, "cn", NULL, false, collect_domain, &c, &why);
		g_assert_true(r == -EBADMSG || r == -ENOENT || (r >= 0 && r <= 4));
		if (r == -EBADMSG)
			g_assert_nonnull(why);
		g_ptr_array_set_size(c.v, 0);
		g_free(cut);
	}
	g_byte_array_unref(b);
	g_ptr_array_unref(c.v);
}

static void test_geoip(void)
{
	struct geowriter w;
	const uint8_t v4[4] = { 10, 1, 2, 3 }, v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0xff };
	struct collected c = { g_ptr_array_new_with_free_func(g_free) };
	const char *why = NULL;

	geo_begin(&w);
	geo_entry(&w, "CN");
	geo_cidr(&w, v4, 4, 8);
	geo_cidr(&w, v4, 4, -1); /* proto3 leaves 0 out; a missing prefix is a host */
	geo_cidr(&w, v6, 16, 28);
	geo_entry(&w, "NOTCN");
	geo_reverse(&w);
	geo_cidr(&w, v4, 4, 8);
	geo_entry(&w, "BAD");
	geo_cidr(&w, v4, 4, 33);
	GByteArray *b = geo_end(&w);

	g_assert_cmpint(anser_geoip_read(b->data, b->len, "cn", collect_cidr, &c, &why), ==, 3);
	g_autofree char *s = joined(&c);
	/* host bits cleared; IPv4 mapped, prefixes in IPv6 terms */
	g_assert_cmpstr(s, ==,
			"00000000000000000000ffff0a000000/104 "
			"00000000000000000000ffff0a010203/128 "
			"20010db0000000000000000000000000/28");
	g_assert_cmpint(anser_geoip_read(b->data, b->len, "notcn", collect_cidr, &c, &why), ==,
			-EOPNOTSUPP);
	g_assert_cmpint(anser_geoip_read(b->data, b->len, "bad", collect_cidr, &c, &why), ==,
			-EBADMSG);
	g_assert_nonnull(strstr(why, "prefix"));
	g_ptr_array_set_size(c.v, 0);
	for (guint n = 0; n < b->len; n++) {
		uint8_t *cut = g_memdup2(b->data, n);
		long r = anser_geoip_read(cut, n, "cn", collect_cidr, &c, &why);
		g_assert_true(r == -EBADMSG || r == -ENOENT || (r >= 0 && r <= 3));
		g_ptr_array_set_size(c.v, 0);
		g_free(cut);
	}
	/* not geodata at all */
	const char junk[] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
	g_assert_cmpint(
		anser_geoip_read((const uint8_t *)junk, sizeof(junk), "cn", collect_cidr, &c, &why),
		==, -EBADMSG);
	g_byte_array_unref(b);
	g_ptr_array_unref(c.v);
}

static void put(const char *dir, const char *name, const char *text)
{
	g_autofree char *p = g_build_filename(dir, name, NULL);
	g_assert_true(g_file_set_contents(p, text, -1, NULL));
}

static void test_dlc(void)
{
	g_autofree char *dir = g_dir_make_tmp("anser-dlc-XXXXXX", NULL);
	struct collected c = { g_ptr_array_new_with_free_func(g_free) };
	char why[256];

	put(dir, "top",
	    "# a list\n\nexample.com @cn\nfull:www.a.org\ninclude:sub\n"
	    "keyword:ads @ads &owner\nregexp:^b[0-9]\\.net$   # trailing comment\n");
	put(dir, "sub", "domain:sub.example\n");
	put(dir, "loop1", "include:loop2\n");
	put(dir, "loop2", "include:loop1\n");
	put(dir, "missing", "include:nothere\n");
	g_assert_cmpint(
		anser_dlc_read(dir, "top", NULL, false, collect_domain, &c, why, sizeof(why)), ==,
		5);
	g_autofree char *all = joined(&c);
	g_assert_cmpstr(all, ==,
			"suffix:example.com full:www.a.org suffix:sub.example keyword:ads "
			"regex:^b[0-9]\\.net$");
	g_assert_cmpint(
		anser_dlc_read(dir, "top", "cn", false, collect_domain, &c, why, sizeof(why)), ==,
		1);
	g_ptr_array_set_size(c.v, 0);
	g_assert_cmpint(
		anser_dlc_read(dir, "loop1", NULL, false, collect_domain, &c, why, sizeof(why)), ==,
		-ELOOP);
	g_assert_nonnull(strstr(why, "includes itself"));
	g_assert_cmpint(
		anser_dlc_read(dir, "missing", NULL, false, collect_domain, &c, why, sizeof(why)),
		==, -ENOENT);
	g_assert_nonnull(strstr(why, "'nothere' not found"));
	g_assert_cmpint(
		anser_dlc_read(dir, "../etc", NULL, false, collect_domain, &c, why, sizeof(why)),
		==, -EINVAL);
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
	g_ptr_array_unref(c.v);
}

static void test_builtin(void)
{
	struct collected c = { g_ptr_array_new_with_free_func(g_free) };

	g_assert_cmpint(anser_geoip_builtin("private", collect_cidr, &c), >, 10);
	g_autofree char *ips = joined(&c);
	g_assert_nonnull(strstr(ips, "00000000000000000000ffffc0a80000/112")); /* 192.168/16 */
	g_assert_nonnull(strstr(ips, "fc000000000000000000000000000000/7"));
	g_assert_cmpint(anser_geoip_builtin("cn", collect_cidr, &c), ==, -ENOENT);
	g_assert_cmpint(anser_geosite_builtin("PRIVATE", collect_domain, &c), >, 5);
	g_autofree char *names = joined(&c);
	g_assert_nonnull(strstr(names, "suffix:home.arpa"));
	g_ptr_array_unref(c.v);
}

/* ---- the matcher ---- */

struct pat {
	enum anser_domain_kind kind;
	const char *v;
	uint32_t id;
};

static gboolean plain_match(const struct pat *p, const char *name)
{
	g_autofree char *n = g_ascii_strdown(name, -1);
	size_t nl = strlen(n);
	while (nl && n[nl - 1] == '.')
		n[--nl] = 0;
	g_autofree char *v = g_ascii_strdown(p->v, -1);
	size_t vl = strlen(v);
	if (p->kind == ANSER_DOMAIN_SUFFIX || p->kind == ANSER_DOMAIN_FULL) {
		/* "a leading or trailing dot is dropped" */
		while (vl && v[vl - 1] == '.')
			v[--vl] = 0;
		size_t lead = strspn(v, ".");
		memmove(v, v + lead, vl - lead + 1);
		vl -= lead;
	}
	switch (p->kind) {
	case ANSER_DOMAIN_FULL:
		return strcmp(n, v) == 0;
	case ANSER_DOMAIN_SUFFIX:
		return strcmp(n, v) == 0 ||
		       (nl > vl && strcmp(n + nl - vl, v) == 0 && n[nl - vl - 1] == '.');
	case ANSER_DOMAIN_KEYWORD:
		return strstr(n, v) != NULL;
	case ANSER_DOMAIN_REGEX:
		return g_regex_match_simple(p->v, n, G_REGEX_CASELESS, 0);
	}
	return FALSE;
}

/* name matches in s exactly the patterns plain_match() says (ids < 128). */
static void check_name(const struct anser_domain_set *s, const struct pat *pats, size_t n,
		       const char *name)
{
	uint64_t bits[2] = { 0 }, want[2] = { 0 };
	g_autofree char *bare = g_strdup(name);

	anser_domain_set_match(s, name, strlen(name), bits, 2);
	/* a trailing dot is not part of the name; no name matches nothing */
	while (*bare && bare[strlen(bare) - 1] == '.')
		bare[strlen(bare) - 1] = 0;
	for (size_t k = 0; *bare && k < n; k++)
		if (plain_match(&pats[k], bare))
			want[pats[k].id / 64] |= 1ULL << (pats[k].id % 64);
	if (memcmp(bits, want, sizeof(bits)) != 0)
		g_error("'%s': matched %" G_GINT64_MODIFIER "x:%" G_GINT64_MODIFIER
			"x, want %" G_GINT64_MODIFIER "x:%" G_GINT64_MODIFIER "x",
			name, bits[1], bits[0], want[1], want[0]);
}

static struct anser_domain_set *build(const struct pat *pats, size_t n)
{
	struct anser_domain_builder *b = anser_domain_builder_new();
	const char *why;

	for (size_t i = 0; i < n; i++)
		g_assert_cmpint(anser_domain_builder_add(b, pats[i].kind, pats[i].v,
							 strlen(pats[i].v), pats[i].id, &why),
				==, 0);
	struct anser_domain_set *s = anser_domain_builder_finish(b);
	g_assert_nonnull(s);
	return s;
}

static void test_matcher(void)
{
	static const struct pat pats[] = {
		{ ANSER_DOMAIN_SUFFIX, "example.com", 0 },
		{ ANSER_DOMAIN_FULL, "www.a.org", 1 },
		{ ANSER_DOMAIN_SUFFIX, "A.ORG", 2 },
		{ ANSER_DOMAIN_KEYWORD, "ads", 3 },
		{ ANSER_DOMAIN_KEYWORD, "goog", 4 },
		{ ANSER_DOMAIN_KEYWORD, "ogle", 5 },
		{ ANSER_DOMAIN_REGEX, "^x[0-9]+\\.", 6 },
		{ ANSER_DOMAIN_SUFFIX, "com", 7 },
		{ ANSER_DOMAIN_FULL, "example.com", 8 },
		{ ANSER_DOMAIN_SUFFIX, "example.com", 9 },
		{ ANSER_DOMAIN_KEYWORD, "a", 10 },
		{ ANSER_DOMAIN_SUFFIX, ".lead.dot.", 11 },
	};
	static const char *const names[] = {
		"example.com",
		"www.example.com",
		"badexample.com",
		"EXAMPLE.COM.",
		"www.a.org",
		"a.org",
		"b.www.a.org",
		"x.a.org",
		"loads.net",
		"google.com",
		"x12.y",
		"ax12.y",
		"com",
		"",
		".",
		"lead.dot",
		"x.lead.dot",
		"nothing.here",
		"ogle",
		"gooogle.io",
	};
	struct anser_domain_builder *b = anser_domain_builder_new();
	const char *why;

	/* patterns that can never match are refused */
	g_assert_cmpint(anser_domain_builder_add(b, ANSER_DOMAIN_REGEX, "([", 2, 0, &why), ==,
			-EINVAL);
	g_assert_cmpint(anser_domain_builder_add(b, ANSER_DOMAIN_SUFFIX, "..", 2, 0, &why), ==,
			-EINVAL);
	anser_domain_builder_free(b);
	struct anser_domain_set *s = build(pats, G_N_ELEMENTS(pats));
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
		check_name(s, pats, G_N_ELEMENTS(pats), names[i]);
	anser_domain_set_free(s);
}

/* Regexes run only for names holding a literal every match contains:
 * the literal must really be in every match. */
static void test_regex_prefilter(void)
{
	static const char *const res[] = {
		"(abc)?def", "ab+c",	"[ab\\]cd]xyz", "x(?:abc)*y", "^ad[0-9]+\\.foo\\.com$",
		"abc|xyz",   "a.c.e.g", "qq?rst",	"(?i)HeLLo",  "lmn{0,2}op",
		"\\d+zzz",   "wxy\\.",
	};
	static const char *const names[] = {
		"def",	   "abcdef",   "abbc",	       "abc",	     "bxyz",	"]xyz",	   "cdxyz",
		"xy",	   "xabcabcy", "ad12.foo.com", "ad.foo.com", "xyz",	"abc.net", "abcdeg",
		"aXcYeZg", "qrst",     "qqrst",	       "hello.io",   "lmop",	"lmnnop",  "12zzz",
		"zzz",	   "wxy.",     "wxyz",	       "ABBBC",	     "DEF.COM",
	};
	struct pat pats[G_N_ELEMENTS(res)];

	for (size_t i = 0; i < G_N_ELEMENTS(res); i++)
		pats[i] = (struct pat){ ANSER_DOMAIN_REGEX, res[i], (uint32_t)i };
	struct anser_domain_set *s = build(pats, G_N_ELEMENTS(pats));
	for (size_t n = 0; n < G_N_ELEMENTS(names); n++)
		check_name(s, pats, G_N_ELEMENTS(pats), names[n]);
	anser_domain_set_free(s);
}

/* Many random patterns and names over a small alphabet, so they collide. */
static void test_matcher_random(void)
{
	GRand *rnd = g_rand_new_with_seed(3);
	static const char *const labels[] = { "a", "b", "ab", "ba", "c", "abc" };

	for (int round = 0; round < 20; round++) {
		GArray *pats = g_array_new(FALSE, FALSE, sizeof(struct pat));
		GPtrArray *keep = g_ptr_array_new_with_free_func(g_free);
		struct anser_domain_builder *b = anser_domain_builder_new();
		int n = g_rand_int_range(rnd, 1, 60);
		for (int i = 0; i < n; i++) {
			GString *v = g_string_new(NULL);
			int nl = g_rand_int_range(rnd, 1, 4);
			for (int l = 0; l < nl; l++)
				g_string_append_printf(v, "%s%s", l ? "." : "",
						       labels[g_rand_int_range(rnd, 0, 6)]);
			struct pat p = { (enum anser_domain_kind)g_rand_int_range(rnd, 0, 3),
					 v->str, (uint32_t)g_rand_int_range(rnd, 0, 128) };
			g_ptr_array_add(keep, g_string_free(v, FALSE));
			const char *why;
			g_assert_cmpint(
				anser_domain_builder_add(b, p.kind, p.v, strlen(p.v), p.id, &why),
				==, 0);
			g_array_append_val(pats, p);
		}
		struct anser_domain_set *s = anser_domain_builder_finish(b);
		for (int q = 0; q < 300; q++) {
			GString *name = g_string_new(NULL);
			int nl = g_rand_int_range(rnd, 1, 5);
			for (int l = 0; l < nl; l++)
				g_string_append_printf(name, "%s%s", l ? "." : "",
						       labels[g_rand_int_range(rnd, 0, 6)]);
			check_name(s, (const struct pat *)(void *)pats->data, pats->len, name->str);
			g_string_free(name, TRUE);
		}
		anser_domain_set_free(s);
		g_array_unref(pats);
		g_ptr_array_unref(keep);
	}
	g_rand_free(rnd);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/geodata/geosite", test_geosite);
	g_test_add_func("/geodata/geoip", test_geoip);
	g_test_add_func("/geodata/dlc", test_dlc);
	g_test_add_func("/geodata/builtin", test_builtin);
	g_test_add_func("/domain/matcher", test_matcher);
	g_test_add_func("/domain/matcher-random", test_matcher_random);
	g_test_add_func("/domain/regex-prefilter", test_regex_prefilter);
	return g_test_run();
}
