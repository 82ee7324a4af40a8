// SPDX-License-Identifier: GPL-2.0-or-later
/* The name a flow's first bytes ask for. One ClientHello walker serves
 * TLS over TCP (the payloads of the handshake records put together) and
 * QUIC (the CRYPTO frames of the Initial packets put together by offset).
 * Every reader here goes left to right and answers MORE only when it has
 * run out of bytes, never because of where the bytes end: so a longer
 * prefix can turn MORE into an answer, but never change an answer. */
#include "sniff.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

/* RFC 8446 5.1: a TLSPlaintext fragment is at most 2^14 bytes. */
#define TLS_RECORD_MAX 16384
/* ClientHello bytes put together from several records; a name past
 * them is not looked for (browsers' hellos are under 3 KiB). */
#define HELLO_MAX 16384
/* CRYPTO stream bytes of the Initial packets kept, from offset 0. */
#define QUIC_CRYPTO_MAX 8192
/* Initial packets are 1200 bytes or a path MTU; bigger ones are skipped. */
#define QUIC_PACKET_MAX 2048
#define QUIC_CID_MAX	20
#define QUIC_TAG	16
#define QUIC_V1		0x00000001u
#define QUIC_V2		0x6b3343cfu

/* ------------------------------------------------------------ names */

/* s lowercased into out if it is a name; see put_name(). */
static bool name_ok(const uint8_t *s, size_t len, char out[ANSER_SNIFF_NAME_MAX + 1])
{
	bool letter = false;
	size_t label = 0;
	struct in_addr a;

	if (len == 0 || len > ANSER_SNIFF_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (c >= 'a' && c <= 'z') {
			letter = true;
			label++;
		} else if ((c >= '0' && c <= '9') || c == '-' || c == '_') {
			label++;
		} else {
			return false;
		}
		if (label > 63)
			return false;
		out[i] = (char)c;
	}
	out[len] = '\0';
	return letter && label > 0 && inet_aton(out, &a) == 0;
}

/* The contract of sniff.h: a trailing dot goes, case folds. Stricter
 * than the contract in two ways that no real name minds: no empty or
 * over-63-byte label, and nothing inet_aton() reads as an address (it
 * takes "0x7f.1" and "0x7f000001" too). `out` is "" when it fails. */
static bool put_name(const uint8_t *s, size_t len, char out[ANSER_SNIFF_NAME_MAX + 1])
{
	if (len && s[len - 1] == '.')
		len--;
	bool ok = name_ok(s, len, out);
	if (!ok)
		out[0] = '\0';
	return ok;
}

/* ------------------------------------------------------------ ClientHello */

/* A cursor over a structure declared to end at `end`, of which only the
 * bytes before `have` are here. The first failure sticks: SHORT (the
 * bytes are declared but not here yet) or BAD (they could never be). */
enum rd_state {
	RD_OK,
	RD_SHORT,
	RD_BAD,
};

struct rd {
	const uint8_t *p;
	size_t i, have, end;
	enum rd_state state;
};

static void rd_fail(struct rd *r, enum rd_state s)
{
	if (r->state == RD_OK)
		r->state = s;
}

static void rd_check(struct rd *r, bool ok)
{
	if (!ok)
		rd_fail(r, RD_BAD);
}

static bool rd_need(struct rd *r, size_t k)
{
	if (r->state != RD_OK)
		return false;
	if (k > r->end - r->i)
		rd_fail(r, RD_BAD);
	else if (r->i > r->have || k > r->have - r->i)
		rd_fail(r, RD_SHORT);
	return r->state == RD_OK;
}

/* A big-endian number of k <= 3 bytes; 0 once failed. */
static size_t rd_uint(struct rd *r, size_t k)
{
	size_t v = 0;

	if (!rd_need(r, k))
		return 0;
	while (k--)
		v = v << 8 | r->p[r->i++];
	return v;
}

/* Skipping needs the bytes declared, not here. */
static void rd_skip(struct rd *r, size_t k)
{
	if (r->state != RD_OK)
		return;
	if (k > r->end - r->i)
		rd_fail(r, RD_BAD);
	else
		r->i += k;
}

static enum anser_sniff rd_verdict(const struct rd *r)
{
	return r->state == RD_SHORT ? ANSER_SNIFF_MORE : ANSER_SNIFF_NONE;
}

/* RFC 6066 3: a ServerNameList; the first host_name (type 0) counts. */
static enum anser_sniff server_name(struct rd *e, char *name)
{
	size_t list = rd_uint(e, 2);

