// SPDX-License-Identifier: GPL-2.0-or-later
/* Reads DNS messages as hex, one per line, from stdin and prints what
 * anserd's DNS codec makes of each as a query: "drop", "query" or
 * "rcode N" (test_dns.py compares it with a real unbound). */
#include <stdio.h>
#include <string.h>

#include "daemon/dns/message.h"

int main(void)
{
	char line[16384];

	while (fgets(line, sizeof(line), stdin)) {
		uint8_t msg[8192];
		size_t n = 0;
		for (char *p = line; p[0] && p[1] && p[0] != '\n' && n < sizeof(msg); p += 2) {
			unsigned v;
			if (sscanf(p, "%2x", &v) != 1)
				break;
			msg[n++] = (uint8_t)v;
		}
		struct anser_dns_query q;
		enum anser_dns_verdict v = anser_dns_parse_query(msg, n, &q);
		if (v == ANSER_DNS_DROP)
			puts("drop");
		else if (v == ANSER_DNS_QUERY)
			puts("query");
		else
			printf("rcode %d\n", q.rcode);
	}
	return 0;
}
