// SPDX-License-Identifier: GPL-2.0-or-later
/* Server bytes against the decoders of the proxy protocols other than
 * SOCKS5 (fuzz-socks5). The first byte picks one:
 *   0: HTTP CONNECT response head
 *   1: a shadowsocks UDP datagram (fixed key)
 *   2: a shadowsocks TCP stream from the server (through a socket pair)
 *   3: a WebSocket stream from the server after the upgrade response
 *   4: trojan UDP frames, 5: a VLESS response header, 6: a VMess response,
 *   7: length-prefixed datagrams (VLESS UDP)
 *   8: a shadowsocks 2022 UDP datagram, 9: a shadowsocks 2022 TCP stream
 * Forged AEAD data never authenticates, so 1 and 2 mostly prove that
 * framing and lengths are checked before anything is trusted. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/outbound/http.h"
#include "daemon/outbound/shadowsocks.h"
#include "daemon/outbound/trojan.h"
#include "daemon/outbound/vless.h"
#include "daemon/outbound/vmess.h"
#include "daemon/outbound/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The server's bytes: an upgrade response then frames; read until the
 * stream ends or fails. Our request goes into the socket pair unread. */
static void fuzz_ws(const uint8_t *in, size_t n)
{
	int sv[2], status;
	struct anser_stream *st;
	uint8_t out[1000];

	if (n > 100000 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	if (anser_ws_stream_new(sv[0], NULL, "h", "/", &st) < 0)
		abort();
	/* a good upgrade when the input starts with 'U', else the input is
	 * the whole response */
	if (n > 0 && in[0] == 'U') {
		char head[256];
		int hl = snprintf(head, sizeof(head),
				  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				  "Sec-WebSocket-Accept: %s\r\n\r\n",
				  anser_ws_expected_accept(st));
		if (write(sv[1], head, (size_t)hl) != hl)
			abort();
		in++;
		n--;
	}
	if (write(sv[1], in, n) != (ssize_t)n)
		abort();
	shutdown(sv[1], SHUT_WR);
	if (anser_ws_handshake(st, &status) == 0) {
		for (int i = 0; i < 256; i++) {
			ssize_t r = anser_stream_read(st, out, sizeof(out));
			if (r > (ssize_t)sizeof(out))
				abort();
			if (r <= 0)
				break;
			(void)anser_stream_flush(st); /* pongs */
		}
	}
	anser_stream_free(st);
	close(sv[1]);
}

/* A shadowsocks TCP stream reading what a server sent. */
static void fuzz_ss_stream(const struct anser_ss_key *key, const uint8_t *in, size_t n)
{
	int sv[2];
	struct anser_stream *st;
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = 1 };
	uint8_t out[4096];

	if (n > 100000 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	if (anser_ss_stream_new(key, sv[0], (struct sockaddr *)&dst, NULL, &st) < 0)
		abort();
	if (write(sv[1], in, n) != (ssize_t)n)
		abort();
	shutdown(sv[1], SHUT_WR);
	for (int i = 0; i < 64; i++) {
		ssize_t r = anser_stream_read(st, out, sizeof(out));
		if (r > (ssize_t)sizeof(out))
			abort();
		if (r <= 0)
			break;
	}
	anser_stream_free(st);
	close(sv[1]);
}

static void fuzz_ss_udp(struct anser_ss_key *key, const uint8_t *in, size_t n)
{
	uint8_t *buf = malloc(n + 1), *payload;
	struct anser_socks5_addr src;

	if (!buf)
		return;
	memcpy(buf, in, n);
	ssize_t r = anser_ss_udp_open(key, buf, n, &payload, &src);
	if (r >= 0 && (payload < buf || payload + r > buf + n))
		abort();
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct anser_ss_key key, key2022;
	static int have_key;

	if (size < 1)
		return 0;
	if (!have_key) {
		if (anser_ss_key_init(&key, ANSER_CIPHER_AES_128_GCM, "fuzz") < 0 ||
		    anser_ss_key_init(&key2022, ANSER_CIPHER_2022_AES_128_GCM,
				      "AAECAwQFBgcICQoLDA0ODw==") < 0)
			abort();
		have_key = 1;
	}
	const uint8_t *in = data + 1;
	size_t n = size - 1;

	switch (data[0] % 10) {
	case 0: {
		int st;
		int r = anser_http_parse_response(in, n, &st);
		if (r > 0 && ((size_t)r > n || st < 200 || st > 299))
			abort();
		break;
	}
	case 1:
		fuzz_ss_udp(&key, in, n);
		break;
	case 8:
		fuzz_ss_udp(&key2022, in, n);
		break;
	case 9:
		fuzz_ss_stream(&key2022, in, n);
		break;
	case 3:
		fuzz_ws(in, n);
		break;
	case 4: {
		struct anser_socks5_addr src;
		const uint8_t *p;
		size_t pl;
		while (n > 0) {
			int r = anser_trojan_udp_parse(in, n, &src, &p, &pl);
			if (r <= 0)
				break;
			if ((size_t)r > n || p + pl > in + n)
				abort();
			in += r;
			n -= (size_t)r;
		}
		break;
	}
	case 6: {
		static const uint8_t uuid[16] = { 1 };
		struct sockaddr_in d = { .sin_family = AF_INET, .sin_port = 1 };
		int sv[2];
		struct anser_stream *st;
		uint8_t out[4096];
		if (n > 100000 ||
		    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
			return 0;
		if (anser_vmess_stream_new(sv[0], NULL, uuid, ANSER_CIPHER_NONE,
					   (struct sockaddr *)&d, NULL, false, &st) < 0)
			abort();
		if (write(sv[1], in, n) != (ssize_t)n)
			abort();
		shutdown(sv[1], SHUT_WR);
		for (int i = 0; i < 64 && anser_stream_read(st, out, sizeof(out)) > 0; i++)
			;
		anser_stream_free(st);
		close(sv[1]);
		break;
	}
	case 7: {
		int sv[2];
		struct anser_stream *st, *raw;
		uint8_t out[70000];
		if (n > 200000 ||
		    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
			return 0;
		/* a do-nothing prefix stream as the layer below */
		if (anser_prefix_stream_new(sv[0], NULL, (const uint8_t *)"", 0, NULL, &raw) < 0 ||
		    anser_packet_stream_new(raw, &st) < 0)
			abort();
		if (write(sv[1], in, n) != (ssize_t)n)
			abort();
		shutdown(sv[1], SHUT_WR);
		for (int i = 0; i < 256; i++) {
			ssize_t r = anser_stream_read(st, out, sizeof(out));
			if (r > 65535)
				abort();
			if (r <= 0)
				break;
		}
		anser_stream_free(st);
		close(sv[1]);
		break;
	}
	case 5: {
		int r = anser_vless_parse_response(in, n);
		if (r > 0 && (size_t)r > n)
			abort();
		break;
	}
	default:
		fuzz_ss_stream(&key, in, n);
	}
	return 0;
}
