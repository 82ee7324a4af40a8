/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside the DNS service: its state and what its files share. service.c:
 * the loop, queries, setup; tcp.c: the listeners' TCP connections;
 * transport.c: the upstreams' TCP and TLS connection. */
#ifndef ANSER_DNS_SERVICE_PRIVATE_H
#define ANSER_DNS_SERVICE_PRIVATE_H

#include <glib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cache.h"
#include "message.h"
#include "router.h"
#include "service.h"
#include "upstream.h"
#include "../outbound/stream.h"

#define TRY_MS	      2000
#define TRIES	      2
#define TICK_MS	      250
#define MAX_PENDING   4096
#define MAX_WAITERS   64
#define DEFAULT_CACHE 8192
#define STALE_TTL     30
#define MAX_DEPTH     3 /* response rules asking again: at most this deep */
#define BUF	      65535
#define QTYPE_A	      1
#define QTYPE_AAAA    28
#define MAX_ASIS      16 /* servers apps asked that `asis` sends to, per setup */

enum { EV_WAKE, EV_TIMER, EV_LISTENER, EV_UPSTREAM, EV_CONN, EV_UPTCP };

#define MAX_CONNS 512
#define IDLE_MS	  10000 /* RFC 7766 6.2.3: a few seconds */

struct nghttp2_session;
struct h2_ctx;
struct resolve; /* service.c: an upstream's name being resolved */

#define RESOLVE_RETRY_MS 30000

struct upstream {
	struct anser_dns_endpoint ep;
	char *name;
	/* given by name: resolved in the background (getaddrinfo_a) when its
	 * setup is taken; queries wait meanwhile, and fail if it fails */
	struct resolve *resolve;
	bool resolved;
	int64_t resolve_at; /* a failed name is tried again then */
	int fd;		    /* connected UDP; -1: not usable (why logged) */
	bool via;	    /* routed through a proxy node (hooks.via): fd goes to the proxy */
	/* TCP (tcp://, and tcp+udp:// for truncated answers): one connection,
	 * made when needed, queries pipelined on it (RFC 7766) */
	int tfd;
	bool tconnected;
	struct anser_stream *tls; /* tls:// (RFC 7858), over tfd */
	bool handshaken;
	/* health: queries in a row it left unanswered; while down_until is
	 * ahead, its queries fail at once instead of waiting 4 s each, and
	 * the first one after is the probe */
	int fails;
	int64_t down_until;
	int64_t backoff_ms;
	GByteArray *tout;
	size_t tin_len;
	uint8_t *tin; /* 2 + 65535 */
	/* https:// (RFC 8484): an HTTP/2 session over tls, a POST a query */
	struct nghttp2_session *h2;
	struct h2_ctx *h2ctx;
};

/* One setup: made by apply() on the caller's thread, owned by the
 * service thread once handed over. */
struct conf {
	struct anser_dns_router *router;
	/* the dns section's upstreams, then (n_cfg_ups up to n_ups) the
	 * servers apps asked, for `asis`, made as they come (room for
	 * MAX_ASIS: the array never moves) */
	struct upstream *ups;
	size_t n_ups, n_cfg_ups;
	int *listeners;
	bool *is_tcp; /* listeners[i] accepts TCP connections */
	size_t n_listeners;
	char *bind; /* as written plus the takeover listeners, to know when to rebind */
	uint16_t takeover4, takeover6; /* ports of the listeners on 127.0.0.1 and ::1 */
	size_t n_takeover;	       /* of the listeners, theirs (the last ones) */
	bool optimistic;
	int prefer; /* ipversion_prefer: 0, 4 or 6 */
	int64_t stale_s;
	GHashTable *fixed_ttl; /* lower-case name -> seconds */
	size_t cache_size;
};

struct waiter {
	int fd;	       /* UDP: the listener; -1 for TCP */
	uint32_t conn; /* TCP: the connection's id; 0 for UDP */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	/* a query taken over: the server the app sent it to (for asis);
	 * ss_family 0 when not known */
	struct sockaddr_storage orig;
	struct anser_dns_query q;
};

/* A TCP connection to a listener (RFC 7766): queries and answers with a
 * two-byte length, several in flight, answered as they come. */
struct tconn {
	uint32_t id;
	int fd;
	struct sockaddr_storage orig; /* the server the app connected to, when taken over */
	int64_t last_ms;
	size_t in_len;
	GByteArray *out; /* not written yet */
	bool want_out;
	uint8_t in[2 + 65535];
};

struct pending {
	char *key;  /* name/type/class */
	char *name; /* presentation form, lower case */
	bool tcp;   /* asked over TCP (a truncated UDP answer came first) */
	int depth;  /* times response rules sent it to another upstream */
	int up;
	uint16_t id;
	int64_t sent_ms;
	int tries;
	struct anser_dns_query q; /* the first asker's: the question */
	GArray *waiters;	  /* struct waiter; empty for a stale refresh */
};

