/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The DNS answer cache: whole responses keyed by (name, type, class),
 * names compared without case. Served with the asker's id and every TTL
 * counted down by the time spent in the cache. Lifetimes follow the RFCs:
 * the minimum TTL over the answer (RFC 2181 5.2: an RRset has one TTL;
 * the minimum keeps CNAME chains honest), negative answers (NXDOMAIN and
 * NODATA) for min(SOA TTL, SOA MINIMUM) (RFC 2308 5), and expired answers
 * may be served stale (RFC 8767) for a while, with a TTL of their own,
 * while the caller refreshes them. A bounded number of entries, the least
 * recently used evicted first. Thread-safe (one lock; the work under it
 * is a hash lookup and a copy).
 */
#ifndef ANSER_DNS_CACHE_H
#define ANSER_DNS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "message.h"

struct anser_dns_cache;

struct anser_dns_cache *anser_dns_cache_new(size_t max_entries);
void anser_dns_cache_free(struct anser_dns_cache *c);

/* How long a response may be kept: seconds, or -1 for "do not cache"
 * (truncated, SERVFAIL and other errors, negative answers without an
 * SOA). fixed_ttl >= 0 replaces a positive answer's TTL (dae's
 * fixed_domain_ttl). */
int64_t anser_dns_cache_lifetime(const struct anser_dns_response *r, int64_t fixed_ttl);

/* Keeps msg (a response whose summary is r, from anser_dns_parse_response)
 * for `ttl` seconds from now_ms (CLOCK_MONOTONIC milliseconds); served
 * TTLs never exceed it. Replaces what was there. 0, or -EINVAL (ttl < 0,
 * a message over 16 KiB or with over 512 records: passed on, not kept). */
int anser_dns_cache_put(struct anser_dns_cache *c, const uint8_t *msg, size_t len,
			const struct anser_dns_response *r, int64_t ttl, int64_t now_ms);

enum anser_dns_hit {
	ANSER_DNS_MISS,
	ANSER_DNS_FRESH,
	ANSER_DNS_STALE, /* expired less than stale_s ago: served with TTL stale_ttl */
};

struct anser_dns_lookup {
	const uint8_t *qname; /* wire form */
	size_t qname_len;
	uint16_t qtype, qclass;
	uint16_t id;	    /* the asker's: written into the copy */
	int64_t stale_s;    /* how long after expiry an answer may still be served; 0: never */
	uint32_t stale_ttl; /* the TTL a stale answer carries (RFC 8767 suggests 30) */
};

/* The cached response for the question into out (id and TTLs rewritten).
 * *len gets its length. A miss when out is too small. */
enum anser_dns_hit anser_dns_cache_get(struct anser_dns_cache *c, const struct anser_dns_lookup *l,
				       int64_t now_ms, uint8_t *out, size_t cap, size_t *len);

/* Entries now, and the ones dropped for room since the start. */
size_t anser_dns_cache_size(struct anser_dns_cache *c);
uint64_t anser_dns_cache_evictions(struct anser_dns_cache *c);
/* Forget everything (a network change). */
void anser_dns_cache_clear(struct anser_dns_cache *c);

#endif
