// SPDX-License-Identifier: GPL-2.0-or-later
/* Feeds server bytes to every SOCKS5 parser. The first byte picks the
 * parser so one corpus covers them all; the rest is the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/outbound/socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct anser_socks5_addr a;
	uint8_t rep, method;
	int r;

	if (size < 1)
		return 0;
	const uint8_t *in = data + 1;
	size_t n = size - 1;

	switch (data[0] % 4) {
	case 0:
		r = anser_socks5_parse_reply(in, n, &rep, &a);
		if (r > 0) {
			if ((size_t)r > n)
				abort();
			if (a.atyp == SOCKS5_ATYP_DOMAIN && strlen(a.domain) > 255)
				abort();
		}
		break;
	case 1:
		r = anser_socks5_udp_parse(in, n, &a);
		if (r > 0 && (size_t)r > n)
			abort();
		break;
	case 2:
		r = anser_socks5_parse_method(in, n, data[0] & 4, &method);
		if (r > 0 &&
		    (r != 2 || (method != SOCKS5_METHOD_NONE && method != SOCKS5_METHOD_USERPASS)))
			abort();
		break;
	default:
		r = anser_socks5_parse_auth_reply(in, n);
		if (r > 0 && r != 2)
			abort();
		break;
	}
	return 0;
}
