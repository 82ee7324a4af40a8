// SPDX-License-Identifier: GPL-2.0-or-later
#include "trojan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

ssize_t anser_trojan_header(uint8_t *buf, size_t len, const char *password, uint8_t cmd,
			    const struct sockaddr *dst)
{
	static const char hexd[] = "0123456789abcdef";
	uint8_t h[28];

	if (len < 56 + 2 + 1)
		return -ENOBUFS;
	if (gnutls_hash_fast(GNUTLS_DIG_SHA224, password, strlen(password), h) < 0)
		return -EIO;
	for (size_t i = 0; i < 28; i++) {
		buf[2 * i] = (uint8_t)hexd[h[i] >> 4];
		buf[2 * i + 1] = (uint8_t)hexd[h[i] & 15];
	}
	buf[56] = '\r';
	buf[57] = '\n';
	buf[58] = cmd;
	ssize_t al = anser_socks5_put_addr(buf + 59, len - 59, dst);
	if (al < 0)
		return al;
	if ((size_t)(59 + al + 2) > len)
		return -ENOBUFS;
	buf[59 + al] = '\r';
	buf[60 + al] = '\n';
	return 61 + al;
}

#define FIRST_MAX 16384

struct trojan_stream {
	struct anser_stream s;
	bool hdr_sent;
	size_t hdr_len;
	uint8_t buf[FIRST_MAX];
};

/* The header alone (server-first protocols must not wait for the app). */
static int trojan_flush(struct anser_stream *st)
{
	struct trojan_stream *t = (struct trojan_stream *)st;
	if (!t->hdr_sent) {
		ssize_t r = anser_stream_lower_write(st, t->buf, t->hdr_len);
		if (r < 0)
			return (int)r;
		if ((size_t)r != t->hdr_len)
			return -EIO; /* TLS takes whole records */
		t->hdr_sent = true;
	}
	return anser_stream_lower_flush(st);
}

static ssize_t trojan_write(struct anser_stream *st, const uint8_t *buf, size_t len)
{
	struct trojan_stream *t = (struct trojan_stream *)st;
	if (t->hdr_sent)
		return anser_stream_lower_write(st, buf, len);
	/* header and first bytes in one record */
	size_t n = len < FIRST_MAX - t->hdr_len ? len : FIRST_MAX - t->hdr_len;
	memcpy(t->buf + t->hdr_len, buf, n);
	ssize_t r = anser_stream_lower_write(st, t->buf, t->hdr_len + n);
	if (r < 0)
		return r;
	if ((size_t)r != t->hdr_len + n)
		return -EIO;
	t->hdr_sent = true;
	return (ssize_t)n;
}

static ssize_t trojan_read(struct anser_stream *st, uint8_t *buf, size_t len)
{
	return anser_stream_lower_read(st, buf, len);
}

static bool trojan_pending(const struct anser_stream *st)
{
	return !((const struct trojan_stream *)st)->hdr_sent || anser_stream_lower_pending(st);
}

static bool trojan_readable(const struct anser_stream *st)
{
	return anser_stream_lower_readable(st);
}

static void trojan_free(struct anser_stream *st)
{
	explicit_bzero(st, sizeof(struct trojan_stream));
	free(st);
}

static const struct anser_stream_ops trojan_ops = {
	.write = trojan_write,
	.read = trojan_read,
	.flush = trojan_flush,
	.pending = trojan_pending,
	.readable = trojan_readable,
	.free = trojan_free,
};

int anser_trojan_stream_new(int fd, struct anser_stream *inner, const char *password, uint8_t cmd,
			    const struct sockaddr *dst, struct anser_stream **out)
{
	struct trojan_stream *t = ANSER_STREAM_ALLOC(struct trojan_stream, buf);
	if (!t)
		return -ENOMEM;
	ssize_t hl = anser_trojan_header(t->buf, sizeof(t->buf), password, cmd, dst);
	if (hl < 0) {
		free(t);
		return (int)hl;
	}
	t->hdr_len = (size_t)hl;
	t->s.ops = &trojan_ops;
	t->s.fd = fd;
	t->s.inner = inner;
	*out = &t->s;
	return 0;
}

ssize_t anser_trojan_udp_frame(uint8_t *buf, size_t len, const struct sockaddr *dst,
			       const uint8_t *p, size_t n)
{
	if (n > 0xFFFF)
		return -EMSGSIZE;
	ssize_t al = anser_socks5_put_addr(buf, len, dst);
	if (al < 0)
		return al;
	if ((size_t)al + 4 + n > len)
		return -ENOBUFS;
	buf[al] = (uint8_t)(n >> 8);
	buf[al + 1] = (uint8_t)n;
	buf[al + 2] = '\r';
	buf[al + 3] = '\n';
	memcpy(buf + al + 4, p, n);
	return al + 4 + (ssize_t)n;
}

int anser_trojan_udp_parse(const uint8_t *buf, size_t len, struct anser_socks5_addr *src,
			   const uint8_t **payload, size_t *plen)
{
	int al = anser_socks5_get_addr(buf, len, src);
	if (al < 0)
		return al;
	if (len < (size_t)al + 4)
		return -EAGAIN;
	size_t n = (size_t)buf[al] << 8 | buf[al + 1];
	if (buf[al + 2] != '\r' || buf[al + 3] != '\n')
		return -EPROTO;
	if (len < (size_t)al + 4 + n)
		return -EAGAIN;
	*payload = buf + al + 4;
	*plen = n;
	return al + 4 + (int)n;
}
