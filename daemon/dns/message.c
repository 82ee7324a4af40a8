// SPDX-License-Identifier: GPL-2.0-or-later
/* DNS messages: query checks, error replies, response summaries. */
#include "message.h"

#include <errno.h>
#include <string.h>

/* Our own UDP payload size, offered in replies (the DNS flag day's). */
#define OUR_UDP_SIZE 1232
/* A name has at most 127 labels; more jumps than that is a trick. */
#define MAX_JUMPS 127

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* q's question at out; its length. */
static size_t put_question(uint8_t *out, const struct anser_dns_query *q)
{
	memcpy(out, q->qname, q->qname_len);
	put16(out + q->qname_len, q->qtype);
	put16(out + q->qname_len + 2, q->qclass);
	return q->qname_len + 4;
}

/* Our OPT record (11 bytes): our UDP size, the extended rcode bits, DO. */
#define OPT_LEN 11
static void put_opt(uint8_t *out, int rcode, bool do_bit)
{
	out[0] = 0; /* the root */
	put16(out + 1, ANSER_DNS_OPT);
	put16(out + 3, OUR_UDP_SIZE);
	out[5] = (uint8_t)(rcode >> 4); /* extended rcode */
	out[6] = 0;			/* version */
	out[7] = do_bit ? 0x80 : 0;
	out[8] = 0;
	put16(out + 9, 0);
}

ssize_t anser_dns_read_name(const uint8_t *msg, size_t len, size_t off, uint8_t *out, size_t *next)
{
	size_t pos = off, n = 0, seg = off;
	bool jumped = false;

	for (int jumps = 0;;) {
		if (pos >= len)
			return -EBADMSG;
		uint8_t c = msg[pos];
		if (c == 0) {
			out[n++] = 0;
			if (!jumped)
				*next = pos + 1;
			return (ssize_t)n;
		}
		if ((c & 0xC0) == 0xC0) {
			if (pos + 1 >= len || ++jumps > MAX_JUMPS)
				return -EBADMSG;
			size_t target = (size_t)(c & 0x3F) << 8 | msg[pos + 1];
			/* strictly before the labels read so far: no loop, no
			 * forward reference, never into the header */
			if (target >= seg || target < ANSER_DNS_HDR)
				return -EBADMSG;
			if (!jumped)
				*next = pos + 2;
			jumped = true;
			seg = pos = target;
			continue;
		}
		if (c & 0xC0) /* 0x40 extended, 0x80 reserved label types */
			return -EBADMSG;
		if (pos + 1 + c > len || n + 1 + c + 1 > ANSER_DNS_MAX_NAME)
			return -EBADMSG;
		memcpy(out + n, msg + pos, 1 + (size_t)c);
		n += 1 + (size_t)c;
		pos += 1 + (size_t)c;
	}
}

ssize_t anser_dns_name_text(const uint8_t *wire, size_t len, char *out, size_t cap)
{
	size_t o = 0;

	if (len <= 1) {
		if (cap < 2)
			return -ENOBUFS;
		out[0] = '.';
		out[1] = '\0';
		return 1;
	}
	for (size_t i = 0; i < len && wire[i];) {
		size_t l = wire[i++];
		if (o && o + 1 < cap)
			out[o++] = '.';
		for (size_t k = 0; k < l && i < len; k++, i++) {
			uint8_t c = wire[i];
			if (c >= 'A' && c <= 'Z')
				c = (uint8_t)(c - 'A' + 'a');
			bool plain = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
				     c == '_';
			if (o + (plain ? 1 : 4) >= cap)
				return -ENOBUFS;
			if (plain) {
				out[o++] = (char)c;
			} else {
				out[o++] = '\\';
				out[o++] = (char)('0' + c / 100);
				out[o++] = (char)('0' + c / 10 % 10);
				out[o++] = (char)('0' + c % 10);
			}
		}
	}
	if (o >= cap)
		return -ENOBUFS;
	out[o] = '\0';
	return (ssize_t)o;
}

/* One resource record's fixed part at *pos (after its owner name). */
struct rr {
	uint16_t type, class_;
	uint32_t ttl;
	size_t rdata, rdlen;
};

static int read_rr(const uint8_t *msg, size_t len, size_t *pos, uint8_t *owner, size_t *owner_len,
		   struct rr *rr)
{
	size_t next;
	ssize_t nl = anser_dns_read_name(msg, len, *pos, owner, &next);

