// SPDX-License-Identifier: GPL-2.0-or-later
/* Sniffing: ClientHellos built here (random fields, server_name first,
 * last, after a big extension, over one record or many), every prefix of
 * them (MORE until the name is whole, never NONE), names as the header
 * promises them; HTTP/1 requests (Host with a port, any case, missing,
 * IP literals, folding, garbage, every prefix); QUIC v1 and v2: the
 * RFCs' key vectors and sample client Initials (RFC 9001 A, RFC 9369 A),
 * Initials sealed here (PADDING, PING, ACK, shuffled CRYPTO frames, a
 * hello over two packets, coalesced packets), and what is no Initial. */
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "daemon/proxy/sniff.h"
#include "tests/quicseal.h"
#include "wire.h"

#define FOUND ANSER_SNIFF_FOUND
#define MORE  ANSER_SNIFF_MORE
#define NONE  ANSER_SNIFF_NONE

/* ------------------------------------------------------------ bytes */

static void put_random(struct wire *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		u8(m, (unsigned)g_test_rand_int_range(0, 256));
}

/* RFC 9000 16, in its shortest form */
static void varint(struct wire *m, uint64_t v)
{
	if (v < 64) {
		u8(m, (unsigned)v);
	} else if (v < 16384) {
		u16(m, (unsigned)(0x4000 | v));
	} else {
		g_assert_cmpuint(v, <, 1u << 30);
		u16(m, (unsigned)(0x8000 | v >> 16));
		u16(m, (unsigned)(v & 0xffff));
	}
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;
	g_assert_cmpuint(n, <=, cap);
	for (size_t i = 0; i < n; i++) {
		int hi = g_ascii_xdigit_value(hex[2 * i]),
		    lo = g_ascii_xdigit_value(hex[2 * i + 1]);
		g_assert(hi >= 0 && lo >= 0);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return n;
}

/* ------------------------------------------------------------ ClientHellos */

struct ext {
	unsigned type;
	const void *data;
	size_t len;
};

/* server_name's extension_data for one host_name */
static size_t sni_data(uint8_t *out, const char *host)
{
	size_t l = strlen(host);
	out[0] = (uint8_t)((l + 3) >> 8);
	out[1] = (uint8_t)(l + 3);
	out[2] = 0;
	out[3] = (uint8_t)(l >> 8);
	out[4] = (uint8_t)l;
	memcpy(out + 5, host, l);
	return l + 5;
}

/* A ClientHello handshake message (RFC 8446 4.1.2) with random random,
 * session id and cipher suites; no extensions block if !with_exts. */
static void hello(struct wire *m, const struct ext *e, size_t n_ext, bool with_exts)
{
	m->n = 0;
	u8(m, 1);
	u24(m, 0);
	u16(m, 0x0303);
	put_random(m, 32);
	size_t sid = g_test_rand_bit() ? 32 : 0;
	u8(m, (unsigned)sid);
	put_random(m, sid);
	unsigned suites = (unsigned)g_test_rand_int_range(1, 20);
	u16(m, 2 * suites);
	put_random(m, 2 * suites);
	u8(m, 1);
	u8(m, 0);
	if (with_exts) {
		size_t total = 0;
		for (size_t i = 0; i < n_ext; i++)
			total += 4 + e[i].len;
		u16(m, (unsigned)total);
		for (size_t i = 0; i < n_ext; i++) {
			u16(m, e[i].type);
			u16(m, (unsigned)e[i].len);
			put(m, e[i].data, e[i].len);
		}
	}
	size_t len = m->n - 4;
	m->b[1] = (uint8_t)(len >> 16);
	m->b[2] = (uint8_t)(len >> 8);
	m->b[3] = (uint8_t)len;
}

/* hs in handshake records of at most `chunk` bytes */
static void records(struct wire *out, const struct wire *hs, unsigned version, size_t chunk)
{
	out->n = 0;
	for (size_t i = 0; i < hs->n; i += chunk) {
		size_t l = MIN(chunk, hs->n - i);
		u8(out, 22);
		u16(out, version);
		u16(out, (unsigned)l);
		put(out, hs->b + i, l);
	}
}

/* A hello like a browser's, server_name at `pos` among its extensions,
 * after `big` bytes of padding (21) if big > 0. */
static void browser_hello(struct wire *hs, const char *host, size_t pos, size_t big)
{
	static uint8_t pad[30000];
	uint8_t sni[300], ks[36],
		alpn[] = { 0, 12, 2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
	uint8_t sv[] = { 4, 3, 4, 3, 3 }, groups[] = { 0, 4, 0, 0x1d, 0, 0x17 };
	struct ext e[8];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(ks); i++)
		ks[i] = (uint8_t)g_test_rand_int_range(0, 256);
	struct ext others[] = {
		{ 0x2a2a, NULL, 0 },		/* GREASE */
		{ 43, sv, sizeof(sv) },		/* supported_versions */
		{ 10, groups, sizeof(groups) }, /* supported_groups */
		{ 51, ks, sizeof(ks) },		/* key_share */
		{ 16, alpn, sizeof(alpn) },	/* ALPN */
	};
	g_assert_cmpuint(big, <=, sizeof(pad));
	for (size_t i = 0; i <= G_N_ELEMENTS(others); i++) {
		if (i == pos) {
			if (big)
				e[n++] = (struct ext){ 21, pad, big };
			e[n++] = (struct ext){ 0, sni, sni_data(sni, host) };
		}
		if (i < G_N_ELEMENTS(others))
			e[n++] = others[i];
	}
	hello(hs, e, n, true);
}

static enum anser_sniff tls(const struct wire *m, char *name)
{
	return anser_sniff_tls(m->b, m->n, name);
}

/* Every prefix of the records: MORE until the last byte of the name
 * (at hs offset `end` - 1) is in, FOUND from there on. */
static void check_prefixes(const struct wire *rec, size_t chunk, size_t end, const char *want)
{
	size_t last = end - 1, at = last + 5 * (last / chunk + 1);
	char name[ANSER_SNIFF_NAME_MAX + 1];

	for (size_t k = 0; k <= rec->n; k++) {
		enum anser_sniff r = anser_sniff_tls(rec->b, k, name);
		if (k <= at) {
			g_assert_cmpint(r, ==, MORE);
			g_assert_cmpstr(name, ==, "");
		} else {
			g_assert_cmpint(r, ==, FOUND);
			g_assert_cmpstr(name, ==, want);
		}
	}
}

static size_t name_end(const struct wire *hs, const char *host)
{
	const uint8_t *at = memmem(hs->b, hs->n, host, strlen(host));
	g_assert_nonnull(at);
	return (size_t)(at - hs->b) + strlen(host);
}

static void test_tls_positions(void)
{
	g_autofree struct wire *hs = g_new0(struct wire, 1), *rec = g_new0(struct wire, 1);
	char name[ANSER_SNIFF_NAME_MAX + 1];
	size_t bigs[] = { 0, 3000, 9000 };
	unsigned versions[] = { 0x0301, 0x0303 };

	for (size_t pos = 0; pos <= 5; pos++)
		for (size_t b = 0; b < G_N_ELEMENTS(bigs); b++)
			for (size_t v = 0; v < G_N_ELEMENTS(versions); v++) {
				browser_hello(hs, "sniff-test.example", pos, bigs[b]);
				records(rec, hs, versions[v], 16384);
				g_assert_cmpint(tls(rec, name), ==, FOUND);
				g_assert_cmpstr(name, ==, "sniff-test.example");
				g_assert_cmpint(anser_sniff_stream(rec->b, rec->n, name), ==,
						FOUND);
				g_assert_cmpstr(name, ==, "sniff-test.example");
			}
}

static void test_tls_records(void)
{
	g_autofree struct wire *hs = g_new0(struct wire, 1), *rec = g_new0(struct wire, 1);
	char name[ANSER_SNIFF_NAME_MAX + 1];
	size_t chunks[] = { 1, 2, 7, 100, 250, 4096 };

	for (size_t pos = 0; pos <= 5; pos += 5)
		for (size_t c = 0; c < G_N_ELEMENTS(chunks); c++) {
			browser_hello(hs, "split.example.org", pos, 1000);
			records(rec, hs, 0x0301, chunks[c]);
			g_assert_cmpint(tls(rec, name), ==, FOUND);
			g_assert_cmpstr(name, ==, "split.example.org");
		}
	/* the name in the second record */
	browser_hello(hs, "second.example", 5, 10000);
	records(rec, hs, 0x0303, 8192);
	g_assert_cmpuint(name_end(hs, "second.example"), >, 8192);
	g_assert_cmpint(tls(rec, name), ==, FOUND);
	g_assert_cmpstr(name, ==, "second.example");
}

static void test_tls_prefixes(void)
{
	g_autofree struct wire *hs = g_new0(struct wire, 1), *rec = g_new0(struct wire, 1);
	struct {
		size_t pos, big, chunk;
	} cases[] = {
		{ 0, 0, 16384 }, { 5, 0, 16384 }, { 2, 3000, 16384 }, { 0, 0, 50 }, { 5, 600, 100 }
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		browser_hello(hs, "www.prefix.test", cases[i].pos, cases[i].big);
		records(rec, hs, 0x0301, cases[i].chunk);
		check_prefixes(rec, cases[i].chunk, name_end(hs, "www.prefix.test"),
			       "www.prefix.test");
	}
}

/* A hello without a name: MORE, then NONE once what is there rules a
 * name out (a server_name extension without one is whole, or the
 * declared length leaves no room for extensions), and NONE stays. */
static void check_no_name(const struct wire *hs)
{
	g_autofree struct wire *rec = g_new0(struct wire, 1);
	char name[ANSER_SNIFF_NAME_MAX + 1];
	bool none = false;

	records(rec, hs, 0x0301, 16384);
	for (size_t k = 0; k <= rec->n; k++) {
		enum anser_sniff r = anser_sniff_tls(rec->b, k, name);
		g_assert_cmpint(r, ==, none ? NONE : r);
		g_assert_cmpint(r, !=, FOUND);
		g_assert_cmpstr(name, ==, "");
		none = r == NONE;
	}
	g_assert_true(none);
}

static void test_tls_no_name(void)
{
	g_autofree struct wire *hs = g_new0(struct wire, 1);
	uint8_t sv[] = { 2, 3, 4 }, empty[] = { 0, 0 };
	uint8_t other[] = { 0, 6, 1, 0, 3, 'a', '.', 'b' }; /* name_type 1 */

	hello(hs, NULL, 0, false); /* no extensions block (TLS 1.2) */
	check_no_name(hs);
	hello(hs, NULL, 0, true); /* an empty one */
	check_no_name(hs);
	struct ext e1[] = { { 43, sv, sizeof(sv) }, { 23, NULL, 0 } };
	hello(hs, e1, G_N_ELEMENTS(e1), true);
	check_no_name(hs);
	struct ext e2[] = { { 43, sv, sizeof(sv) }, { 0, empty, sizeof(empty) } };
	hello(hs, e2, G_N_ELEMENTS(e2), true);
	check_no_name(hs);
	struct ext e3[] = { { 0, other, sizeof(other) } };
	hello(hs, e3, G_N_ELEMENTS(e3), true);
	check_no_name(hs);
	struct ext e4[] = { { 0, NULL, 0 } }; /* as a server sends it back */
	hello(hs, e4, G_N_ELEMENTS(e4), true);
	check_no_name(hs);
}

static const struct {
	const char *sent, *got; /* got NULL: NONE */
} names[] = {
	{ "example.com", "example.com" },
	{ "Example.COM", "example.com" },
	{ "example.com.", "example.com" },
	{ "WWW.EXAMPLE.ORG.", "www.example.org" },
	{ "a", "a" },
	{ "_dmarc.x-y.example", "_dmarc.x-y.example" },
	{ "1.2.3.4", NULL },
	{ "192.168.001.010.", NULL },
	{ "0x7f.0.0.1", NULL },
	{ "0x7f000001", NULL },
	{ "::1", NULL },
	{ "[::1]", NULL },
	{ "2001:db8::1", NULL },
	{ "", NULL },
	{ ".", NULL },
	{ "..", NULL },
	{ "a..b", NULL },
	{ ".example.com", NULL },
	{ "example.com..", NULL },
	{ "exa mple.com", NULL },
	{ "example.com/x", NULL },
	{ "exam\xc3\xa9ple.com", NULL },
	{ "example.com:443", NULL },
	{ "123", NULL },
	{ "123.456", NULL },
	{ "1.example", "1.example" },
};

static void test_tls_names(void)
{
	g_autofree struct wire *hs = g_new0(struct wire, 1), *rec = g_new0(struct wire, 1);
	char name[ANSER_SNIFF_NAME_MAX + 1];
	char label63[64], label64[65];

	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		browser_hello(hs, names[i].sent, 1, 0);
		records(rec, hs, 0x0301, 16384);
		enum anser_sniff r = tls(rec, name);
		if (names[i].got) {
			g_assert_cmpint(r, ==, FOUND);
			g_assert_cmpstr(name, ==, names[i].got);
		} else {
			g_assert_cmpint(r, ==, NONE);
			g_assert_cmpstr(name, ==, "");
		}
	}
	/* 253 bytes is the most, with a trailing dot or not; labels of 63 */
	memset(label63, 'a', 63);
	label63[63] = '\0';
	memset(label64, 'b', 64);
	label64[64] = '\0';
	g_autofree char *n253 =
		g_strdup_printf("%s.%s.%s.%.61s", label63, label63, label63, label63);
	g_autofree char *n253dot = g_strconcat(n253, ".", NULL);
	g_autofree char *n254 = g_strconcat("c", n253, NULL);
	g_autofree char *l64 = g_strconcat(label64, ".example", NULL);
	g_assert_cmpuint(strlen(n253), ==, 253);
	browser_hello(hs, n253, 0, 0);
	records(rec, hs, 0x0301, 16384);
	g_assert_cmpint(tls(rec, name), ==, FOUND);
	g_assert_cmpstr(name, ==, n253);
	browser_hello(hs, n253dot, 0, 0);
	records(rec, hs, 0x0301, 16384);
	g_assert_cmpint(tls(rec, name), ==, FOUND);
	g_assert_cmpstr(name, ==, n253);
	browser_hello(hs, n254, 0, 0);
	records(rec, hs, 0x0301, 16384);
	g_assert_cmpint(tls(rec, name), ==, NONE);
	browser_hello(hs, l64, 0, 0);
	records(rec, hs, 0x0301, 16384);
	g_assert_cmpint(tls(rec, name), ==, NONE);
}

