// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Share links, as providers hand them out:
 *
 *   socks5://[user[:pass]@]host:port[#name]
 *   http://[user[:pass]@]host:port[#name]       https:// = the same over TLS
 *   ss://BASE64URL(method:password)@host:port[/][?plugin=...][#name]   SIP002
 *   ss://method:password@host:port[#name]       (2022 ciphers: %-encoded)
 *   ss://BASE64(method:password@host:port)[#name]                      legacy
 *   vmess://BASE64({"add":..,"port":..,"id":..,"aid":0,"net":..,...})  v2rayN
 *   vmess://uuid@host:port?type=ws&security=tls&path=..&host=..[#name]
 *   vless://uuid@host:port?encryption=none&security=tls&type=ws...[#name]
 *   trojan://password@host:port?sni=..&allowInsecure=1&type=ws...[#name]
 *   trojan-go://password@host:port/?sni=..&type=ws&host=..&path=..[#name]
 *
 * Diagnostics quote the scheme, host, port or option, never the user info
 * (it holds the password) nor a base64 body (it may hold one too).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "config-private.h"

/* Percent-decodes s[0..len); NULL on a bad escape or an encoded NUL.
 * plus_space: '+' means ' ' (query strings). */
static char *pct_decode2(const char *s, size_t len, size_t *out_len, bool plus_space)
{
	char *out = cfg_malloc0(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0') {
			free(out);
			return NULL;
		}
		if (s[i] != '%') {
			out[o++] = plus_space && s[i] == '+' ? ' ' : s[i];
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
	if (out_len)
		*out_len = o;
	return out;
}

static char *pct_decode(const char *s, size_t len, size_t *out_len)
{
	return pct_decode2(s, len, out_len, false);
}

/* Base64 in either alphabet (standard or URL-safe), padding optional,
 * whitespace ignored. NULL when anything else is found. The result is
 * NUL-terminated (not counted in *out_len). */
uint8_t *cfg_base64_decode(const char *s, size_t len, size_t *out_len)
{
	uint8_t *out = cfg_malloc0(len / 4 * 3 + 4);
	uint32_t acc = 0;
	unsigned bits = 0, pad = 0;
	size_t o = 0, n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int v;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad)
			goto bad; /* data after padding */
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+' || c == '-')
			v = 62;
		else if (c == '/' || c == '_')
			v = 63;
		else
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		n++;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (n % 4 == 1 || pad > 2 || (pad && (n + pad) % 4 != 0))
		goto bad;
	out[o] = 0;
	*out_len = o;
	return out;
bad:
	free(out);
	return NULL;
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

/* --------------------------------------------------------------- the URL */

/* The parts of scheme://[userinfo@]host[:port][/path][?query][#fragment],
 * as offsets into the text. */
struct url {
	const char *text;
	struct cfg_pos pos; /* of text[0] */
	size_t scheme, scheme_len;
	bool has_ui;
	size_t ui, ui_len;
	size_t host, host_len; /* brackets stripped */
	bool has_port;
	size_t port, port_len;
	size_t path, path_len; /* from the '/' on, 0 length: none */
	bool has_query;
	size_t query, query_len; /* after '?' */
};

static struct cfg_pos upos(const struct url *u, size_t off)
{
	return at_off(u->pos, off);
}

/* Splits the authority text[from..end) into user info, host and port and
 * checks the host. */
static int split_authority(struct cfg_diag_sink *s, struct url *u, size_t from, size_t end,
			   const char *example)
{
	const char *t = u->text;
	size_t at = SIZE_MAX;

	for (size_t i = from; i < end; i++)
		if (t[i] == '@')
			at = i;
	if (at != SIZE_MAX) {
		u->has_ui = true;
		u->ui = from;
		u->ui_len = at - from;
		from = at + 1;
	}
	size_t host = from, host_end;
	if (host < end && t[host] == '[') {
		const char *rb = memchr(t + host, ']', end - host);
		char buf[INET6_ADDRSTRLEN + 1];
		struct in6_addr a6;
		if (!rb) {
			return bad(s, upos(u, host), "missing ']' after IPv6 address", t + host,
				   end - host, "write '[fd00::1]:1080'");
		}
		size_t hlen = (size_t)(rb - t) - host - 1;
		if (hlen >= sizeof(buf) || (memcpy(buf, t + host + 1, hlen), buf[hlen] = '\0',
					    inet_pton(AF_INET6, buf, &a6) != 1)) {
			return bad(s, upos(u, host), "invalid IPv6 address", t + host + 1, hlen,
				   "zone ids like %eth0 are not supported");
		}
		u->host = host + 1;
		u->host_len = hlen;
		host_end = (size_t)(rb - t) + 1;
		if (host_end < end && t[host_end] != ':') {
			return bad(s, upos(u, host_end),
				   "unexpected text after IPv6 address:", t + host_end,
				   end - host_end, "write '[fd00::1]:1080'");
		}
	} else {
		host_end = host;
		while (host_end < end && t[host_end] != ':')
			host_end++;
		size_t hlen = host_end - host;
		if (host_end < end && memchr(t + host_end + 1, ':', end - host_end - 1)) {
			return bad(s, upos(u, host), "IPv6 address without brackets:", t + host,
				   end - host, "write '[fd00::1]:1080'");
		}
		if (hlen == 0) {
			cfg_diag(s, false, upos(u, host), "node link has no host (expected '%s')",
				 example);
			return -EINVAL;
		}
		if (looks_numeric(t + host, hlen)) {
			char buf[INET_ADDRSTRLEN + 1];
			struct in_addr a4;
			if (hlen >= sizeof(buf) || (memcpy(buf, t + host, hlen), buf[hlen] = '\0',
						    inet_pton(AF_INET, buf, &a4) != 1)) {
				return bad(s, upos(u, host), "invalid IPv4 address", t + host, hlen,
					   "expected four numbers 0..255 like 10.0.0.2");
			}
		} else if (!valid_hostname(t + host, hlen)) {
			return bad(s, upos(u, host), "invalid host name", t + host, hlen,
				   "letters, digits, '-' and '.', at most 253 bytes");
		}
		u->host = host;
		u->host_len = hlen;
	}
	if (host_end < end) {
		u->has_port = true;
		u->port = host_end + 1;
		u->port_len = end - host_end - 1;
	}
	return 0;
}

/* Splits text (which starts with scheme://) and checks host and port. The
 * fragment, if any, names the node when it has no name yet. */
static int split_url(struct cfg_diag_sink *s, struct cfg_pos pos, const char *text,
		     struct anser_node *n, struct url *u, const char *example)
{
	size_t len = strlen(text);
	const char *sep = strstr(text, "://");

	*u = (struct url){ .text = text, .pos = pos };
	u->scheme_len = (size_t)(sep - text);
	size_t p = u->scheme_len + 3, end = len;

	const char *hash = memchr(text + p, '#', end - p);
	if (hash) {
		size_t h = (size_t)(hash - text), dlen;
		char *frag = pct_decode(text + h + 1, end - h - 1, &dlen);
		if (!frag) {
			return bad(s, upos(u, h), "invalid node name after '#':", text + h + 1,
				   end - h - 1, "check its %-escapes");
		}
		if (!n->name && dlen > 0 && dlen <= CFG_MAX_NAME)
			n->name = frag;
		else
			free(frag);
		end = h;
	}
	const char *q = memchr(text + p, '?', end - p);
	if (q) {
		u->has_query = true;
		u->query = (size_t)(q - text) + 1;
		u->query_len = end - u->query;
		end = (size_t)(q - text);
	}
	/* the authority ends at the first '/' after the user info's last '@'
	 * (a base64 user info may hold '/', so look for '/' after it) */
	size_t auth_end = end, at = SIZE_MAX;
	for (size_t i = p; i < end; i++)
		if (text[i] == '@')
			at = i;
	const char *slash = memchr(text + (at == SIZE_MAX ? p : at + 1), '/',
				   end - (at == SIZE_MAX ? p : at + 1));
	if (slash) {
		auth_end = (size_t)(slash - text);
		u->path = auth_end;
		u->path_len = end - auth_end;
	}
	if (split_authority(s, u, p, auth_end, example) < 0)
		return -EINVAL;
	if (!u->has_port) {
		cfg_diag(s, false, upos(u, u->host + u->host_len + (text[u->host - 1] == '[')),
			 "node link has no port (add one, e.g. ':%s')", strrchr(example, ':') + 1);
		return -EINVAL;
	}
	if (cfg_parse_port(text + u->port, u->port_len, &n->port) < 0) {
		return bad(s, upos(u, u->port), "invalid port", text + u->port, u->port_len,
			   "a number 1..65535");
	}
	n->host = cfg_strndup(text + u->host, u->host_len);
	return 0;
}

/* A path of "" or "/" is no path. */
static bool no_path(const struct url *u)
{
	return u->path_len == 0 || (u->path_len == 1 && u->text[u->path] == '/');
}

static int parse_userpass(struct cfg_diag_sink *s, const struct url *u, struct anser_node *n)
{
	const char *ui = u->text + u->ui;
	const char *colon = memchr(ui, ':', u->ui_len);
	size_t ulen = colon ? (size_t)(colon - ui) : u->ui_len;
	size_t dlen;

	n->user = pct_decode(ui, ulen, &dlen);
	if (!n->user || dlen == 0 || dlen > 255) {
		cfg_diag(s, false, upos(u, u->ui),
			 "invalid user name in node link (1..255 bytes; write '@', ':' and '%%' as "
			 "%%40, %%3A, %%25)");
		return -EINVAL;
	}
	n->pass = pct_decode(colon ? colon + 1 : "", colon ? u->ui_len - ulen - 1 : 0, &dlen);
	if (!n->pass || dlen > 255) {
		cfg_diag(s, false, upos(u, u->ui),
			 "invalid password in node link (at most 255 bytes; write '@', ':' and "
			 "'%%' as %%40, %%3A, %%25)");
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------- query options */

/* Options from a query string or a v2rayN JSON object, decoded. */
struct opts {
	char **key, **val;
	size_t n;
	size_t *off; /* where each key is in the link (for diagnostics) */
};

static void opts_clear(struct opts *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->key[i]);
		free(o->val[i]);
	}
	free(o->key);
	free(o->val);
	free(o->off);
	*o = (struct opts){ 0 };
}

static void opts_add(struct opts *o, char *k, char *v, size_t off)
{
	o->key = cfg_realloc_array(o->key, o->n + 1, sizeof(*o->key));
	o->val = cfg_realloc_array(o->val, o->n + 1, sizeof(*o->val));
	o->off = cfg_realloc_array(o->off, o->n + 1, sizeof(*o->off));
	o->key[o->n] = k;
	o->val[o->n] = v;
	o->off[o->n] = off;
	o->n++;
}

static int parse_query(struct cfg_diag_sink *s, const struct url *u, struct opts *o)
{
	size_t i = u->query, end = u->query + u->query_len;

	while (u->has_query && i < end) {
		const char *amp = memchr(u->text + i, '&', end - i);
		size_t e = amp ? (size_t)(amp - u->text) : end;
		const char *eq = memchr(u->text + i, '=', e - i);
		size_t ke = eq ? (size_t)(eq - u->text) : e;
		if (ke > i) {
			char *k = pct_decode2(u->text + i, ke - i, NULL, true);
			char *v = eq ? pct_decode2(eq + 1, e - ke - 1, NULL, true) : cfg_strdup("");
			if (!k || !v) {
				free(k);
				free(v);
				return bad(s, upos(u, i), "invalid option", u->text + i, e - i,
					   "check its %-escapes");
			}
			opts_add(o, k, v, i);
		}
		i = e + 1;
	}
	return 0;
}

/* The value of the last option named key (case-insensitive), or NULL. */
static const char *opt(const struct opts *o, const char *key, size_t *off)
{
	for (size_t i = o->n; i-- > 0;) {
		if (g_ascii_strcasecmp(o->key[i], key) == 0) {
			if (off)
				*off = o->off[i];
			return o->val[i];
		}
	}
	return NULL;
}

static bool truthy(const char *v)
{
	return v && (strcmp(v, "1") == 0 || g_ascii_strcasecmp(v, "true") == 0);
}

/* Options naming a transport or TLS setting we do not have: rejected,
 * since a node that silently ignores them would not work. */
static int unsupported(struct cfg_diag_sink *s, const struct url *u, size_t off, const char *what,
		       const char *val, const char *hint)
{
	char *q = cfg_quote(val, strlen(val));
	cfg_diag(s, false, upos(u, off), "%s '%s' is not supported (%s)", what, q, hint);
	free(q);
	return -EINVAL;
}

static int bad_value(struct cfg_diag_sink *s, const struct url *u, size_t off, const char *what,
		     const char *val, const char *hint)
{
	return bad(s, upos(u, off), what, val, strlen(val), hint);
}

/* TLS and transport options shared by vmess, vless and trojan links:
 * security/tls, sni/peer, alpn, allowInsecure, type/net, path, host. */
static int transport_opts(struct cfg_diag_sink *s, const struct url *u, const struct opts *o,
			  struct anser_node *n, bool tls_default)
{
	size_t off = u->scheme;
	const char *v;

	n->tls = tls_default;
	if ((v = opt(o, "security", &off)) || (v = opt(o, "tls", &off))) {
		if (strcmp(v, "tls") == 0 || strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
			n->tls = true;
		else if (strcmp(v, "") == 0 || strcmp(v, "none") == 0 || strcmp(v, "0") == 0 ||
			 strcmp(v, "false") == 0)
			n->tls = *v == '\0' && tls_default;
		else
			return unsupported(s, u, off, "security", v, "tls or none");
	}
	if ((v = opt(o, "sni", &off)) || (v = opt(o, "peer", &off))) {
		if (*v && !valid_hostname(v, strlen(v)))
			return bad_value(s, u, off, "invalid sni", v, "a host name");
		if (*v)
			n->sni = cfg_strdup(v);
	}
	if ((v = opt(o, "alpn", &off)) && *v) {
		if (strlen(v) > 255)
			return bad_value(s, u, off, "alpn too long:", v, "at most 255 bytes");
		n->alpn = cfg_strdup(v);
	}
	n->allow_insecure =
		truthy(opt(o, "allowInsecure", NULL)) || truthy(opt(o, "allow_insecure", NULL)) ||
		truthy(opt(o, "insecure", NULL)) || truthy(opt(o, "skip-cert-verify", NULL));
	if ((v = opt(o, "type", &off)) || (v = opt(o, "net", &off))) {
		if (strcmp(v, "tcp") == 0 || strcmp(v, "original") == 0 || *v == '\0')
			n->net = ANSER_NET_TCP;
		else if (strcmp(v, "ws") == 0)
			n->net = ANSER_NET_WS;
		else
			return unsupported(s, u, off, "transport", v, "tcp or ws");
	}
	if ((v = opt(o, "headerType", &off)) && *v && strcmp(v, "none") != 0)
		return unsupported(s, u, off, "header type", v, "only none");
	if ((v = opt(o, "fp", &off)) && *v)
		cfg_diag(s, true, upos(u, off),
			 "TLS fingerprint imitation (fp) is not supported; the node is dialled "
			 "with GnuTLS's own ClientHello");
	if (n->net == ANSER_NET_WS) {
		if ((v = opt(o, "path", &off)) && *v) {
			if (*v != '/' || strlen(v) > 1024 || strpbrk(v, " \r\n"))
				return bad_value(s, u, off, "invalid WebSocket path", v,
						 "starts with '/', no spaces");
			n->ws_path = cfg_strdup(v);
		}
		if ((v = opt(o, "host", &off)) && *v) {
			if (!valid_hostname(v, strlen(v)))
				return bad_value(s, u, off, "invalid WebSocket host", v,
						 "a host name");
			n->ws_host = cfg_strdup(v);
		}
	}
	return 0;
}

static int parse_uuid(const char *s, uint8_t out[16])
{
	static const int groups[] = { 8, 4, 4, 4, 12 };
	size_t o = 0;

	for (size_t g = 0; g < 5; g++) {
		if (g > 0 && *s++ != '-')
			return -1;
		for (int i = 0; i < groups[g]; i += 2) {
			int hi = g_ascii_xdigit_value(s[0]);
			int lo = hi < 0 ? -1 : g_ascii_xdigit_value(s[1]);
			if (hi < 0 || lo < 0)
				return -1;
			out[o++] = (uint8_t)(hi << 4 | lo);
			s += 2;
		}
	}
	return *s ? -1 : 0;
}

/* ------------------------------------------------------------ ciphers */

static const struct {
	const char *name;
	enum anser_cipher c;
} ss_ciphers[] = {
	{ "aes-128-gcm", ANSER_CIPHER_AES_128_GCM },
	{ "aes-256-gcm", ANSER_CIPHER_AES_256_GCM },
	{ "chacha20-ietf-poly1305", ANSER_CIPHER_CHACHA20_POLY1305 },
	{ "chacha20-poly1305", ANSER_CIPHER_CHACHA20_POLY1305 },
	{ "2022-blake3-aes-128-gcm", ANSER_CIPHER_2022_AES_128_GCM },
	{ "2022-blake3-aes-256-gcm", ANSER_CIPHER_2022_AES_256_GCM },
};

const char *anser_cipher_name(enum anser_cipher c)
{
	switch (c) {
	case ANSER_CIPHER_NONE:
		return "none";
	case ANSER_CIPHER_AES_128_GCM:
		return "aes-128-gcm";
	case ANSER_CIPHER_AES_256_GCM:
		return "aes-256-gcm";
	case ANSER_CIPHER_CHACHA20_POLY1305:
		return "chacha20-ietf-poly1305";
	case ANSER_CIPHER_2022_AES_128_GCM:
		return "2022-blake3-aes-128-gcm";
	case ANSER_CIPHER_2022_AES_256_GCM:
		return "2022-blake3-aes-256-gcm";
	case ANSER_CIPHER_AUTO:
		return "auto";
	}
	return "unknown";
}

const char *anser_node_proto_name(const struct anser_node *n)
{
	switch (n->proto) {
	case ANSER_NODE_SOCKS5:
		return "socks5";
	case ANSER_NODE_HTTP:
		return n->tls ? "https" : "http";
	case ANSER_NODE_SS:
		return "shadowsocks";
	case ANSER_NODE_VMESS:
		return "vmess";
	case ANSER_NODE_VLESS:
		return "vless";
	case ANSER_NODE_TROJAN:
		return "trojan";
	}
	return "unknown";
}

/* Key length of a 2022 cipher, 0 for the others. */
static size_t ss2022_key_len(enum anser_cipher c)
{
	return c == ANSER_CIPHER_2022_AES_128_GCM   ? 16
	       : c == ANSER_CIPHER_2022_AES_256_GCM ? 32
						    : 0;
}

/* "method:password" -> n->cipher, n->pass. */
static int ss_method_pass(struct cfg_diag_sink *s, const struct url *u, size_t off, const char *mp,
			  struct anser_node *n)
{
	const char *colon = strchr(mp, ':');
	if (!colon || colon == mp) {
		cfg_diag(s, false, upos(u, off),
			 "shadowsocks link has no 'method:password' (expected "
			 "'ss://BASE64(method:password)@host:port')");
		return -EINVAL;
	}
	size_t mlen = (size_t)(colon - mp);
	n->cipher = ANSER_CIPHER_NONE;
	for (size_t i = 0; i < G_N_ELEMENTS(ss_ciphers); i++)
		if (strlen(ss_ciphers[i].name) == mlen &&
		    g_ascii_strncasecmp(ss_ciphers[i].name, mp, mlen) == 0)
			n->cipher = ss_ciphers[i].c;
	if (n->cipher == ANSER_CIPHER_NONE) {
		char *q = cfg_quote(mp, mlen);
		cfg_diag(s, false, upos(u, off),
			 "shadowsocks method '%s' is not supported (aes-128-gcm, aes-256-gcm, "
			 "chacha20-ietf-poly1305, 2022-blake3-aes-128-gcm, "
			 "2022-blake3-aes-256-gcm; stream ciphers are insecure and not offered)",
			 q);
		free(q);
		return -EINVAL;
	}
	const char *pw = colon + 1;
	if (*pw == '\0' || strlen(pw) > 255) {
		cfg_diag(s, false, upos(u, off), "shadowsocks password must be 1..255 bytes");
		return -EINVAL;
	}
	size_t klen = ss2022_key_len(n->cipher);
	if (klen) {
		/* a 2022 key is base64 of exactly the cipher's key size;
		 * multi-user servers give "iPSK:uPSK" (each checked) */
		g_auto(GStrv) keys = g_strsplit(pw, ":", 0);
		for (size_t i = 0; keys[i]; i++) {
			size_t dl = 0;
			uint8_t *k = cfg_base64_decode(keys[i], strlen(keys[i]), &dl);
			free(k);
			if (!k || dl != klen) {
				cfg_diag(s, false, upos(u, off),
					 "a %s key is %zu bytes in base64 (make one with 'openssl "
					 "rand -base64 %zu')",
					 anser_cipher_name(n->cipher), klen, klen);
				return -EINVAL;
			}
		}
	}
	n->pass = cfg_strdup(pw);
	if (klen && strchr(pw, ':'))
		cfg_diag(s, true, upos(u, off),
			 "shadowsocks 2022 multi-user keys (iPSK:uPSK) are read but identity "
			 "headers are not implemented yet: this node carries no traffic");
	return 0;
}

/* plugin=obfs-local;obfs=http;obfs-host=example.com */
static int ss_plugin(struct cfg_diag_sink *s, const struct url *u, size_t off, const char *plugin)
{
	if (*plugin == '\0')
		return 0;
	g_auto(GStrv) parts = g_strsplit(plugin, ";", 0);
	g_autoptr(GString) desc = g_string_new(NULL);
	for (size_t i = 1; parts[i]; i++)
		g_string_append_printf(desc, "%s%s", i > 1 ? ", " : "", parts[i]);
	char *name = cfg_quote(parts[0], strlen(parts[0]));
	char *args = cfg_quote(desc->str, desc->len);
	if (strcmp(parts[0], "obfs-local") == 0 || strcmp(parts[0], "simple-obfs") == 0)
		cfg_diag(s, false, upos(u, off),
			 "shadowsocks plugin '%s' (%s) is not supported yet: simple-obfs is "
			 "read but not implemented; use a node without obfs",
			 name, args);
	else
		cfg_diag(s, false, upos(u, off),
			 "shadowsocks plugin '%s' (%s) is not supported: Anser has no SIP003 "
			 "plugins",
			 name, args);
	free(name);
	free(args);
	return -EINVAL;
}

/* ---------------------------------------------------------- the schemes */

/* https:// takes the TLS options: sni (peer), alpn, allowInsecure. */
static int https_opts(struct cfg_diag_sink *s, const struct url *u, struct anser_node *n)
{
	struct opts o = { 0 };
	int r = parse_query(s, u, &o);

	for (size_t i = 0; r == 0 && i < o.n; i++) {
		static const char *const known[] = { "sni",
						     "peer",
						     "alpn",
						     "allowInsecure",
						     "allow_insecure",
						     "insecure",
						     "skip-cert-verify" };
		bool ok = false;
		for (size_t k = 0; k < G_N_ELEMENTS(known); k++)
			ok |= g_ascii_strcasecmp(o.key[i], known[k]) == 0;
		if (!ok)
			r = unsupported(s, u, o.off[i], "option", o.key[i],
					"a https link takes sni, alpn and allowInsecure");
	}
	if (r == 0)
		r = transport_opts(s, u, &o, n, true);
	opts_clear(&o);
	return r;
}

static int link_plain(struct cfg_diag_sink *s, const struct url *u, struct anser_node *n,
		      const char *scheme)
{
	if (n->tls && u->has_query && https_opts(s, u, n) < 0)
		return -EINVAL;
	if (u->has_query && !n->tls) {
		char *msg = g_strdup_printf("options in a %s link are not supported:", scheme);
		int r = bad(s, upos(u, u->query - 1), msg, u->text + u->query - 1, u->query_len + 1,
			    "remove the '?...' part");
		g_free(msg);
		return r;
	}
	if (!no_path(u)) {
		char *msg = g_strdup_printf("a %s link has no path:", scheme);
		int r = bad(s, upos(u, u->path), msg, u->text + u->path, u->path_len, "remove it");
		g_free(msg);
		return r;
	}
	if (u->has_ui)
		return parse_userpass(s, u, n);
	return 0;
}

static int link_ss(struct cfg_diag_sink *s, const struct url *u, struct anser_node *n)
{
	struct opts o = { 0 };
	int r = -EINVAL;

	if (!u->has_ui) {
		cfg_diag(s, false, upos(u, 0),
			 "shadowsocks link has no 'method:password' (expected "
			 "'ss://BASE64(method:password)@host:port')");
		return -EINVAL;
	}
	/* SIP002: base64url(method:password), or %-encoded method:password */
	size_t dl;
	char *mp = NULL;
	if (!memchr(u->text + u->ui, ':', u->ui_len)) {
		uint8_t *d = cfg_base64_decode(u->text + u->ui, u->ui_len, &dl);
		if (d && memchr(d, '\0', dl)) {
			free(d);
			d = NULL;
		}
		mp = (char *)d;
	} else {
		mp = pct_decode(u->text + u->ui, u->ui_len, &dl);
	}
	if (!mp) {
		cfg_diag(s, false, upos(u, u->ui),
			 "shadowsocks user info is neither base64 nor %%-encoded "
			 "'method:password'");
		return -EINVAL;
	}
	if (ss_method_pass(s, u, u->ui, mp, n) < 0)
		goto out;
	if (parse_query(s, u, &o) < 0)
		goto out;
	size_t off = 0;
	const char *plugin = opt(&o, "plugin", &off);
	if (plugin && ss_plugin(s, u, off, plugin) < 0)
		goto out;
	r = 0;
out:
	free(mp);
	opts_clear(&o);
	return r;
}

static int link_trojan(struct cfg_diag_sink *s, const struct url *u, struct anser_node *n, bool go)
{
	struct opts o = { 0 };
	int r = -EINVAL;
	size_t dl, off;
	const char *v;

	n->proto = ANSER_NODE_TROJAN;
	if (!u->has_ui || u->ui_len == 0) {
		cfg_diag(s, false, upos(u, 0),
			 "trojan link has no password (expected 'trojan://password@host:port')");
		return -EINVAL;
	}
	n->pass = pct_decode(u->text + u->ui, u->ui_len, &dl);
	if (!n->pass || dl == 0 || dl > 255) {
		cfg_diag(s, false, upos(u, u->ui),
			 "invalid trojan password (1..255 bytes; write '@', ':' and '%%' as "
			 "%%40, %%3A, %%25)");
		goto out;
	}
	if (!no_path(u))
		goto bad_path;
	if (parse_query(s, u, &o) < 0 || transport_opts(s, u, &o, n, true) < 0)
		goto out;
	if (!n->tls) {
		cfg_diag(s, false, upos(u, 0), "trojan runs over TLS: remove 'security=none'");
		goto out;
	}
	if (go && (v = opt(&o, "encryption", &off)) && *v && strcmp(v, "none") != 0)
		r = unsupported(s, u, off, "trojan-go encryption", v, "only none");
	else if ((v = opt(&o, "plugin", &off)) && *v)
		r = unsupported(s, u, off, "plugin", v, "no plugins");
	else
		r = 0;
	goto out;
bad_path:
	r = bad(s, upos(u, u->path), "a trojan link has no path:", u->text + u->path, u->path_len,
		"use '?type=ws&path=...' for WebSocket");
out:
	opts_clear(&o);
	return r;
}

static int link_vless(struct cfg_diag_sink *s, const struct url *u, struct anser_node *n)
{
	struct opts o = { 0 };
	int r = -EINVAL;
	size_t off;
	const char *v;

	n->proto = ANSER_NODE_VLESS;
	char *id = u->has_ui ? pct_decode(u->text + u->ui, u->ui_len, NULL) : NULL;
	if (!id || parse_uuid(id, n->uuid) < 0) {
		free(id);
		cfg_diag(s, false, upos(u, u->has_ui ? u->ui : 0),
			 "vless link needs a UUID before '@' (like "
			 "'vless://b831381d-6324-4d53-ad4f-8cda48b30811@host:443')");
		return -EINVAL;
	}
	free(id);
	if (parse_query(s, u, &o) < 0)
		goto out;
	if ((v = opt(&o, "encryption", &off)) && *v && strcmp(v, "none") != 0) {
		r = unsupported(s, u, off, "vless encryption", v, "only none");
		goto out;
	}
	if ((v = opt(&o, "flow", &off)) && *v) {
		r = unsupported(s, u, off, "vless flow", v, "XTLS flows are not implemented");
		goto out;
	}
	if ((v = opt(&o, "security", &off)) && strcmp(v, "reality") == 0) {
		r = unsupported(s, u, off, "security", v, "tls or none");
		goto out;
	}
	if (transport_opts(s, u, &o, n, false) < 0)
		goto out;
	r = 0;
out:
	opts_clear(&o);
	return r;
}

static int vmess_security(struct cfg_diag_sink *s, const struct url *u, size_t off, const char *v,
			  struct anser_node *n)
{
	if (!v || !*v || strcmp(v, "auto") == 0)
		n->cipher = ANSER_CIPHER_AUTO;
	else if (strcmp(v, "aes-128-gcm") == 0)
		n->cipher = ANSER_CIPHER_AES_128_GCM;
	else if (strcmp(v, "chacha20-poly1305") == 0)
		n->cipher = ANSER_CIPHER_CHACHA20_POLY1305;
	else if (strcmp(v, "none") == 0 || strcmp(v, "zero") == 0)
		n->cipher = ANSER_CIPHER_NONE;
	else
		return unsupported(s, u, off, "vmess security", v,
				   "auto, aes-128-gcm, chacha20-poly1305, none or zero");
	return 0;
}

/* vmess://uuid@host:port?type=..&security=..&encryption=.. */
static int link_vmess_uri(struct cfg_diag_sink *s, const struct url *u, struct anser_node *n)
{
	struct opts o = { 0 };
	int r = -EINVAL;
	size_t off = 0;

	char *id = pct_decode(u->text + u->ui, u->ui_len, NULL);
	if (!id || parse_uuid(id, n->uuid) < 0) {
		free(id);
		cfg_diag(s, false, upos(u, u->ui), "vmess link needs a UUID before '@'");
		return -EINVAL;
	}
	free(id);
	if (parse_query(s, u, &o) < 0)
		goto out;
	const char *enc = opt(&o, "encryption", &off);
	if (vmess_security(s, u, off, enc, n) < 0 || transport_opts(s, u, &o, n, false) < 0)
		goto out;
	r = 0;
out:
	opts_clear(&o);
	return r;
}

/* Parses text that was decoded out of a link (so its offsets are not the
 * file's) with fn, reporting every diagnostic at the link's position with
 * a prefix naming what was decoded. */
static int parse_decoded(struct cfg_diag_sink *s, struct cfg_pos pos, const char *what,
			 const char *text, struct anser_node *n, const char *example,
			 int (*fn)(struct cfg_diag_sink *, struct url *, struct anser_node *,
				   void *),
			 void *ud)
{
	struct anser_diags d = { 0 };
	struct cfg_diag_sink inner = *s;
	struct url u;

	inner.d = &d;
	inner.n_errors = 0;
	inner.full = false;
	int r = split_url(&inner, pos, text, n, &u, example);
	if (r == 0)
		r = fn(&inner, &u, n, ud);
	for (size_t i = 0; i < d.n; i++)
		cfg_diag(s, d.v[i].warning, pos, "in the %s: %s", what, d.v[i].message);
	anser_diags_clear(&d);
	return r < 0 || inner.n_errors ? -EINVAL : 0;
}

static int vmess_uri_cb(struct cfg_diag_sink *s, struct url *u, struct anser_node *n, void *ud)
{
	return link_vmess_uri(s, u, n);
}

static int ss_legacy_cb(struct cfg_diag_sink *s, struct url *u, struct anser_node *n, void *ud)
{
	return ss_method_pass(s, u, 0, ud, n);
}

/* A JSON member as a string: strings as they are, numbers and booleans
 * printed; NULL when absent or of another type. */
static char *json_str(JsonObject *obj, const char *key)
{
	JsonNode *m = json_object_get_member(obj, key);
	if (!m || !JSON_NODE_HOLDS_VALUE(m))
		return NULL;
	GType t = json_node_get_value_type(m);
	if (t == G_TYPE_STRING)
		return cfg_strdup(json_node_get_string(m));
	if (t == G_TYPE_INT64)
		return cfg_asprintf("%lld", (long long)json_node_get_int(m));
	if (t == G_TYPE_BOOLEAN)
		return cfg_strdup(json_node_get_boolean(m) ? "true" : "false");
	return NULL;
}

/* Builds the URI form from a v2rayN object and parses that, so both
 * forms share every check. */
static int link_vmess_json(struct cfg_diag_sink *s, struct cfg_pos pos, const char *body,
			   size_t len, struct anser_node *n)
{
	g_autoptr(JsonParser) jp = json_parser_new_immutable();
	int r = -EINVAL;

	if (!json_parser_load_from_data(jp, body, (gssize)len, NULL) ||
	    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(jp))) {
		cfg_diag(s, false, pos,
			 "vmess link is neither 'vmess://uuid@host:port?...' nor base64 of a "
			 "v2rayN JSON object");
		return -EINVAL;
	}
	JsonObject *obj = json_node_get_object(json_parser_get_root(jp));
	static const char *const keys[] = { "add", "port", "id",   "aid",	   "scy",
					    "net", "type", "host", "path",	   "tls",
					    "sni", "alpn", "ps",   "allowInsecure" };
	char *v[G_N_ELEMENTS(keys)];
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
		v[i] = json_str(obj, keys[i]);
	enum { ADD, PORT, ID, AID, SCY, NET, TYPE, HOST, PATH, TLS, SNI, ALPN, PS, INSEC };

	if (!v[ADD] || !v[PORT] || !v[ID]) {
		cfg_diag(s, false, pos, "vmess link's JSON lacks %s",
			 !v[ADD]    ? "\"add\" (the server)"
			 : !v[PORT] ? "\"port\""
				    : "\"id\"");
		goto out;
	}
	if (v[AID] && strcmp(v[AID], "0") != 0 && strcmp(v[AID], "") != 0) {
		char *q = cfg_quote(v[AID], strlen(v[AID]));
		cfg_diag(s, false, pos,
			 "vmess alterId %s (legacy MD5 authentication) is not supported; ask the "
			 "provider for alterId 0 (VMess AEAD)",
			 q);
		free(q);
		goto out;
	}
	if (!n->name && v[PS] && *v[PS] && strlen(v[PS]) <= CFG_MAX_NAME)
		n->name = cfg_strdup(v[PS]);
	/* rebuild as a URI with every value %-encoded */
	GString *uri = g_string_new("vmess://");
	g_string_append_uri_escaped(uri, v[ID], NULL, false);
	g_string_append_c(uri, '@');
	if (strchr(v[ADD], ':'))
		g_string_append_printf(uri, "[%s]", v[ADD]);
	else
		g_string_append_uri_escaped(uri, v[ADD], "", false);
	g_string_append_c(uri, ':');
	g_string_append_uri_escaped(uri, v[PORT], NULL, false);
	g_string_append_c(uri, '?');
	static const struct {
		int idx;
		const char *as;
	} map[] = { { SCY, "encryption" }, { NET, "type" },  { TYPE, "headerType" },
		    { HOST, "host" },	   { PATH, "path" }, { TLS, "security" },
		    { SNI, "sni" },	   { ALPN, "alpn" }, { INSEC, "allowInsecure" } };
	for (size_t i = 0; i < G_N_ELEMENTS(map); i++) {
		if (!v[map[i].idx])
			continue;
		g_string_append_printf(uri, "%s=", map[i].as);
		g_string_append_uri_escaped(uri, v[map[i].idx], NULL, false);
		g_string_append_c(uri, '&');
	}
	char *text = g_string_free(uri, false);
	r = parse_decoded(s, pos, "vmess link's JSON", text, n, "vmess://...", vmess_uri_cb, NULL);
	g_free(text);
out:
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
		free(v[i]);
	return r;
}

static bool scheme_is(const char *link, size_t slen, const char *name)
{
	return slen == strlen(name) && g_ascii_strncasecmp(link, name, slen) == 0;
}

int cfg_parse_link(struct cfg_diag_sink *s, struct cfg_pos pos, const char *link,
		   struct anser_node *n)
{
	const char *sep = strstr(link, "://");
	struct url u;
	int r;

	if (!sep || sep == link) {
		/* quote only what follows a user info, if there is one */
		const char *shown = strrchr(link, '@');
		shown = shown ? shown + 1 : link;
		return bad(s, pos, "not a node link:", shown, strlen(shown),
			   "expected 'scheme://host:port', e.g. 'socks5://10.0.0.2:1080'");
	}
	size_t slen = (size_t)(sep - link);
	const char *body = sep + 3;
	size_t blen = strlen(body);
	const char *hash = strchr(body, '#');
	size_t main_len = hash ? (size_t)(hash - body) : blen;

	if (scheme_is(link, slen, "vmess") && !memchr(body, '@', main_len)) {
		size_t dl;
		uint8_t *d = cfg_base64_decode(body, main_len, &dl);
		if (!d || memchr(d, '\0', dl)) {
			free(d);
			cfg_diag(s, false, pos,
				 "vmess link is neither 'vmess://uuid@host:port?...' nor base64 "
				 "of a v2rayN JSON object");
			return -EINVAL;
		}
		n->proto = ANSER_NODE_VMESS;
		r = link_vmess_json(s, at_off(pos, slen + 3), (char *)d, dl, n);
		free(d);
		return r;
	}
	if (scheme_is(link, slen, "ss") && !memchr(body, '@', main_len)) {
		/* legacy: ss://BASE64(method:password@host:port)#name */
		size_t dl;
		uint8_t *d = cfg_base64_decode(body, main_len, &dl);
		if (!d || memchr(d, '\0', dl) || !memchr(d, '@', dl)) {
			free(d);
			cfg_diag(s, false, pos,
				 "shadowsocks link has no 'method:password' (expected "
				 "'ss://BASE64(method:password)@host:port')");
			return -EINVAL;
		}
		char *text = g_strdup_printf("ss://%s%s", (char *)d, hash ? hash : "");
		/* split at the last '@': the password may hold '@' */
		char *at = strrchr(text, '@');
		*at = '\0';
		char *mp = cfg_strdup(text + 5);
		*at = '@';
		memmove(text + 5, at + 1, strlen(at + 1) + 1);
		free(d);
		n->proto = ANSER_NODE_SS;
		r = parse_decoded(s, pos, "shadowsocks link's base64", text, n, "ss://host:8388",
				  ss_legacy_cb, mp);
		free(mp);
		g_free(text);
		return r;
	}

	static const struct {
		const char *scheme;
		const char *example;
	} known[] = {
		{ "socks5", "socks5://host:1080" },
		{ "http", "http://host:8080" },
		{ "https", "https://host:443" },
		{ "ss", "ss://...@host:8388" },
		{ "vmess", "vmess://...@host:443" },
		{ "vless", "vless://uuid@host:443" },
		{ "trojan", "trojan://password@host:443" },
		{ "trojan-go", "trojan-go://password@host:443" },
	};
	const char *example = NULL;
	for (size_t i = 0; i < G_N_ELEMENTS(known); i++)
		if (scheme_is(link, slen, known[i].scheme))
			example = known[i].example;
	if (!example) {
		char *q = cfg_quote(link, slen);
		cfg_diag(s, false, pos,
			 "node protocol '%s' is not supported (supported: socks5, http, https, "
			 "ss, vmess, vless, trojan, trojan-go)",
			 q);
		free(q);
		return -EINVAL;
	}
	if (split_url(s, pos, link, n, &u, example) < 0)
		return -EINVAL;
	if (scheme_is(link, slen, "socks5")) {
		n->proto = ANSER_NODE_SOCKS5;
		return link_plain(s, &u, n, "socks5");
	}
	if (scheme_is(link, slen, "http") || scheme_is(link, slen, "https")) {
		n->proto = ANSER_NODE_HTTP;
		n->tls = slen == 5;
		return link_plain(s, &u, n, n->tls ? "https" : "http");
	}
	if (scheme_is(link, slen, "ss")) {
		n->proto = ANSER_NODE_SS;
		return link_ss(s, &u, n);
	}
	if (scheme_is(link, slen, "vmess")) {
		n->proto = ANSER_NODE_VMESS;
		return link_vmess_uri(s, &u, n);
	}
	if (scheme_is(link, slen, "vless"))
		return link_vless(s, &u, n);
	return link_trojan(s, &u, n, slen == 9);
}

void anser_node_clear(struct anser_node *n)
{
	free(n->name);
	free(n->link);
	free(n->host);
	free(n->user);
	free(n->pass);
	free(n->sni);
	free(n->alpn);
	free(n->ws_path);
	free(n->ws_host);
	free(n->subtag);
	*n = (struct anser_node){ 0 };
}

int anser_node_from_link(const char *link, struct anser_node *n, struct anser_diags *diags)
{
	struct cfg_diag_sink s = { .d = diags, .file = "link", .src = link, .len = strlen(link) };

	*n = (struct anser_node){ 0 };
	n->link = cfg_strdup(link);
	if (cfg_parse_link(&s, (struct cfg_pos){ 1, 1, 0 }, link, n) < 0 || s.n_errors) {
		anser_node_clear(n);
		return -EINVAL;
	}
	if (!n->name)
		n->name = strchr(n->host, ':') ? cfg_asprintf("[%s]:%u", n->host, n->port)
					       : cfg_asprintf("%s:%u", n->host, n->port);
	return 0;
}
