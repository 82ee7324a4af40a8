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

static int dump_one(int fd, int family, int proto, uint64_t skip_cgroup,
		    void (*cb)(const struct anser_diag_sock *s, void *ud), void *ud)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
		/* optional INET_DIAG_REQ_BYTECODE: "not in cgroup X" */
		struct rtattr rta;
		struct inet_diag_bc_op op;
		uint64_t cgroup;
		struct inet_diag_bc_op reject;
	} __attribute__((packed)) msg = { 0 };
	static __thread char buf[32768];
	int r = 0;

	msg.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(msg.req));
	if (skip_cgroup) {
		/* The kernel's checker wants every "yes" to step to the next
		 * op: in the cgroup, on to an op that always jumps past the
		 * end (reject); else straight to the end (accept). */
		const unsigned short cond = sizeof(msg.op) + sizeof(msg.cgroup);
		const unsigned short len = cond + sizeof(msg.reject);
		msg.rta.rta_type = INET_DIAG_REQ_BYTECODE;
		msg.rta.rta_len = RTA_LENGTH(len);
		msg.op.code = INET_DIAG_BC_CGROUP_COND;
		msg.op.yes = cond;
		msg.op.no = len;
		msg.cgroup = skip_cgroup;
		msg.reject.code = INET_DIAG_BC_JMP;
		msg.reject.yes = sizeof(msg.reject);
		msg.reject.no = sizeof(msg.reject) + 4;
		msg.nlh.nlmsg_len = sizeof(msg);
	}
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	msg.req.sdiag_family = (uint8_t)family;
	msg.req.sdiag_protocol = (uint8_t)proto;
	msg.req.idiag_states = ~0u;
	if (proto == IPPROTO_TCP)
		msg.req.idiag_ext = 1 << (INET_DIAG_INFO - 1);
	if (send(fd, &msg, msg.nlh.nlmsg_len, 0) < 0)
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
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				continue;
			struct inet_diag_msg *m = NLMSG_DATA(h);
			struct anser_diag_sock s = { 0 };
			s.cookie = (uint64_t)m->id.idiag_cookie[0] |
				   ((uint64_t)m->id.idiag_cookie[1] << 32);
			s.proto = (uint8_t)proto;
			s.state = m->idiag_state;
			fill_addr(&s.src, family, m->id.idiag_src, m->id.idiag_sport);
			fill_addr(&s.dst, family, m->id.idiag_dst, m->id.idiag_dport);
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

int anser_sockdiag_dump(uint64_t skip_cgroup, void (*cb)(const struct anser_diag_sock *s, void *ud),
			void *ud)
{
	static const int fams[] = { AF_INET, AF_INET6 };
	static const int protos[] = { IPPROTO_TCP, IPPROTO_UDP };
	int r = 0;

	for (size_t p = 0; p < 2; p++)
		for (size_t f = 0; f < 2; f++) {
			int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
			if (fd < 0)
				return -errno;
			int q = dump_one(fd, fams[f], protos[p], skip_cgroup, cb, ud);
			close(fd);
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
