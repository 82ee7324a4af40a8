// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * geosite.dat / geoip.dat are protobuf messages (v2ray's routercommon
 * schema), read here with a small wire-format walker:
 *
 *   GeoSiteList { repeated GeoSite entry = 1; }
 *   GeoSite     { string country_code = 1; repeated Domain domain = 2; }
 *   Domain      { Type type = 1; string value = 2; repeated Attribute attribute = 3; }
 *               (Type: 0 keyword, 1 regex, 2 domain (suffix), 3 full)
 *   Attribute   { string key = 1; ... }
 *   GeoIPList   { repeated GeoIP entry = 1; }
 *   GeoIP       { string country_code = 1; repeated CIDR cidr = 2; bool reverse_match = 3; }
 *   CIDR        { bytes ip = 1; uint32 prefix = 2; }
 *
 * Entries of other tags are skipped by length without being decoded.
 */
#include "geodata.h"

#include <errno.h>
#include <glib.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- protobuf wire format ---- */

struct pb {
	const uint8_t *p, *end;
};

/* buf may be NULL when len is 0 (no arithmetic on a null pointer). */
static struct pb pb_of(const uint8_t *buf, size_t len)
{
	static const uint8_t empty[1];

	if (!buf || !len)
		return (struct pb){ empty, empty };
	return (struct pb){ buf, buf + len };
}

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static bool pb_varint(struct pb *r, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return false;
		uint8_t b = *r->p++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false; /* more than 10 bytes */
}

/* The next field: its number, wire type and, for WT_LEN, its bytes. */
struct pb_field {
	uint64_t num;
	unsigned wt;
	uint64_t v;    /* WT_VARINT */
	struct pb sub; /* WT_LEN */
};

/* 1: a field read; 0: end of input; -1: malformed. */
static int pb_next(struct pb *r, struct pb_field *f)
{
	uint64_t key, n;

	if (r->p >= r->end)
		return 0;
	if (!pb_varint(r, &key))
		return -1;
	f->num = key >> 3;
	f->wt = (unsigned)(key & 7);
	if (f->num == 0)
		return -1;
	switch (f->wt) {
	case WT_VARINT:
		return pb_varint(r, &f->v) ? 1 : -1;
	case WT_I64:
		if (r->end - r->p < 8)
			return -1;
		r->p += 8;
		return 1;
	case WT_I32:
		if (r->end - r->p < 4)
			return -1;
		r->p += 4;
		return 1;
	case WT_LEN:
		if (!pb_varint(r, &n) || n > (uint64_t)(r->end - r->p))
			return -1;
		f->sub.p = r->p;
		f->sub.end = r->p + n;
		r->p += n;
		return 1;
	default:
		return -1; /* groups (3, 4) and reserved types */
	}
}

static bool pb_str_eq_ci(const struct pb *s, const char *str)
{
	size_t n = (size_t)(s->end - s->p);
	return strlen(str) == n && strncasecmp((const char *)s->p, str, n) == 0;
}

#define MALFORMED(w)                                                                               \
	do {                                                                                       \
		*why = (w);                                                                        \
		return -EBADMSG;                                                                   \
	} while (0)

/* The country code of a GeoSite/GeoIP entry; -1 malformed, 0 none. */
static int entry_code(struct pb e, struct pb *code)
{
	struct pb_field f;
	int r;

	while ((r = pb_next(&e, &f)) > 0)
		if (f.num == 1 && f.wt == WT_LEN) {
			*code = f.sub;
			return 1;
		}
	return r < 0 ? -1 : 0;
}

/* Does the Domain message d carry attribute attr? -1: malformed. */
static int has_attr(struct pb d, const char *attr)
{
	struct pb_field f, g;
	int r, r2;

	while ((r = pb_next(&d, &f)) > 0) {
		if (f.num != 3 || f.wt != WT_LEN)
			continue;
		while ((r2 = pb_next(&f.sub, &g)) > 0)
			if (g.num == 1 && g.wt == WT_LEN && pb_str_eq_ci(&g.sub, attr))
				return 1;
		if (r2 < 0)
			return -1;
	}
	return r < 0 ? -1 : 0;
}

