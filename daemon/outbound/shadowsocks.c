// SPDX-License-Identifier: GPL-2.0-or-later
/* Shadowsocks AEAD: keys, chunk codec, UDP datagrams, and the TCP stream. */
#include "shadowsocks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "../util/bigbuf.h"
#include "blake3.h"

#define SS2022_SUBKEY	"shadowsocks 2022 session subkey"
#define SS2022_MAX_SKEW 30 /* seconds either way */
#define SS2022_PADDING	900

/* ------------------------------------------------------------------ keys */

/* 2022: the key is the PSK, base64 of exactly the key size. */
static int key_init_2022(struct anser_ss_key *k, enum anser_cipher c, const char *password)
{
	bool aes128 = c == ANSER_CIPHER_2022_AES_128_GCM;
	gsize n = 0;

	if (strchr(password, ':'))
		return -EPROTONOSUPPORT; /* iPSK:uPSK identity headers */
	k->alg = aes128 ? GNUTLS_CIPHER_AES_128_GCM : GNUTLS_CIPHER_AES_256_GCM;
	k->key_len = k->salt_len = aes128 ? 16 : 32;
	k->v2022 = true;
	guchar *psk = g_base64_decode(password, &n);
	int r = n == k->key_len ? 0 : -EINVAL;
	if (r == 0)
		memcpy(k->key, psk, n);
	gnutls_memset(psk, 0, n);
	g_free(psk);
	if (r == 0 && gnutls_rnd(GNUTLS_RND_NONCE, &k->session_id, sizeof(k->session_id)) < 0)
		r = -EIO;
	return r;
}

int anser_ss_key_init(struct anser_ss_key *k, enum anser_cipher c, const char *password)
{
	memset(k, 0, sizeof(*k));
	switch (c) {
	case ANSER_CIPHER_AES_128_GCM:
		k->alg = GNUTLS_CIPHER_AES_128_GCM;
		k->key_len = 16;
		break;
	case ANSER_CIPHER_AES_256_GCM:
		k->alg = GNUTLS_CIPHER_AES_256_GCM;
		k->key_len = 32;
		break;
	case ANSER_CIPHER_CHACHA20_POLY1305:
		k->alg = GNUTLS_CIPHER_CHACHA20_POLY1305;
		k->key_len = 32;
		break;
	case ANSER_CIPHER_2022_AES_128_GCM:
	case ANSER_CIPHER_2022_AES_256_GCM:
		return key_init_2022(k, c, password);
	default:
		return -EPROTONOSUPPORT;
	}
	k->salt_len = k->key_len;

	/* EVP_BytesToKey(MD5, no salt, 1 round): D1 = MD5(pw), Di = MD5(Di-1 || pw) */
	size_t pl = strlen(password);
	uint8_t *buf = malloc(16 + pl);
	uint8_t d[16];
	size_t have = 0;
	if (!buf)
		return -ENOMEM;
	while (have < k->key_len) {
		size_t in = 0;
		if (have > 0) {
			memcpy(buf, d, 16);
			in = 16;
		}
		memcpy(buf + in, password, pl);
		if (gnutls_hash_fast(GNUTLS_DIG_MD5, buf, in + pl, d) < 0) {
			free(buf);
			return -EIO;
		}
		size_t take = k->key_len - have < 16 ? k->key_len - have : 16;
		memcpy(k->key + have, d, take);
		have += take;
	}
	gnutls_memset(buf, 0, 16 + pl);
	free(buf);
	return 0;
}

/* ----------------------------------------------------------------- AEAD */

static void nonce_inc(uint8_t n[12])
{
	for (size_t i = 0; i < 12 && ++n[i] == 0; i++)
		;
}

/* 2022: BLAKE3 derive_key of PSK || salt (salt: the TCP salt, or the
 * UDP session id, salt_len bytes) */
