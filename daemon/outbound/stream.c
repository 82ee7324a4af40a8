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

ssize_t anser_io_write(int fd, struct anser_stream *st, const uint8_t *buf, size_t len)
{
	if (st)
		return anser_stream_write(st, buf, len);
	for (;;) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

ssize_t anser_io_read(int fd, struct anser_stream *st, uint8_t *buf, size_t len)
{
	if (st)
		return anser_stream_read(st, buf, len);
	for (;;) {
		ssize_t n = recv(fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

ssize_t anser_stream_lower_write(struct anser_stream *s, const uint8_t *buf, size_t len)
{
	return anser_io_write(s->fd, s->inner, buf, len);
}

ssize_t anser_stream_lower_read(struct anser_stream *s, uint8_t *buf, size_t len)
{
	return anser_io_read(s->fd, s->inner, buf, len);
}

int anser_stream_lower_drain(struct anser_stream *s, const uint8_t *buf, size_t *off, size_t *len)
{
	while (*len > 0) {
		ssize_t n = anser_stream_lower_write(s, buf + *off, *len);
		if (n < 0)
			return (int)n;
		*off += (size_t)n;
		*len -= (size_t)n;
	}
	*off = 0;
	return 0;
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
	struct prefix_stream *p = ANSER_ALLOC_HEAD(struct prefix_stream, buf);
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

struct packet_stream {
	struct anser_stream s;
	size_t out_off, out_len, in_len;
	uint8_t out[2 + 65535]; /* last: not zeroed */
	uint8_t in[2 + 65535];
};

static int packet_flush(struct anser_stream *st)
{
	struct packet_stream *p = (struct packet_stream *)st;
	int r = anser_stream_lower_drain(st, p->out, &p->out_off, &p->out_len);
	return r < 0 ? r : anser_stream_lower_flush(st);
}

static ssize_t packet_write(struct anser_stream *st, const uint8_t *buf, size_t len)
{
	struct packet_stream *p = (struct packet_stream *)st;
	if (len > 65535)
		return -EMSGSIZE;
	if (p->out_len > 0) {
		int r = packet_flush(st);
		if (r < 0)
			return r;
	}
	p->out[0] = (uint8_t)(len >> 8);
	p->out[1] = (uint8_t)len;
	memcpy(p->out + 2, buf, len);
	p->out_off = 0;
	p->out_len = 2 + len;
	int r = packet_flush(st);
	if (r < 0 && r != -EAGAIN)
		return r;
	return (ssize_t)len;
}

/* Length of the whole frame at the start of in, or 0 if incomplete. */
static size_t whole_frame(const struct packet_stream *p)
{
	if (p->in_len < 2)
		return 0;
	size_t n = 2 + ((size_t)p->in[0] << 8 | p->in[1]);
	return p->in_len >= n ? n : 0;
}

static ssize_t packet_read(struct anser_stream *st, uint8_t *buf, size_t len)
{
	struct packet_stream *p = (struct packet_stream *)st;
	for (;;) {
		size_t f = whole_frame(p);
		if (f) {
			size_t n = f - 2 < len ? f - 2 : len; /* a short buffer truncates */
			memcpy(buf, p->in + 2, n);
			memmove(p->in, p->in + f, p->in_len - f);
			p->in_len -= f;
			return (ssize_t)n;
		}
		/* read no further than the frame's end: the rest stays below */
		size_t want = p->in_len < 2 ? 2 - p->in_len
					    : 2 + ((size_t)p->in[0] << 8 | p->in[1]) - p->in_len;
		ssize_t r = anser_stream_lower_read(st, p->in + p->in_len, want);
		if (r < 0)
			return r;
		if (r == 0)
			return p->in_len ? -EPROTO : 0;
		p->in_len += (size_t)r;
	}
}

static bool packet_pending(const struct anser_stream *st)
{
	return ((const struct packet_stream *)st)->out_len > 0 || anser_stream_lower_pending(st);
}

static bool packet_readable(const struct anser_stream *st)
{
	return whole_frame((const struct packet_stream *)st) > 0 || anser_stream_lower_readable(st);
}

static void packet_free(struct anser_stream *st)
{
	free(st);
}

static const struct anser_stream_ops packet_ops = {
	.write = packet_write,
	.read = packet_read,
	.flush = packet_flush,
	.pending = packet_pending,
	.readable = packet_readable,
	.free = packet_free,
};

int anser_packet_stream_new(struct anser_stream *inner, struct anser_stream **out)
{
	struct packet_stream *p = ANSER_ALLOC_HEAD(struct packet_stream, out);
	if (!p)
		return -ENOMEM;
	p->s.ops = &packet_ops;
	p->s.fd = inner->fd;
	p->s.inner = inner;
	*out = &p->s;
	return 0;
}