static long site_domains(struct pb e, const char *attr, bool attr_negate, anser_domain_cb cb,
			 void *ud, const char **why)
{
	struct pb_field f, g;
	long n = 0;
	int r, r2;

	while ((r = pb_next(&e, &f)) > 0) {
		if (f.num != 2 || f.wt != WT_LEN)
			continue;
		uint64_t type = 0; /* proto3: absent means 0, Plain (keyword) */
		struct pb value = { 0 };
		bool has_value = false;
		struct pb d = f.sub;
		while ((r2 = pb_next(&d, &g)) > 0) {
			if (g.num == 1 && g.wt == WT_VARINT)
				type = g.v;
			else if (g.num == 2 && g.wt == WT_LEN) {
				value = g.sub;
				has_value = true;
			}
		}
		if (r2 < 0)
			MALFORMED("a domain entry is cut short");
		if (!has_value || value.p == value.end)
			MALFORMED("a domain entry has no value");
		if (type > 3)
			MALFORMED("a domain entry has an unknown type");
		if (attr) {
			int a = has_attr(f.sub, attr);
			if (a < 0)
				MALFORMED("a domain attribute is cut short");
			if ((a == 1) == attr_negate)
				continue;
		}
		static const enum anser_domain_kind kinds[] = { ANSER_DOMAIN_KEYWORD,
								ANSER_DOMAIN_REGEX,
								ANSER_DOMAIN_SUFFIX,
								ANSER_DOMAIN_FULL };
		int stop =
			cb(ud, kinds[type], (const char *)value.p, (size_t)(value.end - value.p));
		if (stop)
			return stop;
		n++;
	}
	if (r < 0)
		MALFORMED("a site entry is cut short");
	return n;
}

/* The entry of `tag` in a GeoSiteList/GeoIPList. */
static int find_entry(const uint8_t *buf, size_t len, const char *tag, struct pb *out,
		      const char **why)
{
	struct pb top = pb_of(buf, len);
	struct pb_field f;
	int r;

	while ((r = pb_next(&top, &f)) > 0) {
		if (f.num != 1 || f.wt != WT_LEN)
			continue;
		struct pb code;
		int c = entry_code(f.sub, &code);
		if (c < 0)
			MALFORMED("an entry is cut short");
		if (c > 0 && pb_str_eq_ci(&code, tag)) {
			*out = f.sub;
			return 0;
		}
	}
	if (r < 0)
		MALFORMED("the file is cut short or is not geodata");
	return -ENOENT;
}

long anser_geosite_read(const uint8_t *buf, size_t len, const char *tag, const char *attr,
			bool attr_negate, anser_domain_cb cb, void *ud, const char **why)
{
	struct pb e;
	int r = find_entry(buf, len, tag, &e, why);

	if (r < 0)
		return r;
	return site_domains(e, attr, attr_negate, cb, ud, why);
}

