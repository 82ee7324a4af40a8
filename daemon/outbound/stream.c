// SPDX-License-Identifier: GPL-2.0-or-later
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void anser_stream_free(struct anser_stream *s)
{
	if (!s)
		return;
	struct anser_stream *inner = s->inner;
	int fd = s->fd;
	s->ops->free(s);
	if (inner)
		anser_stream_free(inner);
	else if (fd >= 0)
		close(fd);
}

ssize_t anser_stream_lower_write(struct anser_stream *s, const uint8_t *buf, size_t len)
{
	if (s->inner)
		return anser_stream_write(s->inner, buf, len);
	for (;;) {
		ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

ssize_t anser_stream_lower_read(struct anser_stream *s, uint8_t *buf, size_t len)
{
	if (s->inner)
		return anser_stream_read(s->inner, buf, len);
	for (;;) {
		ssize_t n = recv(s->fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

int anser_stream_lower_flush(struct anser_stream *s)
{
	return s->inner ? anser_stream_flush(s->inner) : 0;
}

bool anser_stream_lower_pending(const struct anser_stream *s)
{
	return s->inner && anser_stream_pending(s->inner);
}

bool anser_stream_lower_readable(const struct anser_stream *s)
{
	return s->inner && anser_stream_readable(s->inner);
}

#define FIRST_MAX 16000 /* header and first bytes in one TLS record */
#define RESP_MAX  260

struct prefix_stream {
	struct anser_stream s;
	bool hdr_sent, resp_done;
	size_t hdr_len, resp_len;
	int (*parse)(const uint8_t *buf, size_t len);
	uint8_t resp[RESP_MAX];
	uint8_t buf[FIRST_MAX]; /* last: not zeroed */
};

static int prefix_flush(struct anser_stream *st)
{
	struct prefix_stream *p = (struct prefix_stream *)st;
	if (!p->hdr_sent) {
		ssize_t r = anser_stream_lower_write(st, p->buf, p->hdr_len);
		if (r < 0)
			return (int)r;
		if ((size_t)r != p->hdr_len)
			return -EIO; /* a partial header could not be resumed */
		p->hdr_sent = true;
	}
	return anser_stream_lower_flush(st);
}

static ssize_t prefix_write(struct anser_stream *st, const uint8_t *buf, size_t len)
{
	struct prefix_stream *p = (struct prefix_stream *)st;
	if (p->hdr_sent)
		return anser_stream_lower_write(st, buf, len);
	size_t n = len < FIRST_MAX - p->hdr_len ? len : FIRST_MAX - p->hdr_len;
	memcpy(p->buf + p->hdr_len, buf, n);
	ssize_t r = anser_stream_lower_write(st, p->buf, p->hdr_len + n);
	if (r < 0)
		return r;
	if ((size_t)r != p->hdr_len + n)
		return -EIO;
	p->hdr_sent = true;
	return (ssize_t)n;
}

static ssize_t prefix_read(struct anser_stream *st, uint8_t *buf, size_t len)
{
	struct prefix_stream *p = (struct prefix_stream *)st;
	/* the response header a byte at a time: it is a few bytes */
	while (!p->resp_done) {
		int r = p->parse(p->resp, p->resp_len);
		if (r > 0) {
			p->resp_done = true;
			break;
		}
		if (r != -EAGAIN || p->resp_len == RESP_MAX)
			return -EPROTO;
		ssize_t n = anser_stream_lower_read(st, p->resp + p->resp_len, 1);
		if (n <= 0)
			return n == 0 ? -EPROTO : n;
		p->resp_len++;
	}
	return anser_stream_lower_read(st, buf, len);
}

static bool prefix_pending(const struct anser_stream *st)
{
	return !((const struct prefix_stream *)st)->hdr_sent || anser_stream_lower_pending(st);
}

static bool prefix_readable(const struct anser_stream *st)
{
	return anser_stream_lower_readable(st);
}

static void prefix_free(struct anser_stream *st)
{
	explicit_bzero(st, sizeof(struct prefix_stream)); /* the header holds secrets */
	free(st);
}

static const struct anser_stream_ops prefix_ops = {
	.write = prefix_write,
	.read = prefix_read,
	.flush = prefix_flush,
	.pending = prefix_pending,
	.readable = prefix_readable,
	.free = prefix_free,
};

int anser_prefix_stream_new(int fd, struct anser_stream *inner, const uint8_t *hdr, size_t len,
			    int (*parse_response)(const uint8_t *buf, size_t len),
			    struct anser_stream **out)
{
	if (len > 1024)
		return -EINVAL;
	struct prefix_stream *p = ANSER_STREAM_ALLOC(struct prefix_stream, buf);
	if (!p)
		return -ENOMEM;
	memcpy(p->buf, hdr, len);
	p->hdr_len = len;
	p->parse = parse_response;
	p->resp_done = !parse_response;
	p->s.ops = &prefix_ops;
	p->s.fd = fd;
	p->s.inner = inner;
	*out = &p->s;
	return 0;
}