static int subkey_cipher_2022(const struct anser_ss_key *k, const uint8_t *salt, size_t salt_len,
			      gnutls_aead_cipher_hd_t *h)
{
	uint8_t m[SS_MAX_KEY + SS_MAX_SALT], sub[SS_MAX_KEY];

	memcpy(m, k->key, k->key_len);
	memcpy(m + k->key_len, salt, salt_len);
	anser_blake3_derive(SS2022_SUBKEY, m, k->key_len + salt_len, sub, k->key_len);
	gnutls_datum_t sk = { sub, (unsigned)k->key_len };
	int r = gnutls_aead_cipher_init(h, (gnutls_cipher_algorithm_t)k->alg, &sk);
	gnutls_memset(sub, 0, sizeof(sub));
	gnutls_memset(m, 0, sizeof(m));
	return r < 0 ? -EIO : 0;
}

static int subkey_cipher(const struct anser_ss_key *k, const uint8_t *salt,
			 gnutls_aead_cipher_hd_t *h)
{
	uint8_t prk[20], sub[SS_MAX_KEY];

	if (k->v2022)
		return subkey_cipher_2022(k, salt, k->salt_len, h);
	gnutls_datum_t key = { (unsigned char *)k->key, (unsigned)k->key_len };
	gnutls_datum_t sd = { (unsigned char *)salt, (unsigned)k->salt_len };
	gnutls_datum_t info = { (unsigned char *)"ss-subkey", 9 };

	if (gnutls_hkdf_extract(GNUTLS_MAC_SHA1, &key, &sd, prk) < 0)
		return -EIO;
	gnutls_datum_t pd = { prk, sizeof(prk) };
	if (gnutls_hkdf_expand(GNUTLS_MAC_SHA1, &pd, &info, sub, k->key_len) < 0)
		return -EIO;
	gnutls_datum_t sk = { sub, (unsigned)k->key_len };
	int r = gnutls_aead_cipher_init(h, (gnutls_cipher_algorithm_t)k->alg, &sk);
	gnutls_memset(sub, 0, sizeof(sub));
	gnutls_memset(prk, 0, sizeof(prk));
	return r < 0 ? -EIO : 0;
}

int anser_ss_aead_init(struct anser_ss_aead *a, const struct anser_ss_key *k, const uint8_t *salt)
{
	gnutls_aead_cipher_hd_t h;

	memset(a, 0, sizeof(*a));
	int r = subkey_cipher(k, salt, &h);
	if (r < 0)
		return r;
	a->h = h;
	return 0;
}

void anser_ss_aead_fini(struct anser_ss_aead *a)
{
	if (a->h)
		gnutls_aead_cipher_deinit(a->h);
	a->h = NULL;
}

int anser_ss_seal(struct anser_ss_aead *a, const uint8_t *p, size_t n, uint8_t *out)
{
	size_t cl = n + SS_TAG;
	if (gnutls_aead_cipher_encrypt(a->h, a->nonce, 12, NULL, 0, SS_TAG, p, n, out, &cl) < 0 ||
	    cl != n + SS_TAG)
		return -EIO;
	nonce_inc(a->nonce);
	return 0;
}

ssize_t anser_ss_seal_chunk(struct anser_ss_aead *a, const uint8_t *p, size_t n, uint8_t *out)
{
	uint8_t len[2] = { (uint8_t)(n >> 8), (uint8_t)n };

	if (n == 0 || n > SS_MAX_PAYLOAD)
		return -EINVAL;
	if (anser_ss_seal(a, len, 2, out) < 0 || anser_ss_seal(a, p, n, out + SS_LEN_HDR) < 0)
		return -EIO;
	return (ssize_t)(SS_LEN_HDR + n + SS_TAG);
}

static int open_(struct anser_ss_aead *a, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t pl = n;
	if (gnutls_aead_cipher_decrypt(a->h, a->nonce, 12, NULL, 0, SS_TAG, in, n + SS_TAG, out,
				       &pl) < 0 ||
	    pl != n)
		return -EBADMSG;
	nonce_inc(a->nonce);
	return 0;
}

