// SPDX-License-Identifier: GPL-2.0-or-later
/* The SOCKS5 codec against well-formed and hostile server bytes, and the
 * address codec. */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "daemon/outbound/outbound.h"
#include "daemon/outbound/socks5.h"

static void test_greeting(void)
{
	uint8_t b[8];
	g_assert_cmpint(anser_socks5_greeting(b, sizeof(b), false), ==, 3);
	g_assert_cmpmem(b, 3, "\x05\x01\x00", 3);
	g_assert_cmpint(anser_socks5_greeting(b, sizeof(b), true), ==, 4);
	g_assert_cmpmem(b, 4, "\x05\x02\x00\x02", 4);
	g_assert_cmpint(anser_socks5_greeting(b, 3, true), ==, -ENOBUFS);
}

static void test_method(void)
{
	uint8_t m = 0xaa;
	g_assert_cmpint(anser_socks5_parse_method((const uint8_t *)"", 0, false, &m), ==, -EAGAIN);
	g_assert_cmpint(anser_socks5_parse_method((const uint8_t *)"\x05", 1, false, &m), ==,
			-EAGAIN);
	g_assert_cmpint(anser_socks5_parse_method((const uint8_t *)"\x04", 1, false, &m), ==,
			-EPROTO);
	g_assert_cmpint(anser_socks5_parse_method((const uint8_t *)"\x05\x00", 2, false, &m), ==,
			2);
	g_assert_cmpint(m, ==, SOCKS5_METHOD_NONE);
	g_assert_cmpint(anser_socks5_parse_method((const uint8_t *)"\x05\x02", 2, true, &m), ==, 2);
	g_assert_cmpint(m, ==, SOCKS5_METHOD_USERPASS);
	/* Not offered: a server may not pick it. */
	g_assert_cmpint(anser_socks5_parse_method((const uint8_t *)"\x05\x02", 2, false, &m), ==,
			-EPROTO);
	g_assert_cmpint(anser_socks5_parse_method((const uint8_t *)"\x05\x01", 2, true, &m), ==,
			-EPROTO);
	g_assert_cmpint(anser_socks5_parse_method((const uint8_t *)"\x05\xff", 2, true, &m), ==,
			-EACCES);
}

static void test_auth(void)
{
	uint8_t b[600];
	g_assert_cmpint(anser_socks5_auth_request(b, sizeof(b), "bob", "pw"), ==, 8);
	g_assert_cmpmem(b, 8,
			"\x01\x03"
			"bob\x02"
			"pw",
			8);
	g_assert_cmpint(anser_socks5_auth_request(b, sizeof(b), "", "pw"), ==, -EINVAL);
	g_assert_cmpint(anser_socks5_auth_request(b, sizeof(b), "u", NULL), ==, -EINVAL);
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[299] = '\0';
	g_assert_cmpint(anser_socks5_auth_request(b, sizeof(b), longname, "pw"), ==, -EINVAL);
	longname[255] = '\0';
	g_assert_cmpint(anser_socks5_auth_request(b, sizeof(b), longname, longname), ==, 513);
	g_assert_cmpint(anser_socks5_auth_request(b, 10, "bob", "pw123456"), ==, -ENOBUFS);

	g_assert_cmpint(anser_socks5_parse_auth_reply((const uint8_t *)"\x01\x00", 2), ==, 2);
	g_assert_cmpint(anser_socks5_parse_auth_reply((const uint8_t *)"\x05\x00", 2), ==, 2);
	g_assert_cmpint(anser_socks5_parse_auth_reply((const uint8_t *)"\x01\x01", 2), ==, -EACCES);
	g_assert_cmpint(anser_socks5_parse_auth_reply((const uint8_t *)"\x01", 1), ==, -EAGAIN);
	g_assert_cmpint(anser_socks5_parse_auth_reply((const uint8_t *)"\x02\x00", 2), ==, -EPROTO);
}