	rd_check(e, list == e->end - e->i);
	while (e->state == RD_OK && e->i < e->end) {
		size_t type = rd_uint(e, 1);
		size_t len = rd_uint(e, 2);
		if (type == 0 && rd_need(e, len))
			return put_name(e->p + e->i, len, name) ? ANSER_SNIFF_FOUND
								: ANSER_SNIFF_NONE;
		rd_skip(e, len);
	}
	return rd_verdict(e);
}

/* A handshake message, or the first n bytes of one: RFC 8446 4.1.2 (TLS
 * 1.2's ClientHello has the same fields). Its server_name, as soon as
 * that extension is here whole. */
static enum anser_sniff client_hello(const uint8_t *p, size_t n, char *name)
{
	struct rd r = { p, 0, n, SIZE_MAX, RD_OK };

	rd_check(&r, rd_uint(&r, 1) == 1); /* client_hello */
	size_t len = rd_uint(&r, 3);
	if (r.state != RD_OK)
		return rd_verdict(&r);
	r.end = r.i + len;
	rd_check(&r, rd_uint(&r, 1) == 3); /* legacy_version: 3.x */
	rd_skip(&r, 1 + 32);		   /* its minor, random */
	size_t sid = rd_uint(&r, 1);
	rd_check(&r, sid <= 32);
	rd_skip(&r, sid);
	size_t suites = rd_uint(&r, 2);
	rd_check(&r, suites >= 2 && suites % 2 == 0);
	rd_skip(&r, suites);
	size_t comp = rd_uint(&r, 1);
	rd_check(&r, comp >= 1);
	rd_skip(&r, comp);
	/* A TLS 1.2 hello may end here: complete, and no name. */
	rd_check(&r, r.i < r.end);
	size_t exts = rd_uint(&r, 2);
	rd_check(&r, exts == r.end - r.i);
	while (r.state == RD_OK && r.i < r.end) {
		size_t type = rd_uint(&r, 2);
		size_t elen = rd_uint(&r, 2);
		struct rd e = r;
		rd_skip(&r, elen);
		if (type == 0 && r.state == RD_OK) {
			e.end = r.i;
			return server_name(&e, name);
		}
	}
	return rd_verdict(&r); /* OK here: the whole hello, no name */
}

/* ------------------------------------------------------------ TLS */

enum anser_sniff anser_sniff_tls(const uint8_t *p, size_t n, char name[ANSER_SNIFF_NAME_MAX + 1])
{
	uint8_t hello[HELLO_MAX];
	size_t hn = 0, i = 0;
	/* No more hello can come: the records went on to something else. */
	bool stuck = false;

	name[0] = '\0';
	while (i < n) {
		size_t left = n - i, len = 0;
		bool ok = p[i] == 22 && (left < 2 || p[i + 1] == 3); /* handshake, 3.x */
		if (ok && left >= 5) {
			len = (size_t)p[i + 3] << 8 | p[i + 4];
			ok = len > 0 && len <= TLS_RECORD_MAX;
		}
		if (!ok) {
			if (i == 0)
				return ANSER_SNIFF_NONE;
			stuck = true;
			break;
		}
		if (left < 5)
			break;
		size_t take = len < left - 5 ? len : left - 5;
		if (take > sizeof(hello) - hn)
			take = sizeof(hello) - hn;
		memcpy(hello + hn, p + i + 5, take);
		hn += take;
		if (take < len)
			break;
		i += 5 + len;
		/* the whole handshake message is here: the rest is not read */
		if (hn >= 4 &&
		    hn - 4 >= ((size_t)hello[1] << 16 | (size_t)hello[2] << 8 | hello[3]))
			break;
	}
	enum anser_sniff r = client_hello(hello, hn, name);
	if (r == ANSER_SNIFF_MORE && (stuck || hn == sizeof(hello)))
		r = ANSER_SNIFF_NONE;
	if (r != ANSER_SNIFF_FOUND)
		name[0] = '\0';
	return r;
}

/* ------------------------------------------------------------ HTTP/1 */

