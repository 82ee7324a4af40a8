// SPDX-License-Identifier: GPL-2.0-or-later
/* QUIC Initial packets from a UDP flow's first datagrams. Two ways to
 * read an input, so that both the packet layer and what lies behind the
 * AEAD (which random bytes never open) are fuzzed:
 *
 *   raw:    datagrams, each a 2-byte big-endian length and that many
 *           bytes (the last one takes what is left);
 *   sealed: 0xff, a flags byte (bit 0: QUIC v2; bit 1: all packets
 *           coalesced in one datagram; bit 2: a junk datagram first;
 *           bit 3: junk after the last packet), then chunks, each a
 *           2-byte length and the plaintext frames of one Initial that
 *           this target seals with the keys of a fixed DCID.
 *
 * Invariants: the answer and name keep sniff.h's contract (sniff-check.h),
 * and the same datagrams give the same answer twice. */
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/sniff-check.h"
#include "tests/quicseal.h"

#define MAX_DGRAMS 8
#define SEALED	   0xff

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct dgrams {
	uint8_t *p[MAX_DGRAMS + 2];
	size_t len[MAX_DGRAMS + 2], n;
};

/* An exact-size copy, so that ASan sees a read past a datagram's end. */
static void add(struct dgrams *d, const uint8_t *p, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	if (!c)
		abort();
	if (len)
		memcpy(c, p, len);
	d->p[d->n] = c;
	d->len[d->n++] = len;
}

static size_t chunk(const uint8_t *data, size_t size, size_t *i, const uint8_t **p)
{
	size_t l = (size_t)data[*i] << 8 | data[*i + 1];
	*i += 2;
	if (l > size - *i)
		l = size - *i;
	*p = data + *i;
	*i += l;
	return l;
}

static void raw(struct dgrams *d, const uint8_t *data, size_t size)
{
	size_t i = 0;
	const uint8_t *p;

	while (d->n < MAX_DGRAMS && size - i >= 2) {
		size_t l = chunk(data, size, &i, &p);
		add(d, p, l);
	}
}

static void sealed(struct dgrams *d, const uint8_t *data, size_t size)
{
	static const uint8_t dcid[] = { 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08 };
	static const uint8_t junk[] = { 0xc3, 0xff, 0x00, 0x00, 0x1d, 0x08, 0x01 };
	uint8_t all[MAX_DGRAMS * 2100 + sizeof(junk)], *pkt;
	size_t i = 1, an = 0, k = 0;
	const uint8_t *p;

	if (size < 1)
		return;
	unsigned flags = data[0];
	struct quicseal q = { .version = flags & 1 ? QUICSEAL_V2 : QUICSEAL_V1,
			      .type = QUICSEAL_INITIAL,
			      .dcid = dcid,
			      .dcid_len = sizeof(dcid) };
	if (flags & 4)
		add(d, junk, sizeof(junk));
	for (; k < MAX_DGRAMS && size - i >= 2; k++) {
		size_t l = chunk(data, size, &i, &p);
		if (l > 2000)
			l = 2000;
		q.pn = (uint32_t)k;
		q.pn_len = 1 + k % 4;
		pkt = all + an;
		size_t n = quicseal(&q, p, l, pkt, sizeof(all) - an);
		if (n == 0)
			abort();
		if (flags & 2)
			an += n;
		else
			add(d, pkt, n);
	}
	if (flags & 8) {
		if (flags & 2) {
			memcpy(all + an, junk, sizeof(junk));
			an += sizeof(junk);
		} else {
			add(d, junk, sizeof(junk));
		}
	}
	if (flags & 2)
		add(d, all, an);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dgrams d = { .n = 0 };
	char name[ANSER_SNIFF_NAME_MAX + 1], again[ANSER_SNIFF_NAME_MAX + 1];

	if (size && data[0] == SEALED)
		sealed(&d, data + 1, size - 1);
	else
		raw(&d, data, size);
	memset(name, 0x5a, sizeof(name));
	memset(again, 0x5a, sizeof(again));
	enum anser_sniff r = anser_sniff_quic((const uint8_t *const *)d.p, d.len, d.n, name);
	sniff_check(r, name);
	if (anser_sniff_quic((const uint8_t *const *)d.p, d.len, d.n, again) != r ||
	    strcmp(name, again) != 0)
		abort();
	for (size_t k = 0; k < d.n; k++)
		free(d.p[k]);
	return 0;
}