static void test_tls_not_tls(void)
{
	g_autofree struct wire *hs = g_new0(struct wire, 1), *rec = g_new0(struct wire, 1);
	char name[ANSER_SNIFF_NAME_MAX + 1];

	g_assert_cmpint(anser_sniff_tls(NULL, 0, name), ==, MORE);
	g_assert_cmpint(anser_sniff_tls((const uint8_t *)"\x16", 1, name), ==, MORE);
	g_assert_cmpint(anser_sniff_tls((const uint8_t *)"\x16\x03", 2, name), ==, MORE);
	g_assert_cmpint(anser_sniff_tls((const uint8_t *)"\x16\x02", 2, name), ==, NONE);
	g_assert_cmpint(anser_sniff_tls((const uint8_t *)"\x17\x03\x03", 3, name), ==, NONE);
	g_assert_cmpint(anser_sniff_tls((const uint8_t *)"GET / ", 6, name), ==, NONE);
	/* zero-length and overlong records */
	g_assert_cmpint(anser_sniff_tls((const uint8_t *)"\x16\x03\x01\x00\x00", 5, name), ==,
			NONE);
	g_assert_cmpint(anser_sniff_tls((const uint8_t *)"\x16\x03\x01\x40\x01\x01", 6, name), ==,
			NONE);
	/* a ServerHello */
	g_assert_cmpint(anser_sniff_tls((const uint8_t *)"\x16\x03\x03\x00\x30\x02", 6, name), ==,
			NONE);
	/* the fields of a hello, each broken */
	browser_hello(hs, "broken.example", 5, 0);
	records(rec, hs, 0x0301, 16384);
	struct {
		size_t at;
		uint8_t v;
	} breaks[] = {
		{ 4, 2 },	    /* legacy_version 2.x */
		{ 4 + 2 + 32, 33 }, /* session id longer than 32 */
		{ 1, 0xff },	    /* a length the extensions do not fill */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(breaks); i++) {
		g_autofree struct wire *b = g_memdup2(rec, sizeof(*rec));
		b->b[5 + breaks[i].at] = breaks[i].v;
		g_assert_cmpint(tls(b, name), ==, NONE);
	}
	/* an extensions block longer than the hello */
	g_autofree struct wire *b = g_memdup2(rec, sizeof(*rec));
	size_t sid = b->b[5 + 4 + 2 + 32];
	size_t at = 5 + 4 + 2 + 32 + 1 + sid;
	size_t suites = (size_t)b->b[at] << 8 | b->b[at + 1];
	at += 2 + suites + 2;
	b->b[at] ^= 0x10;
	g_assert_cmpint(tls(b, name), ==, NONE);
	/* an odd cipher_suites length */
	g_autofree struct wire *c = g_memdup2(rec, sizeof(*rec));
	c->b[5 + 4 + 2 + 32 + 1 + sid + 1] ^= 1;
	g_assert_cmpint(tls(c, name), ==, NONE);
}

