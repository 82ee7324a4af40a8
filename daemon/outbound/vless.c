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

#define FIRST_MAX 16000

struct vless_stream {
	struct anser_stream s;
	bool hdr_sent;
	size_t hdr_len;
	uint8_t resp[2 + 255]; /* the response header, until read whole */
	size_t resp_len;
	bool resp_done;
	uint8_t buf[FIRST_MAX];
};

static int vless_flush(struct anser_stream *st)
{
	struct vless_stream *v = (struct vless_stream *)st;
	if (!v->hdr_sent) {
		ssize_t r = anser_stream_lower_write(st, v->buf, v->hdr_len);
		if (r < 0)
			return (int)r;
		if ((size_t)r != v->hdr_len)
			return -EIO;
		v->hdr_sent = true;
	}
	return anser_stream_lower_flush(st);
}

static ssize_t vless_write(struct anser_stream *st, const uint8_t *buf, size_t len)
{
	struct vless_stream *v = (struct vless_stream *)st;
	if (v->hdr_sent)
		return anser_stream_lower_write(st, buf, len);
	size_t n = len < FIRST_MAX - v->hdr_len ? len : FIRST_MAX - v->hdr_len;
	memcpy(v->buf + v->hdr_len, buf, n);
	ssize_t r = anser_stream_lower_write(st, v->buf, v->hdr_len + n);
	if (r < 0)
		return r;
	if ((size_t)r != v->hdr_len + n)
		return -EIO;
	v->hdr_sent = true;
	return (ssize_t)n;
}

static ssize_t vless_read(struct anser_stream *st, uint8_t *buf, size_t len)
{
	struct vless_stream *v = (struct vless_stream *)st;
	while (!v->resp_done) {
		/* byte by byte through the header: it is 2 bytes in practice */
		int need = anser_vless_parse_response(v->resp, v->resp_len);
		if (need == -EPROTO)
			return -EPROTO;
		if (need > 0) {
			v->resp_done = true;
			break;
		}
		size_t want = v->resp_len < 2 ? 2 - v->resp_len : 2 + v->resp[1] - v->resp_len;
		ssize_t r = anser_stream_lower_read(st, v->resp + v->resp_len, want);
		if (r <= 0)
			return r == 0 ? -EPROTO : r;
		v->resp_len += (size_t)r;
	}
	return anser_stream_lower_read(st, buf, len);
}

static bool vless_pending(const struct anser_stream *st)
{
	return !((const struct vless_stream *)st)->hdr_sent || anser_stream_lower_pending(st);
}

static bool vless_readable(const struct anser_stream *st)
{
	return anser_stream_lower_readable(st);
}

static void vless_free(struct anser_stream *st)
{
	explicit_bzero(st, sizeof(struct vless_stream));
	free(st);
}

static const struct anser_stream_ops vless_ops = {
	.write = vless_write,
	.read = vless_read,
	.flush = vless_flush,
	.pending = vless_pending,
	.readable = vless_readable,
	.free = vless_free,
};

int anser_vless_stream_new(int fd, struct anser_stream *inner, const uint8_t uuid[16],
			   const struct sockaddr *dst, struct anser_stream **out)
{
	struct vless_stream *v = ANSER_STREAM_ALLOC(struct vless_stream, buf);
	if (!v)
		return -ENOMEM;
	ssize_t hl = anser_vless_header(v->buf, sizeof(v->buf), uuid, VLESS_CMD_TCP, dst);
	if (hl < 0) {
		free(v);
		return (int)hl;
	}
	v->hdr_len = (size_t)hl;
	v->s.ops = &vless_ops;
	v->s.fd = fd;
	v->s.inner = inner;
	*out = &v->s;
	return 0;
}
