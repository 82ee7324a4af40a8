// SPDX-License-Identifier: GPL-2.0-or-later
#include "vless.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "socks5.h"

ssize_t anser_vless_header(uint8_t *buf, size_t len, const uint8_t uuid[16], uint8_t cmd,
			   const struct sockaddr *dst, const char *name)
{
	if (len < VLESS_HDR_MAX)
		return -ENOBUFS;
	buf[0] = 0;
	memcpy(buf + 1, uuid, 16);
	buf[17] = 0; /* no addons */
	buf[18] = cmd;
	ssize_t al = anser_put_port_addr(buf + 19, len - 19, dst, name);
	return al < 0 ? al : 19 + al;
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
			   const struct sockaddr *dst, const char *name, bool udp,
			   struct anser_stream **out)
{
	uint8_t hdr[VLESS_HDR_MAX];
	ssize_t hl = anser_vless_header(hdr, sizeof(hdr), uuid, udp ? VLESS_CMD_UDP : VLESS_CMD_TCP,
					dst, name);
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