	if (nl < 0 || next + 10 > len)
		return -EBADMSG;
	rr->type = get16(msg + next);
	rr->class_ = get16(msg + next + 2);
	rr->ttl = get32(msg + next + 4);
	rr->rdlen = get16(msg + next + 8);
	rr->rdata = next + 10;
	if (rr->rdata + rr->rdlen > len)
		return -EBADMSG;
	*owner_len = (size_t)nl;
	*pos = rr->rdata + rr->rdlen;
	return 0;
}

enum anser_dns_verdict anser_dns_parse_query(const uint8_t *msg, size_t len,
					     struct anser_dns_query *q)
{
	memset(q, 0, sizeof(*q));
	q->udp_size = 512;
	if (len < ANSER_DNS_HDR || (msg[2] & 0x80))
		return ANSER_DNS_DROP;
	q->id = get16(msg);
	q->opcode = (msg[2] >> 3) & 0xF;
	q->rd = msg[2] & 1;
	q->cd = msg[3] & 0x10;
	q->rcode = ANSER_DNS_FORMERR;
	if (q->opcode != 0) {
		q->rcode = ANSER_DNS_NOTIMP;
		return ANSER_DNS_REPLY_ERR;
	}
	uint16_t qd = get16(msg + 4), an = get16(msg + 6), ns = get16(msg + 8),
		 ar = get16(msg + 10);
	if (qd != 1 || an != 0 || ns != 0)
		return ANSER_DNS_REPLY_ERR;
	size_t pos;
	ssize_t nl = anser_dns_read_name(msg, len, ANSER_DNS_HDR, q->qname, &pos);
	if (nl < 0 || pos + 4 > len)
		return ANSER_DNS_REPLY_ERR;
	q->qname_len = (size_t)nl;
	q->qtype = get16(msg + pos);
	q->qclass = get16(msg + pos + 2);
	q->have_question = true;
	pos += 4;
	for (unsigned i = 0; i < ar; i++) {
		uint8_t owner[ANSER_DNS_MAX_NAME];
		size_t ol;
		struct rr rr;
		if (read_rr(msg, len, &pos, owner, &ol, &rr) < 0)
			return ANSER_DNS_REPLY_ERR;
		if (rr.type != ANSER_DNS_OPT)
			continue; /* TSIG and the like: not ours to check */
		if (q->edns || ol != 1)
			return ANSER_DNS_REPLY_ERR; /* two OPTs, or one not at the root */
		q->edns = true;
		/* What it can take, but no more than OUR_UDP_SIZE (DNS flag day
		 * 2020): a reply that big fits every path unfragmented, and
		 * goes out with DF (anserd's listeners); bigger ones are cut
		 * with TC and asked again over TCP. */
		q->udp_size = rr.class_ < 512		 ? 512
			      : rr.class_ > OUR_UDP_SIZE ? OUR_UDP_SIZE
							 : rr.class_;
		q->edns_version = (uint8_t)(rr.ttl >> 16);
		q->do_bit = rr.ttl & 0x8000;
	}
	if (q->edns && q->edns_version > 0) {
		q->rcode = ANSER_DNS_BADVERS;
		return ANSER_DNS_REPLY_ERR;
	}
	q->rcode = ANSER_DNS_NOERROR;
	return ANSER_DNS_QUERY;
}

ssize_t anser_dns_error_reply(const struct anser_dns_query *q, int rcode, uint8_t *out, size_t cap)
{
	size_t need =
		ANSER_DNS_HDR + (q->have_question ? q->qname_len + 4 : 0) + (q->edns ? 11 : 0);

	if (cap < need)
		return -ENOBUFS;
	memset(out, 0, ANSER_DNS_HDR);
	put16(out, q->id);
	out[2] = (uint8_t)(0x80 | (q->opcode & 0xF) << 3 | (q->rd ? 1 : 0));
	out[3] = (uint8_t)(0x80 | (rcode & 0xF)); /* RA: recursion is offered */
	put16(out + 4, q->have_question ? 1 : 0);
	put16(out + 10, q->edns ? 1 : 0);
	size_t o = ANSER_DNS_HDR;
	if (q->have_question)
		o += put_question(out + o, q);
	if (q->edns) {
		put_opt(out + o, rcode, q->do_bit);
		o += OPT_LEN;
	}
	return (ssize_t)o;
}