static bool is_tchar(uint8_t c)
{
	/* RFC 9110 5.6.2 */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* ASCII only: strncasecmp() would follow the locale. */
static bool is_host(const uint8_t *s)
{
	return (s[0] | 0x20) == 'h' && (s[1] | 0x20) == 'o' && (s[2] | 0x20) == 's' &&
	       (s[3] | 0x20) == 't';
}

static bool is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* uri-host [ ":" port ] of a Host value or an authority. An IP literal
 * in brackets, or a name that put_name() refuses, is no name. */
static bool host_port(const uint8_t *s, size_t len, char *name)
{
	if (len == 0 || s[0] == '[')
		return false;
	const uint8_t *colon = memchr(s, ':', len);
	size_t hl = colon ? (size_t)(colon - s) : len;
	for (size_t i = hl + 1; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return put_name(s, hl, name);
}

/* The authority of an absolute-form target (RFC 9112 3.2.2), or the whole
 * of CONNECT's authority-form; for a request that has no Host. */
static bool target_host(bool connect, const uint8_t *t, size_t len, char *name)
{
	size_t i = 0;

	if (!connect) {
		while (i < len && (is_tchar(t[i]) && t[i] != ':'))
			i++;
		if (i == 0 || len - i < 3 || memcmp(t + i, "://", 3) != 0)
			return false;
		t += i + 3;
		len -= i + 3;
		for (i = 0; i < len && t[i] != '/' && t[i] != '?' && t[i] != '#'; i++)
			;
		len = i;
		/* userinfo@ */
		for (i = len; i > 0; i--)
			if (t[i - 1] == '@')
				break;
		t += i;
		len -= i;
	}
	return host_port(t, len, name);
}

static const char *const methods[] = {
	"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
};

/* The request line (RFC 9112 3): method SP request-target SP HTTP/1.x,
 * then CRLF or a bare LF (2.2). Its length, 0 if it is not one, or
 * SIZE_MAX if it is not whole yet. */
static size_t request_line(const uint8_t *p, size_t n, const uint8_t **target, size_t *tlen,
			   bool *connect)
{
	static const char version[] = "HTTP/1.";
	bool maybe = false;
	size_t i = 0;

	for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]) && !i; m++) {
		size_t ml = strlen(methods[m]), k = n < ml ? n : ml;
		if (memcmp(p, methods[m], k) == 0) {
			if (k == ml)
				i = ml;
			else
				maybe = true;
			*connect = strcmp(methods[m], "CONNECT ") == 0;
		}
	}
	if (!i)
		return maybe ? SIZE_MAX : 0;
	*target = p + i;
	while (i < n && p[i] > ' ' && p[i] < 0x7f)
		i++;
	*tlen = (size_t)(p + i - *target);
	if (i == n)
		return SIZE_MAX;
	if (*tlen == 0 || p[i++] != ' ')
		return 0;
	for (size_t k = 0; k < sizeof(version) - 1; k++, i++) {
		if (i == n)
			return SIZE_MAX;
		if (p[i] != (uint8_t)version[k])
			return 0;
	}
	if (i == n)
		return SIZE_MAX;
	if (p[i] < '0' || p[i] > '9')
		return 0;
	if (++i < n && p[i] == '\r')
		i++;
	if (i == n)
		return SIZE_MAX;
	return p[i] == '\n' ? i + 1 : 0;
}

enum anser_sniff anser_sniff_http(const uint8_t *p, size_t n, char name[ANSER_SNIFF_NAME_MAX + 1])
{
	const uint8_t *target = NULL;
	size_t tlen = 0;
	bool connect = false;

	name[0] = '\0';
	if (n == 0)
		return ANSER_SNIFF_MORE;
	size_t i = request_line(p, n, &target, &tlen, &connect);
	if (i == 0)
		return ANSER_SNIFF_NONE;
	if (i == SIZE_MAX)
		return ANSER_SNIFF_MORE;
	/* field lines (RFC 9112 5) up to the empty line */
	for (bool first = true;; first = false) {
		if (i == n)
			return ANSER_SNIFF_MORE;
		if (p[i] == '\r' || p[i] == '\n') {
			if (p[i] == '\r' && ++i == n)
				return ANSER_SNIFF_MORE;
			if (p[i] != '\n')
				return ANSER_SNIFF_NONE;
			/* the end of the header: no Host, or an empty one */
			return target_host(connect, target, tlen, name) ? ANSER_SNIFF_FOUND
									: ANSER_SNIFF_NONE;
		}
		const uint8_t *line = p + i;
		const uint8_t *lf = memchr(line, '\n', n - i);
		size_t nl = 0;
		if (is_ows(*line)) {
			/* obs-fold of the line before (Host's is refused below),
			 * or whitespace before the first field: 2.2 says reject */
			if (first)
				return ANSER_SNIFF_NONE;
		} else {
			while (i + nl < n && is_tchar(line[nl]))
				nl++;
			if (i + nl == n)
				return ANSER_SNIFF_MORE;
			/* no whitespace between the name and the colon (5.1) */
			if (nl == 0 || line[nl] != ':')
				return ANSER_SNIFF_NONE;
		}
		if (!lf)
			return ANSER_SNIFF_MORE;
		i = (size_t)(lf - p) + 1;
		if (nl != 4 || !is_host(line))
			continue;
		/* Host (RFC 9112 3.2): whole once the next line does not fold it */
		if (i == n)
			return ANSER_SNIFF_MORE;
		if (is_ows(p[i]))
			return ANSER_SNIFF_NONE;
		const uint8_t *v = line + 5, *e = lf;
		if (e > v && e[-1] == '\r')
			e--;
		while (v < e && is_ows(*v))
			v++;
		while (e > v && is_ows(e[-1]))
			e--;
		if (e > v)
			return host_port(v, (size_t)(e - v), name) ? ANSER_SNIFF_FOUND
								   : ANSER_SNIFF_NONE;
	}
}

