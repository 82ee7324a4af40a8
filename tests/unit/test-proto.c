// SPDX-License-Identifier: GPL-2.0-or-later
/* Codecs of the proxy protocols other than SOCKS5: shadowsocks AEAD (keys,
 * chunks, UDP datagrams, the stream over a socket pair) and HTTP CONNECT,
 * with good and hostile input. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <time.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/outbound/http.h"
#include "daemon/outbound/shadowsocks.h"
#include "daemon/outbound/trojan.h"
#include "daemon/outbound/vless.h"
#include "daemon/outbound/vmess.h"
#include "daemon/outbound/ws.h"

static void hex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(g_ascii_xdigit_value(h[2 * i]) << 4 |
				   g_ascii_xdigit_value(h[2 * i + 1]));
}

static void test_ss_key(void)
{
	struct anser_ss_key k;
	uint8_t want[32];

	/* EVP_BytesToKey(MD5): MD5("foobar"), then MD5(D1 || "foobar") */
	g_assert_cmpint(anser_ss_key_init(&k, ANSER_CIPHER_AES_128_GCM, "foobar"), ==, 0);
	hex("3858f62230ac3c915f300c664312c63f", want, 16);
	g_assert_cmpuint(k.key_len, ==, 16);
	g_assert_cmpuint(k.salt_len, ==, 16);
	g_assert_cmpmem(k.key, 16, want, 16);
	g_assert_cmpint(anser_ss_key_init(&k, ANSER_CIPHER_CHACHA20_POLY1305, "foobar"), ==, 0);
	hex("3858f62230ac3c915f300c664312c63f568378529614d22ddb49237d2f60bfdf", want, 32);
	g_assert_cmpmem(k.key, 32, want, 32);
	/* 2022: the PSK itself, base64 of exactly the key size */
	g_assert_cmpint(anser_ss_key_init(&k, ANSER_CIPHER_2022_AES_128_GCM, "x"), ==, -EINVAL);
	g_assert_cmpint(
		anser_ss_key_init(&k, ANSER_CIPHER_2022_AES_256_GCM, "AAECAwQFBgcICQoLDA0ODw=="),
		==, -EINVAL);
	g_assert_cmpint(anser_ss_key_init(&k, ANSER_CIPHER_2022_AES_128_GCM,
					  "AAECAwQFBgcICQoLDA0ODw==:AAECAwQFBgcICQoLDA0ODw=="),
			==, -EPROTONOSUPPORT);
	g_assert_cmpint(
		anser_ss_key_init(&k, ANSER_CIPHER_2022_AES_128_GCM, "AAECAwQFBgcICQoLDA0ODw=="),
		==, 0);
	hex("000102030405060708090a0b0c0d0e0f", want, 16);
	g_assert_true(k.v2022);
	g_assert_cmpuint(k.key_len, ==, 16);
	g_assert_cmpuint(k.salt_len, ==, 16);
	g_assert_cmpmem(k.key, 16, want, 16);
}

static void test_ss_chunks(void)
{
	static const enum anser_cipher ciphers[] = { ANSER_CIPHER_AES_128_GCM,
						     ANSER_CIPHER_AES_256_GCM,
						     ANSER_CIPHER_CHACHA20_POLY1305 };
	for (size_t c = 0; c < G_N_ELEMENTS(ciphers); c++) {
		struct anser_ss_key k;
		struct anser_ss_aead enc, dec;
		uint8_t salt[32] = { 7 }, p[SS_MAX_PAYLOAD], out[SS_MAX_PAYLOAD + 64],
			back[SS_MAX_PAYLOAD];
		for (size_t i = 0; i < sizeof(p); i++)
			p[i] = (uint8_t)(i * 31);
		g_assert_cmpint(anser_ss_key_init(&k, ciphers[c], "pw"), ==, 0);
		g_assert_cmpint(anser_ss_aead_init(&enc, &k, salt), ==, 0);
		g_assert_cmpint(anser_ss_aead_init(&dec, &k, salt), ==, 0);
		for (size_t n = 1; n <= SS_MAX_PAYLOAD; n = n * 3 + 1) {
			ssize_t cl = anser_ss_seal_chunk(&enc, p, n, out);
			g_assert_cmpint(cl, ==, (ssize_t)(n + 34));
			g_assert_cmpint(anser_ss_open_len(&dec, out, SS_MAX_PAYLOAD), ==, (int)n);
			g_assert_cmpint(anser_ss_open_payload(&dec, out + SS_LEN_HDR, n, back), ==,
					0);
			g_assert_cmpmem(back, n, p, n);
		}
		g_assert_cmpint(anser_ss_seal_chunk(&enc, p, 0, out), ==, -EINVAL);
		g_assert_cmpint(anser_ss_seal_chunk(&enc, p, SS_MAX_PAYLOAD + 1, out), ==, -EINVAL);
		/* a flipped bit anywhere is refused */
		ssize_t cl = anser_ss_seal_chunk(&enc, p, 100, out);
		g_assert_cmpint(cl, >, 0);
		struct anser_ss_aead d2 = dec;
		out[1] ^= 1;
		g_assert_cmpint(anser_ss_open_len(&d2, out, SS_MAX_PAYLOAD), ==, -EBADMSG);
		out[1] ^= 1;
		g_assert_cmpint(anser_ss_open_len(&dec, out, SS_MAX_PAYLOAD), ==, 100);
		out[SS_LEN_HDR + 50] ^= 0x80;
		g_assert_cmpint(anser_ss_open_payload(&dec, out + SS_LEN_HDR, 100, back), ==,
				-EBADMSG);
		anser_ss_aead_fini(&enc);
		anser_ss_aead_fini(&dec);
	}
}

