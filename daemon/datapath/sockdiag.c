// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Live sockets from the kernel's sock_diag: gives the connection list its
 * liveness, source addresses and, for direct TCP, byte counts from
 * tcp_info -- without any per-packet accounting in BPF.
 */
#include "sockdiag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fill_addr(struct sockaddr_storage *ss, int family, const __be32 *addr, __be16 port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = port;
		memcpy(&s->sin_addr, addr, 4);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
		s->sin6_family = AF_INET6;
		s->sin6_port = port;
		memcpy(&s->sin6_addr, addr, 16);
	}
}

/* The request: a v2 one for one family and protocol, or (compat) the old
 * TCPDIAG_GETSOCK one, which the kernel answers with IPv4 and IPv6 TCP
 * sockets in a single walk of its hash table -- the walk, not the
 * answers, is most of a dump's cost when there are many sockets. */
struct skip_filter { /* INET_DIAG_REQ_BYTECODE: "not in cgroup X" */
	struct rtattr rta;
	struct inet_diag_bc_op op;
	uint64_t cgroup;
	struct inet_diag_bc_op reject;
} __attribute__((packed));

struct diag_request {
	struct nlmsghdr nlh;
	union {
		struct inet_diag_req_v2 v2;
		struct inet_diag_req compat;
	} __attribute__((packed)) req;
	char filter[sizeof(struct skip_filter)]; /* right after the request used */
} __attribute__((packed));

static size_t put_request(struct diag_request *msg, bool compat, int family, int proto,
			  uint64_t skip_cgroup)
{
	size_t req_len = compat ? sizeof(msg->req.compat) : sizeof(msg->req.v2);
	char *bc = (char *)&msg->req + req_len;

	memset(msg, 0, sizeof(*msg));
	msg->nlh.nlmsg_len = NLMSG_LENGTH(req_len);
	msg->nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	if (compat) {
		msg->nlh.nlmsg_type = TCPDIAG_GETSOCK;
		msg->req.compat.idiag_family = AF_INET; /* the kernel dumps both */
		msg->req.compat.idiag_states = ~0u;
		msg->req.compat.idiag_ext = 1 << (INET_DIAG_INFO - 1);
	} else {
		msg->nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
		msg->req.v2.sdiag_family = (uint8_t)family;
		msg->req.v2.sdiag_protocol = (uint8_t)proto;
		msg->req.v2.idiag_states = ~0u;
		if (proto == IPPROTO_TCP)
			msg->req.v2.idiag_ext = 1 << (INET_DIAG_INFO - 1);
	}
	if (skip_cgroup) {
		/* The kernel's checker wants every "yes" to step to the next
		 * op: in the cgroup, on to an op that always jumps past the
		 * end (reject); else straight to the end (accept). */
		struct skip_filter f = { 0 };
		const unsigned short cond = sizeof(f.op) + sizeof(f.cgroup);
		const unsigned short len = cond + sizeof(f.reject);
		f.rta.rta_type = INET_DIAG_REQ_BYTECODE;
		f.rta.rta_len = RTA_LENGTH(len);
		f.op.code = INET_DIAG_BC_CGROUP_COND;
		f.op.yes = cond;
		f.op.no = len;
		f.cgroup = skip_cgroup;
		f.reject.code = INET_DIAG_BC_JMP;
		f.reject.yes = sizeof(f.reject);
		f.reject.no = sizeof(f.reject) + 4;
		memcpy(bc, &f, sizeof(f));
		msg->nlh.nlmsg_len = NLMSG_LENGTH(req_len + sizeof(f));
	}
	return msg->nlh.nlmsg_len;
}

/* One dump; -EINVAL (before any answer) if the kernel does not know the
 * request. */
static int dump_one(int fd, bool compat, int family, int proto, uint64_t skip_cgroup,
		    void (*cb)(const struct anser_diag_sock *s, void *ud), void *ud)
{
	struct diag_request msg;
	static __thread char buf[32768];
	int r = 0;

	if (send(fd, &msg, put_request(&msg, compat, family, proto, skip_cgroup), 0) < 0)
		return -errno;

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return r;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);
				return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error
					       ? e->error
					       : -EIO;
			}
			if (h->nlmsg_type != msg.nlh.nlmsg_type ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				continue;
			struct inet_diag_msg *m = NLMSG_DATA(h);
			if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6)
				continue;
			struct anser_diag_sock s = { 0 };
			s.cookie = (uint64_t)m->id.idiag_cookie[0] |
				   ((uint64_t)m->id.idiag_cookie[1] << 32);
			s.proto = (uint8_t)proto;
			s.state = m->idiag_state;
			fill_addr(&s.src, m->idiag_family, m->id.idiag_src, m->id.idiag_sport);
			fill_addr(&s.dst, m->idiag_family, m->id.idiag_dst, m->id.idiag_dport);
			int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
			for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen);
			     a = RTA_NEXT(a, alen)) {
				if (a->rta_type != INET_DIAG_INFO)
					continue;
				struct tcp_info ti = { 0 };
				size_t l = RTA_PAYLOAD(a);
				memcpy(&ti, RTA_DATA(a), l < sizeof(ti) ? l : sizeof(ti));
				if (l >= offsetof(struct tcp_info, tcpi_bytes_received) +
						 sizeof(ti.tcpi_bytes_received)) {
					s.bytes_sent = ti.tcpi_bytes_acked;
					s.bytes_received = ti.tcpi_bytes_received;
				}
			}
			cb(&s, ud);
		}
	}
}

