// SPDX-License-Identifier: GPL-2.0-or-later
#include "geowriter.h"

#include <string.h>

static void varint(GByteArray *b, uint64_t v)
{
	do {
		uint8_t c = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			c |= 0x80;
		g_byte_array_append(b, &c, 1);
	} while (v);
}

static void field_bytes(GByteArray *b, unsigned num, const void *p, size_t n)
{
	varint(b, (uint64_t)num << 3 | 2);
	varint(b, n);
	g_byte_array_append(b, p, (guint)n);
}

static void field_varint(GByteArray *b, unsigned num, uint64_t v)
{
	varint(b, (uint64_t)num << 3);
	varint(b, v);
}

static void close_entry(struct geowriter *w)
{
	if (!w->entry)
		return;
	field_bytes(w->out, 1, w->entry->data, w->entry->len);
	g_byte_array_unref(w->entry);
	w->entry = NULL;
}

void geo_begin(struct geowriter *w)
{
	w->out = g_byte_array_new();
	w->entry = NULL;
}

void geo_entry(struct geowriter *w, const char *code)
{
	close_entry(w);
	w->entry = g_byte_array_new();
	field_bytes(w->entry, 1, code, strlen(code));
}

void geo_domain(struct geowriter *w, unsigned type, const char *value, const char *const *attrs)
{
	GByteArray *d = g_byte_array_new();

	if (type)
		field_varint(d, 1, type);
	field_bytes(d, 2, value, strlen(value));
	for (size_t i = 0; attrs && attrs[i]; i++) {
		GByteArray *a = g_byte_array_new();
		field_bytes(a, 1, attrs[i], strlen(attrs[i]));
		field_varint(a, 2, 1); /* bool_value */
		field_bytes(d, 3, a->data, a->len);
		g_byte_array_unref(a);
	}
	field_bytes(w->entry, 2, d->data, d->len);
	g_byte_array_unref(d);
}

void geo_cidr(struct geowriter *w, const uint8_t *ip, size_t iplen, int prefix)
{
	GByteArray *c = g_byte_array_new();

	field_bytes(c, 1, ip, iplen);
	if (prefix >= 0)
		field_varint(c, 2, (uint64_t)prefix);
	field_bytes(w->entry, 2, c->data, c->len);
	g_byte_array_unref(c);
}

void geo_reverse(struct geowriter *w)
{
	field_varint(w->entry, 3, 1);
}

GByteArray *geo_end(struct geowriter *w)
{
	close_entry(w);
	GByteArray *out = w->out;
	w->out = NULL;
	return out;
}
