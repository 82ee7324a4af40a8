// SPDX-License-Identifier: GPL-2.0-or-later
/* The dial state machine. Every step is non-blocking; the relay loop
 * calls anser_dial_step() on readiness.
 *   socks5:      connect -> greeting -> method [-> auth] -> request -> reply
 *   http(s):     connect [-> tls] -> CONNECT request -> response head
 *   shadowsocks: connect -> ready (the salt and address go out with the
 *                stream's first bytes)
 *   trojan:      connect -> tls [-> websocket] -> ready (the header goes
 *                out with the first bytes)
 *   vless/vmess: connect [-> tls] [-> websocket] -> ready (likewise) */
#include "outbound.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../util/log.h"
#include "http.h"
#include "shadowsocks.h"
#include "socks5.h"
#include "tls.h"
#include "trojan.h"
#include "vless.h"
#include "vmess.h"
#include "ws.h"

enum dial_state {
	ST_CONNECTING,
	ST_TLS,
	ST_WS,
	ST_SEND,
	ST_RECV_METHOD,
	ST_RECV_AUTH,
	ST_RECV_REPLY,
	ST_RECV_HTTP,
	ST_READY,
	ST_FAILED,
};

struct anser_dial {
	const struct anser_node *node; /* NULL: direct */
	enum anser_dial_cmd cmd;
	enum dial_state state, after_send;
	const char *stage;
	int fd;
	int udp_fd;
	uint32_t mark; /* SO_MARK of its sockets, 0: none */
	uint8_t rep;
	int http_status; /* of a refused CONNECT or WebSocket upgrade */
	bool tls_failed;
	char tls_why[160];
	bool offered_userpass;
	/* The stack the bytes go through once connected (TLS, then the
	 * protocol's stream); NULL: the bare socket. */
	struct anser_stream *stream;
	struct sockaddr_storage node_addr;
	struct sockaddr_storage dst;
	char name[256]; /* CONNECT to name:port of dst, when set (dial_mode domain) */
	uint8_t out[1536];
	size_t out_off, out_len;
	uint8_t in[HTTP_MAX_HEAD];
	size_t in_len;
	size_t consumed; /* bytes of `in` that were the final reply */
};

static socklen_t sa_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void sa_copy(struct sockaddr_storage *to, const struct sockaddr *sa)
{
	memset(to, 0, sizeof(*to));
	memcpy(to, sa, sa_len(sa));
}