static void test_ss_udp(void)
{
	struct anser_ss_key k;
	struct sockaddr_in6 dst = { .sin6_family = AF_INET6, .sin6_port = htons(53) };
	uint8_t out[2048], *payload;
	struct anser_socks5_addr src;

	inet_pton(AF_INET6, "fd77::3", &dst.sin6_addr);
	g_assert_cmpint(anser_ss_key_init(&k, ANSER_CIPHER_AES_256_GCM, "pw"), ==, 0);
	ssize_t n = anser_ss_udp_seal(&k, (struct sockaddr *)&dst, NULL, (const uint8_t *)"hello",
				      5, out, sizeof(out));
	g_assert_cmpint(n, ==, 32 + 19 + 5 + 16);
	uint8_t copy[2048];
	memcpy(copy, out, (size_t)n);
	ssize_t pl = anser_ss_udp_open(&k, out, (size_t)n, &payload, &src);
	g_assert_cmpint(pl, ==, 5);
	g_assert_cmpmem(payload, 5, "hello", 5);
	g_assert_cmpint(src.atyp, ==, SOCKS5_ATYP_IPV6);
	g_assert_cmpuint(src.port, ==, 53);
	/* no room, forged, cut, too short */
	g_assert_cmpint(anser_ss_udp_seal(&k, (struct sockaddr *)&dst, NULL, out, 2000, out, 2048),
			==, -ENOBUFS);
	copy[40] ^= 4;
	g_assert_cmpint(anser_ss_udp_open(&k, copy, (size_t)n, &payload, &src), ==, -EBADMSG);
	g_assert_cmpint(anser_ss_udp_open(&k, copy, 40, &payload, &src), <, 0);
	g_assert_cmpint(anser_ss_udp_open(&k, copy, 48, &payload, &src), ==, -EPROTO);
	/* another key cannot open it */
	struct anser_ss_key k2;
	g_assert_cmpint(anser_ss_key_init(&k2, ANSER_CIPHER_AES_256_GCM, "pw2"), ==, 0);
	n = anser_ss_udp_seal(&k, (struct sockaddr *)&dst, NULL, (const uint8_t *)"x", 1, out,
			      sizeof(out));
	g_assert_cmpint(anser_ss_udp_open(&k2, out, (size_t)n, &payload, &src), ==, -EBADMSG);
}

/* Reads from st until want bytes arrived, with reads of at most `step`
 * bytes (so plaintext has to wait in the stream). */
static void read_all(struct anser_stream *st, uint8_t *buf, size_t want, size_t step)
{
	size_t got = 0;
	while (got < want) {
		size_t n = want - got < step ? want - got : step;
		ssize_t r = anser_stream_read(st, buf + got, n);
		if (r == -EAGAIN) {
			g_usleep(100);
			continue;
		}
		g_assert_cmpint(r, >, 0);
		got += (size_t)r;
	}
}

/* A node slower than the app: what the stream sends is whole chunks of
 * SS_MAX_PAYLOAD, never a short one cut to fit the room left in its output
 * (the node pays two AEAD opens per chunk, however short), and a write of
 * less than a chunk still goes at once. Counted on the wire: salt, the
 * address chunk, then SS_LEN_HDR + n + SS_TAG per chunk. */