/* What follows the hello's records: another record before it is whole
 * means it never will be; after it, nothing matters. */
static void test_tls_after_hello(void)
{
	g_autofree struct wire *hs = g_new0(struct wire, 1), *rec = g_new0(struct wire, 1);
	g_autofree struct wire *cut = g_new0(struct wire, 1);
	char name[ANSER_SNIFF_NAME_MAX + 1];

	browser_hello(hs, "after.example", 5, 0);
	records(rec, hs, 0x0301, 100);
	put(rec, "\x17\x03\x03\x00\x02xy", 7);
	g_assert_cmpint(tls(rec, name), ==, FOUND);
	g_assert_cmpstr(name, ==, "after.example");
	/* the first record, then application data */
	put(cut, rec->b, 105);
	put(cut, "\x17\x03\x03\x00\x02xy", 7);
	g_assert_cmpint(tls(cut, name), ==, NONE);
	cut->n = 106; /* one byte of it tells */
	g_assert_cmpint(tls(cut, name), ==, NONE);
	cut->n = 105;
	g_assert_cmpint(tls(cut, name), ==, MORE);
	/* then a record header that is no record */
	cut->n = 105;
	put(cut, "\x16\x03\x01\x00\x00", 5);
	g_assert_cmpint(tls(cut, name), ==, NONE);
	/* the name past what is put together: NONE, not MORE forever */
	browser_hello(hs, "far.example", 5, 20000);
	records(rec, hs, 0x0303, 16384);
	g_assert_cmpint(tls(rec, name), ==, NONE);
}

static void test_stream(void)
{
	g_autofree struct wire *hs = g_new0(struct wire, 1), *rec = g_new0(struct wire, 1);
	char name[ANSER_SNIFF_NAME_MAX + 1];
	const char *req = "GET / HTTP/1.1\r\nHost: stream.example\r\n\r\n";

	g_assert_cmpint(anser_sniff_stream(NULL, 0, name), ==, MORE);
	browser_hello(hs, "tls.example", 3, 0);
	records(rec, hs, 0x0301, 16384);
	g_assert_cmpint(anser_sniff_stream(rec->b, rec->n, name), ==, FOUND);
	g_assert_cmpstr(name, ==, "tls.example");
	g_assert_cmpint(anser_sniff_stream((const uint8_t *)req, strlen(req), name), ==, FOUND);
	g_assert_cmpstr(name, ==, "stream.example");
	g_assert_cmpint(anser_sniff_stream((const uint8_t *)"\x16", 1, name), ==, MORE);
	g_assert_cmpint(anser_sniff_stream((const uint8_t *)"G", 1, name), ==, MORE);
	g_assert_cmpint(anser_sniff_stream((const uint8_t *)"SSH-2.0-", 8, name), ==, NONE);
	g_assert_cmpint(anser_sniff_stream((const uint8_t *)"\x05\x01\x00", 3, name), ==, NONE);
}

/* ------------------------------------------------------------ HTTP */

