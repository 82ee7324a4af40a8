// SPDX-License-Identifier: GPL-2.0-or-later
/* Server bytes against the decoders of the proxy protocols other than
 * SOCKS5 (fuzz-socks5). The first byte picks one:
 *   0: HTTP CONNECT response head
 *   1: a shadowsocks UDP datagram (fixed key)
 *   2: a shadowsocks TCP stream from the server (through a socket pair)
 * Forged AEAD data never authenticates, so 1 and 2 mostly prove that
 * framing and lengths are checked before anything is trusted. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/outbound/http.h"
#include "daemon/outbound/shadowsocks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct anser_ss_key key;
	static int have_key;

	if (size < 1)
		return 0;
	if (!have_key) {
		if (anser_ss_key_init(&key, ANSER_CIPHER_AES_128_GCM, "fuzz") < 0)
			abort();
		have_key = 1;
	}
	const uint8_t *in = data + 1;
	size_t n = size - 1;

	switch (data[0] % 3) {
	case 0: {
		int st;
		int r = anser_http_parse_response(in, n, &st);
		if (r > 0 && ((size_t)r > n || st < 200 || st > 299))
			abort();
		break;
	}
	case 1: {
		uint8_t *buf = malloc(n + 1), *payload;
		struct anser_socks5_addr src;
		if (!buf)
			return 0;
		memcpy(buf, in, n);
		ssize_t r = anser_ss_udp_open(&key, buf, n, &payload, &src);
		if (r >= 0 && (payload < buf || payload + r > buf + n))
			abort();
		free(buf);
		break;
	}
	default: {
		int sv[2];
		struct anser_stream *st;
		struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = 1 };
		uint8_t out[4096];
		if (n > 100000 ||
		    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
			return 0;
		if (anser_ss_stream_new(&key, sv[0], (struct sockaddr *)&dst, &st) < 0)
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
	}
	return 0;
}
