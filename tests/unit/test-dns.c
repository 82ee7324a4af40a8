// SPDX-License-Identifier: GPL-2.0-or-later
/* DNS messages: the query checks with unbound's verdicts (drop below 12
 * bytes and QR=1; FORMERR for QDCOUNT != 1, answer or authority records,
 * cut or overlong names, label type 0x40, pointer loops and forward
 * pointers, two OPT records or one not at the root; NOTIMP for opcodes
 * other than QUERY; BADVERS for EDNS version 1), the error replies, names
 * as text, and response summaries (CNAME chains, minimum TTL over the
 * answer, SOA minimum for negative answers, extended rcode). */
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "daemon/config/config.h"
#include "daemon/dns/cache.h"
#include "daemon/dns/router.h"
#include "daemon/dns/upstream.h"
#include "daemon/dns/message.h"
#include "wire.h"

/* Builds messages byte by byte. */
/* "www.example.test" -> labels; "" -> the root */
static void name(struct wire *m, const char *dotted)
{
	g_auto(GStrv) labels = g_strsplit(dotted, ".", -1);
	for (size_t i = 0; labels[i]; i++) {
		size_t l = strlen(labels[i]);
		if (!l)
			continue;
		u8(m, (unsigned)l);
		put(m, labels[i], l);
	}
	u8(m, 0);
}

static void header(struct wire *m, unsigned id, unsigned flags, unsigned qd, unsigned an,
		   unsigned ns, unsigned ar)
{
	m->n = 0;
	u16(m, id);
	u16(m, flags);
	u16(m, qd);
	u16(m, an);
	u16(m, ns);
	u16(m, ar);
}

static void opt(struct wire *m, unsigned size, unsigned version, bool dobit)
{
	u8(m, 0);
	u16(m, ANSER_DNS_OPT);
	u16(m, size);
	u8(m, 0);
	u8(m, version);
	u16(m, dobit ? 0x8000 : 0);
	u16(m, 0);
}

/* A good query: id 0x1234, RD, one question, and EDNS with this UDP
 * size and DO (0: no EDNS). */
static void query_sized(struct wire *m, const char *qname, unsigned qtype, unsigned udp_size)
{
	header(m, 0x1234, 0x0100, 1, 0, 0, udp_size ? 1 : 0);
	name(m, qname);
	u16(m, qtype);
	u16(m, 1);
	if (udp_size)
		opt(m, udp_size, 0, true);
}

static void query(struct wire *m, const char *qname, unsigned qtype, bool edns)
{
	query_sized(m, qname, qtype, edns ? 1232 : 0);
}

static enum anser_dns_verdict verdict(const struct wire *m, int *rcode)
{
	struct anser_dns_query q;
	enum anser_dns_verdict v = anser_dns_parse_query(m->b, m->n, &q);
	*rcode = q.rcode;
	return v;
}

static void expect(const struct wire *m, enum anser_dns_verdict want, int want_rcode,
		   const char *what)
{
	int rcode;
	enum anser_dns_verdict v = verdict(m, &rcode);
	if (v != want || (v == ANSER_DNS_REPLY_ERR && rcode != want_rcode))
		g_error("%s: verdict %d rcode %d, expected %d rcode %d", what, v, rcode, want,
			want_rcode);
}

