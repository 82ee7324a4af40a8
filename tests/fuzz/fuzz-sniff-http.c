// SPDX-License-Identifier: GPL-2.0-or-later
/* HTTP/1 requests from a stream's first bytes. Invariants
 * (sniff-check.h): the answer and name keep sniff.h's contract;
 * prefixes answer MORE or the same; anser_sniff_stream() agrees on
 * anything that does not start like a TLS record. */
#include "tests/fuzz/sniff-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[ANSER_SNIFF_NAME_MAX + 1];

	sniff_check_stream(anser_sniff_http, data, size, size && data[0] != 22, name);
	return 0;
}
