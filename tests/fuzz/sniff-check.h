/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What every sniffer promises (daemon/proxy/sniff.h), for the fuzz
 * targets: one of the three answers; FOUND writes 1..253 bytes of
 * lowercase letters, digits, '-', '_' and dots, at least one letter, no
 * trailing dot, NUL-terminated; anything else leaves "". And a prefix of
 * the input answers MORE or what the whole input answers. */
#ifndef ANSER_TESTS_SNIFF_CHECK_H
#define ANSER_TESTS_SNIFF_CHECK_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/proxy/sniff.h"

static inline void sniff_check(enum anser_sniff r, const char *name)
{
	bool letter = false;

	if (r != ANSER_SNIFF_NONE && r != ANSER_SNIFF_MORE && r != ANSER_SNIFF_FOUND)
		abort();
	size_t n = strnlen(name, ANSER_SNIFF_NAME_MAX + 1);
	if (r != ANSER_SNIFF_FOUND) {
		if (n != 0)
			abort();
		return;
	}
	if (n == 0 || n > ANSER_SNIFF_NAME_MAX || name[n - 1] == '.')
		abort();
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (c >= 'a' && c <= 'z')
			letter = true;
		else if (!((c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			abort();
	}
	if (!letter)
		abort();
}

static inline void sniff_check_prefix(enum anser_sniff whole, const char *wname,
				      enum anser_sniff part, const char *pname)
{
	if (part == ANSER_SNIFF_MORE)
		return;
	if (part != whole || strcmp(wname, pname) != 0)
		abort();
}

/* f over exact-size copies of a few prefixes of data, so that ASan sees
 * a read past a prefix's end; each checked against the whole's answer. */
static inline void sniff_check_prefixes(enum anser_sniff (*f)(const uint8_t *, size_t, char *),
					const uint8_t *data, size_t size, enum anser_sniff whole,
					const char *wname)
{
	size_t cuts[] = { size / 2, size / 3, size ? size - 1 : 0, size > 5 ? 5 : 0 };
	char name[ANSER_SNIFF_NAME_MAX + 1];

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		uint8_t *p = malloc(cuts[i] ? cuts[i] : 1);
		if (!p)
			abort();
		memcpy(p, data, cuts[i]);
		memset(name, 0x5a, sizeof(name));
		enum anser_sniff r = f(p, cuts[i], name);
		sniff_check(r, name);
		sniff_check_prefix(whole, wname, r, name);
		free(p);
	}
}

/* f on data, checked as above, and anser_sniff_stream() giving the
 * same when data starts the way that makes it pick f; f's answer. */
static inline enum anser_sniff
sniff_check_stream(enum anser_sniff (*f)(const uint8_t *, size_t, char *), const uint8_t *data,
		   size_t size, bool picks_f, char name[ANSER_SNIFF_NAME_MAX + 1])
{
	char other[ANSER_SNIFF_NAME_MAX + 1];

	memset(name, 0x5a, ANSER_SNIFF_NAME_MAX + 1);
	enum anser_sniff r = f(data, size, name);
	sniff_check(r, name);
	sniff_check_prefixes(f, data, size, r, name);
	if (size && picks_f) {
		memset(other, 0x5a, sizeof(other));
		if (anser_sniff_stream(data, size, other) != r || strcmp(name, other) != 0)
			abort();
	}
	return r;
}

#endif