static void test_ss_full_chunks(void)
{
	int sv[2], small = 4096;
	struct anser_ss_key k;
	struct anser_stream *a;
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(8080) };
	const size_t big = 40000, head = 16 + (SS_LEN_HDR + 7 + SS_TAG);
	uint8_t *data = g_malloc0(big), buf[65536];

	inet_pton(AF_INET, "10.77.0.3", &dst.sin_addr);
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), ==, 0);
	g_assert_cmpint(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), ==, 0);
	g_assert_cmpint(anser_ss_key_init(&k, ANSER_CIPHER_AES_128_GCM, "pw"), ==, 0);
	g_assert_cmpint(anser_ss_stream_new(&k, sv[0], (struct sockaddr *)&dst, NULL, &a), ==, 0);

	/* more than a chunk: whole chunks are taken, the rest is left */
	g_assert_cmpint(anser_stream_write(a, data, big), ==, 2 * SS_MAX_PAYLOAD);
	/* the peer reads nothing: write until the stream takes no more; it
	 * never cuts a chunk to the room left */
	size_t taken = 2 * SS_MAX_PAYLOAD;
	ssize_t w;
	while ((w = anser_stream_write(a, data, big)) > 0) {
		g_assert_cmpint(w % SS_MAX_PAYLOAD, ==, 0);
		taken += (size_t)w;
	}
	g_assert_cmpint(w, ==, -EAGAIN);
	g_assert_true(anser_stream_pending(a));
	/* less than a chunk goes whole, once there is room */
	size_t wire = 0;
	for (;;) {
		ssize_t r = recv(sv[1], buf, sizeof(buf), 0);
		if (r > 0) {
			wire += (size_t)r;
			continue;
		}
		if (anser_stream_flush(a) == 0)
			break;
	}
	g_assert_cmpint(anser_stream_write(a, data, 100), ==, 100);
	while (anser_stream_flush(a) == -EAGAIN)
		;
	ssize_t r;
	while ((r = recv(sv[1], buf, sizeof(buf), 0)) > 0)
		wire += (size_t)r;
	size_t chunks = taken / SS_MAX_PAYLOAD;
	g_assert_cmpuint(wire, ==,
			 head + chunks * (SS_LEN_HDR + SS_MAX_PAYLOAD + SS_TAG) +
				 (SS_LEN_HDR + 100 + SS_TAG));
	anser_stream_free(a);
	close(sv[1]);
	g_free(data);
}

/* The request header goes out with the first bytes, in one send(): a
 * SOCK_SEQPACKET pair keeps each send() a record of its own. */
static void test_ss_header_with_data(void)
{
	int sv[2];
	struct anser_ss_key k;
	struct anser_stream *a;
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(8080) };
	const size_t head = 16 + (SS_LEN_HDR + 7 + SS_TAG);
	uint8_t data[100] = { 0 }, buf[4096];

	inet_pton(AF_INET, "10.77.0.3", &dst.sin_addr);
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), ==, 0);
	g_assert_cmpint(anser_ss_key_init(&k, ANSER_CIPHER_AES_128_GCM, "pw"), ==, 0);
	g_assert_cmpint(anser_ss_stream_new(&k, sv[0], (struct sockaddr *)&dst, NULL, &a), ==, 0);
	g_assert_true(anser_stream_pending(a));
	g_assert_cmpint(anser_stream_write(a, data, sizeof(data)), ==, sizeof(data));
	g_assert_false(anser_stream_pending(a));
	g_assert_cmpint(recv(sv[1], buf, sizeof(buf), 0), ==,
			head + SS_LEN_HDR + sizeof(data) + SS_TAG);
	/* later bytes are records of their own */
	g_assert_cmpint(anser_stream_write(a, data, 10), ==, 10);
	g_assert_cmpint(recv(sv[1], buf, sizeof(buf), 0), ==, SS_LEN_HDR + 10 + SS_TAG);
	anser_stream_free(a);
	close(sv[1]);

	/* with no bytes from the app, a flush sends the header alone */
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), ==, 0);
	g_assert_cmpint(anser_ss_stream_new(&k, sv[0], (struct sockaddr *)&dst, NULL, &a), ==, 0);
	g_assert_cmpint(anser_stream_flush(a), ==, 0);
	g_assert_cmpint(recv(sv[1], buf, sizeof(buf), 0), ==, head);
	anser_stream_free(a);
	close(sv[1]);
}