/* A stub resolver's query: what the checker and bench-dnsq send. */
static void test_stub_query(void)
{
	uint8_t b[600];
	struct anser_dns_query q;
	char text[300];
	ssize_t n = anser_dns_stub_query("www.Example.test.", ANSER_DNS_A, 0xbeef, b, sizeof(b));

	g_assert_cmpint(n, ==, 12 + 18 + 4);
	g_assert_cmpint(anser_dns_parse_query(b, (size_t)n, &q), ==, ANSER_DNS_QUERY);
	g_assert_cmpuint(q.id, ==, 0xbeef);
	g_assert_true(q.rd && !q.cd && !q.edns);
	g_assert_cmpuint(q.qtype, ==, ANSER_DNS_A);
	g_assert_cmpuint(q.qclass, ==, 1);
	anser_dns_name_text(q.qname, q.qname_len, text, sizeof(text));
	g_assert_cmpstr(text, ==, "www.example.test");
	/* the root, either way */
	g_assert_cmpint(anser_dns_stub_query(".", ANSER_DNS_NS, 1, b, sizeof(b)), ==, 12 + 1 + 4);
	g_assert_cmpint(anser_dns_stub_query("", ANSER_DNS_NS, 1, b, sizeof(b)), ==, 12 + 1 + 4);
	/* no empty or long labels, no names over 255 bytes, no overflow */
	g_assert_cmpint(anser_dns_stub_query("a..b", ANSER_DNS_A, 1, b, sizeof(b)), ==, -EINVAL);
	g_assert_cmpint(anser_dns_stub_query(".a", ANSER_DNS_A, 1, b, sizeof(b)), ==, -EINVAL);
	char label[70], longname[300];
	memset(label, 'x', 64);
	label[64] = 0;
	g_assert_cmpint(anser_dns_stub_query(label, ANSER_DNS_A, 1, b, sizeof(b)), ==, -EINVAL);
	label[63] = 0;
	g_assert_cmpint(anser_dns_stub_query(label, ANSER_DNS_A, 1, b, sizeof(b)), ==, 12 + 65 + 4);
	/* 4 x 63-byte labels: 257 bytes in wire form; then 256, then 255
	 * (the most there can be) */
	snprintf(longname, sizeof(longname), "%s.%s.%s.%s", label, label, label, label);
	g_assert_cmpint(anser_dns_stub_query(longname, ANSER_DNS_A, 1, b, sizeof(b)), ==, -EINVAL);
	longname[strlen(longname) - 1] = 0;
	g_assert_cmpint(anser_dns_stub_query(longname, ANSER_DNS_A, 1, b, sizeof(b)), ==, -EINVAL);
	longname[strlen(longname) - 1] = 0;
	n = anser_dns_stub_query(longname, ANSER_DNS_A, 1, b, sizeof(b));
	g_assert_cmpint(n, ==, 12 + 255 + 4);
	g_assert_cmpint(anser_dns_parse_query(b, (size_t)n, &q), ==, ANSER_DNS_QUERY);
	g_assert_cmpint(anser_dns_stub_query(longname, ANSER_DNS_A, 1, b, 12 + 255 + 3), ==,
			-ENOBUFS);
}

static void test_query_good(void)
{
	struct wire m;
	struct anser_dns_query q;
	char text[300];

	query(&m, "WWW.Example.test", ANSER_DNS_AAAA, true);
	g_assert_cmpint(anser_dns_parse_query(m.b, m.n, &q), ==, ANSER_DNS_QUERY);
	g_assert_cmpuint(q.id, ==, 0x1234);
	g_assert_true(q.rd);
	g_assert_cmpuint(q.qtype, ==, ANSER_DNS_AAAA);
	g_assert_cmpuint(q.qclass, ==, 1);
	g_assert_true(q.edns && q.do_bit);
	g_assert_cmpuint(q.udp_size, ==, 1232);
	g_assert_cmpuint(q.qname_len, ==, 18);
	g_assert_cmpint(anser_dns_name_text(q.qname, q.qname_len, text, sizeof(text)), ==, 16);
	g_assert_cmpstr(text, ==, "www.example.test");

	query(&m, "", ANSER_DNS_NS, false); /* the root */
	g_assert_cmpint(anser_dns_parse_query(m.b, m.n, &q), ==, ANSER_DNS_QUERY);
	g_assert_false(q.edns);
	g_assert_cmpuint(q.udp_size, ==, 512);
	anser_dns_name_text(q.qname, q.qname_len, text, sizeof(text));
	g_assert_cmpstr(text, ==, ".");

	/* an EDNS size below 512 counts as 512; odd bytes are escaped */
	header(&m, 1, 0, 1, 0, 0, 1);
	u8(&m, 3);
	put(&m, "a.\xff", 3);
	u8(&m, 0);
	u16(&m, 1);
	u16(&m, 1);
	opt(&m, 100, 0, false);
	g_assert_cmpint(anser_dns_parse_query(m.b, m.n, &q), ==, ANSER_DNS_QUERY);
	g_assert_cmpuint(q.udp_size, ==, 512);
	anser_dns_name_text(q.qname, q.qname_len, text, sizeof(text));
	g_assert_cmpstr(text, ==, "a\\046\\255");

	/* and one above 1232 as 1232: replies that size need no fragments */
	query_sized(&m, "a", ANSER_DNS_A, 4096);
	g_assert_cmpint(anser_dns_parse_query(m.b, m.n, &q), ==, ANSER_DNS_QUERY);
	g_assert_cmpuint(q.udp_size, ==, 1232);
}

