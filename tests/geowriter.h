/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Writes small geosite.dat / geoip.dat files (v2ray's protobuf schema)
 * for tests and benchmarks: our own encoder, so the readers are checked
 * against data made from a description, not against themselves. */
#ifndef ANSER_TESTS_GEOWRITER_H
#define ANSER_TESTS_GEOWRITER_H

#include <glib.h>
#include <stdint.h>

/* A GeoSiteList or GeoIPList being written. */
struct geowriter {
	GByteArray *out;
	GByteArray *entry; /* the open entry */
};

void geo_begin(struct geowriter *w);
/* Opens an entry (GeoSite / GeoIP) with this country code. */
void geo_entry(struct geowriter *w, const char *code);
/* type: 0 keyword, 1 regex, 2 suffix, 3 full; attrs: NULL-terminated. */
void geo_domain(struct geowriter *w, unsigned type, const char *value, const char *const *attrs);
/* ip: 4 or 16 bytes; prefix < 0 leaves the field out (proto3 default). */
void geo_cidr(struct geowriter *w, const uint8_t *ip, size_t iplen, int prefix);
void geo_reverse(struct geowriter *w);
/* Closes the list; returns the bytes (g_byte_array_unref when done). */
GByteArray *geo_end(struct geowriter *w);

#endif