enum anser_sniff anser_sniff_stream(const uint8_t *p, size_t n, char name[ANSER_SNIFF_NAME_MAX + 1])
{
	if (n == 0) {
		name[0] = '\0';
		return ANSER_SNIFF_MORE;
	}
	return p[0] == 22 ? anser_sniff_tls(p, n, name) : anser_sniff_http(p, n, name);
}

/* ------------------------------------------------------------ QUIC keys */

static const uint8_t salt_v1[20] = { 0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
				     0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a };
static const uint8_t salt_v2[20] = { 0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
				     0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9 };

/* RFC 8446 7.1 HKDF-Expand-Label with an empty context, SHA-256. */
static int expand_label(const uint8_t secret[32], const char *label, uint8_t *out, size_t len)
{
	uint8_t info[2 + 1 + 6 + 16 + 1];
	size_t ll = strlen(label);

	if (ll > 16)
		return -EINVAL;
	info[0] = 0;
	info[1] = (uint8_t)len;
	info[2] = (uint8_t)(6 + ll);
	memcpy(info + 3, "tls13 ", 6);
	memcpy(info + 9, label, ll);
	info[9 + ll] = 0;
	gnutls_datum_t key = { (unsigned char *)secret, 32 };
	gnutls_datum_t in = { info, (unsigned)(10 + ll) };
	return gnutls_hkdf_expand(GNUTLS_MAC_SHA256, &key, &in, out, len) < 0 ? -EIO : 0;
}

int anser_quic_client_keys(uint32_t version, const uint8_t *dcid, size_t dcid_len,
			   struct anser_quic_keys *out)
{
	uint8_t initial[32], client[32];
	const uint8_t *salt;
	const char *key, *iv, *hp;
	int r;

	if (version == QUIC_V1) {
		salt = salt_v1;
		key = "quic key", iv = "quic iv", hp = "quic hp";
	} else if (version == QUIC_V2) {
		salt = salt_v2;
		key = "quicv2 key", iv = "quicv2 iv", hp = "quicv2 hp";
	} else {
		return -EPROTONOSUPPORT;
	}
	/* HKDF-Extract(salt, cid) is HMAC-SHA256(salt, cid). The cid may be
	 * empty: after a Retry it is the server's choice. */
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, salt, 20, dcid_len ? dcid : salt, dcid_len,
			     initial) < 0)
		return -EIO;
	r = expand_label(initial, "client in", client, sizeof(client));
	if (r == 0)
		r = expand_label(client, key, out->key, sizeof(out->key));
	if (r == 0)
		r = expand_label(client, iv, out->iv, sizeof(out->iv));
	if (r == 0)
		r = expand_label(client, hp, out->hp, sizeof(out->hp));
	return r; /* no secrets: anyone who sees the DCID has these keys */
}

/* ------------------------------------------------------------ QUIC */

/* What the Initial packets of a flow have told so far. */
struct quic {
	bool opened; /* some Initial packet decrypted */
	/* keys of the last Initial, for the next one (the same DCID, mostly) */
	bool keyed;
	uint32_t version;
	uint8_t dcid[QUIC_CID_MAX];
	size_t dcid_len;
	struct anser_quic_keys keys;
	/* the CRYPTO stream from offset 0, and which of its bytes came */
	uint64_t got[QUIC_CRYPTO_MAX / 64];
	uint8_t crypto[QUIC_CRYPTO_MAX];
};