long anser_geoip_read(const uint8_t *buf, size_t len, const char *tag, anser_cidr_cb cb, void *ud,
		      const char **why)
{
	struct pb e, copy;
	struct pb_field f, g;
	long n = 0;
	int r, r2;

	r = find_entry(buf, len, tag, &e, why);
	if (r < 0)
		return r;
	copy = e;
	while ((r = pb_next(&copy, &f)) > 0)
		if (f.num == 3 && f.wt == WT_VARINT && f.v) {
			*why = "the tag is an inverse (reverse_match) list";
			return -EOPNOTSUPP;
		}
	while ((r = pb_next(&e, &f)) > 0) {
		if (f.num != 2 || f.wt != WT_LEN)
			continue;
		struct pb ip = { 0 };
		uint64_t prefix = UINT64_MAX;
		while ((r2 = pb_next(&f.sub, &g)) > 0) {
			if (g.num == 1 && g.wt == WT_LEN)
				ip = g.sub;
			else if (g.num == 2 && g.wt == WT_VARINT)
				prefix = g.v;
		}
		if (r2 < 0)
			MALFORMED("a CIDR entry is cut short");
		size_t iplen = (size_t)(ip.end - ip.p);
		if (iplen != 4 && iplen != 16)
			MALFORMED("a CIDR has an address that is neither IPv4 nor IPv6");
		if (prefix == UINT64_MAX)
			prefix = iplen * 8; /* proto3: 0 is not sent */
		if (prefix > iplen * 8)
			MALFORMED("a CIDR has a prefix longer than its address");
		uint8_t a[16] = { 0 };
		unsigned bits = (unsigned)prefix;
		if (iplen == 4) {
			a[10] = a[11] = 0xff;
			memcpy(a + 12, ip.p, 4);
			bits += 96;
		} else {
			memcpy(a, ip.p, 16);
		}
		for (unsigned b = bits; b < 128; b++)
			a[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
		int stop = cb(ud, a, bits);
		if (stop)
			return stop;
		n++;
	}
	if (r < 0)
		MALFORMED("an address entry is cut short");
	return n;
}

long anser_geodata_tags(const uint8_t *buf, size_t len,
			int (*cb)(void *ud, const char *tag, size_t n), void *ud)
{
	struct pb top = pb_of(buf, len);
	struct pb_field f;
	long n = 0;
	int r;

	while ((r = pb_next(&top, &f)) > 0) {
		struct pb code;
		if (f.num != 1 || f.wt != WT_LEN || entry_code(f.sub, &code) <= 0)
			continue;
		int stop = cb(ud, (const char *)code.p, (size_t)(code.end - code.p));
		if (stop)
			return stop;
		n++;
	}
	return r < 0 ? -EBADMSG : n;
}

/* ---- domain-list-community text ---- */

#define DLC_MAX_DEPTH 16

struct dlc_ctx {
	const char *dir;
	const char *attr;
	bool attr_negate;
	anser_domain_cb cb;
	void *ud;
	char *why_buf;
	size_t why_len;
	const char *why; /* static reason */
	char *seen[DLC_MAX_DEPTH + 1];
	unsigned depth;
	long n;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static long dlc_text(struct dlc_ctx *c, const char *name, const char *text, size_t len);

static long dlc_file(struct dlc_ctx *c, const char *tag)
{
	char path[PATH_MAX];
	struct stat st;
	long r;

	if (!*tag || strchr(tag, '/') || strcmp(tag, ".") == 0 || strcmp(tag, "..") == 0) {
		c->why = "a list name is empty or has a '/'";
		return -EINVAL;
	}
	for (unsigned i = 0; i < c->depth; i++)
		if (strcmp(c->seen[i], tag) == 0) {
			snprintf(c->why_buf, c->why_len, "list '%s' includes itself", tag);
			return -ELOOP;
		}
	if (c->depth >= DLC_MAX_DEPTH) {
		c->why = "lists include each other more than 16 deep";
		return -ELOOP;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", c->dir, tag) >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > 64 * 1024 * 1024) {
		close(fd);
		c->why = "not a regular file of at most 64 MiB";
		return -EINVAL;
	}
	size_t len = (size_t)st.st_size;
	char *text = malloc(len + 1);
	ssize_t got = text ? read(fd, text, len) : -1;
	close(fd);
	if (got < 0 || (size_t)got != len) {
		free(text);
		return text ? -EIO : -ENOMEM;
	}
	c->seen[c->depth++] = (char *)tag;
	r = dlc_text(c, tag, text, len);
	c->depth--;
	free(text);
	return r;
}

static long dlc_text(struct dlc_ctx *c, const char *name, const char *text, size_t len)
{
	if (!text)
		return 0;
	const char *p = text, *end = text + len;
	unsigned line = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *e = eol ? eol : end;
		const char *hash = memchr(p, '#', (size_t)(e - p));
		const char *q = p, *stop = hash ? hash : e;
		line++;
		p = eol ? eol + 1 : end;
		while (q < stop && is_blank(*q))
			q++;
		if (q == stop)
			continue;
		/* the entry, then " @attr" and "&affiliation" tokens */
		const char *v = q;
		while (q < stop && !is_blank(*q))
			q++;
		size_t vlen = (size_t)(q - v);
		bool attr_found = false;
		while (q < stop) {
			while (q < stop && is_blank(*q))
				q++;
			const char *t = q;
			while (q < stop && !is_blank(*q))
				q++;
			if (q > t && *t == '@' && c->attr &&
			    (size_t)(q - t - 1) == strlen(c->attr) &&
			    strncasecmp(t + 1, c->attr, (size_t)(q - t - 1)) == 0)
				attr_found = true;
		}
		enum anser_domain_kind kind = ANSER_DOMAIN_SUFFIX;
		static const struct {
			const char *prefix;
			int kind; /* -1: include */
		} prefixes[] = { { "domain:", ANSER_DOMAIN_SUFFIX },
				 { "full:", ANSER_DOMAIN_FULL },
				 { "keyword:", ANSER_DOMAIN_KEYWORD },
				 { "regexp:", ANSER_DOMAIN_REGEX },
				 { "include:", -1 } };
		int k = ANSER_DOMAIN_SUFFIX;
		for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++) {
			size_t pl = strlen(prefixes[i].prefix);
			if (vlen > pl && strncmp(v, prefixes[i].prefix, pl) == 0) {
				k = prefixes[i].kind;
				v += pl;
				vlen -= pl;
				break;
			}
		}
		if (k < 0) {
			char tag[256];
			long r;
			if (vlen >= sizeof(tag)) {
				c->why = "an include: name is too long";
				return -EINVAL;
			}
			if (!c->dir) {
				c->why = "include: needs the list's directory";
				return -EINVAL;
			}
			memcpy(tag, v, vlen);
			tag[vlen] = 0;
			/* an included list's attribute filter is its own (@attr on
			 * the include line), which this reader does not narrow */
			r = dlc_file(c, tag);
			if (r == -ENOENT && c->why_buf)
				snprintf(c->why_buf, c->why_len,
					 "%s:%u: included list '%s' not found", name, line, tag);
			if (r < 0)
				return r;
			continue;
		}
		kind = (enum anser_domain_kind)k;
		if (vlen == 0 || vlen > 1024) {
			if (c->why_buf)
				snprintf(c->why_buf, c->why_len,
					 "%s:%u: an empty or overlong entry", name, line);
			else
				c->why = "an empty or overlong entry";
			return -EBADMSG;
		}
		if (c->attr && attr_found == c->attr_negate)
			continue;
		int s = c->cb(c->ud, kind, v, vlen);
		if (s)
			return s;
		c->n++;
	}
	return 0;
}

