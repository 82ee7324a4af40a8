/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A connected outbound stream that transforms bytes (encrypts, frames)
 * between the relay and the node's socket. Protocols that only talk
 * before the relay starts (socks5, HTTP CONNECT, direct) have none: the
 * relay then moves bytes on the socket itself.
 *
 * All calls are non-blocking on the socket:
 *   write: takes plaintext; > 0 bytes taken (they may still sit in the
 *          stream as pending output), -EAGAIN, or -errno.
 *   read:  gives plaintext; > 0 bytes, 0 at a clean end, -EAGAIN,
 *          -EBADMSG/-EPROTO for a forged or cut stream, or -errno.
 *   flush: 0 when nothing is pending, -EAGAIN, -errno.
 * The relay waits for EPOLLOUT on the socket while anser_stream_pending()
 * and treats anser_stream_readable() like data on the socket (it already
 * holds what the next read returns).
 */
#ifndef ANSER_STREAM_H
#define ANSER_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../util/alloc.h"

struct anser_stream;

struct anser_stream_ops {
	ssize_t (*write)(struct anser_stream *s, const uint8_t *buf, size_t len);
	ssize_t (*read)(struct anser_stream *s, uint8_t *buf, size_t len);
	int (*flush)(struct anser_stream *s);
	bool (*pending)(const struct anser_stream *s);
	bool (*readable)(const struct anser_stream *s);
	void (*free)(struct anser_stream *s);
	/* Optional: queue what ends our direction (VMess's empty chunk) and
	 * flush; called again while it returns -EAGAIN. */
	int (*close_write)(struct anser_stream *s);
};

struct anser_stream {
	const struct anser_stream_ops *ops;
	int fd;			    /* the socket at the bottom, for epoll */
	struct anser_stream *inner; /* the stream this one runs over; NULL: fd */
};
/* Layered streams are made with (fd, inner): inner may be NULL (then the
 * stream talks to fd directly); on success the new stream owns both. */

static inline ssize_t anser_stream_write(struct anser_stream *s, const uint8_t *b, size_t n)
{
	return s->ops->write(s, b, n);
}
static inline ssize_t anser_stream_read(struct anser_stream *s, uint8_t *b, size_t n)
{
	return s->ops->read(s, b, n);
}
static inline int anser_stream_flush(struct anser_stream *s)
{
	return s->ops->flush(s);
}
static inline bool anser_stream_pending(const struct anser_stream *s)
{
	return s->ops->pending(s);
}
static inline bool anser_stream_readable(const struct anser_stream *s)
{
	return s->ops->readable(s);
}
/* Before a FIN: the end marker of protocols that have one, then flush. */
static inline int anser_stream_close_write(struct anser_stream *s)
{
	return s->ops->close_write ? s->ops->close_write(s) : s->ops->flush(s);
}
/* Frees the streams below it and closes the fd too. NULL is fine. */
void anser_stream_free(struct anser_stream *s);

/* A stream that sends hdr (copied, at most 1024 bytes) with the first
 * bytes written, or alone on flush (for servers that speak first), and
 * then passes bytes through. With parse_response, the server's response
 * header is taken off what is read first: parse_response returns its
 * length once buf holds all of it, -EAGAIN before, -EPROTO for garbage.
 * Trojan and VLESS are this. Over inner, or fd when inner is NULL. */
int anser_prefix_stream_new(int fd, struct anser_stream *inner, const uint8_t *hdr, size_t len,
			    int (*parse_response)(const uint8_t *buf, size_t len),
			    struct anser_stream **out);

/* Datagrams over a stream, each as a 2-byte big-endian length and its
 * bytes (VLESS UDP): a write is one datagram (at most 65535 bytes; a
 * datagram the stream cannot take whole waits, and later writes get
 * -EAGAIN meanwhile), a read returns one. Over inner (taken). */
int anser_packet_stream_new(struct anser_stream *inner, struct anser_stream **out);

/* Bytes to or from a connected peer that is a stream, or the bare socket
 * fd when st is NULL; the stream conventions (-EAGAIN...), EINTR retried. */
ssize_t anser_io_write(int fd, struct anser_stream *st, const uint8_t *buf, size_t len);
ssize_t anser_io_read(int fd, struct anser_stream *st, uint8_t *buf, size_t len);

/* For layered streams: bytes to and from what is below s (the inner
 * stream, or the socket), with the stream conventions (-EAGAIN...). */
ssize_t anser_stream_lower_write(struct anser_stream *s, const uint8_t *buf, size_t len);
ssize_t anser_stream_lower_read(struct anser_stream *s, uint8_t *buf, size_t len);
int anser_stream_lower_flush(struct anser_stream *s);
/* Writes buf[*off .. *off + *len) to what is below s, moving *off and
 * *len on; 0 once all is written (then *off is 0), -EAGAIN, -errno. */
int anser_stream_lower_drain(struct anser_stream *s, const uint8_t *buf, size_t *off, size_t *len);
bool anser_stream_lower_pending(const struct anser_stream *s);
bool anser_stream_lower_readable(const struct anser_stream *s);

#endif
