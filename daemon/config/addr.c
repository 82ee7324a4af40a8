// SPDX-License-Identifier: GPL-2.0-or-later
/* Addresses and ports as written in routing rules. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "config-private.h"

static bool all_digits(const char *s, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Decimal 1..65535, digits only (no sign, no spaces, no 0x). */
int cfg_parse_port(const char *s, size_t len, uint16_t *out)
{
	unsigned long v = 0;

	if (!all_digits(s, len) || len > 5)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	if (v == 0 || v > 65535)
		return -ERANGE;
	*out = (uint16_t)v;
	return 0;
}

int cfg_parse_cidr(const char *s, struct anser_cidr *out, const char **why)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned max, prefix;
	struct in_addr a4;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(addr)) {
		*why = "not an IP address";
		return -EINVAL;
	}
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, &a4) == 1) {
		out->addr[10] = 0xff;
		out->addr[11] = 0xff;
		memcpy(out->addr + 12, &a4, 4);
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		max = 128;
	} else {
		*why = strchr(addr, ':') ? "not an IPv6 address" : "not an IP address";
		return -EINVAL;
	}
	prefix = max;
	if (slash) {
		const char *p = slash + 1;
		size_t plen = strlen(p);
		if (!all_digits(p, plen) || plen > 3) {
			*why = "the prefix length must be a number";
			return -EINVAL;
		}
		prefix = 0;
		for (size_t i = 0; i < plen; i++)
			prefix = prefix * 10 + (unsigned)(p[i] - '0');
		if (prefix > max) {
			*why = max == 32 ? "an IPv4 prefix length is 0..32"
					 : "an IPv6 prefix length is 0..128";
			return -ERANGE;
		}
	}
	if (max == 32)
		prefix += 96;
	out->prefix = (uint8_t)prefix;
	/* zero the host bits */
	for (unsigned bit = prefix; bit < 128; bit++)
		out->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	return 0;
}
