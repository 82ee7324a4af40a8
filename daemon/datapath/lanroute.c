// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Gateway mode's policy routing (bpf/anser_abi.h): packets the LAN program
 * handed to anserd's listeners carry ANSER_LAN_MARK, and
 *
 *   ip rule add pref 100 fwmark 0x80616e73 lookup 0x616e
 *   ip route add local default dev lo table 0x616e
 *
 * (and the same for IPv6) has the kernel deliver them locally, to the
 * socket the program assigned, instead of forwarding them. Said over
 * rtnetlink: one request per change, each acknowledged.
 */
#include "lanroute.h"

#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../bpf/anser_abi.h"
#include "../util/log.h"

struct req {
	struct nlmsghdr h;
	union {
		struct fib_rule_hdr rule;
		struct rtmsg rt;
	};
	char attrs[64];
};

static void put_u32(struct req *r, unsigned short type, uint32_t v)
{
	struct rtattr *a = (struct rtattr *)((char *)r + NLMSG_ALIGN(r->h.nlmsg_len));
	a->rta_type = type;
	a->rta_len = RTA_LENGTH(sizeof(v));
	memcpy(RTA_DATA(a), &v, sizeof(v));
	r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Send r and wait for its acknowledgement: 0 or the kernel's -errno. */
static int talk(struct req *r)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[1024];
	int ret = -EIO;

	if (fd < 0)
		return -errno;
	r->h.nlmsg_seq = 1;
	if (sendto(fd, r, r->h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		goto out;
	}
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
	     h = NLMSG_NEXT(h, n))
		if (h->nlmsg_type == NLMSG_ERROR &&
		    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
			ret = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			break;
		}
out:
	close(fd);
	return ret;
}

static int rule(int family, bool add)
{
	struct req r;

	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(r.rule));
	r.h.nlmsg_type = add ? RTM_NEWRULE : RTM_DELRULE;
	r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	r.rule.family = (unsigned char)family;
	r.rule.action = FR_ACT_TO_TBL;
	put_u32(&r, FRA_PRIORITY, ANSER_LAN_RULE_PREF);
	put_u32(&r, FRA_FWMARK, ANSER_LAN_MARK);
	put_u32(&r, FRA_FWMASK, 0xffffffffu);
	put_u32(&r, FRA_TABLE, ANSER_LAN_TABLE);
	return talk(&r);
}

static int route(int family, bool add)
{
	struct req r;
	unsigned lo = if_nametoindex("lo");

	if (!lo)
		return -errno;
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(r.rt));
	r.h.nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
	r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
	r.rt.rtm_family = (unsigned char)family;
	r.rt.rtm_table = RT_TABLE_UNSPEC; /* RTA_TABLE: above 255 */
	r.rt.rtm_protocol = RTPROT_STATIC;
	r.rt.rtm_scope = RT_SCOPE_HOST;
	r.rt.rtm_type = RTN_LOCAL;
	put_u32(&r, RTA_TABLE, ANSER_LAN_TABLE);
	put_u32(&r, RTA_OIF, lo);
	return talk(&r);
}

int anser_lan_route_add(void)
{
	static const int fams[] = { AF_INET, AF_INET6 };
	int err = 0;

	for (size_t i = 0; i < 2; i++) {
		int r = route(fams[i], true);
		if (r >= 0) {
			r = rule(fams[i], true);
			if (r == -EEXIST) /* left by an anserd that was killed */
				r = 0;
		}
		if (r < 0 && (fams[i] == AF_INET || r != -EAFNOSUPPORT))
			err = log_warning_errno(r,
						"Gateway: cannot route proxied IPv%c LAN flows to "
						"anserd (they are forwarded direct): %m",
						fams[i] == AF_INET ? '4' : '6');
	}
	return err;
}

void anser_lan_route_del(void)
{
	static const int fams[] = { AF_INET, AF_INET6 };

	for (size_t i = 0; i < 2; i++) {
		int r = rule(fams[i], false);
		if (r < 0 && r != -ENOENT && r != -EAFNOSUPPORT)
			log_debug_errno(r, "Gateway: removing the policy rule: %m");
		r = route(fams[i], false);
		if (r < 0 && r != -ESRCH && r != -ENOENT && r != -EAFNOSUPPORT)
			log_debug_errno(r, "Gateway: removing the local route: %m");
	}
}
