// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Node links. Only socks5://[user[:pass]@]host:port[/][#name] for now.
 * Diagnostics quote the scheme, host or port, never the user info.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "config-private.h"

/* Percent-decodes s[0..len); NULL on a bad escape or an encoded NUL. */
static char *pct_decode(const char *s, size_t len, size_t *out_len)
{
	char *out = cfg_malloc0(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			out[o++] = s[i];
			continue;
		}
		int hi = i + 2 < len ? g_ascii_xdigit_value(s[i + 1]) : -1;
		int lo = i + 2 < len ? g_ascii_xdigit_value(s[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return NULL;
		}
		out[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

static bool valid_hostname(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

static bool looks_numeric(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
			return false;
	return true;
}

static struct cfg_pos at_off(struct cfg_pos pos, size_t off)
{
	return (struct cfg_pos){ pos.line, pos.col + (unsigned)off, pos.file };
}

static int bad(struct cfg_diag_sink *s, struct cfg_pos pos, const char *what, const char *text,
	       size_t len, const char *hint)
{
	char *q = cfg_quote(text, len);
	cfg_diag(s, false, pos, "%s '%s' (%s)", what, q, hint);
	free(q);
	return -EINVAL;
}

static int parse_userinfo(struct cfg_diag_sink *s, struct cfg_pos pos, const char *ui, size_t len,
			  struct anser_node *n)
{
	const char *colon = memchr(ui, ':', len);
	size_t ulen = colon ? (size_t)(colon - ui) : len;
	size_t dlen;

	n->user = pct_decode(ui, ulen, &dlen);
	if (!n->user || dlen == 0 || dlen > 255) {
		cfg_diag(s, false, pos,
			 "invalid user name in node link (1..255 bytes; write '@', ':' and '%%' as "
			 "%%40, %%3A, %%25)");
		return -EINVAL;
	}
	n->pass = pct_decode(colon ? colon + 1 : "", colon ? len - ulen - 1 : 0, &dlen);
	if (!n->pass || dlen > 255) {
		cfg_diag(s, false, pos,
			 "invalid password in node link (at most 255 bytes; write '@', ':' and "
			 "'%%' as %%40, %%3A, %%25)");
		return -EINVAL;
	}
	return 0;
}

int cfg_parse_link(struct cfg_diag_sink *s, struct cfg_pos pos, const char *link,
		   struct anser_node *n)
{
	size_t len = strlen(link);
	const char *sep = strstr(link, "://");
	const char *p, *end, *at, *host, *host_end, *port;
	size_t hlen;

	if (!sep || sep == link) {
		/* quote only what follows a user info, if there is one */
		const char *shown = strrchr(link, '@');
		shown = shown ? shown + 1 : link;
		return bad(s, pos, "not a node link:", shown, strlen(shown),
			   "expected 'socks5://host:port'");
	}
	size_t slen = (size_t)(sep - link);
	if (slen != 6 || strncasecmp(link, "socks5", 6) != 0) {
		char *q = cfg_quote(link, slen);
		cfg_diag(s, false, pos,
			 "node protocol '%s' is not supported yet (supported: socks5)", q);
		free(q);
		return -EINVAL;
	}
	n->proto = ANSER_NODE_SOCKS5;
	p = sep + 3;
	end = link + len;

	/* fragment: the node's name when it has none */
	const char *hash = memchr(p, '#', (size_t)(end - p));
	if (hash) {
		size_t dlen;
		char *frag = pct_decode(hash + 1, (size_t)(end - hash - 1), &dlen);
		if (!frag) {
			return bad(s, at_off(pos, (size_t)(hash - link)),
				   "invalid node name after '#':", hash + 1,
				   (size_t)(end - hash - 1), "check its %-escapes");
		}
		if (!n->name && dlen > 0)
			n->name = frag;
		else
			free(frag);
		end = hash;
	}
	const char *q = memchr(p, '?', (size_t)(end - p));
	if (q) {
		return bad(s, at_off(pos, (size_t)(q - link)),
			   "options in a socks5 link are not supported:", q, (size_t)(end - q),
			   "remove the '?...' part");
	}
	/* a trailing '/' is fine, a path is not */
	const char *slash = memchr(p, '/', (size_t)(end - p));
	if (slash) {
		if (slash + 1 != end) {
			return bad(s, at_off(pos, (size_t)(slash - link)),
				   "a socks5 link has no path:", slash, (size_t)(end - slash),
				   "remove it");
		}
		end = slash;
	}

	at = NULL;
	for (const char *c = p; c < end; c++)
		if (*c == '@')
			at = c;
	if (at) {
		if (parse_userinfo(s, at_off(pos, (size_t)(p - link)), p, (size_t)(at - p), n) < 0)
			return -EINVAL;
		host = at + 1;
	} else {
		host = p;
	}

	if (host < end && *host == '[') {
		const char *rb = memchr(host, ']', (size_t)(end - host));
		char buf[INET6_ADDRSTRLEN + 1];
		struct in6_addr a6;
		if (!rb) {
			return bad(s, at_off(pos, (size_t)(host - link)),
				   "missing ']' after IPv6 address", host, (size_t)(end - host),
				   "write '[fd00::1]:1080'");
		}
		hlen = (size_t)(rb - host - 1);
		if (hlen >= sizeof(buf) || (memcpy(buf, host + 1, hlen), buf[hlen] = '\0',
					    inet_pton(AF_INET6, buf, &a6) != 1)) {
			return bad(s, at_off(pos, (size_t)(host - link)), "invalid IPv6 address",
				   host + 1, hlen, "zone ids like %eth0 are not supported");
		}
		n->host = cfg_strndup(host + 1, hlen);
		host_end = rb + 1;
		if (host_end < end && *host_end != ':') {
			return bad(s, at_off(pos, (size_t)(host_end - link)),
				   "unexpected text after IPv6 address:", host_end,
				   (size_t)(end - host_end), "write '[fd00::1]:1080'");
		}
	} else {
		host_end = host;
		while (host_end < end && *host_end != ':')
			host_end++;
		hlen = (size_t)(host_end - host);
		const char *c2 = memchr(host_end + (host_end < end), ':',
					(size_t)(end - host_end - (host_end < end)));
		if (host_end < end && c2) {
			return bad(s, at_off(pos, (size_t)(host - link)),
				   "IPv6 address without brackets:", host, (size_t)(end - host),
				   "write '[fd00::1]:1080'");
		}
		if (hlen == 0) {
			cfg_diag(s, false, at_off(pos, (size_t)(host - link)),
				 "node link has no host (expected 'socks5://host:port')");
			return -EINVAL;
		}
		if (looks_numeric(host, hlen)) {
			char buf[INET_ADDRSTRLEN + 1];
			struct in_addr a4;
			if (hlen >= sizeof(buf) || (memcpy(buf, host, hlen), buf[hlen] = '\0',
						    inet_pton(AF_INET, buf, &a4) != 1)) {
				return bad(s, at_off(pos, (size_t)(host - link)),
					   "invalid IPv4 address", host, hlen,
					   "expected four numbers 0..255 like 10.0.0.2");
			}
		} else if (!valid_hostname(host, hlen)) {
			return bad(s, at_off(pos, (size_t)(host - link)), "invalid host name", host,
				   hlen, "letters, digits, '-' and '.', at most 253 bytes");
		}
		n->host = cfg_strndup(host, hlen);
	}

	if (host_end >= end) {
		cfg_diag(s, false, at_off(pos, (size_t)(host_end - link)),
			 "node link has no port (add one, e.g. ':1080')");
		return -EINVAL;
	}
	port = host_end + 1;
	if (cfg_parse_port(port, (size_t)(end - port), &n->port) < 0) {
		return bad(s, at_off(pos, (size_t)(port - link)), "invalid port", port,
			   (size_t)(end - port), "a number 1..65535");
	}
	return 0;
}
