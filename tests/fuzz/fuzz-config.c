// SPDX-License-Identifier: GPL-2.0-or-later
/* Fuzz target: arbitrary bytes through the config parser. Whatever the
 * input, parsing must not crash, leak or read outside the buffer, and its
 * result must be consistent. */
#include <stdint.h>
#include <stdlib.h>

#include "daemon/config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct anser_diags d = { 0 };
	struct anser_config *c = NULL;
	int r = anser_config_parse_string("fuzz.dae", (const char *)data, size, &c, &d);

	if ((r == 0) != (c != NULL) || (r == 0) != (anser_diags_errors(&d) == 0))
		abort();
	if (c) {
		/* the resolved ids must all name something */
		for (size_t i = 0; i < c->n_rules; i++)
			if (!anser_config_outbound_name(c, c->rules[i].outbound))
				abort();
		if (!anser_config_outbound_name(c, c->fallback))
			abort();
		for (size_t g = 0; g < c->n_groups; g++) {
			if (c->groups[g].n_nodes == 0)
				abort();
			for (size_t n = 0; n < c->groups[g].n_nodes; n++)
				if (c->groups[g].nodes[n] >= c->n_nodes)
					abort();
		}
	}
	free(anser_diags_format(&d));
	anser_diags_clear(&d);
	anser_config_free(c);
	return 0;
}
