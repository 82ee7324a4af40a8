// SPDX-License-Identifier: GPL-2.0-or-later
/* Share links and subscription bodies. The first byte picks the parser:
 * even -> one link (the rest, cut at a NUL), odd -> a subscription body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct anser_diags d = { 0 };

	if (size < 1)
		return 0;
	if (data[0] % 2 == 0) {
		char *link = strndup((const char *)data + 1, size - 1);
		struct anser_node n;
		if (!link)
			return 0;
		if (anser_node_from_link(link, &n, &d) == 0) {
			/* a good node is complete */
			if (!n.name || !n.host || n.port == 0 || !n.proto)
				abort();
			anser_node_clear(&n);
		} else if (d.n == 0 || n.host) {
			abort(); /* a refusal always says why, and leaves nothing */
		}
		free(link);
	} else {
		struct anser_node *v;
		size_t n, bad;
		if (anser_subscription_parse((const char *)data + 1, size - 1, &v, &n, &bad, &d) ==
		    0) {
			if (n == 0 || !v)
				abort();
			for (size_t i = 0; i < n; i++)
				anser_node_clear(&v[i]);
			free(v);
		} else if (v || n) {
			abort();
		}
	}
	anser_diags_clear(&d);
	return 0;
}