int anser_ss_open_len(struct anser_ss_aead *a, const uint8_t *in, int max)
{
	uint8_t len[2];
	if (open_(a, in, 2, len) < 0)
		return -EBADMSG;
	int n = (len[0] << 8 | len[1]) & 0xFFFF;
	/* AEAD-2017: the top two bits are reserved (zero) */
	if (n == 0 || n > max)
		return -EBADMSG;
	return n;
}

int anser_ss_open_payload(struct anser_ss_aead *a, const uint8_t *in, size_t n, uint8_t *out)
{
	return open_(a, in, n, out);
}

/* ------------------------------------------------------------- 2022 bits */

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static bool time_ok(uint64_t t)
{
	uint64_t now = (uint64_t)time(NULL);
	return t + SS2022_MAX_SKEW >= now && t <= now + SS2022_MAX_SKEW;
}

/* One AES block with the PSK (the UDP header): CBC with a zero IV over
 * one block is ECB. */
static int psk_block(const struct anser_ss_key *k, const uint8_t in[16], uint8_t out[16], bool enc)
{
	gnutls_cipher_hd_t h;
	uint8_t iv[16] = { 0 };
	gnutls_datum_t key = { (unsigned char *)k->key, (unsigned)k->key_len }, ivd = { iv, 16 };
	int r = gnutls_cipher_init(
		&h, k->key_len == 16 ? GNUTLS_CIPHER_AES_128_CBC : GNUTLS_CIPHER_AES_256_CBC, &key,
		&ivd);
	if (r < 0)
		return -EIO;
	r = enc ? gnutls_cipher_encrypt2(h, in, 16, out, 16)
		: gnutls_cipher_decrypt2(h, in, 16, out, 16);
	gnutls_cipher_deinit(h);
	return r < 0 ? -EIO : 0;
}

/* type(1) time(8) padding length(2), before the address */
#define UDP2022_FIXED 11
/* replies: type, time, the client's session id, padding length */
#define UDP2022_REPLY_FIXED 19

static ssize_t udp_seal_2022(struct anser_ss_key *k, const struct sockaddr *dst, const char *name,
			     const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
	gnutls_aead_cipher_hd_t h;
	uint8_t hdr[16];

	if (cap < 16 + UDP2022_FIXED + SS_TAG + 1)
		return -ENOBUFS;
	put64(hdr, k->session_id);
	put64(hdr + 8, k->packet_id);
	uint8_t *body = out + 16;
	body[0] = 0;
	put64(body + 1, (uint64_t)time(NULL));
	body[9] = body[10] = 0; /* no padding */
	ssize_t al = anser_socks5_put_dest(body + UDP2022_FIXED, cap - 16 - UDP2022_FIXED - SS_TAG,
					   dst, name);
	if (al < 0)
		return al;
	size_t bl = UDP2022_FIXED + (size_t)al + n;
	if (16 + bl + SS_TAG > cap)
		return -ENOBUFS;
	memcpy(body + UDP2022_FIXED + al, p, n);
	int r = subkey_cipher_2022(k, hdr, 8, &h);
	if (r < 0)
		return r;
	giovec_t iov = { body, bl };
	size_t tl = SS_TAG;
	r = gnutls_aead_cipher_encryptv2(h, hdr + 4, 12, NULL, 0, &iov, 1, body + bl, &tl);
	gnutls_aead_cipher_deinit(h);
	if (r < 0 || psk_block(k, hdr, out, true) < 0)
		return -EIO;
	k->packet_id++;
	return (ssize_t)(16 + bl + SS_TAG);
}