/* A socket of the dial, with its mark. */
static int dial_socket(const struct anser_dial *d, int family, int type)
{
	int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (d->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &d->mark, sizeof(d->mark)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int anser_dial_new(const struct anser_node *node, const struct sockaddr *node_addr,
		   const struct sockaddr *dst, enum anser_dial_cmd cmd, uint32_t mark,
		   struct anser_dial **out)
{
	const struct sockaddr *target = node ? node_addr : dst;

	if (!target || (target->sa_family != AF_INET && target->sa_family != AF_INET6))
		return -EAFNOSUPPORT;
	if (!node && cmd != ANSER_DIAL_CONNECT)
		return -EINVAL;
	if (node) {
		bool ok = node->proto == ANSER_NODE_SOCKS5 ||
			  (cmd == ANSER_DIAL_UDP && dst &&
			   (node->proto == ANSER_NODE_TROJAN || node->proto == ANSER_NODE_VMESS ||
			    node->proto == ANSER_NODE_VLESS)) ||
			  (cmd == ANSER_DIAL_CONNECT &&
			   ((node->net == ANSER_NET_TCP &&
			     (node->proto == ANSER_NODE_HTTP || node->proto == ANSER_NODE_SS)) ||
			    node->proto == ANSER_NODE_TROJAN || node->proto == ANSER_NODE_VLESS ||
			    node->proto == ANSER_NODE_VMESS));
		if (!ok)
			return -EPROTONOSUPPORT;
	}

	struct anser_dial *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->node = node;
	d->cmd = cmd;
	d->mark = mark;
	d->udp_fd = -1;
	d->stage = "connect";
	sa_copy(&d->node_addr, target);
	if (dst)
		sa_copy(&d->dst, dst);
	d->fd = dial_socket(d, target->sa_family, SOCK_STREAM);
	if (d->fd < 0) {
		int r = d->fd;
		free(d);
		return r;
	}
	int one = 1;
	/* Relayed bytes were already coalesced by the app: do not delay them. */
	(void)setsockopt(d->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(d->fd, target, sa_len(target)) < 0 && errno != EINPROGRESS) {
		int r = -errno;
		close(d->fd);
		free(d);
		return r;
	}
	d->state = ST_CONNECTING;
	*out = d;
	return 0;
}

int anser_dial_set_name(struct anser_dial *d, const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n >= sizeof(d->name))
		return -EINVAL;
	memcpy(d->name, name ? name : "", n + 1);
	return 0;
}

int anser_dial_fd(const struct anser_dial *d)
{
	return d->fd;
}

uint32_t anser_dial_events(const struct anser_dial *d)
{
	switch (d->state) {
	case ST_TLS:
		return anser_tls_events(d->stream);
	case ST_WS:
		return anser_ws_events(d->stream);
	case ST_CONNECTING:
	case ST_SEND:
		return EPOLLOUT;
	default:
		return EPOLLIN;
	}
}

const char *anser_dial_stage(const struct anser_dial *d)
{
	return d->stage;
}

uint8_t anser_dial_socks_reply(const struct anser_dial *d)
{
	return d->rep;
}

static void queue_send(struct anser_dial *d, size_t len, enum dial_state next, const char *stage)
{
	d->out_off = 0;
	d->out_len = len;
	d->after_send = next;
	d->state = ST_SEND;
	d->stage = stage;
}

/* Our UDP socket, bound to the address the control connection leaves
 * from, so the request can name the exact source of our datagrams (some
 * servers only relay for the address announced in UDP ASSOCIATE). */
static int open_udp(struct anser_dial *d, struct sockaddr_storage *local)
{
	socklen_t sl = sizeof(*local);
	if (getsockname(d->fd, (struct sockaddr *)local, &sl) < 0)
		return -errno;
	if (local->ss_family == AF_INET)
		((struct sockaddr_in *)local)->sin_port = 0;
	else
		((struct sockaddr_in6 *)local)->sin6_port = 0;
	d->udp_fd = dial_socket(d, local->ss_family, SOCK_DGRAM);
	if (d->udp_fd < 0)
		return d->udp_fd;
	sl = sa_len((struct sockaddr *)local);
	if (bind(d->udp_fd, (struct sockaddr *)local, sl) < 0)
		return -errno;
	sl = sizeof(*local);
	if (getsockname(d->udp_fd, (struct sockaddr *)local, &sl) < 0)
		return -errno;
	return 0;
}

static int send_request(struct anser_dial *d)
{
	ssize_t n;

	if (d->cmd == ANSER_DIAL_UDP) {
		struct sockaddr_storage local;
		int r = open_udp(d, &local);
		if (r < 0) {
			d->stage = "udp";
			return r;
		}
		n = anser_socks5_request(d->out, sizeof(d->out), SOCKS5_CMD_UDP_ASSOCIATE,
					 (struct sockaddr *)&local, NULL);
	} else {
		n = anser_socks5_request(d->out, sizeof(d->out), SOCKS5_CMD_CONNECT,
					 (struct sockaddr *)&d->dst, d->name);
	}
	if (n < 0)
		return (int)n;
	queue_send(d, (size_t)n, ST_RECV_REPLY, "request");
	return 0;
}

static bool is_unspecified(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return true;
}

/* Where our datagrams go: BND.ADDR:BND.PORT, with the node's address
 * standing in for a wildcard or a name (we never resolve on this path). */
static int connect_relay(struct anser_dial *d, const struct anser_socks5_addr *bnd)
{
	struct sockaddr_storage relay;

	if (bnd->atyp == SOCKS5_ATYP_DOMAIN || is_unspecified(&bnd->sa)) {
		relay = d->node_addr;
		if (bnd->atyp == SOCKS5_ATYP_DOMAIN)
			log_debug("SOCKS5 node %s: relay named '%s', using the node's address",
				  d->node->name, bnd->domain);
	} else {
		relay = bnd->sa;
	}
	if (relay.ss_family == AF_INET)
		((struct sockaddr_in *)&relay)->sin_port = htons(bnd->port);
	else
		((struct sockaddr_in6 *)&relay)->sin6_port = htons(bnd->port);

	struct sockaddr_storage local;
	socklen_t sl = sizeof(local);
	if (getsockname(d->udp_fd, (struct sockaddr *)&local, &sl) < 0)
		return -errno;
	if (local.ss_family != relay.ss_family) {
		/* The relay is in the other family: a fresh socket of its kind. */
		close(d->udp_fd);
		d->udp_fd = dial_socket(d, relay.ss_family, SOCK_DGRAM);
		if (d->udp_fd < 0)
			return d->udp_fd;
	}
	if (connect(d->udp_fd, (struct sockaddr *)&relay, sa_len((struct sockaddr *)&relay)) < 0)
		return -errno;
	return 0;
}

/* Feeds d->in to the parser of the current state. */
static int parse_in(struct anser_dial *d)
{
	int r;

	switch (d->state) {
	case ST_RECV_METHOD: {
		uint8_t method;
		r = anser_socks5_parse_method(d->in, d->in_len, d->offered_userpass, &method);
		if (r < 0)
			return r;
		memmove(d->in, d->in + r, d->in_len - (size_t)r);
		d->in_len -= (size_t)r;
		if (method == SOCKS5_METHOD_USERPASS) {
			ssize_t n = anser_socks5_auth_request(d->out, sizeof(d->out), d->node->user,
							      d->node->pass);
			if (n < 0)
				return (int)n;
			queue_send(d, (size_t)n, ST_RECV_AUTH, "auth");
			return 0;
		}
		return send_request(d);
	}
	case ST_RECV_AUTH:
		r = anser_socks5_parse_auth_reply(d->in, d->in_len);
		if (r < 0)
			return r;
		memmove(d->in, d->in + r, d->in_len - (size_t)r);
		d->in_len -= (size_t)r;
		return send_request(d);
	case ST_RECV_HTTP:
		r = anser_http_parse_response(d->in, d->in_len, &d->http_status);
		if (r < 0)
			return r;
		d->consumed = (size_t)r;
		d->state = ST_READY;
		d->stage = "ready";
		return 0;
	case ST_RECV_REPLY: {
		struct anser_socks5_addr bnd;
		d->stage = "reply";
		r = anser_socks5_parse_reply(d->in, d->in_len, &d->rep, &bnd);
		if (r < 0)
			return r;
		d->consumed = (size_t)r;
		if (d->cmd == ANSER_DIAL_UDP) {
			d->stage = "udp";
			r = connect_relay(d, &bnd);
			if (r < 0)
				return r;
		}
		d->state = ST_READY;
		d->stage = "ready";
		return 0;
	}
	default:
		return -EINVAL;
	}
}

static bool needs_tls(const struct anser_node *n)
{
	return n->tls || n->proto == ANSER_NODE_TROJAN;
}

/* Once connected (and TLS is up where the node uses it). */
static int start_protocol(struct anser_dial *d)
{
	const struct anser_node *n = d->node;
	struct sockaddr *dst = (struct sockaddr *)&d->dst;
	/* (UDP: VMess and VLESS streams to one destination; trojan's frames
	 * carry their own addresses) */
	const char *name = d->name;
	int r;

	switch (n->proto) {
	case ANSER_NODE_SOCKS5: {
		d->offered_userpass = n->user && n->pass;
		ssize_t len = anser_socks5_greeting(d->out, sizeof(d->out), d->offered_userpass);
		if (len < 0)
			return (int)len;
		queue_send(d, (size_t)len, ST_RECV_METHOD, "greeting");
		return 0;
	}
	case ANSER_NODE_HTTP: {
		ssize_t len = anser_http_connect_request((char *)d->out, sizeof(d->out), dst, name,
							 n->user, n->pass);
		if (len < 0)
			return (int)len;
		queue_send(d, (size_t)len, ST_RECV_HTTP, "request");
		return 0;
	}
	case ANSER_NODE_SS: {
		struct anser_ss_key key;
		d->stage = "cipher";
		r = anser_ss_key_init(&key, (enum anser_cipher)n->cipher, n->pass);
		if (r == 0)
			r = anser_ss_stream_new(&key, d->fd, dst, name, &d->stream);
		explicit_bzero(&key, sizeof(key));
		break;
	}
	case ANSER_NODE_TROJAN: {
		struct anser_stream *st;
		r = anser_trojan_stream_new(d->fd, d->stream, n->pass,
					    d->cmd == ANSER_DIAL_UDP ? TROJAN_CMD_UDP
								     : TROJAN_CMD_CONNECT,
					    dst, name, &st);
		if (r == 0)
			d->stream = st;
		break;
	}
	case ANSER_NODE_VMESS: {
		struct anser_stream *st;
		r = anser_vmess_stream_new(d->fd, d->stream, n->uuid, (enum anser_cipher)n->cipher,
					   dst, name, d->cmd == ANSER_DIAL_UDP, &st);
		if (r == 0)
			d->stream = st;
		break;
	}
	case ANSER_NODE_VLESS: {
		struct anser_stream *st;
		r = anser_vless_stream_new(d->fd, d->stream, n->uuid, dst, name,
					   d->cmd == ANSER_DIAL_UDP, &st);
		if (r == 0)
			d->stream = st;
		break;
	}
	default:
		r = -EPROTONOSUPPORT;
	}
	if (r < 0)
		return r;
	d->state = ST_READY;
	d->stage = "ready";
	return 0;
}

/* Transport done up to TLS: the WebSocket upgrade where the node uses it. */
static int after_tls(struct anser_dial *d)
{
	const struct anser_node *n = d->node;
	if (n->net != ANSER_NET_WS)
		return start_protocol(d);
	struct anser_stream *st;
	const char *host = n->ws_host ? n->ws_host : n->sni ? n->sni : n->host;
	int r = anser_ws_stream_new(d->fd, d->stream, host, n->ws_path, &st);
	if (r < 0)
		return r;
	d->stream = st;
	d->state = ST_WS;
	d->stage = "websocket";
	return 0;
}

/* The TCP connection is up: TLS first where the node uses it. */
static int after_connect(struct anser_dial *d)
{
	const struct anser_node *n = d->node;

	if (!n) {
		d->state = ST_READY;
		d->stage = "ready";
		return 0;
	}
	if (!needs_tls(n))
		return after_tls(d);
	int r = anser_tls_stream_new(d->fd, n->sni ? n->sni : n->host, n->alpn, n->allow_insecure,
				     &d->stream);
	if (r < 0)
		return r;
	d->state = ST_TLS;
	d->stage = "tls";
	return 0;
}

const char *anser_dial_tls_error(const struct anser_dial *d)
{
	return d->tls_failed ? d->tls_why : NULL;
}

static int step(struct anser_dial *d)
{
	for (;;) {
		switch (d->state) {
		case ST_CONNECTING: {
			int err = 0;
			socklen_t el = sizeof(err);
			if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
				return -errno;
			if (err)
				return -err;
			struct sockaddr_storage peer;
			socklen_t pl = sizeof(peer);
			if (getpeername(d->fd, (struct sockaddr *)&peer, &pl) < 0)
				return errno == ENOTCONN ? -EAGAIN : -errno;
			int r = after_connect(d);
			if (r < 0 || d->state == ST_READY)
				return r;
			break;
		}
		case ST_TLS: {
			int r = anser_tls_handshake(d->stream);
			if (r < 0) {
				if (r != -EAGAIN) {
					d->tls_failed = true;
					snprintf(d->tls_why, sizeof(d->tls_why), "%s",
						 anser_tls_error(d->stream));
				}
				return r;
			}
			r = after_tls(d);
			if (r < 0 || d->state == ST_READY)
				return r;
			break;
		}
		case ST_WS: {
			int r = anser_ws_handshake(d->stream, &d->http_status);
			if (r < 0)
				return r;
			d->http_status = 0;
			r = start_protocol(d);
			if (r < 0 || d->state == ST_READY)
				return r;
			break;
		}
		case ST_SEND: {
			if (d->out_off < d->out_len) {
				ssize_t n = anser_io_write(d->fd, d->stream, d->out + d->out_off,
							   d->out_len - d->out_off);
				if (n == -EINTR)
					break;
				if (n < 0)
					return (int)n;
				d->out_off += (size_t)n;
				if (d->out_off < d->out_len)
					break;
			}
			if (d->stream) {
				int r = anser_stream_flush(d->stream);
				if (r < 0)
					return r;
			}
			d->state = d->after_send;
			/* A server may have answered early; parse what we hold. */
			if (d->in_len > 0) {
				int r = parse_in(d);
				if (r < 0 && r != -EAGAIN)
					return r;
			}
			break;
		}
		case ST_RECV_METHOD:
		case ST_RECV_AUTH:
		case ST_RECV_REPLY:
		case ST_RECV_HTTP: {
			if (d->in_len == sizeof(d->in))
				return -EPROTO;
			ssize_t n = anser_io_read(d->fd, d->stream, d->in + d->in_len,
						  sizeof(d->in) - d->in_len);
			if (n == -EINTR)
				break;
			if (n < 0)
				return (int)n;
			if (n == 0)
				return -ECONNRESET;
			d->in_len += (size_t)n;
			int r = parse_in(d);
			if (r < 0 && r != -EAGAIN)
				return r;
			break;
		}
		case ST_READY:
			return 0;
		case ST_FAILED:
		default:
			return -EIO;
		}
	}
}

int anser_dial_step(struct anser_dial *d)
{
	if (d->state == ST_FAILED)
		return -EIO;
	int r = step(d);
	if (r < 0 && r != -EAGAIN)
		d->state = ST_FAILED;
	return r;
}

size_t anser_dial_leftover(const struct anser_dial *d, const uint8_t **data)
{
	if (d->state != ST_READY || !d->node) {
		*data = NULL;
		return 0;
	}
	*data = d->in + d->consumed;
	return d->in_len - d->consumed;
}

int anser_dial_http_status(const struct anser_dial *d)
{
	return d->http_status;
}

struct anser_stream *anser_dial_take_stream(struct anser_dial *d)
{
	struct anser_stream *s = d->stream;
	d->stream = NULL;
	if (s)
		d->fd = -1; /* the stream owns it */
	return s;
}

int anser_dial_take_fd(struct anser_dial *d)
{
	int fd = d->fd;
	d->fd = -1;
	return fd;
}

int anser_dial_take_udp_fd(struct anser_dial *d)
{
	int fd = d->udp_fd;
	d->udp_fd = -1;
	return fd;
}

void anser_dial_free(struct anser_dial *d)
{
	if (!d)
		return;
	if (d->stream)
		anser_stream_free(d->stream); /* closes fd */
	else if (d->fd >= 0)
		close(d->fd);
	if (d->udp_fd >= 0)
		close(d->udp_fd);
	free(d);
}

/* Literal first (no DNS for the common case), then getaddrinfo. */
int anser_node_resolve(const struct anser_node *n, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (!n->host)
		return -EINVAL;
	if (inet_pton(AF_INET, n->host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(n->port);
		return 0;
	}
	if (inet_pton(AF_INET6, n->host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(n->port);
		return 0;
	}

	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res = NULL;
	int r = getaddrinfo(n->host, NULL, &hints, &res);
	if (r != 0) {
		log_warning("Failed to resolve node %s host '%s': %s", n->name, n->host,
			    gai_strerror(r));
		return -EHOSTUNREACH;
	}
	r = -EHOSTUNREACH;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		memcpy(ss, ai->ai_addr, ai->ai_addrlen);
		if (ai->ai_family == AF_INET)
			s4->sin_port = htons(n->port);
		else
			s6->sin6_port = htons(n->port);
		r = 0;
		break;
	}
	freeaddrinfo(res);
	return r;
}