#define BATCH 64
/* Under load, batches: while queries come at HOLD_QPS or more (counted
 * over windows of HOLD_WINDOW_US), a wakeup that brought HOLD_BATCH of
 * them or more lasts at least HOLD_US before the thread looks again (it
 * waits out what answering them left of it), and the next wakeup finds
 * more of them -- fewer system calls and wakeups a query, for the service
 * and for its clients (whose replies come in bursts too). A wakeup whose
 * work took HOLD_US or longer does not wait: the queries that came
 * meanwhile are a batch already, and waiting would only idle a busy
 * thread. Below that rate (an app's queries, a page's, anything but a
 * flood) nothing waits. NICs coalesce interrupts the same way, and for
 * longer. And while a flood lasts the UDP listeners leave the epoll set:
 * the thread reads them after every hold instead of being told. A listener in
 * the set is woken for each reply it sends -- freeing a sent datagram
 * wakes its wait queue, where the epoll entry sits, though the entry only
 * waits to read (~5 % of a cache hit's time under a flood). They return
 * to the set when a wakeup brings fewer than HOLD_BATCH queries or the
 * rate falls under HOLD_QPS. */
#define HOLD_QPS       100000
#define HOLD_WINDOW_US 2000
#define HOLD_BATCH     4
#define HOLD_US	       100

struct out_batch {
	int fd;
	unsigned n;
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage peer[BATCH];
	uint8_t buf[BATCH][2048];
};

struct in_batch {
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage peer[BATCH];
	union {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(uint32_t))];
	} ctl[BATCH]; /* SO_RCVMARK: the flow id of a datagram taken over */
	uint8_t buf[BATCH][4096];
};

struct anser_dns_service {
	pthread_t thread;
	bool running;
	int epfd, evfd, timerfd;
	pthread_mutex_t lock;
	struct conf *next; /* handed over, not taken yet */
	bool stop;
	char *cur_bind;
	uint16_t cur_takeover4, cur_takeover6; /* the caller's view */
	int *cur_listeners;		       /* the caller's view, for dup() on reload */
	bool *cur_is_tcp;
	size_t n_cur_listeners;
	struct anser_dns_hooks hooks; /* set before the thread starts */
	/* the network's DNS servers (anser_dns_service_set_network), handed
	 * over under `lock` */
	char **net_next;
	bool net_pending;
	/* the service thread's */
	struct conf *conf;
	struct anser_dns_cache *cache;
	GHashTable *by_id;  /* up << 16 | id -> pending */
	GHashTable *by_key; /* key -> pending */
	bool batching;	    /* inside on_listener(): replies wait for flush() */
	GHashTable *conns;  /* id -> struct tconn */
	uint32_t next_conn;
	struct out_batch outq;
	struct in_batch inq;
	unsigned burst;	       /* queries the listeners gave this wakeup */
	unsigned win_count;    /* queries in the window from win_start_us */
	uint64_t win_start_us; /* CLOCK_MONOTONIC */
	uint64_t woke_us;      /* when this wakeup began (CLOCK_MONOTONIC) */
	bool hot;	       /* the last window's rate was HOLD_QPS or more */
	bool polling;	       /* the UDP listeners are out of the epoll set */
	GPtrArray *orphans;    /* resolves of a setup gone, not finished yet */
	/* the network's first DNS server, port 53 (ss_family 0: none): where
	 * `asis` sends the queries apps asked anserd itself */
	struct sockaddr_storage net_server;
	uint8_t buf[BUF], out[BUF];
};

int64_t dns_now_ms(void);
void dns_on_query(struct anser_dns_service *s, struct waiter *w, const uint8_t *msg, size_t len);
void dns_handle_answer(struct anser_dns_service *s, int up, const uint8_t *msg, size_t n,
		       bool via_tcp);
/* sends the replies batched so far */
void dns_flush(struct anser_dns_service *s);

/* tcp.c */
void dns_tconn_close(struct anser_dns_service *s, struct tconn *c);
void dns_tconn_flush(struct anser_dns_service *s, struct tconn *c);
void dns_tconn_send(struct anser_dns_service *s, uint32_t id, const uint8_t *msg, size_t len);
/* takeover: lfd is a takeover listener (the app's server is looked up) */
void dns_on_accept(struct anser_dns_service *s, int lfd, bool takeover);
void dns_on_conn(struct anser_dns_service *s, uint32_t id, uint32_t events);

/* fd (the upstream's UDP socket, or a new TCP one) connected, or being
 * connected, to u's server, or to anserd's proxy when the routing sends
 * u through a node (u->via set); -errno (a block rule: -EACCES). */
int dns_up_connect(struct anser_dns_service *s, struct upstream *u, int fd, bool udp);

/* transport.c */
void dns_up_tcp_close(struct anser_dns_service *s, struct upstream *u);
void dns_up_tcp_events(struct anser_dns_service *s, int up, uint32_t events);
void dns_up_tcp_flush(struct anser_dns_service *s, int up);
bool dns_up_tcp_send(struct anser_dns_service *s, int up, const uint8_t *q, size_t n);
/* doh.c: a query as an HTTP/2 POST on u's session (made if there is none),
 * its frames into u->tout; bytes from the connection, answers handed to
 * dns_handle_answer() (-1: the session is over, close the connection). */
bool dns_h2_submit(struct upstream *u, const uint8_t *q, size_t n);
int dns_h2_recv(struct anser_dns_service *s, int up, const uint8_t *data, size_t n);
void dns_h2_close(struct upstream *u);
void dns_on_upstream_tcp(struct anser_dns_service *s, int up, uint32_t events);

#endif