static void test_ss_stream(void)
{
	int sv[2];
	struct anser_ss_key k;
	struct anser_stream *a, *b;
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(8080) };
	struct sockaddr_in back_dst = { .sin_family = AF_INET, .sin_port = htons(1) };
	size_t big = 300 * 1024;
	uint8_t *data = g_malloc(big), *got = g_malloc(big);

	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i ^ (i >> 8));
	inet_pton(AF_INET, "10.77.0.3", &dst.sin_addr);
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), ==, 0);
	g_assert_cmpint(anser_ss_key_init(&k, ANSER_CIPHER_AES_128_GCM, "pw"), ==, 0);
	/* two client streams face each other: each reads the other's salt,
	 * address chunk and data */
	g_assert_cmpint(anser_ss_stream_new(&k, sv[0], (struct sockaddr *)&dst, NULL, &a), ==, 0);
	g_assert_cmpint(anser_ss_stream_new(&k, sv[1], (struct sockaddr *)&back_dst, NULL, &b), ==,
			0);
	g_assert_true(anser_stream_pending(a));
	g_assert_false(anser_stream_readable(b));

	size_t sent = 0;
	uint8_t addr[7];
	size_t got_n = 0;
	bool addr_read = false;
	while (got_n < big) {
		if (sent < big) {
			ssize_t w = anser_stream_write(a, data + sent, big - sent);
			g_assert_true(w > 0 || w == -EAGAIN);
			if (w > 0)
				sent += (size_t)w;
		} else {
			int f = anser_stream_flush(a);
			g_assert_true(f == 0 || f == -EAGAIN);
		}
		if (!addr_read) {
			ssize_t r = anser_stream_read(b, addr, sizeof(addr));
			if (r == -EAGAIN)
				continue;
			g_assert_cmpint(r, ==, 7);
			g_assert_cmpmem(addr, 7, "\x01\x0a\x4d\x00\x03\x1f\x90", 7);
			addr_read = true;
			continue;
		}
		/* odd small reads: chunks must wait in the stream's spill */
		ssize_t r =
			anser_stream_read(b, got + got_n, big - got_n < 1000 ? big - got_n : 1000);
		if (r == -EAGAIN)
			continue;
		g_assert_cmpint(r, >, 0);
		got_n += (size_t)r;
	}
	g_assert_cmpmem(got, big, data, big);

	/* the other way, then a clean end */
	g_assert_cmpint(anser_stream_write(b, (const uint8_t *)"pong", 4), ==, 4);
	while (anser_stream_flush(b) == -EAGAIN)
		;
	read_all(a, addr, 7, 7);
	read_all(a, got, 4, 3);
	g_assert_cmpmem(got, 4, "pong", 4);
	shutdown(sv[1], SHUT_WR);
	g_assert_cmpint(anser_stream_read(a, got, 10), ==, 0);
	anser_stream_free(a);
	anser_stream_free(b);

	/* a stream cut inside a chunk, and garbage */
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), ==, 0);
	g_assert_cmpint(anser_ss_stream_new(&k, sv[0], (struct sockaddr *)&dst, NULL, &a), ==, 0);
	g_assert_cmpint(write(sv[1], data, 16 + 10), ==, 26);
	shutdown(sv[1], SHUT_WR);
	g_assert_cmpint(anser_stream_read(a, got, 100), ==, -EPROTO);
	anser_stream_free(a);
	close(sv[1]);
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), ==, 0);
	g_assert_cmpint(anser_ss_stream_new(&k, sv[0], (struct sockaddr *)&dst, NULL, &a), ==, 0);
	g_assert_cmpint(write(sv[1], data, 16 + 18), ==, 34);
	g_assert_cmpint(anser_stream_read(a, got, 100), ==, -EBADMSG);
	anser_stream_free(a);
	close(sv[1]);
	g_free(data);
	g_free(got);
}

static void test_http(void)
{
	char buf[1024];
	struct sockaddr_in6 d6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
	inet_pton(AF_INET6, "fd77::3", &d6.sin6_addr);
	ssize_t n = anser_http_connect_request(buf, sizeof(buf), (struct sockaddr *)&d6, NULL, NULL,
					       NULL);
	g_assert_cmpint(n, >, 0);
	g_assert_cmpstr(buf, ==, "CONNECT [fd77::3]:443 HTTP/1.1\r\nHost: [fd77::3]:443\r\n\r\n");
	struct sockaddr_in d4 = { .sin_family = AF_INET, .sin_port = htons(80) };
	inet_pton(AF_INET, "10.0.0.1", &d4.sin_addr);
	n = anser_http_connect_request(buf, sizeof(buf), (struct sockaddr *)&d4, NULL, "alice",
				       "s:x");
	g_assert_cmpstr(buf, ==,
			"CONNECT 10.0.0.1:80 HTTP/1.1\r\nHost: 10.0.0.1:80\r\n"
			"Proxy-Authorization: Basic YWxpY2U6czp4\r\n\r\n");
	g_assert_cmpint(
		anser_http_connect_request(buf, 20, (struct sockaddr *)&d4, NULL, NULL, NULL), ==,
		-ENOBUFS);
	/* dial_mode domain */
	n = anser_http_connect_request(buf, sizeof(buf), (struct sockaddr *)&d6, "x.test", NULL,
				       NULL);
	g_assert_cmpstr(buf, ==, "CONNECT x.test:443 HTTP/1.1\r\nHost: x.test:443\r\n\r\n");

	static const struct {
		const char *in;
		int r, status;
	} cases[] = {
		{ "HTTP/1.1 200 Connection established\r\n\r\n", 39, 200 },
		{ "HTTP/1.0 200 OK\r\nProxy-agent: x\r\n\r\nDATA", 35, 200 },
		{ "HTTP/1.1 204\n\n", 14, 204 },
		{ "HTTP/1.1 200 OK\r\n", -EAGAIN, 0 },
		{ "HTTP/1.", -EAGAIN, 0 },
		{ "HTT", -EAGAIN, 0 },
		{ "HTTP/1.1 407 Proxy Auth\r\n\r\n", -EACCES, 407 },
		{ "HTTP/1.1 502 Bad Gateway\r\n\r\n", -EHOSTUNREACH, 502 },
		{ "HTTP/1.1 500 x\r\n\r\n", -ECONNREFUSED, 500 },
		{ "HTTP/2 200\r\n\r\n", -EPROTO, 0 },
		{ "SSH-2.0-OpenSSH\r\n", -EPROTO, 0 },
		{ "HTTP/1.1 2x0 OK\r\n\r\n", -EPROTO, 0 },
		{ "HTTP/1.1 2000 OK\r\n\r\n", -EPROTO, 0 },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		int st = -1;
		int r = anser_http_parse_response((const uint8_t *)cases[i].in, strlen(cases[i].in),
						  &st);
		if (r != cases[i].r || st != cases[i].status)
			g_error("'%s': got %d/%d, want %d/%d", cases[i].in, r, st, cases[i].r,
				cases[i].status);
	}
	/* an endless head */
	g_autofree char *huge = g_strnfill(HTTP_MAX_HEAD + 10, 'a');
	memcpy(huge, "HTTP/1.1 200 OK\r\n", 17);
	int st;
	g_assert_cmpint(anser_http_parse_response((const uint8_t *)huge, strlen(huge), &st), ==,
			-EPROTO);
}