static void test_query_bad(void)
{
	struct wire m;

	m.n = 11;
	memset(m.b, 0, 11);
	expect(&m, ANSER_DNS_DROP, 0, "11 bytes");
	query(&m, "a.test", 1, false);
	m.b[2] |= 0x80;
	expect(&m, ANSER_DNS_DROP, 0, "QR=1");

	query(&m, "a.test", 1, false);
	m.b[2] |= 2 << 3; /* STATUS */
	expect(&m, ANSER_DNS_REPLY_ERR, ANSER_DNS_NOTIMP, "opcode 2");

	for (unsigned qd = 0; qd <= 2; qd += 2) {
		query(&m, "a.test", 1, false);
		m.b[5] = (uint8_t)qd;
		expect(&m, ANSER_DNS_REPLY_ERR, ANSER_DNS_FORMERR, "QDCOUNT 0 or 2");
	}
	query(&m, "a.test", 1, false);
	m.b[7] = 1;
	expect(&m, ANSER_DNS_REPLY_ERR, ANSER_DNS_FORMERR, "ANCOUNT 1");
	query(&m, "a.test", 1, false);
	m.b[9] = 1;
	expect(&m, ANSER_DNS_REPLY_ERR, ANSER_DNS_FORMERR, "NSCOUNT 1");

	/* cut inside the name, and before qtype/qclass */
	query(&m, "abcdef.test", 1, false);
	m.n = 16;
	expect(&m, ANSER_DNS_REPLY_ERR, ANSER_DNS_FORMERR, "cut qname");
	query(&m, "a.test", 1, false);
	m.n -= 2;
	expect(&m, ANSER_DNS_REPLY_ERR, ANSER_DNS_FORMERR, "cut qclass");

	/* label types 0x40 and 0x80 */
	for (unsigned t = 0x40; t <= 0x80; t += 0x40) {
		header(&m, 1, 0, 1, 0, 0, 0);
		u8(&m, t | 1);
		u8(&m, 'a');
		u8(&m, 0);
		u16(&m, 1);
		u16(&m, 1);
		expect(&m, ANSER_DNS_REPLY_ERR, ANSER_DNS_FORMERR, "label type");
	}

	/* a name over 255 bytes: 5 labels of 63 */
	header(&m, 1, 0, 1, 0, 0, 0);
	for (int i = 0; i < 5; i++) {
		u8(&m, 63);
		for (int k = 0; k < 63; k++)
			u8(&m, 'x');
	}
	u8(&m, 0);
	u16(&m, 1);
	u16(&m, 1);
	expect(&m, ANSER_DNS_REPLY_ERR, ANSER_DNS_FORMERR, "256+ byte name");
	/* 255 exactly is fine: 3 x 63 + 62 + 4 lengths + root = 255 */
	header(&m, 1, 0, 1, 0, 0, 0);
	for (int i = 0; i < 4; i++) {
		unsigned l = i < 3 ? 63 : 61;
		u8(&m, l);
		for (unsigned k = 0; k < l; k++)
			u8(&m, 'y');
	}
	u8(&m, 0);
	u16(&m, 1);
	u16(&m, 1);
	expect(&m, ANSER_DNS_QUERY, 0, "255-byte name");

	/* a pointer to itself (a loop), a forward pointer, one into the header */
	static const uint8_t ptrs[][2] = { { 0xC0, 12 }, { 0xC0, 40 }, { 0xC0, 2 } };
	for (size_t i = 0; i < G_N_ELEMENTS(ptrs); i++) {
		header(&m, 1, 0, 1, 0, 0, 0);
		put(&m, ptrs[i], 2);
		u16(&m, 1);
		u16(&m, 1);
		for (int k = 0; k < 30; k++)
			u8(&m, 0);
		expect(&m, ANSER_DNS_REPLY_ERR, ANSER_DNS_FORMERR, "bad pointer");
	}

	/* two OPTs; an OPT not at the root; a cut OPT */
	query(&m, "a.test", 1, true);
	m.b[11] = 2;
	opt(&m, 1232, 0, false);
	expect(&m, ANSER_DNS_REPLY_ERR, ANSER_DNS_FORMERR, "two OPTs");
	header(&m, 1, 0, 1, 0, 0, 1);
	name(&m, "a.test");
	u16(&m, 1);
	u16(&m, 1);
	name(&m, "x");
	u16(&m, ANSER_DNS_OPT);
	u16(&m, 1232);
	u32(&m, 0);
	u16(&m, 0);
	expect(&m, ANSER_DNS_REPLY_ERR, ANSER_DNS_FORMERR, "OPT not at the root");
	query(&m, "a.test", 1, true);
	m.n -= 3;
	expect(&m, ANSER_DNS_REPLY_ERR, ANSER_DNS_FORMERR, "cut OPT");

	/* EDNS version 1 */
	query(&m, "a.test", 1, false);
	m.b[11] = 1;
	opt(&m, 1232, 1, false);
	expect(&m, ANSER_DNS_REPLY_ERR, ANSER_DNS_BADVERS, "EDNS version 1");
}

