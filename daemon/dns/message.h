/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * DNS messages (RFC 1035, EDNS per RFC 6891): a query's one question and
 * its OPT record, checked as a careful server checks them (unbound is the
 * reference: its verdicts are the ones below), the error replies those
 * checks call for, and what a response carries that a cache and the
 * domain router need (rcode, the answer's addresses and TTLs, the SOA
 * minimum for negative caching). Pure: bytes in, structs out; fuzzed by
 * tests/fuzz/fuzz-dns.c.
 */
#ifndef ANSER_DNS_MESSAGE_H
#define ANSER_DNS_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ANSER_DNS_HDR	   12
#define ANSER_DNS_MAX_NAME 255 /* wire form, with the root label */

enum {
	ANSER_DNS_NOERROR = 0,
	ANSER_DNS_FORMERR = 1,
	ANSER_DNS_SERVFAIL = 2,
	ANSER_DNS_NXDOMAIN = 3,
	ANSER_DNS_NOTIMP = 4,
	ANSER_DNS_REFUSED = 5,
	ANSER_DNS_BADVERS = 16, /* extended: needs an OPT in the reply */
};

enum {
	ANSER_DNS_A = 1,
	ANSER_DNS_NS = 2,
	ANSER_DNS_CNAME = 5,
	ANSER_DNS_SOA = 6,
	ANSER_DNS_AAAA = 28,
	ANSER_DNS_OPT = 41,
};

/* What to do with a message that came in as a query. */
enum anser_dns_verdict {
	ANSER_DNS_QUERY,     /* good: answer it */
	ANSER_DNS_DROP,	     /* shorter than a header, or QR=1: no answer at all */
	ANSER_DNS_REPLY_ERR, /* answer with q->rcode (FORMERR, NOTIMP, BADVERS) */
};

struct anser_dns_query {
	uint16_t id;
	uint8_t opcode;
	bool rd, cd;
	bool have_question;		   /* parsed far enough to echo it */
	uint8_t qname[ANSER_DNS_MAX_NAME]; /* wire form, uncompressed, as sent */
	size_t qname_len;
	uint16_t qtype, qclass;
	bool edns;
	uint8_t edns_version;
	uint16_t udp_size; /* the client's (512 without EDNS), at most 1232 */
	bool do_bit;
	int rcode; /* ANSER_DNS_REPLY_ERR: which */
};

/* Checks a message received as a query: the header (QR, opcode, the
 * counts: QDCOUNT 1, no answer or authority records), the question (label
 * types, lengths, compression pointers that point strictly backwards, a
 * name of at most 255 bytes), the additional section (at most one OPT,
 * owned by the root; EDNS version 0). */
enum anser_dns_verdict anser_dns_parse_query(const uint8_t *msg, size_t len,
					     struct anser_dns_query *q);

/* An error reply to q (id, opcode, RD copied; the question when it was
 * read; an OPT when the query had one, which BADVERS needs). Its length
 * or -ENOBUFS. */
ssize_t anser_dns_error_reply(const struct anser_dns_query *q, int rcode, uint8_t *out, size_t cap);

/* The name at off (compression allowed, pointers strictly backwards)
 * into wire form; *next: the offset after it in msg. Its length or
 * -EBADMSG. */
ssize_t anser_dns_read_name(const uint8_t *msg, size_t len, size_t off, uint8_t *out, size_t *next);
/* Wire name -> "www.example.com" (lowercased, "." for the root, '\ddd'
 * escapes for bytes outside [a-z0-9-_]); its length or -ENOBUFS. */
ssize_t anser_dns_name_text(const uint8_t *wire, size_t len, char *out, size_t cap);

/* A response, as a cache and the router need it. */
#define ANSER_DNS_MAX_ADDRS 32
struct anser_dns_addr {
	uint8_t addr[16]; /* IPv4 mapped into ::ffff:0:0/96 for A */
	uint32_t ttl;
};
struct anser_dns_response {
	uint16_t id;
	int rcode; /* with the OPT's extended bits */
	bool tc, aa;
	uint8_t qname[ANSER_DNS_MAX_NAME];
	size_t qname_len;
	uint16_t qtype, qclass;
	/* records of the answer section that answer the question (owned by
	 * the qname or by the CNAME chain from it) */
	uint16_t answers;
	uint32_t min_ttl; /* over those answers; 0 when none */
	struct anser_dns_addr addrs[ANSER_DNS_MAX_ADDRS];
	size_t n_addrs; /* A and AAAA among them (the first ANSER_DNS_MAX_ADDRS) */
	/* negative answers (RFC 2308): min(SOA TTL, SOA MINIMUM) of the SOA
	 * in the authority section; -1 when there is none */
	int64_t negative_ttl;
};

/* 0, or -EBADMSG for a message that is not a well-formed response with
 * one question. */
int anser_dns_parse_response(const uint8_t *msg, size_t len, struct anser_dns_response *r);

/* A query for q's question as a forwarder sends it: id, RD and CD from
 * q, our own OPT (1232 bytes, DO from q). Its length or -ENOBUFS. */
ssize_t anser_dns_build_query(const struct anser_dns_query *q, uint16_t id, uint8_t *out,
			      size_t cap);

/* A query as a stub resolver sends it: id, RD, one question of class IN
 * for name ("www.example.com", a final dot allowed), no EDNS. Its length,
 * -EINVAL for an empty label, a label over 63 bytes or a name over 255,
 * or -ENOBUFS. */
ssize_t anser_dns_stub_query(const char *name, uint16_t qtype, uint16_t id, uint8_t *out,
			     size_t cap);

/* Removes the OPT record of a response in place (for askers without
 * EDNS): the new length, or -EBADMSG. */
ssize_t anser_dns_strip_opt(uint8_t *msg, size_t len);

/* Offsets of the TTL fields of every record but OPT (whose TTL holds
 * flags), at most max: their number, or -EBADMSG. For counting TTLs down
 * in a cached copy. */
ssize_t anser_dns_ttl_offsets(const uint8_t *msg, size_t len, uint16_t *offs, size_t max);

#endif
