/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * DNS request routing with dae's semantics: the dns section's `request`
 * rules, tried in order, each an AND of qname() and qtype() conditions
 * (each may be negated); the first that holds names an upstream, `asis`
 * (the server the client asked) or `reject`; none: the fallback. All the
 * qname() patterns of all rules sit in one domain set, so a query costs
 * one match however many rules there are. Immutable once built.
 */
#ifndef ANSER_DNS_ROUTER_H
#define ANSER_DNS_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"

enum {
	ANSER_DNS_ASIS = -1,
	ANSER_DNS_REJECT = -2,
	ANSER_DNS_ACCEPT = -3, /* response rules */
};

struct anser_dns_router;

/* From cfg's dns section. 0, or -EINVAL with *why (malloc'd). */
int anser_dns_router_new(const struct anser_dns *dns, struct anser_dns_router **out, char **why);
void anser_dns_router_free(struct anser_dns_router *r);

/* The upstream index (into dns->upstreams), ANSER_DNS_ASIS or
 * ANSER_DNS_REJECT for a query; *rule: the deciding rule's index, -1 for
 * the fallback. name: presentation form, lower case. */
int anser_dns_router_request(const struct anser_dns_router *r, const char *name, uint16_t qtype,
			     int *rule);

/* The response rules (dae's `response` block: qname(), qtype(), ip() --
 * any answered address in the prefixes --, upstream() -- the one that
 * answered): ANSER_DNS_ACCEPT, ANSER_DNS_REJECT, or an upstream index to
 * ask again. addrs: 16 bytes each (IPv4 mapped). */
int anser_dns_router_response(const struct anser_dns_router *r, const char *name, uint16_t qtype,
			      const uint8_t (*addrs)[16], size_t n_addrs, int upstream, int *rule);

#endif