static void test_error_reply(void)
{
	struct wire m;
	struct anser_dns_query q;
	uint8_t out[600];

	/* BADVERS: header rcode 0, the extended bits in the OPT */
	query(&m, "a.test", 1, false);
	m.b[11] = 1;
	opt(&m, 4096, 1, true);
	g_assert_cmpint(anser_dns_parse_query(m.b, m.n, &q), ==, ANSER_DNS_REPLY_ERR);
	ssize_t n = anser_dns_error_reply(&q, q.rcode, out, sizeof(out));
	g_assert_cmpint(n, ==, 12 + 8 + 4 + 11);
	g_assert_cmpuint(out[0] << 8 | out[1], ==, 0x1234);
	g_assert_cmpuint(out[2], ==, 0x81); /* QR, opcode 0, RD */
	g_assert_cmpuint(out[3] & 0xF, ==, 0);
	g_assert_cmpuint(out[5], ==, 1);	      /* the question */
	g_assert_cmpuint(out[11], ==, 1);	      /* the OPT */
	g_assert_cmpuint(out[12 + 12 + 5], ==, 1);    /* extended rcode 1 << 4 = 16 */
	g_assert_cmpuint(out[12 + 12 + 7], ==, 0x80); /* DO echoed */
	struct anser_dns_response r;
	g_assert_cmpint(anser_dns_parse_response(out, (size_t)n, &r), ==, 0);
	g_assert_cmpint(r.rcode, ==, ANSER_DNS_BADVERS);

	/* FORMERR for a bad question: header only */
	header(&m, 7, 0, 1, 0, 0, 0);
	u8(&m, 0x41);
	g_assert_cmpint(anser_dns_parse_query(m.b, m.n, &q), ==, ANSER_DNS_REPLY_ERR);
	n = anser_dns_error_reply(&q, q.rcode, out, sizeof(out));
	g_assert_cmpint(n, ==, 12);
	g_assert_cmpuint(out[3] & 0xF, ==, ANSER_DNS_FORMERR);
	g_assert_cmpuint(out[5], ==, 0);

	/* SERVFAIL with the question, and no room */
	query(&m, "a.test", 1, false);
	g_assert_cmpint(anser_dns_parse_query(m.b, m.n, &q), ==, ANSER_DNS_QUERY);
	n = anser_dns_error_reply(&q, ANSER_DNS_SERVFAIL, out, sizeof(out));
	g_assert_cmpint(n, ==, (ssize_t)m.n);
	g_assert_cmpint(anser_dns_parse_response(out, (size_t)n, &r), ==, 0);
	g_assert_cmpint(r.rcode, ==, ANSER_DNS_SERVFAIL);
	g_assert_cmpint(anser_dns_error_reply(&q, ANSER_DNS_SERVFAIL, out, 12), ==, -ENOBUFS);
}

/* A response to "www.a.test" type qtype: the question at offset 12, so
 * owners can point at it with 0xC00C. */
static void response(struct wire *m, unsigned qtype, unsigned rcode, unsigned an, unsigned ns)
{
	header(m, 0x4321, 0x8180 | rcode, 1, an, ns, 0);
	name(m, "www.a.test");
	u16(m, qtype);
	u16(m, 1);
}

static void rr_head(struct wire *m, const uint8_t *owner, size_t ol, unsigned type, uint32_t ttl,
		    unsigned rdlen)
{
	put(m, owner, ol);
	u16(m, type);
	u16(m, 1);
	u32(m, ttl);
	u16(m, rdlen);
}

