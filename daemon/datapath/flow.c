// SPDX-License-Identifier: GPL-2.0-or-later
/* Pure helpers on struct anser_flow, shared by the datapath and the proxy
 * (no libbpf: unit tests of the proxy link them without the kernel side). */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "datapath.h"

void anser_flow_dst(const struct anser_flow *f, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (f->family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = f->dport;
		memcpy(&s->sin_addr, f->daddr + 12, 4);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
		s->sin6_family = AF_INET6;
		s->sin6_port = f->dport;
		memcpy(&s->sin6_addr, f->daddr, 16);
	}
}

const char *anser_flow_rule_label(const struct anser_flow *f, char *buf, size_t len)
{
	if (f->rule == ANSER_RULE_FALLBACK)
		snprintf(buf, len, "fallback");
	else
		snprintf(buf, len, "rule %u", f->rule + 1u); /* 1-based, as users count */
	return buf;
}
