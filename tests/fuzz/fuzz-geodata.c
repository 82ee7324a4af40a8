// SPDX-License-Identifier: GPL-2.0-or-later
/* Feeds bytes to the geodata readers and the domain matcher. The first
 * byte picks the reader (and a tag/attribute), the rest is the file. */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/geodata/geodata.h"
#include "daemon/routing/domain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct acc {
	struct anser_domain_builder *b;
	size_t n;
};

static int on_domain(void *ud, enum anser_domain_kind kind, const char *value, size_t len)
{
	struct acc *a = ud;
	const char *why;

	if ((unsigned)kind > ANSER_DOMAIN_REGEX || !value || len > 1024 * 1024)
		abort();
	if (a->b)
		anser_domain_builder_add(a->b, kind, value, len, (uint32_t)(a->n % 128), &why);
	a->n++;
	return 0;
}

static int on_cidr(void *ud, const uint8_t addr[16], unsigned prefix)
{
	if (prefix > 128)
		abort();
	/* host bits are cleared */
	for (unsigned b = prefix; b < 128; b++)
		if (addr[b / 8] & (0x80 >> (b % 8)))
			abort();
	(*(size_t *)ud)++;
	return 0;
}

static int on_tag(void *ud, const char *tag, size_t n)
{
	(void)tag;
	(void)n;
	(*(size_t *)ud)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const tags[] = { "cn", "CN", "private", "x" };
	static const char *const attrs[] = { NULL, "cn", "ads", NULL };
	const char *why = NULL;
	size_t count = 0;
	long r;

	if (size < 1)
		return 0;
	const uint8_t *in = data + 1;
	size_t n = size - 1;
	const char *tag = tags[(data[0] >> 2) & 3];
	const char *attr = attrs[(data[0] >> 4) & 3];
	struct acc a = { 0 };

	switch (data[0] & 3) {
	case 0:
		r = anser_geosite_read(in, n, tag, attr, data[0] & 0x40, on_domain, &a, &why);
		if (r == -EBADMSG && !why)
			abort();
		anser_geodata_tags(in, n, on_tag, &count);
		break;
	case 1:
		r = anser_geoip_read(in, n, tag, on_cidr, &count, &why);
		if ((r == -EBADMSG || r == -EOPNOTSUPP) && !why)
			abort();
		if (r >= 0 && (size_t)r != count)
			abort();
		break;
	case 2:
		r = anser_dlc_parse((const char *)in, n, attr, data[0] & 0x40, on_domain, &a, &why);
		if (r >= 0 && (size_t)r != a.n)
			abort();
		break;
	default: {
		/* patterns from the text, then its lines as names */
		a.b = anser_domain_builder_new();
		anser_dlc_parse((const char *)in, n, NULL, false, on_domain, &a, &why);
		struct anser_domain_set *s = anser_domain_builder_finish(a.b);
		if (!s)
			abort();
		const char *p = (const char *)in, *end = p + n;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
			uint64_t bits[2] = { 0 };
			anser_domain_set_match(s, p, len, bits, 2);
			p += len + 1;
		}
		anser_domain_set_free(s);
		break;
	}
	}
	return 0;
}
