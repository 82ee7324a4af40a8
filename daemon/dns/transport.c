// SPDX-License-Identifier: GPL-2.0-or-later
/* An upstream's TCP connection, with TLS for tls:// (RFC 7858) and
 * https:// (RFC 8484, HTTP/2 in doh.c): made with the first query that
 * needs it, queries pipelined on it (RFC 7766) or one HTTP/2 stream each. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "service-private.h"
#include "../outbound/tls.h"
#include "../util/log.h"

void dns_up_tcp_close(struct anser_dns_service *s, struct upstream *u)
{
	if (u->tls)
		anser_stream_free(u->tls); /* closes tfd */
	else if (u->tfd >= 0)
		close(u->tfd); /* out of epoll with it; what was asked times out */
	u->tls = NULL;
	dns_h2_close(u);
	u->handshaken = false;
	u->tfd = -1;
	u->tconnected = false;
	u->tin_len = 0;
	if (u->tout)
		g_byte_array_set_size(u->tout, 0);
}

void dns_up_tcp_events(struct anser_dns_service *s, int up, uint32_t events)
{
	struct epoll_event ev = { .events = events,
				  .data.u64 = (uint64_t)EV_UPTCP << 32 | (uint32_t)up };
	epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->conf->ups[up].tfd, &ev);
}

/* Writes what is queued once the connection (and TLS) is up. */
void dns_up_tcp_flush(struct anser_dns_service *s, int up)
{
	struct upstream *u = &s->conf->ups[up];

	if (!u->tconnected) {
		dns_up_tcp_events(s, up, EPOLLIN | EPOLLOUT);
		return;
	}
	if (u->tls && !u->handshaken) {
		dns_up_tcp_events(s, up, anser_tls_events(u->tls));
		return;
	}
	while (u->tout->len || (u->tls && anser_stream_pending(u->tls))) {
		ssize_t n;
		if (u->tls && !u->tout->len)
			n = anser_stream_flush(u->tls) < 0 ? -1 : 0;
		else if (u->tls)
			n = anser_stream_write(u->tls, u->tout->data, u->tout->len);
		else
			n = send(u->tfd, u->tout->data, u->tout->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EINTR) && !u->tls)
			continue;
		if ((u->tls && n == -EAGAIN) || (!u->tls && n < 0 && errno == EAGAIN))
			break;
		if (n < 0) {
			dns_up_tcp_close(s, u);
			return;
		}
		if (n == 0 && u->tls && !u->tout->len)
			break; /* flushed */
		g_byte_array_remove_range(u->tout, 0, (guint)n);
	}
	bool more = u->tout->len || (u->tls && anser_stream_pending(u->tls));
	dns_up_tcp_events(s, up, EPOLLIN | (more ? EPOLLOUT : 0));
}

/* q over the upstream's TCP connection, made first if there is none. */
bool dns_up_tcp_send(struct anser_dns_service *s, int up, const uint8_t *q, size_t n)
{
	struct upstream *u = &s->conf->ups[up];
	uint8_t l[2] = { (uint8_t)(n >> 8), (uint8_t)n };

	if (u->tfd < 0) {
		u->tfd =
			socket(u->ep.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (u->tfd < 0)
			return false;
		if (dns_up_connect(s, u, u->tfd, false) < 0) {
			dns_up_tcp_close(s, u);
			return false;
		}
		if (!u->tout)
			u->tout = g_byte_array_new();
		if (!u->tin)
			u->tin = g_malloc(2 + 65535);
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT,
					  .data.u64 = (uint64_t)EV_UPTCP << 32 | (uint32_t)up };
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, u->tfd, &ev);
	}
	if (u->ep.scheme == ANSER_DNS_HTTPS) {
		if (!dns_h2_submit(u, q, n)) {
			dns_up_tcp_close(s, u);
			return false;
		}
	} else {
		g_byte_array_append(u->tout, l, 2);
		g_byte_array_append(u->tout, q, (guint)n);
	}
	dns_up_tcp_flush(s, up);
	return true;
}

void dns_on_upstream_tcp(struct anser_dns_service *s, int up, uint32_t events)
{
	struct upstream *u = &s->conf->ups[up];

	if (u->tfd < 0)
		return;
	if (!u->tconnected) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(u->tfd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
			log_debug("DNS upstream %s: TCP connection failed: %s", u->name,
				  strerror(err ? err : errno));
			dns_up_tcp_close(s, u);
			return;
		}
		u->tconnected = true;
		/* RFC 7858: the certificate must match the address or name
		 * written; ALPN "dot" */
		bool https = u->ep.scheme == ANSER_DNS_HTTPS;
		if ((https || u->ep.scheme == ANSER_DNS_TLS) &&
		    anser_tls_stream_new(u->tfd, u->ep.host, https ? "h2" : "dot", false, &u->tls) <
			    0) {
			dns_up_tcp_close(s, u);
			return;
		}
	}
	if (u->tls && !u->handshaken) {
		int r = anser_tls_handshake(u->tls);
		if (r == -EAGAIN) {
			dns_up_tcp_events(s, up, anser_tls_events(u->tls));
			return;
		}
		if (r < 0) {
			log_warning("DNS upstream %s: TLS handshake failed: %s", u->name,
				    anser_tls_error(u->tls));
			dns_up_tcp_close(s, u);
			return;
		}
		u->handshaken = true;
	}
	dns_up_tcp_flush(s, up);
	s->batching = true;
	while (u->tfd >= 0) {
		ssize_t n = u->tls ? anser_stream_read(u->tls, u->tin + u->tin_len,
						       2 + 65535 - u->tin_len)
				   : recv(u->tfd, u->tin + u->tin_len, 2 + 65535 - u->tin_len,
					  MSG_DONTWAIT);
		if (u->tls ? n == -EAGAIN : (n < 0 && (errno == EAGAIN || errno == EINTR)))
			break;
		if (n <= 0) {
			dns_up_tcp_close(s, u);
			break;
		}
		if (u->ep.scheme == ANSER_DNS_HTTPS) {
			if (dns_h2_recv(s, up, u->tin, (size_t)n) < 0)
				dns_up_tcp_close(s, u);
			else
				dns_up_tcp_flush(s, up);
			continue;
		}
		u->tin_len += (size_t)n;
		size_t off = 0;
		while (u->tin_len - off >= 2) {
			size_t ml = (size_t)(u->tin[off] << 8 | u->tin[off + 1]);
			if (u->tin_len - off < 2 + ml)
				break;
			memcpy(s->buf, u->tin + off + 2, ml);
			off += 2 + ml;
			dns_handle_answer(s, up, s->buf, ml, true);
		}
		memmove(u->tin, u->tin + off, u->tin_len - off);
		u->tin_len -= off;
	}
	dns_flush(s);
	s->batching = false;
}
