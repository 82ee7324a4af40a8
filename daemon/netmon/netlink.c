// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rtnetlink dumps: the links of this network namespace and which of them
 * carry a default route. A dump is a few kernel round trips on a socket
 * of its own (microseconds), so it is done whole on every change rather
 * than kept up to date message by message.
 */
#include "netmon.h"

#include <errno.h>
#include <glib.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../util/log.h"

struct dump {
	GArray *links;	  /* struct anser_nl_link */
	GArray *defaults; /* int ifindex */
};

static void on_link(struct dump *d, const struct nlmsghdr *h)
{
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifi));
	struct anser_nl_link l = { .ifindex = ifi->ifi_index, .up = ifi->ifi_flags & IFF_UP };

	if (len < 0 || ifi->ifi_flags & IFF_LOOPBACK)
		return;
	for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == IFLA_IFNAME) {
			size_t n = strnlen(RTA_DATA(a), RTA_PAYLOAD(a));
			if (n >= sizeof(l.name))
				return;
			memcpy(l.name, RTA_DATA(a), n);
		}
	if (l.name[0])
		g_array_append_val(d->links, l);
}

/* A default route names its interface with RTA_OIF, or each path's in
 * RTA_MULTIPATH. */
static void on_route(struct dump *d, const struct nlmsghdr *h)
{
	const struct rtmsg *rt = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*rt));
	unsigned table = rt->rtm_table;

	if (len < 0 || rt->rtm_dst_len != 0 || rt->rtm_type != RTN_UNICAST ||
	    rt->rtm_flags & (RTNH_F_DEAD | RTNH_F_LINKDOWN))
		return;
	for (const struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == RTA_TABLE && RTA_PAYLOAD(a) >= 4)
			memcpy(&table, RTA_DATA(a), 4);
	if (table == RT_TABLE_LOCAL)
		return;
	len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*rt));
	for (const struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= 4) {
			int oif;
			memcpy(&oif, RTA_DATA(a), 4);
			g_array_append_val(d->defaults, oif);
		} else if (a->rta_type == RTA_MULTIPATH) {
			const struct rtnexthop *nh = RTA_DATA(a);
			int left = (int)RTA_PAYLOAD(a);
			while (left >= (int)sizeof(*nh) && nh->rtnh_len >= sizeof(*nh) &&
			       nh->rtnh_len <= left) {
				if (!(nh->rtnh_flags & (RTNH_F_DEAD | RTNH_F_LINKDOWN))) {
					int oif = nh->rtnh_ifindex;
					g_array_append_val(d->defaults, oif);
				}
				left -= (int)RTNH_ALIGN(nh->rtnh_len);
				nh = RTNH_NEXT(nh);
			}
		}
	}
}

/* One dump request (RTM_GETLINK or RTM_GETROUTE of a family), every
 * answer handed to on_link/on_route. */
static int dump_one(int fd, uint16_t type, uint8_t family, struct dump *d)
{
	static uint32_t seq;
	struct {
		struct nlmsghdr h;
		union {
			struct ifinfomsg link;
			struct rtmsg route;
		};
	} req = {
		.h = { .nlmsg_len = NLMSG_LENGTH(type == RTM_GETLINK ? sizeof(struct ifinfomsg)
								     : sizeof(struct rtmsg)),
		       .nlmsg_type = type,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		       .nlmsg_seq = ++seq },
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));

	if (type == RTM_GETLINK)
		req.link.ifi_family = family;
	else
		req.route.rtm_family = family;

	if (sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		unsigned int left = (unsigned int)n;
		for (const struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, left);
		     h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_seq != req.h.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error
					       ? e->error
					       : -EIO;
			}
			if (h->nlmsg_type == RTM_NEWLINK)
				on_link(d, h);
			else if (h->nlmsg_type == RTM_NEWROUTE)
				on_route(d, h);
		}
	}
}

int anser_nl_dump(struct anser_nl_link **out, size_t *n)
{
	struct dump d = { g_array_new(FALSE, TRUE, sizeof(struct anser_nl_link)),
			  g_array_new(FALSE, FALSE, sizeof(int)) };
	struct timeval tv = { .tv_sec = 2 };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), r;

	if (fd < 0) {
		r = -errno;
	} else {
		/* the kernel answers at once; never hang the main loop on it */
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		r = dump_one(fd, RTM_GETLINK, AF_UNSPEC, &d);
		if (r >= 0)
			r = dump_one(fd, RTM_GETROUTE, AF_INET, &d);
		if (r >= 0)
			r = dump_one(fd, RTM_GETROUTE, AF_INET6, &d);
		close(fd);
	}
	for (guint i = 0; i < d.defaults->len; i++)
		for (guint k = 0; k < d.links->len; k++) {
			struct anser_nl_link *l = &g_array_index(d.links, struct anser_nl_link, k);
			if (l->ifindex == g_array_index(d.defaults, int, i))
				l->default_route = l->up;
		}
	g_array_free(d.defaults, TRUE);
	if (r < 0) {
		g_array_free(d.links, TRUE);
		*out = NULL;
		*n = 0;
		return r;
	}
	*n = d.links->len;
	*out = (struct anser_nl_link *)(void *)g_array_free(d.links, FALSE);
	return 0;
}