static const struct {
	const char *req;
	enum anser_sniff r;
	const char *name;
} requests[] = {
	{ "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", FOUND, "example.com" },
	{ "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", FOUND, "example.com" },
	{ "GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n", FOUND, "example.com" },
	{ "GET / HTTP/1.1\r\nhost: Example.COM.\r\n\r\n", FOUND, "example.com" },
	{ "GET / HTTP/1.1\r\nHOST:example.com\r\n\r\n", FOUND, "example.com" },
	{ "GET / HTTP/1.1\r\nHost: \t example.com \t\r\n\r\n", FOUND, "example.com" },
	{ "GET / HTTP/1.1\nHost: lf.example\n\n", FOUND, "lf.example" },
	{ "POST /x?y=1 HTTP/1.0\r\nUser-Agent: t\r\nAccept: */*\r\nHost: post.example\r\n\r\n",
	  FOUND, "post.example" },
	{ "HEAD / HTTP/1.1\r\nHost: a.b\r\n\r\n", FOUND, "a.b" },
	{ "PUT / HTTP/1.1\r\nHost: a.b\r\n\r\n", FOUND, "a.b" },
	{ "DELETE / HTTP/1.1\r\nHost: a.b\r\n\r\n", FOUND, "a.b" },
	{ "OPTIONS * HTTP/1.1\r\nHost: a.b\r\n\r\n", FOUND, "a.b" },
	{ "PATCH / HTTP/1.1\r\nHost: a.b\r\n\r\n", FOUND, "a.b" },
	{ "TRACE / HTTP/1.1\r\nHost: a.b\r\n\r\n", FOUND, "a.b" },
	{ "CONNECT a.b:443 HTTP/1.1\r\nHost: c.d:443\r\n\r\n", FOUND, "c.d" },
	/* no Host: the target's authority, if it has one */
	{ "CONNECT proxy.example:443 HTTP/1.1\r\n\r\n", FOUND, "proxy.example" },
	{ "GET http://abs.example/p HTTP/1.1\r\n\r\n", FOUND, "abs.example" },
	{ "GET http://user:pw@abs.example:81?q HTTP/1.1\r\nHost:\r\n\r\n", FOUND, "abs.example" },
	{ "GET http://abs.example/p HTTP/1.1\r\nHost: host.example\r\n\r\n", FOUND,
	  "host.example" },
	{ "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.0\r\n\r\n", NONE, NULL },
	{ "OPTIONS * HTTP/1.1\r\n\r\n", NONE, NULL },
	{ "GET http://[::1]/ HTTP/1.1\r\n\r\n", NONE, NULL },
	/* IP literals */
	{ "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", NONE, NULL },
	/* bad Host values, folding, garbage */
	{ "GET / HTTP/1.1\r\nHost: example.com:80x\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\nHost: example.com\r\n more.example\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\nHost: example.com\r\n\tmore\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\nX-Long: a\r\n folded\r\nHost: fold.example\r\n\r\n", FOUND,
	  "fold.example" },
	{ "GET / HTTP/1.1\r\n Host: example.com\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\nHost : example.com\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\nHo st: example.com\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\n: example.com\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\ngarbage\r\nHost: example.com\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\nX-Host: x.example\r\nHosts: y.example\r\nHost: z.example\r\n\r\n",
	  FOUND, "z.example" },
	{ "GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", FOUND, "a.example" },
	{ "GET / HTTP/1.1\r\rHost: a.example\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1\r\nHost:\r\n\rX", NONE, NULL },
	{ "GET / HTTP/1.x\r\nHost: a.b\r\n\r\n", NONE, NULL },
	/* not HTTP/1 */
	{ "SSH-2.0-OpenSSH_9.2\r\n", NONE, NULL },
	{ "get / HTTP/1.1\r\nHost: a.b\r\n\r\n", NONE, NULL },
	{ "GET  / HTTP/1.1\r\nHost: a.b\r\n\r\n", NONE, NULL },
	{ "GET\t/ HTTP/1.1\r\nHost: a.b\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/2.0\r\nHost: a.b\r\n\r\n", NONE, NULL },
	{ "GET / http/1.1\r\nHost: a.b\r\n\r\n", NONE, NULL },
	{ "GET / HTTP/1.1 \r\nHost: a.b\r\n\r\n", NONE, NULL },
	{ "GET /\r\n", NONE, NULL },
	{ "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", NONE, NULL },
	{ "BREW / HTCPCP/1.0\r\n", NONE, NULL },
	{ "GETS / HTTP/1.1\r\n", NONE, NULL },
	/* partial */
	{ "", MORE, NULL },
	{ "G", MORE, NULL },
	{ "CONNEC", MORE, NULL },
	{ "GET ", MORE, NULL },
	{ "GET /index.html", MORE, NULL },
	{ "GET / HTTP/1.", MORE, NULL },
	{ "GET / HTTP/1.1\r", MORE, NULL },
	{ "GET / HTTP/1.1\r\nAccept: */*\r\nHo", MORE, NULL },
	{ "GET / HTTP/1.1\r\nHost: example.co", MORE, NULL },
	{ "GET / HTTP/1.1\r\nHost: example.com\r\n", MORE, NULL },
	{ "GET / HTTP/1.1\r\nHost:\r\n", MORE, NULL },
	{ "GET / HTTP/1.1\r\n\r", MORE, NULL },
};

static void test_http_requests(void)
{
	char name[ANSER_SNIFF_NAME_MAX + 1];

	for (size_t i = 0; i < G_N_ELEMENTS(requests); i++) {
		const char *req = requests[i].req;
		g_autofree char *esc = g_strescape(req, NULL);
		g_test_message("%s", esc);
		/* an exact-size copy, for ASan */
		g_autofree uint8_t *p = g_memdup2(req, strlen(req) + 1);
		enum anser_sniff r = anser_sniff_http(p, strlen(req), name);
		g_assert_cmpint(r, ==, requests[i].r);
		g_assert_cmpstr(name, ==, requests[i].name ? requests[i].name : "");
		g_assert_cmpint(anser_sniff_stream(p, strlen(req), name), ==, requests[i].r);
	}
}

/* Every prefix: MORE until the byte after the Host line's LF (which
 * shows that the line does not fold), FOUND from there. */
static void test_http_prefixes(void)
{
	const char *reqs[] = {
		"GET /a?b HTTP/1.1\r\nUser-Agent: c\r\nHost: www.prefix.test:8080\r\nA: b\r\n\r\n",
		"CONNECT x.test:443 HTTP/1.1\nHost: www.prefix.test\n\n",
		"GET http://www.prefix.test/ HTTP/1.1\r\nAccept: */*\r\n\r\n",
	};
	char name[ANSER_SNIFF_NAME_MAX + 1];

	for (size_t i = 0; i < G_N_ELEMENTS(reqs); i++) {
		size_t n = strlen(reqs[i]), at;
		const char *host = strstr(reqs[i], "Host:");
		if (host)
			at = (size_t)(strchr(host, '\n') - reqs[i]) + 2;
		else
			at = n; /* the empty line's LF */
		for (size_t k = 0; k <= n; k++) {
			g_autofree uint8_t *p = g_memdup2(reqs[i], k ? k : 1);
			enum anser_sniff r = anser_sniff_http(p, k, name);
			if (k < at) {
				g_assert_cmpint(r, ==, MORE);
			} else {
				g_assert_cmpint(r, ==, FOUND);
				g_assert_cmpstr(name, ==, "www.prefix.test");
			}
		}
	}
}

