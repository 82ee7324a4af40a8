// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Gateway mode: a UDP reply to a LAN client, sent from the remote's
 * address and port although neither is the host's.
 *
 * A socket bound to the remote's address (IP_TRANSPARENT) would hold that
 * port for as long as the session lives: a service of the gateway's own
 * that binds the port on every address (a DNS server restarting on :53
 * while a client's proxied DNS to 8.8.8.8:53 is open) would fail with
 * EADDRINUSE. So the reply is built here, IP and UDP header, and sent on
 * a raw socket, which binds nothing: one sendmsg() per datagram, as with
 * a bound socket. A datagram larger than the route's MTU (a raw socket
 * does not fragment) goes through a transparent socket bound for that one
 * send.
 */
#include "proxy-internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../util/log.h"

/* The ones' complement sum of data, folded into acc (RFC 1071). */
static uint32_t csum_add(uint32_t acc, const uint8_t *p, size_t n)
{
	for (; n > 1; p += 2, n -= 2)
		acc += (uint32_t)p[0] << 8 | p[1];
	if (n)
		acc += (uint32_t)p[0] << 8;
	return acc;
}

static uint16_t csum_fold(uint32_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)~acc;
}

/* The UDP checksum over the pseudo-header (addresses of alen bytes). */
static uint16_t udp_csum(const void *src, const void *dst, size_t alen, const struct udphdr *uh,
			 const uint8_t *data, size_t len)
{
	uint32_t acc = csum_add(0, src, alen);
	acc = csum_add(acc, dst, alen);
	acc += IPPROTO_UDP + 8 + (uint32_t)len; /* both pseudo-headers: protocol and length */
	acc = csum_add(acc, (const uint8_t *)uh, sizeof(*uh));
	acc = csum_add(acc, data, len);
	uint16_t c = csum_fold(acc);
	return htons(c ? c : 0xffff); /* 0 means "none" in UDP */
}

/* The slow path: a transparent socket bound to `from` for one send. */
static int send_bound(const struct sockaddr_storage *from, const struct sockaddr_storage *to,
		      const uint8_t *data, size_t len)
{
	int one = 1, r = 0;
	int fd = socket(from->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (proxy_set_transparent(fd, from->ss_family) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)from, sa_len(from)) < 0 ||
	    sendto(fd, data, len, 0, (const struct sockaddr *)to, sa_len(to)) < 0)
		r = -errno;
	close(fd);
	return r;
}

int lan_reply(struct worker *w, const struct sockaddr_storage *from,
	      const struct sockaddr_storage *to, const uint8_t *data, size_t len)
{
	int fam = from->ss_family == AF_INET6;

	if (from->ss_family != to->ss_family || len > 65535 - 48)
		return -EINVAL;
	if (w->raw_fd[fam] < 0) {
		w->raw_fd[fam] =
			socket(fam ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
		if (w->raw_fd[fam] < 0)
			return -errno;
	}
	union {
		struct {
			struct iphdr ip;
			struct udphdr uh;
		} v4;
		struct {
			struct ip6_hdr ip;
			struct udphdr uh;
		} v6;
	} h;
	struct sockaddr_storage dst = *to;
	struct iovec iov[2];
	memset(&h, 0, sizeof(h));
	if (!fam) {
		const struct sockaddr_in *f = (const struct sockaddr_in *)from;
		struct sockaddr_in *t = (struct sockaddr_in *)&dst;
		h.v4.ip.version = 4;
		h.v4.ip.ihl = 5;
		h.v4.ip.ttl = 64;
		h.v4.ip.protocol = IPPROTO_UDP;
		h.v4.ip.tot_len =
			htons((uint16_t)(sizeof(h.v4) + len)); /* the kernel fills id, check */
		h.v4.ip.saddr = f->sin_addr.s_addr;
		h.v4.ip.daddr = t->sin_addr.s_addr;
		h.v4.uh.source = f->sin_port;
		h.v4.uh.dest = t->sin_port;
		h.v4.uh.len = htons((uint16_t)(8 + len));
		h.v4.uh.check = udp_csum(&h.v4.ip.saddr, &h.v4.ip.daddr, 4, &h.v4.uh, data, len);
		t->sin_port = 0;
		iov[0] = (struct iovec){ &h.v4, sizeof(h.v4) };
	} else {
		const struct sockaddr_in6 *f = (const struct sockaddr_in6 *)from;
		struct sockaddr_in6 *t = (struct sockaddr_in6 *)&dst;
		h.v6.ip.ip6_flow = htonl(6u << 28);
		h.v6.ip.ip6_plen = htons((uint16_t)(8 + len));
		h.v6.ip.ip6_nxt = IPPROTO_UDP;
		h.v6.ip.ip6_hlim = 64;
		h.v6.ip.ip6_src = f->sin6_addr;
		h.v6.ip.ip6_dst = t->sin6_addr;
		h.v6.uh.source = f->sin6_port;
		h.v6.uh.dest = t->sin6_port;
		h.v6.uh.len = h.v6.ip.ip6_plen;
		h.v6.uh.check =
			udp_csum(&h.v6.ip.ip6_src, &h.v6.ip.ip6_dst, 16, &h.v6.uh, data, len);
		t->sin6_port = 0;
		iov[0] = (struct iovec){ &h.v6, sizeof(h.v6) };
	}
	iov[1] = (struct iovec){ (void *)data, len };
	struct msghdr mh = {
		.msg_name = &dst, .msg_namelen = sa_len(&dst), .msg_iov = iov, .msg_iovlen = 2
	};
	if (sendmsg(w->raw_fd[fam], &mh, 0) >= 0)
		return 0;
	if (errno != EMSGSIZE)
		return -errno;
	log_debug("UDP reply of %zu bytes above the MTU: sent from a bound socket", len);
	return send_bound(from, to, data, len);
}

void lan_reply_fini(struct worker *w)
{
	for (int f = 0; f < 2; f++) {
		if (w->raw_fd[f] >= 0)
			close(w->raw_fd[f]);
		w->raw_fd[f] = -1;
	}
}