static ssize_t udp_open_2022(const struct anser_ss_key *k, uint8_t *buf, size_t len,
			     uint8_t **payload, struct anser_socks5_addr *src)
{
	gnutls_aead_cipher_hd_t h;
	uint8_t hdr[16];

	if (len < 16 + UDP2022_REPLY_FIXED + SS_TAG + 1)
		return -EPROTO;
	if (psk_block(k, buf, hdr, false) < 0)
		return -EIO;
	/* the server's session id keys its replies */
	int r = subkey_cipher_2022(k, hdr, 8, &h);
	if (r < 0)
		return r;
	uint8_t *body = buf + 16;
	size_t bl = len - 16 - SS_TAG;
	giovec_t iov = { body, bl };
	r = gnutls_aead_cipher_decryptv2(h, hdr + 4, 12, NULL, 0, &iov, 1, body + bl, SS_TAG);
	gnutls_aead_cipher_deinit(h);
	if (r < 0)
		return -EBADMSG;
	if (body[0] != 1)
		return -EPROTO;
	if (!time_ok(get64(body + 1)) || get64(body + 9) != k->session_id)
		return -ESTALE;
	size_t off = UDP2022_REPLY_FIXED + (size_t)(body[17] << 8 | body[18]);
	if (off >= bl)
		return -EPROTO;
	int al = anser_socks5_get_addr(body + off, bl - off, src);
	if (al < 0)
		return -EPROTO;
	*payload = body + off + al;
	return (ssize_t)(bl - off - (size_t)al);
}

/* ------------------------------------------------------------------ UDP */

ssize_t anser_ss_udp_seal(struct anser_ss_key *k, const struct sockaddr *dst, const char *name,
			  const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
	gnutls_aead_cipher_hd_t h;
	uint8_t nonce[12] = { 0 };

	if (k->v2022)
		return udp_seal_2022(k, dst, name, p, n, out, cap);
	if (cap < k->salt_len + SS_TAG + 1)
		return -ENOBUFS;
	if (gnutls_rnd(GNUTLS_RND_NONCE, out, k->salt_len) < 0)
		return -EIO;
	uint8_t *body = out + k->salt_len;
	ssize_t al = anser_socks5_put_dest(body, cap - k->salt_len - SS_TAG, dst, name);
	if (al < 0)
		return al;
	if ((size_t)al + n + SS_TAG > cap - k->salt_len)
		return -ENOBUFS;
	memcpy(body + al, p, n);
	int r = subkey_cipher(k, out, &h);
	if (r < 0)
		return r;
	giovec_t iov = { body, (size_t)al + n };
	size_t tl = SS_TAG;
	r = gnutls_aead_cipher_encryptv2(h, nonce, 12, NULL, 0, &iov, 1, body + al + n, &tl);
	gnutls_aead_cipher_deinit(h);
	if (r < 0)
		return -EIO;
	return (ssize_t)(k->salt_len + (size_t)al + n + SS_TAG);
}

ssize_t anser_ss_udp_open(const struct anser_ss_key *k, uint8_t *buf, size_t len, uint8_t **payload,
			  struct anser_socks5_addr *src)
{
	gnutls_aead_cipher_hd_t h;
	uint8_t nonce[12] = { 0 };

	if (k->v2022)
		return udp_open_2022(k, buf, len, payload, src);
	if (len < k->salt_len + SS_TAG + 1)
		return -EPROTO;
	int r = subkey_cipher(k, buf, &h);
	if (r < 0)
		return r;
	uint8_t *body = buf + k->salt_len;
	size_t bl = len - k->salt_len - SS_TAG;
	giovec_t iov = { body, bl };
	r = gnutls_aead_cipher_decryptv2(h, nonce, 12, NULL, 0, &iov, 1, body + bl, SS_TAG);
	gnutls_aead_cipher_deinit(h);
	if (r < 0)
		return -EBADMSG;
	int al = anser_socks5_get_addr(body, bl, src);
	if (al < 0)
		return -EPROTO;
	*payload = body + al;
	return (ssize_t)(bl - (size_t)al);
}

/* --------------------------------------------------------------- stream */