static void test_response(void)
{
	static const uint8_t at_q[2] = { 0xC0, 12 };
	struct wire m;
	struct anser_dns_response r;

	/* www -> CNAME cdn.b.test -> two A (TTLs 300, 60), one unrelated A */
	response(&m, ANSER_DNS_A, 0, 4, 0);
	rr_head(&m, at_q, 2, ANSER_DNS_CNAME, 3600, 12);
	size_t cname_at = m.n;
	name(&m, "cdn.b.test");
	uint8_t at_cname[2] = { 0xC0, (uint8_t)cname_at };
	rr_head(&m, at_cname, 2, ANSER_DNS_A, 300, 4);
	put(&m, "\x0a\x00\x00\x01", 4);
	rr_head(&m, at_cname, 2, ANSER_DNS_A, 60, 4);
	put(&m, "\x0a\x00\x00\x02", 4);
	{
		struct wire other;
		header(&other, 0, 0, 0, 0, 0, 0);
		other.n = 0;
		name(&other, "elsewhere.test");
		put(&m, other.b, other.n);
		u16(&m, ANSER_DNS_A);
		u16(&m, 1);
		u32(&m, 5);
		u16(&m, 4);
		put(&m, "\x0a\x00\x00\x03", 4);
	}
	g_assert_cmpint(anser_dns_parse_response(m.b, m.n, &r), ==, 0);
	g_assert_cmpuint(r.id, ==, 0x4321);
	g_assert_cmpuint(r.answers, ==, 3);
	g_assert_cmpuint(r.min_ttl, ==, 60);
	g_assert_cmpuint(r.n_addrs, ==, 2);
	g_assert_cmpmem(r.addrs[1].addr, 16, "\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\x00\x00\x02", 16);
	g_assert_cmpuint(r.addrs[1].ttl, ==, 60);
	g_assert_cmpint(r.negative_ttl, ==, -1);

	/* NXDOMAIN with an SOA: min(SOA TTL 900, MINIMUM 120) */
	response(&m, ANSER_DNS_AAAA, ANSER_DNS_NXDOMAIN, 0, 1);
	rr_head(&m,
		(const uint8_t *)"\x01"
				 "a\x04test",
		8, ANSER_DNS_SOA, 900, 2 + 2 + 20);
	put(&m, at_q, 2);
	put(&m, at_q, 2);
	u32(&m, 1);
	u32(&m, 2);
	u32(&m, 3);
	u32(&m, 4);
	u32(&m, 120);
	g_assert_cmpint(anser_dns_parse_response(m.b, m.n, &r), ==, 0);
	g_assert_cmpint(r.rcode, ==, ANSER_DNS_NXDOMAIN);
	g_assert_cmpint(r.negative_ttl, ==, 120);
	g_assert_cmpuint(r.answers, ==, 0);

	/* a TTL with the top bit set counts as 0 (RFC 2181) */
	response(&m, ANSER_DNS_AAAA, 0, 1, 0);
	rr_head(&m, at_q, 2, ANSER_DNS_AAAA, 0x80000001u, 16);
	put(&m, "\xfd\x77\0\0\0\0\0\0\0\0\0\0\0\0\0\3", 16);
	g_assert_cmpint(anser_dns_parse_response(m.b, m.n, &r), ==, 0);
	g_assert_cmpuint(r.min_ttl, ==, 0);
	g_assert_cmpuint(r.n_addrs, ==, 1);

	/* bad: not a response, cut record, rdata past the end, a CNAME whose
	 * name overruns its rdata */
	response(&m, ANSER_DNS_A, 0, 1, 0);
	rr_head(&m, at_q, 2, ANSER_DNS_A, 5, 4);
	put(&m, "\1\2\3\4", 4);
	g_assert_cmpint(anser_dns_parse_response(m.b, m.n, &r), ==, 0);
	m.b[2] &= 0x7f;
	g_assert_cmpint(anser_dns_parse_response(m.b, m.n, &r), ==, -EBADMSG);
	m.b[2] |= 0x80;
	g_assert_cmpint(anser_dns_parse_response(m.b, m.n - 1, &r), ==, -EBADMSG);
	response(&m, ANSER_DNS_A, 0, 1, 0);
	rr_head(&m, at_q, 2, ANSER_DNS_CNAME, 5, 3);
	name(&m, "long.name.test");
	g_assert_cmpint(anser_dns_parse_response(m.b, m.n, &r), ==, -EBADMSG);
}

/* ---- the cache */

static uint32_t ttl_at(const uint8_t *msg, size_t off)
{
	return (uint32_t)msg[off] << 24 | (uint32_t)msg[off + 1] << 16 |
	       (uint32_t)msg[off + 2] << 8 | msg[off + 3];
}

/* www.a.test A: CNAME (ttl 3600) -> two A (300, 90); an OPT (its TTL
 * field is flags and must be left alone) */
