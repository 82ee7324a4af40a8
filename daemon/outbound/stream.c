// SPDX-License-Identifier: GPL-2.0-or-later
#include "stream.h"

#include <errno.h>
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
