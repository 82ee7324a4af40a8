// SPDX-License-Identifier: GPL-2.0-or-later
/* The DNS listeners' TCP connections (RFC 7766): two-byte lengths,
 * several queries in flight, answers as they come, idle ones closed. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "service-private.h"
#include "../util/log.h"

void dns_tconn_close(struct anser_dns_service *s, struct tconn *c)
{
	g_hash_table_remove(s->conns, GUINT_TO_POINTER(c->id));
	close(c->fd); /* out of epoll with it */
	g_byte_array_unref(c->out);
	g_free(c);
}

/* Writes what c has queued; EPOLLOUT while some is left. */
void dns_tconn_flush(struct anser_dns_service *s, struct tconn *c)
{
	while (c->out->len) {
		ssize_t n = send(c->fd, c->out->data, c->out->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN) {
			dns_tconn_close(s, c);
			return;
		}
		if (n < 0)
			break;
		g_byte_array_remove_range(c->out, 0, (guint)n);
	}
	bool want = c->out->len > 0;
	if (want != c->want_out) {
		struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0),
					  .data.u64 = (uint64_t)EV_CONN << 32 | c->id };
		epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
		c->want_out = want;
	}
}

/* An answer for connection id, if it is still open. */
void dns_tconn_send(struct anser_dns_service *s, uint32_t id, const uint8_t *msg, size_t len)
{
	struct tconn *c = g_hash_table_lookup(s->conns, GUINT_TO_POINTER(id));
	uint8_t l[2] = { (uint8_t)(len >> 8), (uint8_t)len };

	if (!c || len > 65535)
		return;
	if (c->out->len > 4 * 65536) { /* an asker that does not read */
		dns_tconn_close(s, c);
		return;
	}
	g_byte_array_append(c->out, l, 2);
	g_byte_array_append(c->out, msg, (guint)len);
	dns_tconn_flush(s, c);
}

void dns_on_accept(struct anser_dns_service *s, int lfd, bool takeover)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (g_hash_table_size(s->conns) >= MAX_CONNS) {
			close(fd); /* bounded: the oldest idle ones go on the next tick */
			continue;
		}
		struct tconn *c = g_malloc(sizeof(*c));
		c->id = ++s->next_conn ? s->next_conn : ++s->next_conn;
		c->fd = fd;
		c->last_ms = dns_now_ms();
		c->in_len = 0;
		c->orig.ss_family = 0;
		struct sockaddr_storage local;
		socklen_t ll = sizeof(local);
		if (takeover && s->hooks.orig_tcp &&
		    getsockname(fd, (struct sockaddr *)&local, &ll) == 0 &&
		    s->hooks.orig_tcp(s->hooks.ud, (struct sockaddr *)&peer,
				      ntohs(local.ss_family == AF_INET6
						    ? ((struct sockaddr_in6 *)&local)->sin6_port
						    : ((struct sockaddr_in *)&local)->sin_port),
				      &c->orig) < 0)
			c->orig.ss_family = 0;
		c->out = g_byte_array_new();
		c->want_out = false;
		g_hash_table_insert(s->conns, GUINT_TO_POINTER(c->id), c);
		struct epoll_event ev = { .events = EPOLLIN,
					  .data.u64 = (uint64_t)EV_CONN << 32 | c->id };
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			dns_tconn_close(s, c);
	}
}

void dns_on_conn(struct anser_dns_service *s, uint32_t id, uint32_t events)
{
	struct tconn *c = g_hash_table_lookup(s->conns, GUINT_TO_POINTER(id));

	if (!c)
		return;
	if (events & EPOLLOUT) {
		dns_tconn_flush(s, c);
		if (!g_hash_table_contains(s->conns, GUINT_TO_POINTER(id)))
			return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		dns_tconn_close(s, c);
		return;
	}
	c->in_len += (size_t)n;
	c->last_ms = dns_now_ms();
	size_t off = 0;
	while (c->in_len - off >= 2) {
		size_t ml = (size_t)(c->in[off] << 8 | c->in[off + 1]);
		if (c->in_len - off < 2 + ml)
			break;
		struct waiter w = { .fd = -1, .conn = id, .orig = c->orig };
		dns_on_query(s, &w, c->in + off + 2, ml);
		/* the query may have closed it (an answer it would not read) */
		if (!g_hash_table_contains(s->conns, GUINT_TO_POINTER(id)))
			return;
		off += 2 + ml;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}