static void sa4(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in *s = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof(*ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	g_assert_cmpint(inet_pton(AF_INET, ip, &s->sin_addr), ==, 1);
}

static void sa6(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof(*ss));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	g_assert_cmpint(inet_pton(AF_INET6, ip, &s->sin6_addr), ==, 1);
}

static void test_request(void)
{
	uint8_t b[64];
	struct sockaddr_storage ss;

	sa4(&ss, "1.2.3.4", 443);
	g_assert_cmpint(anser_socks5_request(b, sizeof(b), SOCKS5_CMD_CONNECT,
					     (struct sockaddr *)&ss, NULL),
			==, 10);
	g_assert_cmpmem(b, 10, "\x05\x01\x00\x01\x01\x02\x03\x04\x01\xbb", 10);

	sa6(&ss, "2001:db8::1", 80);
	g_assert_cmpint(anser_socks5_request(b, sizeof(b), SOCKS5_CMD_UDP_ASSOCIATE,
					     (struct sockaddr *)&ss, NULL),
			==, 22);
	g_assert_cmpmem(b, 4, "\x05\x03\x00\x04", 4);
	g_assert_cmpmem(b + 20, 2, "\x00\x50", 2);

	/* IPv4-mapped destinations go out as plain IPv4. */
	sa6(&ss, "::ffff:10.0.0.1", 53);
	g_assert_cmpint(anser_socks5_request(b, sizeof(b), SOCKS5_CMD_CONNECT,
					     (struct sockaddr *)&ss, NULL),
			==, 10);
	g_assert_cmpmem(b + 3, 7, "\x01\x0a\x00\x00\x01\x00\x35", 7);

	g_assert_cmpint(
		anser_socks5_request(b, 9, SOCKS5_CMD_CONNECT, (struct sockaddr *)&ss, NULL), ==,
		-ENOBUFS);
	ss.ss_family = AF_UNIX;
	g_assert_cmpint(anser_socks5_request(b, sizeof(b), SOCKS5_CMD_CONNECT,
					     (struct sockaddr *)&ss, NULL),
			==, -EAFNOSUPPORT);

	/* dial_mode domain: the name with the address's port */
	sa4(&ss, "1.2.3.4", 443);
	g_assert_cmpint(anser_socks5_request(b, sizeof(b), SOCKS5_CMD_CONNECT,
					     (struct sockaddr *)&ss, "x.test"),
			==, 3 + 1 + 1 + 6 + 2);
	g_assert_cmpmem(b, 13, "\x05\x01\x00\x03\x06x.test\x01\xbb", 13);
	/* "" is no name */
	g_assert_cmpint(
		anser_socks5_request(b, sizeof(b), SOCKS5_CMD_CONNECT, (struct sockaddr *)&ss, ""),
		==, 10);
	g_assert_cmpint(
		anser_socks5_request(b, 12, SOCKS5_CMD_CONNECT, (struct sockaddr *)&ss, "x.test"),
		==, -ENOBUFS);
}