static bool name_eq(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	if (al != bl)
		return false;
	for (size_t i = 0; i < al; i++) {
		uint8_t x = a[i], y = b[i];
		if (x >= 'A' && x <= 'Z')
			x = (uint8_t)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (uint8_t)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

/* RFC 2181 8: a TTL with the top bit set is 0. */
static uint32_t ttl_of(uint32_t t)
{
	return t & 0x80000000u ? 0 : t;
}

int anser_dns_parse_response(const uint8_t *msg, size_t len, struct anser_dns_response *r)
{
	memset(r, 0, sizeof(*r));
	r->negative_ttl = -1;
	if (len < ANSER_DNS_HDR || !(msg[2] & 0x80) || get16(msg + 4) != 1)
		return -EBADMSG;
	r->id = get16(msg);
	r->tc = msg[2] & 0x02;
	r->aa = msg[2] & 0x04;
	r->rcode = msg[3] & 0xF;
	unsigned an = get16(msg + 6), ns = get16(msg + 8), ar = get16(msg + 10);
	size_t pos;
	ssize_t nl = anser_dns_read_name(msg, len, ANSER_DNS_HDR, r->qname, &pos);
	if (nl < 0 || pos + 4 > len)
		return -EBADMSG;
	r->qname_len = (size_t)nl;
	r->qtype = get16(msg + pos);
	r->qclass = get16(msg + pos + 2);
	pos += 4;

	/* the name the answers are owned by: the qname, then each CNAME's target */
	uint8_t target[ANSER_DNS_MAX_NAME];
	size_t tl = r->qname_len;
	memcpy(target, r->qname, tl);
	bool have_ttl = false;
	for (unsigned i = 0; i < an + ns + ar; i++) {
		uint8_t owner[ANSER_DNS_MAX_NAME];
		size_t ol;
		struct rr rr;
		if (read_rr(msg, len, &pos, owner, &ol, &rr) < 0)
			return -EBADMSG;
		uint32_t ttl = ttl_of(rr.ttl);
		if (i < an) {
			if (rr.class_ != r->qclass || !name_eq(owner, ol, target, tl))
				continue;
			bool chain = rr.type == ANSER_DNS_CNAME && r->qtype != ANSER_DNS_CNAME;
			if (!chain && rr.type != r->qtype)
				continue;
			if (chain) {
				size_t after;
				ssize_t cl = anser_dns_read_name(msg, rr.rdata + rr.rdlen, rr.rdata,
								 target, &after);
				if (cl < 0 || after != rr.rdata + rr.rdlen)
					return -EBADMSG;
				tl = (size_t)cl;
			}
			r->answers++;
			r->min_ttl = have_ttl && r->min_ttl < ttl ? r->min_ttl : ttl;
			have_ttl = true;
			bool a = rr.type == ANSER_DNS_A && rr.rdlen == 4;
			bool aaaa = rr.type == ANSER_DNS_AAAA && rr.rdlen == 16;
			if ((a || aaaa) && r->n_addrs < ANSER_DNS_MAX_ADDRS) {
				struct anser_dns_addr *d = &r->addrs[r->n_addrs++];
				memset(d->addr, 0, sizeof(d->addr));
				if (a) {
					d->addr[10] = d->addr[11] = 0xff;
					memcpy(d->addr + 12, msg + rr.rdata, 4);
				} else {
					memcpy(d->addr, msg + rr.rdata, 16);
				}
				d->ttl = ttl;
			}
		} else if (i < an + ns) {
			if (rr.type != ANSER_DNS_SOA || r->negative_ttl >= 0)
				continue;
			/* MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM */
			uint8_t skip[ANSER_DNS_MAX_NAME];
			size_t p2, p3;
			size_t end = rr.rdata + rr.rdlen;
			if (anser_dns_read_name(msg, end, rr.rdata, skip, &p2) < 0 ||
			    anser_dns_read_name(msg, end, p2, skip, &p3) < 0 || p3 + 20 != end)
				return -EBADMSG;
			uint32_t min = ttl_of(get32(msg + p3 + 16));
			r->negative_ttl = min < ttl ? min : ttl;
		} else if (rr.type == ANSER_DNS_OPT) {
			r->rcode |= (int)(rr.ttl >> 24) << 4;
		}
	}
	return 0;
}

/* Past the question section: the first record's offset, or -EBADMSG. */
static ssize_t skip_questions(const uint8_t *msg, size_t len)
{
	uint8_t name[ANSER_DNS_MAX_NAME];
	size_t pos = ANSER_DNS_HDR;

	for (unsigned i = 0, qd = get16(msg + 4); i < qd; i++) {
		if (anser_dns_read_name(msg, len, pos, name, &pos) < 0 || pos + 4 > len)
			return -EBADMSG;
		pos += 4;
	}
	return (ssize_t)pos;
}

ssize_t anser_dns_ttl_offsets(const uint8_t *msg, size_t len, uint16_t *offs, size_t max)
{
	if (len < ANSER_DNS_HDR || len > UINT16_MAX)
		return -EBADMSG;
	unsigned rrs = (unsigned)get16(msg + 6) + get16(msg + 8) + get16(msg + 10);
	ssize_t at = skip_questions(msg, len);
	size_t n = 0;

	if (at < 0)
		return at;
	size_t pos = (size_t)at;
	for (unsigned i = 0; i < rrs; i++) {
		uint8_t owner[ANSER_DNS_MAX_NAME];
		size_t ol;
		struct rr rr;
		if (read_rr(msg, len, &pos, owner, &ol, &rr) < 0)
			return -EBADMSG;
		if (rr.type == ANSER_DNS_OPT)
			continue;
		if (n == max)
			return -ENOBUFS;
		/* type, class, TTL, rdata length, rdata */
		offs[n++] = (uint16_t)(rr.rdata - 6);
	}
	return (ssize_t)n;
}

ssize_t anser_dns_build_query(const struct anser_dns_query *q, uint16_t id, uint8_t *out,
			      size_t cap)
{
	size_t need = ANSER_DNS_HDR + q->qname_len + 4 + OPT_LEN;

	if (cap < need)
		return -ENOBUFS;
	memset(out, 0, ANSER_DNS_HDR);
	put16(out, id);
	out[2] = q->rd ? 1 : 0;
	out[3] = q->cd ? 0x10 : 0;
	put16(out + 4, 1);
	put16(out + 10, 1);
	size_t o = ANSER_DNS_HDR + put_question(out + ANSER_DNS_HDR, q);
	put_opt(out + o, 0, q->do_bit);
	return (ssize_t)(o + OPT_LEN);
}

ssize_t anser_dns_stub_query(const char *name, uint16_t qtype, uint16_t id, uint8_t *out,
			     size_t cap)
{
	struct anser_dns_query q = { .qtype = qtype, .qclass = 1 /* IN */ };

	if (name[0] == '.' && !name[1]) /* the root */
		name++;
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);
		if (l == 0 || l > 63 || q.qname_len + 1 + l + 1 > ANSER_DNS_MAX_NAME)
			return -EINVAL;
		q.qname[q.qname_len++] = (uint8_t)l;
		memcpy(q.qname + q.qname_len, name, l);
		q.qname_len += l;
		name += l + (dot != NULL);
	}
	q.qname[q.qname_len++] = 0;
	if (cap < ANSER_DNS_HDR + q.qname_len + 4)
		return -ENOBUFS;
	memset(out, 0, ANSER_DNS_HDR);
	put16(out, id);
	out[2] = 0x01; /* RD */
	put16(out + 4, 1);
	return (ssize_t)(ANSER_DNS_HDR + put_question(out + ANSER_DNS_HDR, &q));
}

ssize_t anser_dns_strip_opt(uint8_t *msg, size_t len)
{
	if (len < ANSER_DNS_HDR)
		return -EBADMSG;
	unsigned an = get16(msg + 6), ns = get16(msg + 8), ar = get16(msg + 10);
	ssize_t at = skip_questions(msg, len);
	uint8_t name[ANSER_DNS_MAX_NAME];

	if (at < 0)
		return at;
	size_t pos = (size_t)at;
	for (unsigned i = 0; i < an + ns + ar; i++) {
		size_t start = pos, ol;
		struct rr rr;
		if (read_rr(msg, len, &pos, name, &ol, &rr) < 0)
			return -EBADMSG;
		if (i >= an + ns && rr.type == ANSER_DNS_OPT) {
			/* only the last record is cut: pointers in records after
			 * it would go stale (servers put the OPT last) */
			if (i + 1 != an + ns + ar)
				return (ssize_t)len;
			put16(msg + 10, (uint16_t)(ar - 1));
			return (ssize_t)start;
		}
	}
	return (ssize_t)len;
}