static void cached_answer(struct wire *m, const char *qname, unsigned id)
{
	static const uint8_t at_q[2] = { 0xC0, 12 };
	header(m, id, 0x8180, 1, 3, 0, 1);
	name(m, qname);
	u16(m, ANSER_DNS_A);
	u16(m, 1);
	rr_head(m, at_q, 2, ANSER_DNS_CNAME, 3600, 12);
	size_t at = m->n;
	name(m, "cdn.b.test");
	uint8_t at_c[2] = { 0xC0, (uint8_t)at };
	rr_head(m, at_c, 2, ANSER_DNS_A, 300, 4);
	put(m, "\x0a\0\0\1", 4);
	rr_head(m, at_c, 2, ANSER_DNS_A, 90, 4);
	put(m, "\x0a\0\0\2", 4);
	u8(m, 0);
	u16(m, ANSER_DNS_OPT);
	u16(m, 1232);
	u32(m, 0x00008000); /* DO */
	u16(m, 0);
}

static void test_cache(void)
{
	struct anser_dns_cache *c = anser_dns_cache_new(3);
	struct wire m;
	struct anser_dns_response r;
	uint8_t out[2048];
	size_t len = 0;
	uint16_t offs[8];

	cached_answer(&m, "www.a.test", 0x1111);
	g_assert_cmpint(anser_dns_parse_response(m.b, m.n, &r), ==, 0);
	int64_t life = anser_dns_cache_lifetime(&r, -1);
	g_assert_cmpint(life, ==, 90); /* the minimum over the chain */
	g_assert_cmpint(anser_dns_cache_lifetime(&r, 600), ==, 600);
	g_assert_cmpint(anser_dns_ttl_offsets(m.b, m.n, offs, 8), ==, 3); /* not the OPT */
	g_assert_cmpint(anser_dns_cache_put(c, m.b, m.n, &r, life, 1000), ==, 0);

	/* asked in other case, with another id, 40.5 s later */
	struct wire q;
	query(&q, "WWW.A.Test", ANSER_DNS_A, false);
	struct anser_dns_query dq;
	g_assert_cmpint(anser_dns_parse_query(q.b, q.n, &dq), ==, ANSER_DNS_QUERY);
	struct anser_dns_lookup l = { dq.qname, dq.qname_len, dq.qtype, dq.qclass, 0xbeef, 0, 30 };
	g_assert_cmpint(anser_dns_cache_get(c, &l, 41500, out, sizeof(out), &len), ==,
			ANSER_DNS_FRESH);
	g_assert_cmpuint(len, ==, m.n);
	g_assert_cmpuint(out[0] << 8 | out[1], ==, 0xbeef);
	/* every TTL counted down, none beyond the entry's life */
	g_assert_cmpuint(ttl_at(out, offs[0]), ==, 90 - 40);
	g_assert_cmpuint(ttl_at(out, offs[1]), ==, 90 - 40);
	g_assert_cmpuint(ttl_at(out, offs[2]), ==, 90 - 40);
	g_assert_cmpuint(ttl_at(out, m.n - 6), ==, 0x8000); /* the OPT's flags untouched */
	g_assert_cmpint(anser_dns_parse_response(out, len, &r), ==, 0);
	g_assert_cmpuint(r.n_addrs, ==, 2);

	/* another type or class is another entry */
	l.qtype = ANSER_DNS_AAAA;
	g_assert_cmpint(anser_dns_cache_get(c, &l, 2000, out, sizeof(out), &len), ==,
			ANSER_DNS_MISS);
	l.qtype = ANSER_DNS_A;
	/* no room in out: a miss, not a cut answer */
	g_assert_cmpint(anser_dns_cache_get(c, &l, 2000, out, 20, &len), ==, ANSER_DNS_MISS);

	/* expired: stale within stale_s (TTL 30), gone after */
	g_assert_cmpint(anser_dns_cache_get(c, &l, 91000, out, sizeof(out), &len), ==,
			ANSER_DNS_MISS);		  /* stale_s 0: never stale */
	g_assert_cmpuint(anser_dns_cache_size(c), ==, 0); /* and dropped */
	anser_dns_parse_response(m.b, m.n, &r);
	g_assert_cmpint(anser_dns_cache_put(c, m.b, m.n, &r, life, 1000), ==, 0);
	l.stale_s = 60;
	g_assert_cmpint(anser_dns_cache_get(c, &l, 120000, out, sizeof(out), &len), ==,
			ANSER_DNS_STALE);
	g_assert_cmpuint(ttl_at(out, offs[1]), ==, 30);
	g_assert_cmpint(anser_dns_cache_get(c, &l, 151000, out, sizeof(out), &len), ==,
			ANSER_DNS_MISS);

	/* LRU: with room for 3, the least recently used goes first */
	const char *names[] = { "a.a.test", "b.a.test", "c.a.test", "d.a.test" };
	for (int i = 0; i < 3; i++) {
		cached_answer(&m, names[i], 1);
		anser_dns_parse_response(m.b, m.n, &r);
		g_assert_cmpint(anser_dns_cache_put(c, m.b, m.n, &r, 90, 1000), ==, 0);
	}
	struct wire k;
	struct anser_dns_query qa, qb;
	query(&k, "a.a.test", ANSER_DNS_A, false); /* touch a: b is now the oldest */
	anser_dns_parse_query(k.b, k.n, &qa);
	struct anser_dns_lookup la = { qa.qname, qa.qname_len, 1, 1, 1, 0, 0 };
	g_assert_cmpint(anser_dns_cache_get(c, &la, 2000, out, sizeof(out), &len), ==,
			ANSER_DNS_FRESH);
	cached_answer(&m, names[3], 1);
	anser_dns_parse_response(m.b, m.n, &r);
	g_assert_cmpint(anser_dns_cache_put(c, m.b, m.n, &r, 90, 1000), ==, 0);
	g_assert_cmpuint(anser_dns_cache_size(c), ==, 3);
	g_assert_cmpuint(anser_dns_cache_evictions(c), ==, 1);
	query(&k, "b.a.test", ANSER_DNS_A, false);
	anser_dns_parse_query(k.b, k.n, &qb);
	struct anser_dns_lookup lb = { qb.qname, qb.qname_len, 1, 1, 1, 0, 0 };
	g_assert_cmpint(anser_dns_cache_get(c, &lb, 2000, out, sizeof(out), &len), ==,
			ANSER_DNS_MISS);
	g_assert_cmpint(anser_dns_cache_get(c, &la, 2000, out, sizeof(out), &len), ==,
			ANSER_DNS_FRESH);
	anser_dns_cache_clear(c);
	g_assert_cmpuint(anser_dns_cache_size(c), ==, 0);
	anser_dns_cache_free(c);
}

