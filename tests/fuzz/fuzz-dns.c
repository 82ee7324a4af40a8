// SPDX-License-Identifier: GPL-2.0-or-later
/* DNS messages from the network: every input is checked as a query and
 * read as a response. Invariants: an error reply or a SERVFAIL built
 * for what was read is itself a well-formed response to the same
 * question; names turn into text within bounds; a response summary never
 * points outside what it read. */
#include <stdlib.h>
#include <string.h>

#include "daemon/dns/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct anser_dns_query q;
	struct anser_dns_response r;
	uint8_t out[1024];
	char text[4 * ANSER_DNS_MAX_NAME + 2];

	enum anser_dns_verdict v = anser_dns_parse_query(data, size, &q);
	if (v != ANSER_DNS_DROP) {
		int rcode = v == ANSER_DNS_QUERY ? ANSER_DNS_SERVFAIL : q.rcode;
		ssize_t n = anser_dns_error_reply(&q, rcode, out, sizeof(out));
		if (n < ANSER_DNS_HDR)
			abort();
		if (anser_dns_parse_response(out, (size_t)n, &r) == 0) {
			if (r.rcode != rcode || r.id != q.id || !q.have_question ||
			    r.qname_len != q.qname_len || memcmp(r.qname, q.qname, q.qname_len))
				abort();
		} else if (q.have_question) {
			abort(); /* a reply with the question must read back */
		}
	}
	if (v == ANSER_DNS_QUERY &&
	    anser_dns_name_text(q.qname, q.qname_len, text, sizeof(text)) < 0)
		abort();
	if (anser_dns_parse_response(data, size, &r) == 0) {
		if (r.n_addrs > ANSER_DNS_MAX_ADDRS || r.qname_len > ANSER_DNS_MAX_NAME ||
		    r.n_addrs > r.answers)
			abort();
		if (anser_dns_name_text(r.qname, r.qname_len, text, sizeof(text)) < 0)
			abort();
	}
	return 0;
}