/* RFC 9000 16: a variable-length integer. */
static bool varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
	if (*i >= n)
		return false;
	size_t len = (size_t)1 << (p[*i] >> 6);
	if (len > n - *i)
		return false;
	uint64_t x = p[*i] & 0x3f;
	for (size_t k = 1; k < len; k++)
		x = x << 8 | p[*i + k];
	*i += len;
	*v = x;
	return true;
}

static void crypto_put(struct quic *q, uint64_t off, const uint8_t *data, size_t len)
{
	if (off >= QUIC_CRYPTO_MAX)
		return;
	if (len > QUIC_CRYPTO_MAX - off)
		len = QUIC_CRYPTO_MAX - (size_t)off;
	memcpy(q->crypto + off, data, len);
	for (size_t b = (size_t)off; b < off + len; b++)
		q->got[b / 64] |= (uint64_t)1 << (b % 64);
}

/* How many bytes from offset 0 came without a gap. */
static size_t crypto_prefix(const struct quic *q)
{
	size_t w = 0;

	while (w < QUIC_CRYPTO_MAX / 64 && q->got[w] == UINT64_MAX)
		w++;
	if (w == QUIC_CRYPTO_MAX / 64)
		return QUIC_CRYPTO_MAX;
	return w * 64 + (size_t)__builtin_ctzll(~q->got[w]);
}

/* The frames of an Initial packet (RFC 9000 17.2.2: only these may be
 * in one). Another type, or a frame cut short, ends the packet. */
static void quic_frames(struct quic *q, const uint8_t *p, size_t n)
{
	size_t i = 0;
	uint64_t type, a, b, c, count;

	while (i < n && varint(p, n, &i, &type)) {
		switch (type) {
		case 0x00: /* PADDING */
		case 0x01: /* PING */
			break;
		case 0x02: /* ACK */
		case 0x03: /* with ECN counts */
			if (!varint(p, n, &i, &a) || !varint(p, n, &i, &a) ||
			    !varint(p, n, &i, &count) || !varint(p, n, &i, &a))
				return;
			/* each range takes two bytes at least: this ends */
			for (uint64_t k = 0; k < count; k++)
				if (!varint(p, n, &i, &a) || !varint(p, n, &i, &b))
					return;
			if (type == 0x03 && (!varint(p, n, &i, &a) || !varint(p, n, &i, &b) ||
					     !varint(p, n, &i, &c)))
				return;
			break;
		case 0x06: /* CRYPTO */
			if (!varint(p, n, &i, &a) || !varint(p, n, &i, &b) || b > n - i)
				return;
			crypto_put(q, a, p + i, (size_t)b);
			i += (size_t)b;
			break;
		case 0x1c: /* CONNECTION_CLOSE */
			if (!varint(p, n, &i, &a) || !varint(p, n, &i, &a) ||
			    !varint(p, n, &i, &b) || b > n - i)
				return;
			i += (size_t)b;
			break;
		default:
			return;
		}
	}
}

/* One block of AES-128 (header protection's AES-ECB): CBC with a zero IV
 * is ECB for one block. */
static int aes_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
	uint8_t iv[16] = { 0 };
	gnutls_cipher_hd_t h;
	gnutls_datum_t kd = { (unsigned char *)key, 16 }, ivd = { iv, 16 };

	if (gnutls_cipher_init(&h, GNUTLS_CIPHER_AES_128_CBC, &kd, &ivd) < 0)
		return -EIO;
	int r = gnutls_cipher_encrypt2(h, in, 16, out, 16);
	gnutls_cipher_deinit(h);
	return r < 0 ? -EIO : 0;
}

/* An Initial packet p[0..end), its packet number at pn: RFC 9001 5.4
 * header protection off, 5.3 AEAD open, then its frames. A packet that
 * does not open is ignored, as an endpoint would. */