/* What is kept and for how long: negative answers by their SOA, errors
 * and truncated answers not at all. */
static void test_cache_lifetime(void)
{
	struct anser_dns_response r = { 0 };

	r.rcode = ANSER_DNS_NXDOMAIN;
	r.negative_ttl = 120;
	g_assert_cmpint(anser_dns_cache_lifetime(&r, -1), ==, 120);
	g_assert_cmpint(anser_dns_cache_lifetime(&r, 999), ==, 120); /* fixed: positive only */
	r.negative_ttl = -1;					     /* no SOA */
	g_assert_cmpint(anser_dns_cache_lifetime(&r, -1), ==, -1);
	r.rcode = ANSER_DNS_NOERROR; /* NODATA */
	r.negative_ttl = 60;
	g_assert_cmpint(anser_dns_cache_lifetime(&r, -1), ==, 60);
	r.answers = 1;
	r.min_ttl = 5;
	g_assert_cmpint(anser_dns_cache_lifetime(&r, -1), ==, 5);
	r.tc = true;
	g_assert_cmpint(anser_dns_cache_lifetime(&r, -1), ==, -1);
	r.tc = false;
	r.rcode = ANSER_DNS_SERVFAIL;
	g_assert_cmpint(anser_dns_cache_lifetime(&r, -1), ==, -1);
}

/* ---- request routing and endpoints */