static int dump(bool compat, int family, int proto, uint64_t skip_cgroup,
		void (*cb)(const struct anser_diag_sock *s, void *ud), void *ud)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	int r = dump_one(fd, compat, family, proto, skip_cgroup, cb, ud);
	close(fd);
	return r;
}

int anser_sockdiag_dump(uint64_t skip_cgroup, void (*cb)(const struct anser_diag_sock *s, void *ud),
			void *ud)
{
	/* -1 not yet known, 0 no, 1 yes: whether the kernel has the
	 * one-walk TCP dump */
	static atomic_int compat_ok = -1;
	int r = 0, q;

	if (atomic_load(&compat_ok) != 0) {
		q = dump(true, AF_UNSPEC, IPPROTO_TCP, skip_cgroup, cb, ud);
		if (atomic_load(&compat_ok) < 0)
			atomic_store(&compat_ok, q == -EINVAL || q == -EOPNOTSUPP ? 0 : 1);
		if (q < 0 && atomic_load(&compat_ok) == 1)
			r = q;
	}
	for (int f = 0; atomic_load(&compat_ok) == 0 && f < 2; f++) {
		q = dump(false, f ? AF_INET6 : AF_INET, IPPROTO_TCP, skip_cgroup, cb, ud);
		if (q < 0 && r == 0)
			r = q;
	}
	for (int f = 0; f < 2; f++) {
		q = dump(false, f ? AF_INET6 : AF_INET, IPPROTO_UDP, skip_cgroup, cb, ud);
		if (q < 0 && r == 0)
			r = q;
	}
	return r;
}

static void put_addr(__be32 *dst, __be16 *port, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		memcpy(dst, &s->sin_addr, 4);
		*port = s->sin_port;
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		memcpy(dst, &s->sin6_addr, 16);
		*port = s->sin6_port;
	}
}

/* One sock_diag socket per thread for the per-connection lookups: making
 * one per lookup was two more syscalls and a netlink socket per proxied
 * connection. */
static _Thread_local int lookup_fd = -1;
static _Thread_local uint32_t lookup_seq;

int anser_sockdiag_tcp_cookie(const struct sockaddr *local, const struct sockaddr *remote,
			      uint64_t *cookie)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = { 0 };
	char buf[1024];

	if (local->sa_family != remote->sa_family ||
	    (local->sa_family != AF_INET && local->sa_family != AF_INET6))
		return -EAFNOSUPPORT;
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST;
	msg.nlh.nlmsg_seq = ++lookup_seq;
	msg.req.sdiag_family = (uint8_t)local->sa_family;
	msg.req.sdiag_protocol = IPPROTO_TCP;
	msg.req.idiag_states = ~0u;
	msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	put_addr(msg.req.id.idiag_src, &msg.req.id.idiag_sport, local);
	put_addr(msg.req.id.idiag_dst, &msg.req.id.idiag_dport, remote);

	if (lookup_fd < 0) {
		lookup_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		if (lookup_fd < 0)
			return -errno;
	}
	if (send(lookup_fd, &msg, sizeof(msg), 0) < 0) {
		int r = -errno;
		close(lookup_fd); /* a fresh one next time */
		lookup_fd = -1;
		return r;
	}
	/* The kernel answers within send(): the reply is queued already.
	 * Replies to earlier requests (none in practice) are skipped. */
	for (;;) {
		ssize_t n = recv(lookup_fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			int r = errno == EAGAIN ? -ENOENT : -errno;
			close(lookup_fd);
			lookup_fd = -1;
			return r;
		}
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		if (!NLMSG_OK(h, (size_t)n))
			return -ENOENT;
		if (h->nlmsg_seq != lookup_seq)
			continue;
		if (h->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr *e = NLMSG_DATA(h);
			return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error ? e->error
										    : -ENOENT;
		}
		if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
		    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
			struct inet_diag_msg *m = NLMSG_DATA(h);
			*cookie = (uint64_t)m->id.idiag_cookie[0] |
				  ((uint64_t)m->id.idiag_cookie[1] << 32);
			return 0;
		}
		return -ENOENT;
	}
}
