/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Wire-format test inputs (DNS messages, TLS records, ...) built byte by
 * byte, big-endian, for the unit tests. */
#ifndef ANSER_TEST_WIRE_H
#define ANSER_TEST_WIRE_H

#include <glib.h>
#include <stdint.h>
#include <string.h>

struct wire {
	uint8_t b[65536];
	size_t n;
};

static inline void put(struct wire *m, const void *p, size_t n)
{
	g_assert_cmpuint(m->n + n, <=, sizeof(m->b));
	if (n)
		memcpy(m->b + m->n, p, n);
	m->n += n;
}

static inline void u8(struct wire *m, unsigned v)
{
	uint8_t b = (uint8_t)v;
	put(m, &b, 1);
}

static inline void u16(struct wire *m, unsigned v)
{
	u8(m, v >> 8);
	u8(m, v & 0xff);
}

static inline void u24(struct wire *m, unsigned v)
{
	u8(m, v >> 16);
	u16(m, v & 0xffff);
}

static inline void u32(struct wire *m, uint32_t v)
{
	u16(m, v >> 16);
	u16(m, v & 0xffff);
}

#endif