static void test_router(void)
{
	const char *text = "dns {\n upstream {\n  a: 'udp://192.0.2.1:53'\n"
			   "  b: 'tcp+udp://[2001:db8::1]'\n }\n routing {\n  request {\n"
			   "   qname(suffix: ads.test) -> reject\n"
			   "   qname(full: x.cn.test) && qtype(aaaa) -> a\n"
			   "   !qname(suffix: cn.test) && qtype(a, mx) -> b\n"
			   "   qname(keyword: asis) -> asis\n"
			   "   fallback: a\n  }\n  response {\n"
			   "   ip(10.0.0.0/8) && !qname(suffix: lan.test) -> reject\n"
			   "   upstream(a) && qtype(aaaa) -> b\n"
			   "   fallback: accept\n  }\n }\n}\nrouting {\n fallback: direct\n}\n";
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;
	struct anser_dns_router *r = NULL;
	char *why = NULL;
	int rule;

	g_assert_cmpint(anser_config_parse_string("r.dae", text, strlen(text), &c, &d), ==, 0);
	anser_diags_clear(&d);
	g_assert_cmpint(anser_dns_router_new(&c->dns, &r, &why), ==, 0);
	g_assert_cmpint(anser_dns_router_request(r, "x.ads.test", 1, &rule), ==, ANSER_DNS_REJECT);
	g_assert_cmpint(rule, ==, 0);
	g_assert_cmpint(anser_dns_router_request(r, "x.cn.test", 28, &rule), ==, 0);
	g_assert_cmpint(rule, ==, 1);
	/* x.cn.test type A: not rule 1 (AAAA), not rule 2 (in cn.test): the fallback */
	g_assert_cmpint(anser_dns_router_request(r, "x.cn.test", 1, &rule), ==, 0);
	g_assert_cmpint(rule, ==, -1);
	g_assert_cmpint(anser_dns_router_request(r, "example.org", 15, &rule), ==, 1);
	g_assert_cmpint(rule, ==, 2);
	g_assert_cmpint(anser_dns_router_request(r, "example.org", 28, &rule), ==, 0);
	g_assert_cmpint(anser_dns_router_request(r, "my.asis.org", 28, &rule), ==, ANSER_DNS_ASIS);
	/* response rules: any answered address in the prefix; who answered */
	uint8_t addrs[2][16] = { { 0 }, { 0 } };
	addrs[0][10] = addrs[0][11] = 0xff;
	memcpy(addrs[0] + 12, "\xc0\x00\x02\x01", 4); /* 192.0.2.1 */
	memcpy(addrs[1], addrs[0], 12);
	memcpy(addrs[1] + 12, "\x0a\x01\x02\x03", 4); /* 10.1.2.3 */
	g_assert_cmpint(
		anser_dns_router_response(r, "x.org", 1, (const uint8_t(*)[16])addrs, 1, 0, &rule),
		==, ANSER_DNS_ACCEPT);
	g_assert_cmpint(rule, ==, -1);
	g_assert_cmpint(
		anser_dns_router_response(r, "x.org", 1, (const uint8_t(*)[16])addrs, 2, 0, &rule),
		==, ANSER_DNS_REJECT);
	g_assert_cmpint(rule, ==, 0);
	g_assert_cmpint(anser_dns_router_response(r, "h.lan.test", 1, (const uint8_t(*)[16])addrs,
						  2, 0, &rule),
			==, ANSER_DNS_ACCEPT);
	g_assert_cmpint(anser_dns_router_response(r, "x.org", 28, NULL, 0, 0, &rule), ==, 1);
	g_assert_cmpint(rule, ==, 1);
	g_assert_cmpint(anser_dns_router_response(r, "x.org", 28, NULL, 0, 1, &rule), ==,
			ANSER_DNS_ACCEPT);
	anser_dns_router_free(r);
	anser_config_free(c);

	struct anser_dns_endpoint ep;
	const char *w = NULL;
	g_assert_cmpint(anser_dns_endpoint_parse("tcp+udp://[2001:db8::1]", &ep, &w), ==, 0);
	g_assert_true(ep.literal && ep.scheme == ANSER_DNS_TCP_UDP && ep.port == 53);
	g_assert_cmpint(ep.addr.ss_family, ==, AF_INET6);
	g_assert_cmpint(anser_dns_endpoint_parse("https://dns.google", &ep, &w), ==, 0);
	g_assert_true(!ep.literal && ep.port == 443);
	g_assert_cmpstr(ep.path, ==, "/dns-query");
	g_assert_cmpstr(ep.host, ==, "dns.google");
	g_assert_cmpint(anser_dns_endpoint_parse("tls://9.9.9.9", &ep, &w), ==, 0);
	g_assert_cmpuint(ep.port, ==, 853);
	g_assert_cmpint(anser_dns_endpoint_parse("udp://1.2.3.4:99999", &ep, &w), ==, -EINVAL);
	g_assert_cmpint(anser_dns_endpoint_parse("ftp://1.2.3.4", &ep, &w), ==, -EINVAL);
	g_assert_cmpint(anser_dns_endpoint_parse("udp://[::1", &ep, &w), ==, -EINVAL);
	g_assert_cmpint(anser_dns_endpoint_parse("udp://", &ep, &w), ==, -EINVAL);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/dns/query/good", test_query_good);
	g_test_add_func("/dns/query/stub", test_stub_query);
	g_test_add_func("/dns/query/bad", test_query_bad);
	g_test_add_func("/dns/error-reply", test_error_reply);
	g_test_add_func("/dns/response", test_response);
	g_test_add_func("/dns/cache", test_cache);
	g_test_add_func("/dns/router", test_router);
	g_test_add_func("/dns/cache-lifetime", test_cache_lifetime);
	return g_test_run();
}