/* Output room for a relay write of up to `payload` bytes in chunks (what
 * is sealed goes out before more is taken), after the salt and the
 * request's header when it is the first. A relay that grew its buffer (a
 * bulk flow: it offers more than OUT_SMALL) gets OUT_BIG's room from the
 * budget (util/bigbuf.h), so its 256 KiB go out in one send. */
#define OUT_ROOM(payload)                                                                          \
	((payload) + ((payload) / SS_MAX_PAYLOAD + 4) * (SS_LEN_HDR + SS_TAG) + SS_MAX_SALT + 2048)
#define OUT_SMALL (64 * 1024)
#define OUT_CAP	  OUT_ROOM(OUT_SMALL)
#define OUT_BIG	  OUT_ROOM(256 * 1024)
/* a whole 2022 chunk (0xFFFF + tag) must fit */
#define IN_CAP (64 * 1024 + 64)

struct ss_stream {
	struct anser_stream s;
	struct anser_ss_key key;
	struct anser_ss_aead enc, dec;
	bool have_dec;
	bool hdr2022; /* the 2022 response header is next */
	bool in_payload;
	bool fresh;		       /* out holds the request header, and no more was tried */
	size_t want;		       /* bytes `in` must hold for the next step */
	size_t plen;		       /* payload length of the chunk being read (in_payload) */
	uint8_t req_salt[SS_MAX_SALT]; /* 2022: the response names it */
	uint8_t *out;		       /* out_room, or OUT_BIG bytes from the budget */
	size_t out_cap;		       /* OUT_CAP or OUT_BIG */
	size_t out_off, out_len;
	size_t in_off, in_len;
	size_t spill_off, spill_len; /* plaintext that did not fit the caller */
	uint8_t spill[SS2022_MAX_PAYLOAD];
	uint8_t in[IN_CAP];
	uint8_t out_room[OUT_CAP];
};

static int ss_flush(struct anser_stream *st)
{
	struct ss_stream *s = (struct ss_stream *)st;
	s->fresh = false;
	return anser_stream_lower_drain(st, s->out, &s->out_off, &s->out_len);
}

static ssize_t ss_write(struct anser_stream *st, const uint8_t *buf, size_t len)
{
	struct ss_stream *s = (struct ss_stream *)st;

	/* Full chunks: the node opens two AEAD boxes per chunk, however
	 * short, so a bulk stream must not be cut into short ones.
	 *  - What was sealed goes out before more is taken: chunks are sealed
	 *    into an empty output, never cut to the room a slow node left in
	 *    it (and nothing is moved up).
	 *  - More than a chunk's worth: whole chunks only; the rest waits for
	 *    the relay's next read to join it (or goes alone in the next
	 *    call, when no more came).
	 *  - The request header, not yet tried, goes with the first chunks:
	 *    one segment, and one read for the node. */
	if (s->out_len > 0 && !s->fresh) {
		int r = ss_flush(st);
		if (r < 0)
			return r;
	}
	if (s->out_cap == OUT_CAP && s->out_len == 0 && len > OUT_SMALL) {
		uint8_t *big = anser_bigbuf_get(OUT_BIG);
		if (big) {
			s->out = big;
			s->out_cap = OUT_BIG;
		}
	}
	if (len > SS_MAX_PAYLOAD)
		len -= len % SS_MAX_PAYLOAD;
	size_t taken = 0;
	while (taken < len) {
		size_t n = len - taken;
		if (n > SS_MAX_PAYLOAD)
			n = SS_MAX_PAYLOAD;
		if (s->out_len + SS_LEN_HDR + n + SS_TAG > s->out_cap)
			break;
		ssize_t c = anser_ss_seal_chunk(&s->enc, buf + taken, n, s->out + s->out_len);
		if (c < 0)
			return c;
		s->out_len += (size_t)c;
		taken += n;
	}
	int r = ss_flush(st);
	if (r < 0 && r != -EAGAIN)
		return r;
	return taken > 0 ? (ssize_t)taken : -EAGAIN;
}

