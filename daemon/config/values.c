// SPDX-License-Identifier: GPL-2.0-or-later
/* Option values decoded the way dae (Go) decodes them: durations like
 * Go's time.ParseDuration, bools like strconv.ParseBool. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "config-private.h"

static const struct {
	const char *name;
	uint64_t ns;
} duration_units[] = {
	{ "ns", 1 },
	{ "us", 1000 },
	{ "\xc2\xb5s", 1000 }, /* U+00B5 micro sign */
	{ "\xce\xbcs", 1000 }, /* U+03BC Greek mu */
	{ "ms", 1000000 },
	{ "s", 1000000000 },
	{ "m", 60ull * 1000000000 },
	{ "h", 3600ull * 1000000000 },
};

/* "300ms", "1.5h", "2h45m", "-1m", "0": a sequence of decimal numbers,
 * each with an optional fraction and a unit (ns, us, µs, ms, s, m, h),
 * with an optional sign in front; a lone "0" needs no unit. */
int cfg_parse_duration(const char *s, int64_t *out, const char **why)
{
	const char *p = s;
	bool neg = false;
	uint64_t total = 0;

	*why = NULL;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (strcmp(p, "0") == 0) {
		*out = 0;
		return 0;
	}
	if (!*p) {
		*why = "empty";
		return -1;
	}
	while (*p) {
		uint64_t whole = 0, frac = 0, scale = 1;
		bool digits = false;

		while (*p >= '0' && *p <= '9') {
			if (whole > (UINT64_MAX - 9) / 10) {
				*why = "too large";
				return -1;
			}
			whole = whole * 10 + (uint64_t)(*p++ - '0');
			digits = true;
		}
		if (*p == '.') {
			p++;
			while (*p >= '0' && *p <= '9') {
				/* digits past 10^18 cannot change a nanosecond count */
				if (scale < 1000000000000000000ull) {
					frac = frac * 10 + (uint64_t)(*p - '0');
					scale *= 10;
				}
				p++;
				digits = true;
			}
		}
		if (!digits) {
			*why = "expected a number";
			return -1;
		}
		size_t best = 0;
		uint64_t unit = 0;
		for (size_t i = 0; i < sizeof(duration_units) / sizeof(*duration_units); i++) {
			size_t n = strlen(duration_units[i].name);
			if (n > best && strncmp(p, duration_units[i].name, n) == 0 &&
			    !(p[n] >= 'a' && p[n] <= 'z')) {
				best = n;
				unit = duration_units[i].ns;
			}
		}
		if (!best) {
			*why = (*p >= 'a' && *p <= 'z') || (unsigned char)*p >= 0x80
				       ? "unknown unit (ns, us, ms, s, m, h)"
				       : "missing unit (ns, us, ms, s, m, h)";
			return -1;
		}
		p += best;
		if (whole > INT64_MAX / unit) {
			*why = "too large";
			return -1;
		}
		uint64_t v = whole * unit;
		/* the fraction: frac / scale units, in nanoseconds */
		v += (uint64_t)((long double)frac * (long double)unit / (long double)scale);
		if (v > (uint64_t)INT64_MAX - total) {
			*why = "too large";
			return -1;
		}
		total += v;
	}
	*out = neg ? -(int64_t)total : (int64_t)total;
	return 0;
}

int cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "t", "T", "true", "TRUE", "True" };
	static const char *const no[] = { "0", "f", "F", "false", "FALSE", "False" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

int cfg_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9' || (uint64_t)(*p - '0') > max ||
		    v > (max - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

static const struct {
	const char *name;
	unsigned type;
} qtypes[] = {
	{ "a", 1 },	 { "ns", 2 },	 { "cname", 5 },  { "soa", 6 },	  { "ptr", 12 },
	{ "hinfo", 13 }, { "mx", 15 },	 { "txt", 16 },	  { "aaaa", 28 }, { "srv", 33 },
	{ "naptr", 35 }, { "ds", 43 },	 { "rrsig", 46 }, { "nsec", 47 }, { "dnskey", 48 },
	{ "tlsa", 52 },	 { "svcb", 64 }, { "https", 65 }, { "spf", 99 },  { "any", 255 },
	{ "caa", 257 },
};

int cfg_qtype(const char *s)
{
	uint64_t v;

	for (size_t i = 0; i < sizeof(qtypes) / sizeof(*qtypes); i++)
		if (strcasecmp(s, qtypes[i].name) == 0)
			return (int)qtypes[i].type;
	if (cfg_parse_uint(s, 65535, &v) == 0)
		return (int)v;
	return -1;
}

const char *cfg_qtype_name(unsigned t)
{
	for (size_t i = 0; i < sizeof(qtypes) / sizeof(*qtypes); i++)
		if (qtypes[i].type == t)
			return qtypes[i].name;
	return NULL;
}