/* ------------------------------------------------------------ QUIC */

static const uint8_t rfc_dcid[] = { 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08 };

static const char rfc9001_packet[] =
	"c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11d242b123dc9bd8ba"
	"b936b47d92ec356c0bab7df5976d27cd449f63300099f3991c260ec4c60d17b31f8429157bb35a12"
	"82a643a8d2262cad67500cadb8e7378c8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6"
	"005f80fcb7df621230c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5"
	"457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c2084dce25ff9b06cde5"
	"35d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec4e15daf8500a6ef69ec4e3feb6b1d98e"
	"610ac8b7ec3faf6ad760b7bad1db4ba3485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e3"
	"0c5c4287e53805db059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c"
	"7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f89937f5a67258bf63"
	"ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556be52afe3f565636ad1b17d508b73d874"
	"3eeb524be22b3dcbc2c7468d54119c7468449a13d8e3b95811a198f3491de3e7fe942b330407abf8"
	"2a4ed7c1b311663ac69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00"
	"f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632291d6a418211cc29"
	"62e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe5896425c5bac4aee82e57a85aaf4e2513e4f0"
	"5796b07ba2ee47d80506f8d2c25e50fd14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c"
	"1f28ff18f58891ffef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198"
	"e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009ddc324044e847a4f4a"
	"0ab34f719595de37252d6235365e9b84392b061085349d73203a4a13e96f5432ec0fd4a1ee65accd"
	"d5e3904df54c1da510b0ff20dcc0c77fcb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de3"
	"54270123cb11450efc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade"
	"a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e72404790a2181014f3b94a"
	"4e97d117b438130368cc39dbb2d198065ae3986547926cd2162f40a29f0c3c8745c0f50fba3852e5"
	"66d44575c29d39a03f0cda721984b6f440591f355e12d439ff150aab7613499dbd49adabc8676eef"
	"023b15b65bfc5ca06948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e"
	"8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0be79e2fb8f5d5fbb"
	"e2e30ecadd220723c8c0aea8078cdfcb3868263ff8f0940054da48781893a7e49ad5aff4af300cd8"
	"04a6b6279ab3ff3afb64491c85194aab760d58a606654f9f4400e8b38591356fbf6425aca26dc852"
	"44259ff2b19c41b9f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4"
	"056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd46840647e78bfe706ca4cf5"
	"e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241e221af44860018ab0856972e194cd934";
static const char rfc9369_packet[] =
	"d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485dd04de806071bf03"
	"dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad049f9a3dd4425ae4d0992cfff18ecf0fdb"
	"5a842d09747052f17ac2053d21f57c5d250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4"
	"f03b55545243cf1a12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500"
	"cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd6818f6625efce3b6de"
	"f6ba7e4b37a40f7732e093daa7d52190935b8da58976ff3312ae50b187c1433c0f028edcc4c2838b"
	"6a9bfc226ca4b4530e7a4ccee1bfa2a3d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c"
	"7777c023462239dd6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520"
	"bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045636e7c0c0fe4eb0f"
	"697545460c806910d2c355f1d253bc9d2452aaa549e27a1fac7cf4ed77f322e8fa894b6a83810a34"
	"b361901751a6f5eb65a0326e07de7c1216ccce2d0193f958bb3850a833f7ae432b65bc5a53975c15"
	"5aa4bcb4f7b2c4e54df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4"
	"fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b8017c25ca9052ca1"
	"079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de714d19d61370f8149748c72f132f0fc99"
	"f34d766c6938597040d8f9e2bb522ff99c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c44"
	"6151adfeceb51b91abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd"
	"80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db848265e3e5eb72df"
	"e8299ad7481a408322cac55786e52f633b2fb6b614eaed18d703dd84045a274ae8bfa73379661388"
	"d6991fe39b0d93debb41700b41f90a15c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e5"
	"7f32162a8560cacc7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61"
	"f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e7071010d3f270121b493c"
	"e85054ef58bada42310138fe081adb04e2bd901f2f13458b3d6758158197107c14ebb193230cd115"
	"7380aa79cae1374a7c1e5bbcb80ee23e06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6"
	"adc38b7ca7331dce8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1"
	"34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1e86215c2d54e6670"
	"e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd5d3b22dc2be80919b490437ae4f36a0a"
	"e55edf1d0b5cb4e9a3ecabee93dfc6e38d209d0fa6536d27a5d6fbb17641cde27525d61093f1b280"
	"72d111b2b4ae5f89d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53"
	"6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb199a37ddec60054547"
	"3cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96ba18b2faa745b6fe189cf772a9f84cbfc";
static const char rfc_crypto[] =
	"060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69"
	"484c00000413011302010000c000000010000e00000b6578616d706c652e636f6dff01000100000a"
	"00080006001d0017001800100007000504616c706e000500050100000000003300260024001d0020"
	"9370b2c9caa47fbabaf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
	"0d0010000e0403050306030203080408050806002d00020101001c00024001003900320408ffffff"
	"ffffffffff05048000ffff07048000ffff0801100104800075300901100f088394c8f03e51570806"
	"048000ffff";

static void check_keys(uint32_t version, const char *key, const char *iv, const char *hp)
{
	struct anser_quic_keys k;
	uint8_t want[16];

	g_assert_cmpint(anser_quic_client_keys(version, rfc_dcid, sizeof(rfc_dcid), &k), ==, 0);
	g_assert_cmpuint(unhex(key, want, sizeof(want)), ==, 16);
	g_assert_cmpmem(k.key, 16, want, 16);
	g_assert_cmpuint(unhex(iv, want, sizeof(want)), ==, 12);
	g_assert_cmpmem(k.iv, 12, want, 12);
	g_assert_cmpuint(unhex(hp, want, sizeof(want)), ==, 16);
	g_assert_cmpmem(k.hp, 16, want, 16);
}