long anser_dlc_read(const char *dir, const char *tag, const char *attr, bool attr_negate,
		    anser_domain_cb cb, void *ud, char *why_buf, size_t why_len)
{
	struct dlc_ctx c = { .dir = dir,
			     .attr = attr,
			     .attr_negate = attr_negate,
			     .cb = cb,
			     .ud = ud,
			     .why_buf = why_buf,
			     .why_len = why_len };

	if (why_len)
		why_buf[0] = 0;
	long r = dlc_file(&c, tag);
	if (r < 0 && c.why && why_len && !why_buf[0])
		snprintf(why_buf, why_len, "%s", c.why);
	return r < 0 ? r : r > 0 ? r : c.n;
}

long anser_dlc_parse(const char *text, size_t len, const char *attr, bool attr_negate,
		     anser_domain_cb cb, void *ud, const char **why)
{
	struct dlc_ctx c = { .attr = attr, .attr_negate = attr_negate, .cb = cb, .ud = ud };
	long r = dlc_text(&c, "text", text, len);

	*why = c.why;
	return r < 0 ? r : r > 0 ? r : c.n;
}

/* ---- built-in sets ---- */

long anser_geoip_builtin(const char *tag, anser_cidr_cb cb, void *ud)
{
	/* RFC 6890 and successors: addresses for a host, a link or a site,
	 * never routed on the Internet */
	static const struct {
		const char *v6; /* or NULL */
		uint8_t v4[4];
		unsigned prefix; /* of the family */
	} nets[] = {
		{ NULL, { 0, 0, 0, 0 }, 8 },
		{ NULL, { 10, 0, 0, 0 }, 8 },
		{ NULL, { 100, 64, 0, 0 }, 10 },
		{ NULL, { 127, 0, 0, 0 }, 8 },
		{ NULL, { 169, 254, 0, 0 }, 16 },
		{ NULL, { 172, 16, 0, 0 }, 12 },
		{ NULL, { 192, 0, 0, 0 }, 24 },
		{ NULL, { 192, 168, 0, 0 }, 16 },
		{ NULL, { 198, 18, 0, 0 }, 15 },
		{ NULL, { 224, 0, 0, 0 }, 4 },
		{ NULL, { 240, 0, 0, 0 }, 4 },
		{ "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", {}, 128 },
		{ "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", {}, 128 },
		{ "\xfc\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", {}, 7 },
		{ "\xfe\x80\0\0\0\0\0\0\0\0\0\0\0\0\0\0", {}, 10 },
		{ "\xff\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", {}, 8 },
	};
	long n = 0;

	if (strcasecmp(tag, "private") != 0)
		return -ENOENT;
	for (size_t i = 0; i < sizeof(nets) / sizeof(*nets); i++) {
		uint8_t a[16] = { 0 };
		unsigned bits = nets[i].prefix;
		if (nets[i].v6) {
			memcpy(a, nets[i].v6, 16);
		} else {
			a[10] = a[11] = 0xff;
			memcpy(a + 12, nets[i].v4, 4);
			bits += 96;
		}
		int s = cb(ud, a, bits);
		if (s)
			return s;
		n++;
	}
	return n;
}