static void test_ws(void)
{
	uint8_t b[16], op;
	int fin;
	uint64_t pl;
	static const uint8_t m[4] = { 1, 2, 3, 4 };

	g_assert_cmpuint(anser_ws_frame_header(b, 2, 125, m), ==, 6);
	g_assert_cmpmem(b, 6, "\x82\xfd\x01\x02\x03\x04", 6);
	g_assert_cmpuint(anser_ws_frame_header(b, 2, 126, NULL), ==, 4);
	g_assert_cmpmem(b, 4, "\x82\x7e\x00\x7e", 4);
	g_assert_cmpuint(anser_ws_frame_header(b, 2, 70000, m), ==, 14);
	g_assert_cmpmem(b, 10, "\x82\xff\x00\x00\x00\x00\x00\x01\x11\x70", 10);

	static const struct {
		const char *in;
		size_t len;
		int r;
		uint8_t op;
		uint64_t pl;
	} cases[] = {
		{ "\x82\x05", 2, 2, 2, 5 },
		{ "\x02\x7e\x01\x00", 4, 4, 2, 256 },
		{ "\x80\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10, 10, 0, 65536 },
		{ "\x89\x03", 2, 2, 9, 3 },
		{ "\x82", 1, -EAGAIN, 0, 0 },
		{ "\x82\x7e\x01", 3, -EAGAIN, 0, 0 },
		{ "\x82\x85", 2, -EPROTO, 0, 0 },	  /* masked by the server */
		{ "\xc2\x05", 2, -EPROTO, 0, 0 },	  /* RSV1 */
		{ "\x83\x05", 2, -EPROTO, 0, 0 },	  /* reserved opcode */
		{ "\x89\x7e\x00\x80", 4, -EPROTO, 0, 0 }, /* control > 125 */
		{ "\x09\x01", 2, -EPROTO, 0, 0 },	  /* fragmented ping */
		{ "\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10, -EPROTO, 0, 0 }, /* 2^63 */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		int r = anser_ws_parse_header((const uint8_t *)cases[i].in, cases[i].len, &op, &fin,
					      &pl);
		if (r != cases[i].r)
			g_error("ws case %zu: got %d want %d", i, r, cases[i].r);
		if (r > 0 && (op != cases[i].op || pl != cases[i].pl))
			g_error("ws case %zu: op %u len %llu", i, op, (unsigned long long)pl);
	}
}

static void test_headers(void)
{
	uint8_t b[TROJAN_HDR_MAX + 64];
	struct sockaddr_in d4 = { .sin_family = AF_INET, .sin_port = htons(443) };
	struct sockaddr_in6 d6 = { .sin6_family = AF_INET6, .sin6_port = htons(80) };
	inet_pton(AF_INET, "10.77.0.3", &d4.sin_addr);
	inet_pton(AF_INET6, "fd77::3", &d6.sin6_addr);

	/* trojan: SHA224("password") in hex */
	ssize_t n = anser_trojan_header(b, sizeof(b), "password", TROJAN_CMD_CONNECT,
					(struct sockaddr *)&d4, NULL);
	g_assert_cmpint(n, ==, 56 + 2 + 1 + 7 + 2);
	g_assert_cmpmem(b, 56, "d63dc919e201d7bc4c825630d2cf25fdc93d4b2f0d46706d29038d01", 56);
	g_assert_cmpmem(b + 56, 12, "\r\n\x01\x01\x0a\x4d\x00\x03\x01\xbb\r\n", 12);

	/* trojan UDP framing both ways */
	n = anser_trojan_udp_frame(b, sizeof(b), (struct sockaddr *)&d6, NULL,
				   (const uint8_t *)"hi", 2);
	g_assert_cmpint(n, ==, 19 + 4 + 2);
	struct anser_socks5_addr src;
	const uint8_t *p;
	size_t pl;
	g_assert_cmpint(anser_trojan_udp_parse(b, (size_t)n, &src, &p, &pl), ==, n);
	g_assert_cmpmem(p, pl, "hi", 2);
	g_assert_cmpuint(src.port, ==, 80);
	for (ssize_t cut = 0; cut < n; cut++)
		g_assert_cmpint(anser_trojan_udp_parse(b, (size_t)cut, &src, &p, &pl), ==, -EAGAIN);
	b[19 + 2] = 'x';
	g_assert_cmpint(anser_trojan_udp_parse(b, (size_t)n, &src, &p, &pl), ==, -EPROTO);

	/* vless: port first, then its own address types */
	static const uint8_t uuid[16] = { 0xb8, 0x31 };
	n = anser_vless_header(b, sizeof(b), uuid, VLESS_CMD_TCP, (struct sockaddr *)&d6, NULL);
	g_assert_cmpint(n, ==, 38);
	g_assert_cmpmem(b, 4, "\x00\xb8\x31\x00", 4);
	g_assert_cmpmem(b + 17, 5, "\x00\x01\x00\x50\x03", 5);
	n = anser_vless_header(b, sizeof(b), uuid, VLESS_CMD_TCP, (struct sockaddr *)&d4, NULL);
	g_assert_cmpint(n, ==, 26);
	g_assert_cmpmem(b + 19, 7, "\x01\xbb\x01\x0a\x4d\x00\x03", 7);
	/* dial_mode domain: address type 2, a length-prefixed name */
	n = anser_vless_header(b, sizeof(b), uuid, VLESS_CMD_TCP, (struct sockaddr *)&d4, "x.test");
	g_assert_cmpint(n, ==, 23 + 6);
	g_assert_cmpmem(b + 19, 10, "\x01\xbb\x02\x06x.test", 10);
	n = anser_trojan_header(b, sizeof(b), "password", TROJAN_CMD_CONNECT,
				(struct sockaddr *)&d4, "x.test");
	g_assert_cmpint(n, ==, 56 + 2 + 1 + 1 + 1 + 6 + 2 + 2);
	g_assert_cmpmem(b + 58, 11, "\x01\x03\x06x.test\x01\xbb", 11);
	g_assert_cmpint(anser_vless_parse_response((const uint8_t *)"\x00\x00", 2), ==, 2);
	g_assert_cmpint(anser_vless_parse_response((const uint8_t *)"\x00\x02x", 3), ==, -EAGAIN);
	g_assert_cmpint(anser_vless_parse_response((const uint8_t *)"\x01\x00", 2), ==, -EPROTO);
}

static void test_vmess_kdf(void)
{
	/* the vector in v2ray's own KDF test */
	const char *p1 = "Demo Path for KDF Value Test", *p2 = "Demo Path for KDF Value Test2",
		   *p3 = "Demo Path for KDF Value Test3", *key = "Demo Key for KDF Value Test";
	const uint8_t *path[3] = { (const uint8_t *)p1, (const uint8_t *)p2, (const uint8_t *)p3 };
	size_t plen[3] = { strlen(p1), strlen(p2), strlen(p3) };
	uint8_t out[32], want[32];
	anser_vmess_kdf((const uint8_t *)key, strlen(key), path, plen, 3, out);
	hex("53e9d7e1bd7bd25022b71ead07d8a596efc8a845c7888652fd684b4903dc8892", want, 32);
	g_assert_cmpmem(out, 32, want, 32);

	/* cmdKey = MD5(uuid || the VMess salt) */
	static const uint8_t uuid[16] = { 0xb8, 0x31, 0x38, 0x1d, 0x63, 0x24, 0x4d, 0x53,
					  0xad, 0x4f, 0x8c, 0xda, 0x48, 0xb3, 0x08, 0x11 };
	anser_vmess_cmd_key(uuid, out);
	hex("b50d916ac0cec067981af8e5f38a758f", want, 16);
	g_assert_cmpmem(out, 16, want, 16);
}

/* A VMess stream whose server sends garbage: refused, never trusted. */
static void test_vmess_hostile(void)
{
	static const uint8_t uuid[16] = { 1 };
	struct sockaddr_in d4 = { .sin_family = AF_INET, .sin_port = htons(80) };
	int sv[2];
	struct anser_stream *st;
	uint8_t junk[200], buf[64];

	memset(junk, 0x41, sizeof(junk));
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), ==, 0);
	g_assert_cmpint(anser_vmess_stream_new(sv[0], NULL, uuid, ANSER_CIPHER_AUTO,
					       (struct sockaddr *)&d4, NULL, false, &st),
			==, 0);
	g_assert_true(anser_stream_pending(st)); /* the sealed request header */
	g_assert_cmpint(anser_stream_flush(st), ==, 0);
	/* AuthID, sealed length, nonce, sealed header: well over 64 bytes */
	ssize_t n = read(sv[1], buf, sizeof(buf));
	g_assert_cmpint(n, ==, 64);
	g_assert_cmpint(write(sv[1], junk, sizeof(junk)), ==, sizeof(junk));
	g_assert_cmpint(anser_stream_read(st, buf, sizeof(buf)), ==, -EBADMSG);
	anser_stream_free(st);
	close(sv[1]);
	g_assert_cmpint(anser_vmess_stream_new(-1, NULL, uuid, ANSER_CIPHER_AES_256_GCM,
					       (struct sockaddr *)&d4, NULL, false, &st),
			==, -EPROTONOSUPPORT);
}