/* RFC 9001 A.1, RFC 9369 A.1 */
static void test_quic_keys(void)
{
	struct anser_quic_keys k;

	check_keys(QUICSEAL_V1, "1f369613dd76d5467730efcbe3b1a22d", "fa044b2f42a3fd3b46fb255c",
		   "9f50449e04a0e810283a1e9933adedd2");
	check_keys(QUICSEAL_V2, "8b1a0bc121284290a29e0971b5cd045d", "91f73e2351d8fa91660e909f",
		   "45b95e15235d6f45a6b19cbcb0294ba9");
	g_assert_cmpint(anser_quic_client_keys(0xff00001d, rfc_dcid, 8, &k), ==, -EPROTONOSUPPORT);
	g_assert_cmpint(anser_quic_client_keys(0, rfc_dcid, 8, &k), ==, -EPROTONOSUPPORT);
	g_assert_cmpint(anser_quic_client_keys(2, rfc_dcid, 8, &k), ==, -EPROTONOSUPPORT);
	g_assert_cmpint(anser_quic_client_keys(QUICSEAL_V1, NULL, 0, &k), ==, 0);
}

static enum anser_sniff quic1(const uint8_t *p, size_t n, char *name)
{
	return anser_sniff_quic(&p, &n, 1, name);
}

/* RFC 9001 A.2 and RFC 9369 A.2: the sample client Initials open, and
 * quicseal() makes them byte for byte. */
static void test_quic_rfc(void)
{
	uint8_t pkt[1200], frames[1162] = { 0 }, sealed[1300];
	char name[ANSER_SNIFF_NAME_MAX + 1];
	const char *hex[] = { rfc9001_packet, rfc9369_packet };
	uint32_t versions[] = { QUICSEAL_V1, QUICSEAL_V2 };

	g_assert_cmpuint(unhex(rfc_crypto, frames, sizeof(frames)), ==, 245);
	for (size_t v = 0; v < 2; v++) {
		g_assert_cmpuint(unhex(hex[v], pkt, sizeof(pkt)), ==, 1200);
		g_assert_cmpint(quic1(pkt, sizeof(pkt), name), ==, FOUND);
		g_assert_cmpstr(name, ==, "example.com");
		struct quicseal q = { .version = versions[v],
				      .dcid = rfc_dcid,
				      .dcid_len = 8,
				      .pn = 2,
				      .pn_len = 4 };
		size_t n = quicseal(&q, frames, sizeof(frames), sealed, sizeof(sealed));
		g_assert_cmpmem(sealed, n, pkt, sizeof(pkt));
		/* one bit off anywhere past the header: it does not open */
		for (size_t i = 22; i < sizeof(pkt); i += 97) {
			pkt[i] ^= 0x01;
			g_assert_cmpint(quic1(pkt, sizeof(pkt), name), ==, NONE);
			g_assert_cmpstr(name, ==, "");
			pkt[i] ^= 0x01;
		}
		/* the Version field: another version reads as nothing */
		pkt[4] ^= 0x04;
		g_assert_cmpint(quic1(pkt, sizeof(pkt), name), ==, NONE);
		pkt[4] ^= 0x04;
		/* cut: not a whole packet */
		g_assert_cmpint(quic1(pkt, sizeof(pkt) - 1, name), ==, NONE);
	}
}

/* The RFC's hello (with server_name example.com), handshake message only. */
static size_t rfc_hello(uint8_t *out)
{
	uint8_t f[245];
	unhex(rfc_crypto, f, sizeof(f));
	memcpy(out, f + 4, 241);
	return 241;
}

static void crypto_frame(struct wire *m, uint64_t off, const uint8_t *p, size_t n)
{
	varint(m, 6);
	varint(m, off);
	varint(m, n);
	put(m, p, n);
}