long anser_geosite_builtin(const char *tag, anser_domain_cb cb, void *ud)
{
	/* special-use names (RFC 6761, 6762, 8375), ICANN's private-use
	 * "internal", the de facto home-router suffixes, and the reverse
	 * zones of private addresses */
	static const struct {
		enum anser_domain_kind kind;
		const char *name;
	} names[] = {
		{ ANSER_DOMAIN_SUFFIX, "localhost" },
		{ ANSER_DOMAIN_SUFFIX, "local" },
		{ ANSER_DOMAIN_SUFFIX, "home.arpa" },
		{ ANSER_DOMAIN_SUFFIX, "internal" },
		{ ANSER_DOMAIN_SUFFIX, "lan" },
		{ ANSER_DOMAIN_SUFFIX, "localdomain" },
		{ ANSER_DOMAIN_SUFFIX, "10.in-addr.arpa" },
		{ ANSER_DOMAIN_SUFFIX, "168.192.in-addr.arpa" },
		{ ANSER_DOMAIN_SUFFIX, "254.169.in-addr.arpa" },
		{ ANSER_DOMAIN_SUFFIX, "127.in-addr.arpa" },
		{ ANSER_DOMAIN_REGEX,
		  "^([0-9]+\\.)?(1[6-9]|2[0-9]|3[01])\\.172\\.in-addr\\.arpa$" },
		{ ANSER_DOMAIN_SUFFIX, "d.f.ip6.arpa" },
		{ ANSER_DOMAIN_SUFFIX, "8.e.f.ip6.arpa" },
		{ ANSER_DOMAIN_SUFFIX, "9.e.f.ip6.arpa" },
		{ ANSER_DOMAIN_SUFFIX, "a.e.f.ip6.arpa" },
		{ ANSER_DOMAIN_SUFFIX, "b.e.f.ip6.arpa" },
	};
	long n = 0;

	if (strcasecmp(tag, "private") != 0)
		return -ENOENT;
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		int s = cb(ud, names[i].kind, names[i].name, strlen(names[i].name));
		if (s)
			return s;
		n++;
	}
	return n;
}

/* ---- where files are ---- */

char *anser_geodata_find(const char *name, const char *config_dir, char **searched)
{
	const char *dirs[] = {
		getenv("ANSER_ASSET_DIR"), config_dir,
		"/usr/share/anser",	   "/usr/local/share/anser",
		"/usr/share/dae",	   "/usr/local/share/dae",
		"/usr/share/v2ray",	   "/usr/local/share/v2ray",
		"/usr/share/xray",
	};
	GString *looked = g_string_new(NULL);
	char *found = NULL;

	if (name[0] == '/') {
		/* an absolute path is used as it is */
		if (access(name, R_OK) == 0)
			found = strdup(name);
		else
			g_string_append(looked, name);
	}
	for (size_t i = 0; name[0] != '/' && i < sizeof(dirs) / sizeof(*dirs) && !found; i++) {
		if (!dirs[i] || !*dirs[i])
			continue;
		char *path = g_build_filename(dirs[i], name, NULL);
		if (access(path, R_OK) == 0)
			found = strdup(path);
		else
			g_string_append_printf(looked, "%s%s", looked->len ? ", " : "", dirs[i]);
		g_free(path);
	}
	if (searched)
		*searched = found ? NULL : strdup(looked->str);
	g_string_free(looked, TRUE);
	return found;
}
