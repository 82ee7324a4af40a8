// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The health-check options of the global section, decoded:
 *   tcp_check_url: 'http://host[:port][/path]' then the addresses to use
 *                  for host ('http://cp.cloudflare.com,1.1.1.1,2606:...')
 *   tcp_check_http_method: HEAD (or GET, ...)
 *   udp_check_dns: 'host[:port]' then the addresses to use for host
 *   check_interval, check_tolerance: durations
 * A host that is an IP literal needs no list. Checks go through the node
 * to these addresses, so nothing is resolved.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "config-private.h"

static int add_addr(struct anser_check_target *t, const char *s)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		t->v4 = true;
		memcpy(t->addr4, &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		t->v6 = true;
		memcpy(t->addr6, &a6, 16);
		return 0;
	}
	return -EINVAL;
}

static void target_clear(struct anser_check_target *t)
{
	free(t->host);
	free(t->path);
	*t = (struct anser_check_target){ 0 };
}

/* "host[:port]" or "[v6]:port" into t; -EINVAL and *why. */
static int host_port(const char *s, size_t len, uint16_t def_port, struct anser_check_target *t,
		     const char **why)
{
	const char *colon = NULL;
	size_t hl = len;
	if (len > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', len);
		if (!rb) {
			*why = "missing ']'";
			return -EINVAL;
		}
		t->host = cfg_strndup(s + 1, (size_t)(rb - s) - 1);
		colon = rb + 1 < s + len && rb[1] == ':' ? rb + 1 : NULL;
		if (!colon && rb + 1 != s + len) {
			*why = "text after ']'";
			return -EINVAL;
		}
	} else {
		colon = memchr(s, ':', len);
		if (colon && memchr(colon + 1, ':', len - (size_t)(colon + 1 - s))) {
			*why = "write IPv6 addresses in brackets";
			return -EINVAL;
		}
		hl = colon ? (size_t)(colon - s) : len;
		t->host = cfg_strndup(s, hl);
	}
	if (!t->host[0]) {
		*why = "no host";
		return -EINVAL;
	}
	t->port = def_port;
	if (colon && cfg_parse_port(colon + 1, len - (size_t)(colon + 1 - s), &t->port) < 0) {
		*why = "bad port";
		return -EINVAL;
	}
	(void)add_addr(t, t->host); /* an IP literal needs no list */
	return 0;
}

/* The addresses after the first element of a list. */
static int addr_list(char **parts, struct anser_check_target *t, const char **why)
{
	for (size_t i = 1; parts[i]; i++) {
		char *a = g_strstrip(parts[i]);
		if (add_addr(t, a) < 0) {
			*why = "the addresses after the URL must be IPv4 or IPv6 literals";
			return -EINVAL;
		}
	}
	if (!t->v4 && !t->v6) {
		*why = "the host is a name: give its addresses after it, like "
		       "'http://cp.cloudflare.com,1.1.1.1,2606:4700:4700::1111'";
		return -EINVAL;
	}
	return 0;
}

/* The addresses after the first element, then n replaces *t (or is
 * dropped on an error). */
static int finish_target(char **parts, struct anser_check_target *n, int r,
			 struct anser_check_target *t, const char **why)
{
	if (r == 0)
		r = addr_list(parts, n, why);
	if (r < 0) {
		target_clear(n);
		return r;
	}
	target_clear(t);
	*t = *n;
	return 0;
}

static int decode_tcp_url(const char *val, struct anser_check_target *t, const char **why)
{
	g_auto(GStrv) parts = g_strsplit(val, ",", 0);
	const char *url = g_strstrip(parts[0]);
	struct anser_check_target n = { 0 };

	if (g_ascii_strncasecmp(url, "http://", 7) != 0) {
		*why = g_ascii_strncasecmp(url, "https://", 8) == 0
			       ? "https check URLs are not supported yet: use an http:// URL"
			       : "expected 'http://host[:port][/path]'";
		return -EINVAL;
	}
	const char *hp = url + 7;
	const char *slash = strchr(hp, '/');
	size_t hl = slash ? (size_t)(slash - hp) : strlen(hp);
	int r = host_port(hp, hl, 80, &n, why);
	if (r == 0) {
		n.path = cfg_strdup(slash ? slash : "/");
		if (strpbrk(n.path, " \r\n")) {
			*why = "spaces in the path";
			r = -EINVAL;
		}
	}
	return finish_target(parts, &n, r, t, why);
}

static int decode_udp_dns(const char *val, struct anser_check_target *t, const char **why)
{
	g_auto(GStrv) parts = g_strsplit(val, ",", 0);
	const char *hp = g_strstrip(parts[0]);
	struct anser_check_target n = { 0 };
	int r = host_port(hp, strlen(hp), 53, &n, why);
	return finish_target(parts, &n, r, t, why);
}

int cfg_decode_check(struct anser_check *c, const char *key, const char *val, const char **why)
{
	int64_t ns;

	if (strcmp(key, "tcp_check_url") == 0)
		return decode_tcp_url(val, &c->tcp, why);
	if (strcmp(key, "udp_check_dns") == 0)
		return decode_udp_dns(val, &c->udp, why);
	if (strcmp(key, "tcp_check_http_method") == 0) {
		for (const char *p = val; *p; p++)
			if (!g_ascii_isupper(*p)) {
				*why = "an HTTP method in capitals, like HEAD or GET";
				return -EINVAL;
			}
		if (!*val || strlen(val) > 16) {
			*why = "an HTTP method in capitals, like HEAD or GET";
			return -EINVAL;
		}
		free(c->method);
		c->method = cfg_strdup(val);
		return 0;
	}
	if (strcmp(key, "check_interval") == 0 || strcmp(key, "check_tolerance") == 0) {
		if (cfg_parse_duration(val, &ns, why) < 0)
			return -EINVAL;
		if (key[6] == 'i') {
			if (ns < 1000000000LL) {
				*why = "at least 1s";
				return -EINVAL;
			}
			c->interval_ns = ns;
		} else {
			c->tolerance_ns = ns;
		}
		return 0;
	}
	return -ENOENT;
}

void cfg_check_defaults(struct anser_check *c)
{
	const char *why;
	*c = (struct anser_check){ 0 };
	(void)cfg_decode_check(c, "tcp_check_url",
			       "http://cp.cloudflare.com,1.1.1.1,2606:4700:4700::1111", &why);
	(void)cfg_decode_check(c, "udp_check_dns", "dns.google:53,8.8.8.8,2001:4860:4860::8888",
			       &why);
	c->method = cfg_strdup("HEAD");
	c->interval_ns = 30000000000LL;
	c->tolerance_ns = 0;
}

void anser_check_clear(struct anser_check *c)
{
	target_clear(&c->tcp);
	target_clear(&c->udp);
	free(c->method);
	*c = (struct anser_check){ 0 };
}