static bool ss_pending(const struct anser_stream *st)
{
	return ((const struct ss_stream *)st)->out_len > 0;
}

static bool ss_readable(const struct anser_stream *st)
{
	const struct ss_stream *s = (const struct ss_stream *)st;
	return s->spill_len > 0 || s->in_len >= s->want;
}

/* Decodes what `in` holds into buf (or the spill); bytes given, or
 * -EBADMSG. */
static ssize_t ss_decode(struct ss_stream *s, uint8_t *buf, size_t len)
{
	size_t got = 0;

	for (;;) {
		if (s->spill_len > 0) {
			size_t n = s->spill_len < len - got ? s->spill_len : len - got;
			memcpy(buf + got, s->spill + s->spill_off, n);
			got += n;
			s->spill_off += n;
			s->spill_len -= n;
			if (s->spill_len > 0)
				return (ssize_t)got;
		}
		if (got == len || s->in_len < s->want)
			return (ssize_t)got;
		const uint8_t *p = s->in + s->in_off;
		if (!s->have_dec) {
			if (anser_ss_aead_init(&s->dec, &s->key, p) < 0)
				return -EIO;
			s->have_dec = true;
			s->in_off += s->key.salt_len;
			s->in_len -= s->key.salt_len;
			s->hdr2022 = s->key.v2022;
			s->want = s->hdr2022 ? 1 + 8 + s->key.salt_len + 2 + SS_TAG : SS_LEN_HDR;
		} else if (s->hdr2022) {
			/* type 1, time, our salt, the first payload's length */
			uint8_t h[1 + 8 + SS_MAX_SALT + 2];
			size_t sl = s->key.salt_len, hl = 1 + 8 + sl + 2;
			if (anser_ss_open_payload(&s->dec, p, hl, h) < 0)
				return -EBADMSG;
			if (h[0] != 1 || !time_ok(get64(h + 1)) ||
			    memcmp(h + 9, s->req_salt, sl) != 0)
				return -EPROTO;
			s->hdr2022 = false;
			s->in_payload = true;
			s->plen = (size_t)(h[9 + sl] << 8 | h[10 + sl]);
			s->in_off += hl + SS_TAG;
			s->in_len -= hl + SS_TAG;
			s->want = s->plen + SS_TAG;
		} else if (!s->in_payload) {
			int n = anser_ss_open_len(
				&s->dec, p, s->key.v2022 ? SS2022_MAX_PAYLOAD : SS_MAX_PAYLOAD);
			if (n < 0)
				return n;
			s->in_payload = true;
			s->plen = (size_t)n;
			s->in_off += SS_LEN_HDR;
			s->in_len -= SS_LEN_HDR;
			s->want = (size_t)n + SS_TAG;
		} else {
			size_t n = s->plen;
			bool direct = len - got >= n;
			uint8_t *dst = direct ? buf + got : s->spill;
			if (anser_ss_open_payload(&s->dec, p, n, dst) < 0)
				return -EBADMSG;
			if (direct) {
				got += n;
			} else {
				s->spill_off = 0;
				s->spill_len = n;
			}
			s->in_off += n + SS_TAG;
			s->in_len -= n + SS_TAG;
			s->in_payload = false;
			s->want = SS_LEN_HDR;
		}
	}
}

static ssize_t ss_read(struct anser_stream *st, uint8_t *buf, size_t len)
{
	struct ss_stream *s = (struct ss_stream *)st;

	if (len == 0)
		return 0;
	for (;;) {
		ssize_t got = ss_decode(s, buf, len);
		if (got != 0)
			return got;
		/* need more bytes from the socket */
		if (s->in_off > 0) {
			memmove(s->in, s->in + s->in_off, s->in_len);
			s->in_off = 0;
		}
		ssize_t n = recv(st->fd, s->in + s->in_len, IN_CAP - s->in_len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -EAGAIN : -errno;
		}
		if (n == 0) /* a cut inside a chunk is an attack or a broken node */
			return s->in_len > 0 || s->in_payload || s->hdr2022 ? -EPROTO : 0;
		s->in_len += (size_t)n;
	}
}