static void test_reply_good(void)
{
	struct anser_socks5_addr a;
	uint8_t rep = 0xee;

	static const uint8_t v4[] = { 5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90, 'X', 'Y' };
	g_assert_cmpint(anser_socks5_parse_reply(v4, sizeof(v4), &rep, &a), ==, 10);
	g_assert_cmpint(rep, ==, 0);
	g_assert_cmpint(a.atyp, ==, SOCKS5_ATYP_IPV4);
	g_assert_cmpint(a.sa.ss_family, ==, AF_INET);
	g_assert_cmpint(a.port, ==, 8080);
	g_assert_cmpint(((struct sockaddr_in *)&a.sa)->sin_port, ==, htons(8080));

	uint8_t v6[22] = { 5, 0, 0, 4 };
	v6[4 + 15] = 1;
	v6[20] = 0;
	v6[21] = 53;
	g_assert_cmpint(anser_socks5_parse_reply(v6, sizeof(v6), &rep, &a), ==, 22);
	g_assert_cmpint(a.sa.ss_family, ==, AF_INET6);
	g_assert_true(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&a.sa)->sin6_addr));
	g_assert_cmpint(a.port, ==, 53);

	static const uint8_t dom[] = { 5,   0,	 0,   3,   9,	'l', 'o', 'c',
				       'a', 'l', 'h', 'o', 's', 't', 0,	  80 };
	g_assert_cmpint(anser_socks5_parse_reply(dom, sizeof(dom), &rep, &a), ==, sizeof(dom));
	g_assert_cmpstr(a.domain, ==, "localhost");
	g_assert_cmpint(a.port, ==, 80);

	/* A full 255-byte name. */
	uint8_t big[4 + 1 + 255 + 2] = { 5, 0, 0, 3, 255 };
	memset(big + 5, 'n', 255);
	g_assert_cmpint(anser_socks5_parse_reply(big, sizeof(big), &rep, &a), ==, sizeof(big));
	g_assert_cmpint(strlen(a.domain), ==, 255);

	/* Every strict prefix is "need more", never a misparse. */
	for (size_t n = 0; n < sizeof(dom); n++)
		g_assert_cmpint(anser_socks5_parse_reply(dom, n, &rep, &a), ==, -EAGAIN);
	for (size_t n = 0; n < sizeof(v6); n++)
		g_assert_cmpint(anser_socks5_parse_reply(v6, n, &rep, &a), ==, -EAGAIN);
}

static void test_reply_hostile(void)
{
	struct anser_socks5_addr a;
	uint8_t rep;

	/* Wrong version, even in a one-byte prefix. */
	g_assert_cmpint(anser_socks5_parse_reply((const uint8_t *)"\x04", 1, &rep, &a), ==,
			-EPROTO);
	g_assert_cmpint(anser_socks5_parse_reply((const uint8_t *)"HTTP/1.1 400", 12, &rep, &a), ==,
			-EPROTO);
	/* RSV must be zero. */
	g_assert_cmpint(anser_socks5_parse_reply((const uint8_t *)"\x05\x00\x01\x01", 4, &rep, &a),
			==, -EPROTO);
	/* Unknown ATYP. */
	g_assert_cmpint(
		anser_socks5_parse_reply((const uint8_t *)"\x05\x00\x00\x02\x00\x00", 6, &rep, &a),
		==, -EPROTO);
	/* Empty domain and a NUL inside a domain. */
	g_assert_cmpint(anser_socks5_parse_reply((const uint8_t *)"\x05\x00\x00\x03\x00\x00\x50", 7,
						 &rep, &a),
			==, -EPROTO);
	static const uint8_t nul[] = { 5, 0, 0, 3, 3, 'a', 0, 'b', 0, 80 };
	g_assert_cmpint(anser_socks5_parse_reply(nul, sizeof(nul), &rep, &a), ==, -EPROTO);
	/* A NUL seen before the rest of the name arrived fails early too. */
	g_assert_cmpint(anser_socks5_parse_reply(nul, 7, &rep, &a), ==, -EPROTO);
	/* Domain length pointing past the buffer: more data, not a read overflow. */
	static const uint8_t longer[] = { 5, 0, 0, 3, 200, 'a', 'b' };
	g_assert_cmpint(anser_socks5_parse_reply(longer, sizeof(longer), &rep, &a), ==, -EAGAIN);

	/* Refusals map to errnos and carry the code. */
	static const struct {
		uint8_t code;
		int err;
	} codes[] = {
		{ 1, -ECONNABORTED }, { 2, -EACCES },	 { 3, -ENETUNREACH }, { 4, -EHOSTUNREACH },
		{ 5, -ECONNREFUSED }, { 6, -ETIMEDOUT }, { 7, -EOPNOTSUPP },  { 8, -EAFNOSUPPORT },
		{ 9, -EPROTO },	      { 0xff, -EPROTO },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(codes); i++) {
		uint8_t r[] = { 5, codes[i].code, 0, 1, 0, 0, 0, 0, 0, 0 };
		g_assert_cmpint(anser_socks5_parse_reply(r, sizeof(r), &rep, &a), ==, codes[i].err);
		g_assert_cmpint(rep, ==, codes[i].code);
		g_assert_nonnull(anser_socks5_reply_str(codes[i].code));
	}
	g_assert_cmpstr(anser_socks5_reply_str(5), ==, "connection refused");
}

