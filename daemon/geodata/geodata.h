/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * geodata: the domain and address lists that routing rules name by tag --
 * v2ray's geosite.dat and geoip.dat (protobuf), domain-list-community's
 * text files, and the sets built in (geoip:private, geosite:private).
 *
 * Promise: readers never read outside their input, whatever it holds;
 * a malformed file is an error with a reason, never a crash.
 */
#ifndef ANSER_GEODATA_H
#define ANSER_GEODATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum anser_domain_kind {
	ANSER_DOMAIN_SUFFIX = 0, /* the name or any name below it */
	ANSER_DOMAIN_FULL,	 /* exactly the name */
	ANSER_DOMAIN_KEYWORD,	 /* names containing it */
	ANSER_DOMAIN_REGEX,	 /* names it matches (Perl/RE2 syntax) */
};

/* Called for each entry of a tag; value is not NUL-terminated. Return
 * non-zero to stop. */
typedef int (*anser_domain_cb)(void *ud, enum anser_domain_kind kind, const char *value,
			       size_t len);
/* addr: 16 bytes, IPv4 as ::ffff:a.b.c.d; prefix in IPv6 terms. */
typedef int (*anser_cidr_cb)(void *ud, const uint8_t addr[16], unsigned prefix);

/*
 * The domains of `tag` (case-insensitive) in a geosite.dat held in buf.
 * `attr` (may be NULL) keeps only domains with that attribute
 * (geosite:google@cn), or only those without it when attr_negate.
 * Returns the number of domains given to cb, -ENOENT when the file has
 * no such tag, -EBADMSG when it is malformed (*why says how), or cb's
 * non-zero return.
 */
long anser_geosite_read(const uint8_t *buf, size_t len, const char *tag, const char *attr,
			bool attr_negate, anser_domain_cb cb, void *ud, const char **why);
/* The CIDRs of `tag` in a geoip.dat held in buf; the same returns. A tag
 * marked reverse_match is refused (-EOPNOTSUPP). */
long anser_geoip_read(const uint8_t *buf, size_t len, const char *tag, anser_cidr_cb cb, void *ud,
		      const char **why);
/* Every tag in a geosite.dat or geoip.dat (for "did you mean"); cb gets
 * each code (not NUL-terminated). */
long anser_geodata_tags(const uint8_t *buf, size_t len,
			int (*cb)(void *ud, const char *tag, size_t n), void *ud);

/*
 * domain-list-community's text format: one entry per line, `domain`,
 * `full:`, `keyword:`, `regexp:`, `include:OTHER` (read from the same
 * directory, at most 16 deep, each file once), `@attr` after an entry,
 * `#` comments. Reads file `tag` in directory `dir`. Same returns as
 * anser_geosite_read; *why is a static string or, for errors in a file,
 * written into why_buf.
 */
long anser_dlc_read(const char *dir, const char *tag, const char *attr, bool attr_negate,
		    anser_domain_cb cb, void *ud, char *why_buf, size_t why_len);
/* The same for text already in memory (fuzzing); include: is refused. */
long anser_dlc_parse(const char *text, size_t len, const char *attr, bool attr_negate,
		     anser_domain_cb cb, void *ud, const char **why);

/* Built-in sets: geoip:private (RFC 6890 special-purpose addresses that
 * never leave a site) and geosite:private (names that never resolve on
 * the Internet: localhost, local, home.arpa, ...). -ENOENT for other tags. */
long anser_geoip_builtin(const char *tag, anser_cidr_cb cb, void *ud);
long anser_geosite_builtin(const char *tag, anser_domain_cb cb, void *ud);

/*
 * Where data files are looked for, in order: $ANSER_ASSET_DIR, the
 * config file's directory (config_dir, may be NULL), /usr/share/anser,
 * /usr/local/share/anser, and where dae and v2ray keep them. Returns the
 * path of the first `name` found (caller frees), or NULL with *searched
 * (caller frees) listing the places looked in.
 */
char *anser_geodata_find(const char *name, const char *config_dir, char **searched);

#endif