static const uint8_t dcid[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
static const uint8_t scid[] = { 0xaa, 0xbb, 0xcc, 0xdd };

/* An Initial carrying m's frames into `out`; its length. */
static size_t initial(uint32_t version, uint32_t pn, const struct wire *m, uint8_t *out, size_t cap)
{
	struct quicseal q = { .version = version,
			      .dcid = dcid,
			      .dcid_len = sizeof(dcid),
			      .scid = scid,
			      .scid_len = sizeof(scid),
			      .pn = pn,
			      .pn_len = 1 + pn % 4 };
	size_t n = quicseal(&q, m->b, m->n, out, cap);
	g_assert_cmpuint(n, >, 0);
	return n;
}

static void test_quic_sealed(void)
{
	g_autofree struct wire *m = g_new0(struct wire, 1);
	uint8_t ch[300], pkt[2048];
	char name[ANSER_SNIFF_NAME_MAX + 1];
	size_t chn = rfc_hello(ch);
	uint32_t versions[] = { QUICSEAL_V1, QUICSEAL_V2 };

	for (size_t v = 0; v < 2; v++) {
		/* PING, PADDING, ACK, the hello in three CRYPTO frames out of order */
		m->n = 0;
		u8(m, 0x01);
		put(m, "\0\0\0\0", 4);
		put(m, "\x02\x05\x00\x01\x02\x01\x00", 7); /* ACK: two ranges */
		crypto_frame(m, 100, ch + 100, chn - 100);
		u8(m, 0x00);
		crypto_frame(m, 0, ch, 40);
		put(m, "\x03\x05\x00\x00\x01\x07\x08\x09", 8); /* ACK with ECN counts */
		crypto_frame(m, 40, ch + 40, 60);
		put(m,
		    "\x1c\x00\x00\x03"
		    "bye",
		    7); /* CONNECTION_CLOSE */
		memset(m->b + m->n, 0, 900);
		m->n += 900;
		for (uint32_t pn = 0; pn < 4; pn++) {
			size_t n = initial(versions[v], pn, m, pkt, sizeof(pkt));
			g_assert_cmpint(quic1(pkt, n, name), ==, FOUND);
			g_assert_cmpstr(name, ==, "example.com");
		}
		/* overlapping CRYPTO frames, a long token */
		m->n = 0;
		crypto_frame(m, 10, ch + 10, 150);
		crypto_frame(m, 0, ch, 50);
		crypto_frame(m, 120, ch + 120, chn - 120);
		uint8_t token[100];
		memset(token, 0x5a, sizeof(token));
		struct quicseal q = { .version = versions[v],
				      .dcid = dcid,
				      .dcid_len = 20,
				      .token = token,
				      .token_len = sizeof(token),
				      .pn = 0,
				      .pn_len = 1 };
		uint8_t d20[20] = { 9 };
		q.dcid = d20;
		size_t n = quicseal(&q, m->b, m->n, pkt, sizeof(pkt));
		g_assert_cmpint(quic1(pkt, n, name), ==, FOUND);
		g_assert_cmpstr(name, ==, "example.com");
	}
}

/* A hello over two Initials: either alone is MORE, both are FOUND in
 * any order, in two datagrams or coalesced in one. */
static void test_quic_split(void)
{
	g_autofree struct wire *m = g_new0(struct wire, 1);
	uint8_t ch[300], a[2048], b[2048], ab[4096];
	char name[ANSER_SNIFF_NAME_MAX + 1];
	size_t chn = rfc_hello(ch);

	for (size_t v = 0; v < 2; v++) {
		uint32_t version = v ? QUICSEAL_V2 : QUICSEAL_V1;
		m->n = 0;
		crypto_frame(m, 0, ch, 60); /* cut before the name */
		size_t an = initial(version, 0, m, a, sizeof(a));
		m->n = 0;
		crypto_frame(m, 60, ch + 60, chn - 60);
		size_t bn = initial(version, 1, m, b, sizeof(b));
		const uint8_t *pk[] = { a, b }, *rev[] = { b, a };
		size_t ln[] = { an, bn }, rln[] = { bn, an };
		g_assert_cmpint(anser_sniff_quic(pk, ln, 1, name), ==, MORE);
		g_assert_cmpint(anser_sniff_quic(rev, rln, 1, name), ==, MORE);
		g_assert_cmpint(anser_sniff_quic(pk, ln, 2, name), ==, FOUND);
		g_assert_cmpstr(name, ==, "example.com");
		g_assert_cmpint(anser_sniff_quic(rev, rln, 2, name), ==, FOUND);
		g_assert_cmpstr(name, ==, "example.com");
		memcpy(ab, a, an);
		memcpy(ab + an, b, bn);
		g_assert_cmpint(quic1(ab, an + bn, name), ==, FOUND);
		g_assert_cmpstr(name, ==, "example.com");
		/* a datagram that does not open between them changes nothing */
		uint8_t junk[1200];
		memcpy(junk, b, MIN(bn, sizeof(junk)));
		junk[bn / 2] ^= 0x80;
		const uint8_t *pj[] = { a, junk, b };
		size_t lj[] = { an, MIN(bn, sizeof(junk)), bn };
		g_assert_cmpint(anser_sniff_quic(pj, lj, 3, name), ==, FOUND);
		g_assert_cmpint(anser_sniff_quic(pj, lj, 2, name), ==, MORE);
		/* empty datagrams, NULL ones */
		const uint8_t *pe[] = { NULL, a, (const uint8_t *)"", b };
		size_t le[] = { 0, an, 0, bn };
		g_assert_cmpint(anser_sniff_quic(pe, le, 4, name), ==, FOUND);
	}
}

/* Coalesced packets (RFC 9000 12.2): an Initial, then other long-header
 * packets or junk; a 0-RTT packet before it is stepped over. */
static void test_quic_coalesced(void)
{
	g_autofree struct wire *m = g_new0(struct wire, 1);
	uint8_t ch[300], d[4096];
	char name[ANSER_SNIFF_NAME_MAX + 1];
	size_t chn = rfc_hello(ch);

	for (size_t v = 0; v < 2; v++) {
		uint32_t version = v ? QUICSEAL_V2 : QUICSEAL_V1;
		struct quicseal other = {
			.version = version, .dcid = dcid, .dcid_len = 8, .pn = 0, .pn_len = 2
		};
		m->n = 0;
		crypto_frame(m, 0, ch, chn);
		size_t n = initial(version, 0, m, d, sizeof(d));
		/* then junk */
		memset(d + n, 0xee, 50);
		g_assert_cmpint(quic1(d, n + 50, name), ==, FOUND);
		/* then a Handshake and a 0-RTT packet */
		other.type = QUICSEAL_HANDSHAKE;
		n += quicseal(&other, (const uint8_t *)"\x01", 1, d + n, sizeof(d) - n);
		other.type = QUICSEAL_0RTT;
		n += quicseal(&other, (const uint8_t *)"\x01", 1, d + n, sizeof(d) - n);
		g_assert_cmpint(quic1(d, n, name), ==, FOUND);
		g_assert_cmpstr(name, ==, "example.com");
		/* a 0-RTT packet first */
		size_t zn = quicseal(&other, (const uint8_t *)"\x01\x01\x01", 3, d, sizeof(d));
		n = zn + initial(version, 0, m, d + zn, sizeof(d) - zn);
		g_assert_cmpint(quic1(d, n, name), ==, FOUND);
		g_assert_cmpstr(name, ==, "example.com");
		/* a 0-RTT packet alone: no Initial, nothing */
		g_assert_cmpint(quic1(d, zn, name), ==, NONE);
		/* the Initial after a short-header packet is not reached */
		d[0] = 0x40;
		g_assert_cmpint(quic1(d, n, name), ==, NONE);
	}
}

static void test_quic_not_initial(void)
{
	g_autofree struct wire *m = g_new0(struct wire, 1);
	uint8_t ch[300], pkt[4096];
	char name[ANSER_SNIFF_NAME_MAX + 1];
	size_t chn = rfc_hello(ch), n;

	g_assert_cmpint(anser_sniff_quic(NULL, NULL, 0, name), ==, MORE);
	g_assert_cmpint(quic1((const uint8_t *)"", 0, name), ==, NONE);
	g_assert_cmpint(quic1((const uint8_t *)"\xc0", 1, name), ==, NONE);
	m->n = 0;
	crypto_frame(m, 0, ch, chn);
	/* Version Negotiation: version 0 */
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	memset(pkt + 1, 0, 4);
	g_assert_cmpint(quic1(pkt, n, name), ==, NONE);
	/* another version (draft-29) */
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	memcpy(pkt + 1, "\xff\x00\x00\x1d", 4);
	g_assert_cmpint(quic1(pkt, n, name), ==, NONE);
	/* v1's Initial type bits under v2 are Retry's */
	n = initial(QUICSEAL_V2, 0, m, pkt, sizeof(pkt));
	pkt[0] &= 0xcf;
	g_assert_cmpint(quic1(pkt, n, name), ==, NONE);
	/* a short header */
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	pkt[0] &= 0x7f;
	g_assert_cmpint(quic1(pkt, n, name), ==, NONE);
	/* a corrupted tag */
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	pkt[n - 1] ^= 0x20;
	g_assert_cmpint(quic1(pkt, n, name), ==, NONE);
	/* a DCID longer than 20 */
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	pkt[5] = 21;
	g_assert_cmpint(quic1(pkt, n, name), ==, NONE);
	/* a Length past the datagram */
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	g_assert_cmpint(quic1(pkt, n - 1, name), ==, NONE);
	/* the fixed bit cleared (RFC 9287 greasing) is still read */
	struct quicseal q = { .version = QUICSEAL_V1,
			      .dcid = dcid,
			      .dcid_len = 8,
			      .pn_len = 1,
			      .no_fixed_bit = true };
	n = quicseal(&q, m->b, m->n, pkt, sizeof(pkt));
	g_assert_cmpint(pkt[0] & 0x40, ==, 0);
	g_assert_cmpint(quic1(pkt, n, name), ==, FOUND);
	/* the reserved bits set under protection */
	q.no_fixed_bit = false;
	for (q.reserved = 0; q.reserved < 4; q.reserved++) {
		n = quicseal(&q, m->b, m->n, pkt, sizeof(pkt));
		g_assert_cmpint(quic1(pkt, n, name), ==, q.reserved ? NONE : FOUND);
	}
	/* a packet bigger than we open */
	memset(m->b + m->n, 0, 2100);
	m->n += 2100;
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	g_assert_cmpint(quic1(pkt, n, name), ==, NONE);
	/* no ClientHello: a ServerHello-typed message, an empty payload */
	m->n = 0;
	crypto_frame(m, 0, (const uint8_t *)"\x02\x00\x00\x04", 4);
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	g_assert_cmpint(quic1(pkt, n, name), ==, NONE);
	m->n = 0;
	u8(m, 1);
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	g_assert_cmpint(quic1(pkt, n, name), ==, MORE); /* opened; the hello may follow */
}

/* Frames that may not be in an Initial end the packet there. */
static void test_quic_frames(void)
{
	g_autofree struct wire *m = g_new0(struct wire, 1);
	uint8_t ch[300], pkt[2048];
	char name[ANSER_SNIFF_NAME_MAX + 1];
	size_t chn = rfc_hello(ch), n;

	m->n = 0;
	crypto_frame(m, 0, ch, chn);
	put(m, "\x08\x00\x00", 3); /* STREAM */
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	g_assert_cmpint(quic1(pkt, n, name), ==, FOUND);
	m->n = 0;
	put(m, "\x08\x00\x00", 3);
	crypto_frame(m, 0, ch, chn);
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	g_assert_cmpint(quic1(pkt, n, name), ==, MORE);
	/* a CRYPTO frame longer than the packet */
	m->n = 0;
	crypto_frame(m, 0, ch, chn);
	m->b[2] += 1;
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	g_assert_cmpint(quic1(pkt, n, name), ==, MORE);
	/* an ACK cut short */
	m->n = 0;
	put(m, "\x02\x05\x00\x40", 4);
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	g_assert_cmpint(quic1(pkt, n, name), ==, MORE);
	/* a frame type in a two-byte varint: PADDING sent long is not PADDING
	 * we skip byte by byte, but it is still type 0 */
	m->n = 0;
	put(m, "\x40\x00", 2);
	crypto_frame(m, 0, ch, chn);
	n = initial(QUICSEAL_V1, 0, m, pkt, sizeof(pkt));
	g_assert_cmpint(quic1(pkt, n, name), ==, FOUND);
	/* a complete hello without server_name */
	g_autofree struct wire *hs = g_new0(struct wire, 1);
	uint8_t sv[] = { 2, 3, 4 };
	struct ext e[] = { { 43, sv, sizeof(sv) } };
	hello(hs, e, 1, true);
	m->n = 0;
	crypto_frame(m, 0, hs->b, hs->n);
	n = initial(QUICSEAL_V2, 0, m, pkt, sizeof(pkt));
	g_assert_cmpint(quic1(pkt, n, name), ==, NONE);
}

/* Every prefix of the CRYPTO stream, one Initial each: MORE, then FOUND
 * once the name is whole. */
static void test_quic_prefixes(void)
{
	g_autofree struct wire *m = g_new0(struct wire, 1), *hs = g_new0(struct wire, 1);
	uint8_t pkt[2048];
	char name[ANSER_SNIFF_NAME_MAX + 1];

	browser_hello(hs, "quic.prefix.test", 5, 300);
	size_t end = name_end(hs, "quic.prefix.test");
	for (size_t k = 0; k <= hs->n; k++) {
		m->n = 0;
		crypto_frame(m, 0, hs->b, k);
		size_t n = initial(QUICSEAL_V1, (uint32_t)(k % 7), m, pkt, sizeof(pkt));
		enum anser_sniff r = quic1(pkt, n, name);
		g_assert_cmpint(r, ==, k < end ? MORE : FOUND);
	}
}

/* A hello bigger than what is put together: the name past it is not
 * waited for; data at offsets past it is dropped. */
static void test_quic_limits(void)
{
	g_autofree struct wire *m = g_new0(struct wire, 1), *hs = g_new0(struct wire, 1);
	uint8_t d[8][2048];
	const uint8_t *pk[8];
	size_t ln[8], k = 0;
	char name[ANSER_SNIFF_NAME_MAX + 1];

	browser_hello(hs, "far.example", 5, 9000);
	for (size_t off = 0; off < hs->n; off += 1400, k++) {
		m->n = 0;
		crypto_frame(m, off, hs->b + off, MIN(1400, hs->n - off));
		ln[k] = initial(QUICSEAL_V1, (uint32_t)k, m, d[k], sizeof(d[k]));
		pk[k] = d[k];
	}
	g_assert_cmpuint(k, <=, 8);
	g_assert_cmpint(anser_sniff_quic(pk, ln, k, name), ==, NONE);
	g_assert_cmpint(anser_sniff_quic(pk, ln, 5, name), ==, MORE);
	/* the same with the padding at 3000: found */
	browser_hello(hs, "near.example", 5, 3000);
	k = 0;
	for (size_t off = 0; off < hs->n; off += 1400, k++) {
		m->n = 0;
		crypto_frame(m, off, hs->b + off, MIN(1400, hs->n - off));
		ln[k] = initial(QUICSEAL_V1, (uint32_t)k, m, d[k], sizeof(d[k]));
		pk[k] = d[k];
	}
	g_assert_cmpint(anser_sniff_quic(pk, ln, k, name), ==, FOUND);
	g_assert_cmpstr(name, ==, "near.example");
	/* only data far out */
	m->n = 0;
	crypto_frame(m, 100000, hs->b, 100);
	ln[0] = initial(QUICSEAL_V1, 0, m, d[0], sizeof(d[0]));
	g_assert_cmpint(anser_sniff_quic(pk, ln, 1, name), ==, MORE);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/sniff/tls/positions", test_tls_positions);
	g_test_add_func("/sniff/tls/records", test_tls_records);
	g_test_add_func("/sniff/tls/prefixes", test_tls_prefixes);
	g_test_add_func("/sniff/tls/no-name", test_tls_no_name);
	g_test_add_func("/sniff/tls/names", test_tls_names);
	g_test_add_func("/sniff/tls/not-tls", test_tls_not_tls);
	g_test_add_func("/sniff/tls/after-hello", test_tls_after_hello);
	g_test_add_func("/sniff/stream", test_stream);
	g_test_add_func("/sniff/http/requests", test_http_requests);
	g_test_add_func("/sniff/http/prefixes", test_http_prefixes);
	g_test_add_func("/sniff/quic/keys", test_quic_keys);
	g_test_add_func("/sniff/quic/rfc", test_quic_rfc);
	g_test_add_func("/sniff/quic/sealed", test_quic_sealed);
	g_test_add_func("/sniff/quic/split", test_quic_split);
	g_test_add_func("/sniff/quic/coalesced", test_quic_coalesced);
	g_test_add_func("/sniff/quic/not-initial", test_quic_not_initial);
	g_test_add_func("/sniff/quic/frames", test_quic_frames);
	g_test_add_func("/sniff/quic/prefixes", test_quic_prefixes);
	g_test_add_func("/sniff/quic/limits", test_quic_limits);
	return g_test_run();
}