static void test_udp(void)
{
	uint8_t b[64];
	struct sockaddr_storage ss;
	struct anser_socks5_addr a;

	sa4(&ss, "8.8.8.8", 53);
	ssize_t n = anser_socks5_udp_header(b, sizeof(b), (struct sockaddr *)&ss, NULL);
	g_assert_cmpint(n, ==, 10);
	g_assert_cmpmem(b, 10, "\x00\x00\x00\x01\x08\x08\x08\x08\x00\x35", 10);
	memcpy(b + n, "payload", 7);
	g_assert_cmpint(anser_socks5_udp_parse(b, (size_t)n + 7, &a), ==, 10);
	g_assert_cmpint(a.sa.ss_family, ==, AF_INET);
	g_assert_cmpint(a.port, ==, 53);
	g_assert_cmpint(memcmp(&((struct sockaddr_in *)&a.sa)->sin_addr,
			       &((struct sockaddr_in *)&ss)->sin_addr, 4),
			==, 0);

	sa6(&ss, "2001:db8::53", 5353);
	n = anser_socks5_udp_header(b, sizeof(b), (struct sockaddr *)&ss, NULL);
	g_assert_cmpint(n, ==, 3 + 1 + 16 + 2);
	g_assert_cmpint(anser_socks5_udp_parse(b, (size_t)n, &a), ==, n);
	g_assert_cmpint(a.port, ==, 5353);
	/* dial_mode domain: the name, with the address's port */
	n = anser_socks5_udp_header(b, sizeof(b), (struct sockaddr *)&ss, "q.test");
	g_assert_cmpint(n, ==, 3 + 1 + 1 + 6 + 2);
	g_assert_cmpint(anser_socks5_udp_parse(b, (size_t)n, &a), ==, n);
	g_assert_cmpint(a.atyp, ==, SOCKS5_ATYP_DOMAIN);
	g_assert_cmpstr(a.domain, ==, "q.test");
	g_assert_cmpint(a.port, ==, 5353);
	n = anser_socks5_udp_header(b, sizeof(b), (struct sockaddr *)&ss, NULL);

	/* Fragments are refused, as are truncated headers and junk. */
	b[2] = 1;
	g_assert_cmpint(anser_socks5_udp_parse(b, (size_t)n, &a), ==, -EPROTO);
	b[2] = 0;
	for (ssize_t i = 0; i < n; i++)
		g_assert_cmpint(anser_socks5_udp_parse(b, (size_t)i, &a), ==, -EPROTO);
	b[0] = 1;
	g_assert_cmpint(anser_socks5_udp_parse(b, (size_t)n, &a), ==, -EPROTO);

	static const uint8_t dom[] = { 0, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 7, 'x' };
	g_assert_cmpint(anser_socks5_udp_parse(dom, sizeof(dom), &a), ==, 11);
	g_assert_cmpstr(a.domain, ==, "host");
	g_assert_cmpint(a.port, ==, 7);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/socks5/greeting", test_greeting);
	g_test_add_func("/socks5/method", test_method);
	g_test_add_func("/socks5/auth", test_auth);
	g_test_add_func("/socks5/request", test_request);
	g_test_add_func("/socks5/reply-good", test_reply_good);
	g_test_add_func("/socks5/reply-hostile", test_reply_hostile);
	g_test_add_func("/socks5/udp", test_udp);
	return g_test_run();
}