static void ss_free(struct anser_stream *st)
{
	struct ss_stream *s = (struct ss_stream *)st;

	anser_ss_aead_fini(&s->enc);
	anser_ss_aead_fini(&s->dec);
	gnutls_memset(&s->key, 0, sizeof(s->key));
	if (s->out_cap == OUT_BIG)
		anser_bigbuf_put(s->out, OUT_BIG);
	free(s);
}

static const struct anser_stream_ops ss_ops = {
	.write = ss_write,
	.read = ss_read,
	.flush = ss_flush,
	.pending = ss_pending,
	.readable = ss_readable,
	.free = ss_free,
};

/* After the salt: the fixed header (type 0, time, the variable header's
 * length) and the variable one (address, padding: the app has sent
 * nothing yet, and a header without payload must be padded). */
static int request_2022(struct ss_stream *s, const uint8_t *addr, size_t al)
{
	uint8_t fixed[11], var[SOCKS5_MAX_ADDR_MSG + 2 + SS2022_PADDING];
	uint16_t pad;

	if (gnutls_rnd(GNUTLS_RND_NONCE, &pad, sizeof(pad)) < 0)
		return -EIO;
	pad = (uint16_t)(1 + pad % SS2022_PADDING);
	memcpy(var, addr, al);
	var[al] = (uint8_t)(pad >> 8);
	var[al + 1] = (uint8_t)pad;
	memset(var + al + 2, 0, pad);
	size_t vl = al + 2 + pad;
	fixed[0] = 0;
	put64(fixed + 1, (uint64_t)time(NULL));
	fixed[9] = (uint8_t)(vl >> 8);
	fixed[10] = (uint8_t)vl;
	uint8_t *o = s->out + s->key.salt_len;
	if (anser_ss_seal(&s->enc, fixed, sizeof(fixed), o) < 0 ||
	    anser_ss_seal(&s->enc, var, vl, o + sizeof(fixed) + SS_TAG) < 0)
		return -EIO;
	s->out_len = s->key.salt_len + sizeof(fixed) + SS_TAG + vl + SS_TAG;
	return 0;
}

int anser_ss_stream_new(const struct anser_ss_key *k, int fd, const struct sockaddr *dst,
			const char *name, struct anser_stream **out)
{
	struct ss_stream *s = ANSER_ALLOC_HEAD(struct ss_stream, spill);
	uint8_t addr[SOCKS5_MAX_ADDR_MSG];

	if (!s)
		return -ENOMEM;
	s->s.ops = &ss_ops;
	s->s.fd = -1;
	s->out = s->out_room;
	s->out_cap = OUT_CAP;
	s->s.inner = NULL;
	s->key = *k;
	s->want = k->salt_len;
	s->fresh = true;
	ssize_t al = anser_socks5_put_dest(addr, sizeof(addr), dst, name);
	int r = al < 0 ? (int)al : 0;
	if (r == 0 && gnutls_rnd(GNUTLS_RND_NONCE, s->out, k->salt_len) < 0)
		r = -EIO;
	if (r == 0)
		r = anser_ss_aead_init(&s->enc, k, s->out);
	if (r == 0 && k->v2022) {
		memcpy(s->req_salt, s->out, k->salt_len);
		r = request_2022(s, addr, (size_t)al);
	} else if (r == 0) {
		ssize_t c = anser_ss_seal_chunk(&s->enc, addr, (size_t)al, s->out + k->salt_len);
		r = c < 0 ? (int)c : 0;
		s->out_len = k->salt_len + (size_t)(c < 0 ? 0 : c);
	}
	if (r < 0) {
		ss_free(&s->s);
		return r;
	}
	s->s.fd = fd;
	*out = &s->s;
	return 0;
}
