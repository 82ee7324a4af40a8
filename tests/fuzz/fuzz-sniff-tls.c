// SPDX-License-Identifier: GPL-2.0-or-later
/* TLS ClientHellos from a stream's first bytes. Invariants (sniff-check.h):
 * the answer and name keep sniff.h's contract; prefixes answer MORE or
 * the same; anser_sniff_stream() agrees on anything that starts like a
 * record; and where records break a hello does not matter: the input
 * read as a bare handshake message gives the same answer in one record
 * as in many small ones. */
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/sniff-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data in handshake records of at most `chunk` bytes; its length */
static size_t records(const uint8_t *data, size_t size, size_t chunk, uint8_t *out)
{
	size_t o = 0;

	for (size_t i = 0; i < size; i += chunk) {
		size_t l = size - i < chunk ? size - i : chunk;
		out[o++] = 22;
		out[o++] = 3;
		out[o++] = 1;
		out[o++] = (uint8_t)(l >> 8);
		out[o++] = (uint8_t)l;
		memcpy(out + o, data + i, l);
		o += l;
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[ANSER_SNIFF_NAME_MAX + 1], other[ANSER_SNIFF_NAME_MAX + 1];

	sniff_check_stream(anser_sniff_tls, data, size, size && data[0] == 22, name);
	if (size == 0 || size > 16384)
		return 0;
	size_t chunk = 1 + size % 61;
	uint8_t *one = malloc(size + 5), *many = malloc(size + 5 * (size / chunk + 1));
	if (!one || !many)
		abort();
	size_t n1 = records(data, size, size, one), nm = records(data, size, chunk, many);
	memset(name, 0x5a, sizeof(name));
	memset(other, 0x5a, sizeof(other));
	enum anser_sniff r1 = anser_sniff_tls(one, n1, name);
	enum anser_sniff rm = anser_sniff_tls(many, nm, other);
	sniff_check(r1, name);
	sniff_check(rm, other);
	if (r1 != rm || strcmp(name, other) != 0)
		abort();
	free(one);
	free(many);
	return 0;
}
