// SPDX-License-Identifier: GPL-2.0-or-later
#include "vless.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

ssize_t anser_vless_header(uint8_t *buf, size_t len, const uint8_t uuid[16], uint8_t cmd,
			   const struct sockaddr *dst)
{
	if (len < VLESS_HDR_MAX)
		return -ENOBUFS;
	buf[0] = 0;
	memcpy(buf + 1, uuid, 16);
	buf[17] = 0; /* no addons */
	buf[18] = cmd;
	if (dst->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)dst;
		memcpy(buf + 19, &s->sin_port, 2);
		buf[21] = 1;
		memcpy(buf + 22, &s->sin_addr, 4);
		return 26;
	}
	if (dst->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)dst;
		memcpy(buf + 19, &s->sin6_port, 2);
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
			buf[21] = 1;
			memcpy(buf + 22, &s->sin6_addr.s6_addr[12], 4);
			return 26;
		}
		buf[21] = 3;
		memcpy(buf + 22, &s->sin6_addr, 16);
		return 38;
	}
	return -EAFNOSUPPORT;
}

int anser_vless_parse_response(const uint8_t *buf, size_t len)
{
	if (len < 1)
		return -EAGAIN;
	if (buf[0] != 0)
		return -EPROTO;
	if (len < 2)
		return -EAGAIN;
	size_t n = 2 + (size_t)buf[1];
	return len < n ? -EAGAIN : (int)n;
}

int anser_vless_stream_new(int fd, struct anser_stream *inner, const uint8_t uuid[16],
			   const struct sockaddr *dst, bool udp, struct anser_stream **out)
{
	uint8_t hdr[VLESS_HDR_MAX];
	ssize_t hl = anser_vless_header(hdr, sizeof(hdr), uuid, udp ? VLESS_CMD_UDP : VLESS_CMD_TCP,
					dst);
	if (hl < 0)
		return (int)hl;
	struct anser_stream *v;
	int r = anser_prefix_stream_new(fd, inner, hdr, (size_t)hl, anser_vless_parse_response, &v);
	if (r < 0 || !udp) {
		*out = v;
		return r;
	}
	r = anser_packet_stream_new(v, out);
	if (r < 0) {
		v->inner = NULL; /* the caller still owns inner */
		v->fd = -1;
		anser_stream_free(v);
	}
	return r;
}