static void quic_initial(struct quic *q, uint32_t version, const uint8_t *dcid, size_t dcid_len,
			 const uint8_t *p, size_t pn, size_t end)
{
	uint8_t pkt[QUIC_PACKET_MAX], plain[QUIC_PACKET_MAX], mask[16], nonce[12];
	gnutls_aead_cipher_hd_t h;

	/* the sample is 16 bytes from pn + 4 (5.4.2) */
	if (end > sizeof(pkt) || end - pn < 4 + 16)
		return;
	if (!q->keyed || q->version != version || q->dcid_len != dcid_len ||
	    memcmp(q->dcid, dcid, dcid_len) != 0) {
		q->keyed = anser_quic_client_keys(version, dcid, dcid_len, &q->keys) == 0;
		if (!q->keyed)
			return;
		q->version = version;
		q->dcid_len = dcid_len;
		memcpy(q->dcid, dcid, dcid_len);
	}
	if (aes_block(q->keys.hp, p + pn + 4, mask) < 0)
		return;
	memcpy(pkt, p, end);
	pkt[0] ^= mask[0] & 0x0f;
	size_t pn_len = (size_t)(pkt[0] & 3) + 1;
	uint64_t number = 0;
	for (size_t k = 0; k < pn_len; k++) {
		pkt[pn + k] ^= mask[1 + k];
		number = number << 8 | pkt[pn + k];
	}
	/* The packet number is read as sent: a flow's first Initials
	 * count from 0, far below where the truncation would matter. */
	memcpy(nonce, q->keys.iv, sizeof(nonce));
	for (size_t k = 0; k < 8; k++)
		nonce[11 - k] ^= (uint8_t)(number >> (8 * k));
	size_t head = pn + pn_len, plen = sizeof(plain);
	gnutls_datum_t kd = { q->keys.key, sizeof(q->keys.key) };
	if (gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_128_GCM, &kd) < 0)
		return;
	int r = gnutls_aead_cipher_decrypt(h, nonce, sizeof(nonce), pkt, head, QUIC_TAG, pkt + head,
					   end - head, plain, &plen);
	gnutls_aead_cipher_deinit(h);
	/* RFC 9000 17.2: the reserved bits are 0 once protection is off */
	if (r < 0 || (pkt[0] & 0x0c) != 0)
		return;
	q->opened = true;
	quic_frames(q, plain, plen);
}

/* RFC 9000 17.2: one long-header packet at the start of p[0..n). Its
 * length, or 0 if the rest of the datagram is no packet we can step
 * over (a short header runs to the datagram's end; other versions, and
 * Retry, have no Length). The fixed bit is not looked at: RFC 9287 lets
 * a client grease it. */
static size_t quic_packet(struct quic *q, const uint8_t *p, size_t n)
{
	uint64_t v;

	if (n < 7 || !(p[0] & 0x80))
		return 0;
	uint32_t version = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
	unsigned type = (p[0] >> 4) & 3;
	/* RFC 9369 3.2: v2 numbers the types anew */
	if (version == QUIC_V2)
		type = (type + 3) & 3;
	else if (version != QUIC_V1)
		return 0;
	if (type == 3) /* Retry */
		return 0;
	size_t i = 5;
	size_t dcid_len = p[i++];
	if (dcid_len > QUIC_CID_MAX || dcid_len >= n - i)
		return 0;
	const uint8_t *dcid = p + i;
	i += dcid_len;
	size_t scid_len = p[i++];
	if (scid_len > QUIC_CID_MAX || scid_len > n - i)
		return 0;
	i += scid_len;
	if (type == 0) { /* Initial: a Token */
		if (!varint(p, n, &i, &v) || v > n - i)
			return 0;
		i += (size_t)v;
	}
	if (!varint(p, n, &i, &v) || v > n - i) /* Length */
		return 0;
	if (type == 0)
		quic_initial(q, version, dcid, dcid_len, p, i, i + (size_t)v);
	return i + (size_t)v;
}

enum anser_sniff anser_sniff_quic(const uint8_t *const *pkts, const size_t *lens, size_t n_pkts,
				  char name[ANSER_SNIFF_NAME_MAX + 1])
{
	struct quic q;

	name[0] = '\0';
	if (n_pkts == 0)
		return ANSER_SNIFF_MORE; /* nothing seen yet */
	q.opened = false;
	q.keyed = false;
	memset(q.got, 0, sizeof(q.got));
	for (size_t d = 0; d < n_pkts; d++) {
		size_t off = 0, len;
		while (pkts[d] && off < lens[d] &&
		       (len = quic_packet(&q, pkts[d] + off, lens[d] - off)) > 0)
			off += len;
	}
	if (!q.opened)
		return ANSER_SNIFF_NONE;
	size_t have = crypto_prefix(&q);
	enum anser_sniff r = client_hello(q.crypto, have, name);
	if (r == ANSER_SNIFF_MORE && have == QUIC_CRYPTO_MAX)
		r = ANSER_SNIFF_NONE;
	if (r != ANSER_SNIFF_FOUND)
		name[0] = '\0';
	return r;
}