/* ---- shadowsocks 2022: the client stream against a server played here */

static void put64be(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* What the client sent first: the salt, then the request headers; checks
 * them as a server would and returns the salt. */
static void ss2022_read_request(int fd, const struct anser_ss_key *k, uint8_t *salt)
{
	uint8_t buf[2048];
	ssize_t n = read(fd, buf, sizeof(buf));
	struct anser_ss_aead dec;
	uint8_t fixed[11], var[1200];

	g_assert_cmpint(n, >, (ssize_t)(k->salt_len + 11 + 16));
	memcpy(salt, buf, k->salt_len);
	g_assert_cmpint(anser_ss_aead_init(&dec, k, salt), ==, 0);
	const uint8_t *p = buf + k->salt_len;
	g_assert_cmpint(anser_ss_open_payload(&dec, p, 11, fixed), ==, 0);
	g_assert_cmpuint(fixed[0], ==, 0); /* a client stream */
	uint64_t ts = 0;
	for (int i = 1; i < 9; i++)
		ts = ts << 8 | fixed[i];
	g_assert_cmpint(llabs((long long)ts - (long long)time(NULL)), <=, 2);
	size_t vl = (size_t)(fixed[9] << 8 | fixed[10]);
	g_assert_cmpuint(vl, <=, sizeof(var));
	g_assert_cmpint(n, ==, (ssize_t)(k->salt_len + 11 + 16 + vl + 16));
	g_assert_cmpint(anser_ss_open_payload(&dec, p + 27, vl, var), ==, 0);
	g_assert_cmpmem(var, 7, "\x01\x0a\x4d\x00\x03\x1f\x90", 7);
	size_t pad = (size_t)(var[7] << 8 | var[8]);
	g_assert_cmpuint(pad, >=, 1); /* no payload: padding is a must */
	g_assert_cmpuint(pad, <=, 900);
	g_assert_cmpuint(vl, ==, 7 + 2 + pad);
	anser_ss_aead_fini(&dec);
}

/* The server's side: salt, header (type, time, request salt, length),
 * the first payload; then one chunk of len more bytes. */
static size_t ss2022_response(const struct anser_ss_key *k, const uint8_t *req_salt, uint8_t type,
			      int64_t skew, const uint8_t *first, size_t n, const uint8_t *more,
			      size_t more_len, uint8_t *out)
{
	struct anser_ss_aead enc;
	uint8_t h[1 + 8 + 32 + 2];
	size_t o = k->salt_len, sl = k->salt_len;

	memset(out, 0x5a, k->salt_len);
	g_assert_cmpint(anser_ss_aead_init(&enc, k, out), ==, 0);
	h[0] = type;
	put64be(h + 1, (uint64_t)((int64_t)time(NULL) + skew));
	memcpy(h + 9, req_salt, sl);
	h[9 + sl] = (uint8_t)(n >> 8);
	h[10 + sl] = (uint8_t)n;
	g_assert_cmpint(anser_ss_seal(&enc, h, 11 + sl, out + o), ==, 0);
	o += 11 + sl + 16;
	g_assert_cmpint(anser_ss_seal(&enc, first, n, out + o), ==, 0);
	o += n + 16;
	if (more_len) {
		uint8_t len[2] = { (uint8_t)(more_len >> 8), (uint8_t)more_len };
		g_assert_cmpint(anser_ss_seal(&enc, len, 2, out + o), ==, 0);
		g_assert_cmpint(anser_ss_seal(&enc, more, more_len, out + o + 18), ==, 0);
		o += 18 + more_len + 16;
	}
	anser_ss_aead_fini(&enc);
	return o;
}

static void test_ss2022_stream(void)
{
	static const struct {
		const char *name;
		uint8_t type;
		int64_t skew;
		bool wrong_salt;
		ssize_t want; /* of the first read */
	} cases[] = {
		{ "good", 1, 0, false, 5 },
		{ "clock 20 s behind", 1, -20, false, 5 },
		{ "a client header", 0, 0, false, -EPROTO },
		{ "from 31 s ago", 1, -31, false, -EPROTO },
		{ "another request's salt", 1, 0, true, -EPROTO },
	};
	const char *psk[] = { "AAECAwQFBgcICQoLDA0ODw==",
			      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" };
	enum anser_cipher ciphers[] = { ANSER_CIPHER_2022_AES_128_GCM,
					ANSER_CIPHER_2022_AES_256_GCM };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(8080) };
	size_t big = SS2022_MAX_PAYLOAD; /* a full-size 2022 chunk */
	uint8_t *more = g_malloc(big), *out = g_malloc(big + 4096), *got = g_malloc(big);

	for (size_t i = 0; i < big; i++)
		more[i] = (uint8_t)(i * 7);
	inet_pton(AF_INET, "10.77.0.3", &dst.sin_addr);
	for (size_t c = 0; c < G_N_ELEMENTS(ciphers); c++)
		for (size_t t = 0; t < G_N_ELEMENTS(cases); t++) {
			struct anser_ss_key k;
			struct anser_stream *st;
			int sv[2];
			uint8_t salt[32];
			g_assert_cmpint(anser_ss_key_init(&k, ciphers[c], psk[c]), ==, 0);
			g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), ==,
					0);
			g_assert_cmpint(
				anser_ss_stream_new(&k, sv[0], (struct sockaddr *)&dst, NULL, &st),
				==, 0);
			while (anser_stream_flush(st) == -EAGAIN)
				;
			ss2022_read_request(sv[1], &k, salt);
			if (cases[t].wrong_salt)
				salt[3] ^= 1;
			size_t n = ss2022_response(&k, salt, cases[t].type, cases[t].skew,
						   (const uint8_t *)"hello", 5, more, big, out);
			size_t w = 0;
			ssize_t r = -EAGAIN;
			/* write as the socket takes it, reading between */
			while (r == -EAGAIN) {
				ssize_t m = w < n ? write(sv[1], out + w, n - w) : 0;
				if (m > 0)
					w += (size_t)m;
				r = anser_stream_read(st, got, 5);
			}
			if (r != cases[t].want)
				g_error("%s: %s: read gave %zd, expected %zd", psk[c],
					cases[t].name, r, cases[t].want);
			if (r == 5) {
				g_assert_cmpmem(got, 5, "hello", 5);
				size_t have = 0;
				while (have < big) {
					ssize_t m = w < n ? write(sv[1], out + w, n - w) : 0;
					if (m > 0)
						w += (size_t)m;
					/* small reads: the chunk waits in the spill */
					r = anser_stream_read(st, got + have,
							      MIN(4000, big - have));
					g_assert_true(r > 0 || r == -EAGAIN);
					if (r > 0)
						have += (size_t)r;
				}
				g_assert_cmpmem(got, big, more, big);
				/* cut inside a chunk: an error, not a clean end */
				uint8_t part[10] = { 1 };
				g_assert_cmpint(write(sv[1], part, sizeof(part)), ==, 10);
				shutdown(sv[1], SHUT_WR);
				g_assert_cmpint(anser_stream_read(st, got, 100), ==, -EPROTO);
			}
			anser_stream_free(st);
			close(sv[1]);
		}
	g_free(more);
	g_free(out);
	g_free(got);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ss/key", test_ss_key);
	g_test_add_func("/ss/chunks", test_ss_chunks);
	g_test_add_func("/ss/udp", test_ss_udp);
	g_test_add_func("/ss/stream", test_ss_stream);
	g_test_add_func("/ss/full-chunks", test_ss_full_chunks);
	g_test_add_func("/ss/header-with-data", test_ss_header_with_data);
	g_test_add_func("/ss/2022-stream", test_ss2022_stream);
	g_test_add_func("/http/connect", test_http);
	g_test_add_func("/ws/frames", test_ws);
	g_test_add_func("/trojan-vless/headers", test_headers);
	g_test_add_func("/vmess/kdf", test_vmess_kdf);
	g_test_add_func("/vmess/hostile", test_vmess_hostile);
	return g_test_run();
}
