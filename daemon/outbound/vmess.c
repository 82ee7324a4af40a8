// SPDX-License-Identifier: GPL-2.0-or-later
#include "vmess.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "socks5.h"

#define VMESS_CHUNK   8000 /* plaintext bytes per chunk we send */
#define VMESS_MAX_IN  (16384 + 64)
#define TAG	      16
#define OPT_CHUNK     0x01
#define SEC_AES128GCM 3
#define SEC_CHACHA    4
#define SEC_NONE      5

/* ------------------------------------------------------------------ KDF */

static void kdf_level(const uint8_t *const *path, const size_t *plen, size_t level,
		      const uint8_t *msg, size_t mlen, uint8_t out[32])
{
	if (level == 0) {
		gnutls_hmac_fast(GNUTLS_MAC_SHA256, "VMess AEAD KDF", 14, msg, mlen, out);
		return;
	}
	uint8_t k[64] = { 0 }, inner[32];
	if (plen[level - 1] > 64)
		kdf_level(path, plen, level - 1, path[level - 1], plen[level - 1], k);
	else
		memcpy(k, path[level - 1], plen[level - 1]);
	uint8_t stack[256];
	uint8_t *buf = 64 + mlen <= sizeof(stack) ? stack : malloc(64 + mlen);
	if (!buf) {
		memset(out, 0, 32);
		return;
	}
	for (size_t i = 0; i < 64; i++)
		buf[i] = k[i] ^ 0x36;
	memcpy(buf + 64, msg, mlen);
	kdf_level(path, plen, level - 1, buf, 64 + mlen, inner);
	if (buf != stack)
		free(buf);
	uint8_t ob[96];
	for (size_t i = 0; i < 64; i++)
		ob[i] = k[i] ^ 0x5c;
	memcpy(ob + 64, inner, 32);
	kdf_level(path, plen, level - 1, ob, sizeof(ob), out);
}

void anser_vmess_kdf(const uint8_t *key, size_t klen, const uint8_t *const *path,
		     const size_t *plen, size_t n, uint8_t out[32])
{
	kdf_level(path, plen, n, key, klen, out);
}

/* KDF with string labels and optional binary parts. */
static void kdf(const uint8_t *key, size_t klen, const char *label, const uint8_t *p2, size_t l2,
		const uint8_t *p3, size_t l3, uint8_t out[32])
{
	const uint8_t *path[3] = { (const uint8_t *)label, p2, p3 };
	size_t plen[3] = { strlen(label), l2, l3 };
	anser_vmess_kdf(key, klen, path, plen, p3 ? 3 : p2 ? 2 : 1, out);
}

void anser_vmess_cmd_key(const uint8_t uuid[16], uint8_t out[16])
{
	static const char salt[] = "c48619fe-8f02-49e0-b9e9-edf763e17e21";
	uint8_t b[16 + sizeof(salt) - 1];
	memcpy(b, uuid, 16);
	memcpy(b + 16, salt, sizeof(salt) - 1);
	gnutls_hash_fast(GNUTLS_DIG_MD5, b, sizeof(b), out);
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c >> 1 ^ (0xEDB88320u & (0u - (c & 1)));
	}
	return ~c;
}

static uint32_t fnv1a32(const uint8_t *p, size_t n)
{
	uint32_t h = 0x811c9dc5u;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x01000193u;
	}
	return h;
}

static void put_be32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

/* One AES-128-GCM seal/open with a fresh key (header parts). */
static int gcm(bool enc, const uint8_t key[16], const uint8_t nonce[12], const uint8_t *ad,
	       size_t adl, const uint8_t *in, size_t inl, uint8_t *out)
{
	gnutls_aead_cipher_hd_t h;
	gnutls_datum_t k = { (unsigned char *)key, 16 };
	if (gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_128_GCM, &k) < 0)
		return -EIO;
	size_t ol = enc ? inl + TAG : inl;
	int r = enc ? gnutls_aead_cipher_encrypt(h, nonce, 12, ad, adl, TAG, in, inl, out, &ol)
		    : gnutls_aead_cipher_decrypt(h, nonce, 12, ad, adl, TAG, in, inl, out, &ol);
	gnutls_aead_cipher_deinit(h);
	return r < 0 ? -EBADMSG : (int)ol;
}

static int auth_id(const uint8_t cmd_key[16], uint8_t out[16])
{
	uint8_t plain[16], k[32], iv[16] = { 0 };
	uint64_t now = (uint64_t)time(NULL);
	for (int i = 0; i < 8; i++)
		plain[i] = (uint8_t)(now >> (56 - 8 * i));
	if (gnutls_rnd(GNUTLS_RND_NONCE, plain + 8, 4) < 0)
		return -EIO;
	put_be32(plain + 12, crc32_ieee(plain, 12));
	kdf(cmd_key, 16, "AES Auth ID Encryption", NULL, 0, NULL, 0, k);
	/* one block: CBC with a zero IV is ECB */
	gnutls_cipher_hd_t h;
	gnutls_datum_t kd = { k, 16 }, ivd = { iv, 16 };
	if (gnutls_cipher_init(&h, GNUTLS_CIPHER_AES_128_CBC, &kd, &ivd) < 0)
		return -EIO;
	int r = gnutls_cipher_encrypt2(h, plain, 16, out, 16);
	gnutls_cipher_deinit(h);
	return r < 0 ? -EIO : 0;
}

/* ------------------------------------------------------------ body AEAD */

struct body {
	gnutls_aead_cipher_hd_t h; /* NULL for security none */
	uint8_t iv[16];
	uint16_t count;
};

static int body_init(struct body *b, int sec, const uint8_t key[16], const uint8_t iv[16])
{
	memset(b, 0, sizeof(*b));
	memcpy(b->iv, iv, 16);
	if (sec == SEC_NONE)
		return 0;
	uint8_t k[32];
	gnutls_datum_t kd = { k, 16 };
	gnutls_cipher_algorithm_t alg = GNUTLS_CIPHER_AES_128_GCM;
	if (sec == SEC_CHACHA) {
		gnutls_hash_fast(GNUTLS_DIG_MD5, key, 16, k);
		gnutls_hash_fast(GNUTLS_DIG_MD5, k, 16, k + 16);
		kd.size = 32;
		alg = GNUTLS_CIPHER_CHACHA20_POLY1305;
	} else {
		memcpy(k, key, 16);
	}
	int r = gnutls_aead_cipher_init(&b->h, alg, &kd);
	explicit_bzero(k, sizeof(k));
	return r < 0 ? -EIO : 0;
}

static void body_nonce(struct body *b, uint8_t n[12])
{
	n[0] = (uint8_t)(b->count >> 8);
	n[1] = (uint8_t)b->count;
	memcpy(n + 2, b->iv + 2, 10);
	b->count++;
}

/* ----------------------------------------------------------------- stream */

enum { RS_LEN, RS_HEADER, RS_SIZE, RS_DATA, RS_EOF };

struct vmess_stream {
	struct anser_stream s;
	int sec;
	uint8_t v;
	struct body enc, dec;
	uint8_t resp_key[16], resp_iv[16];
	bool term_queued;
	bool packets; /* UDP: a read returns one chunk (one datagram) */
	size_t out_off, out_len;
	int rstate;
	size_t want; /* bytes in[] must hold for the state */
	size_t in_off, in_len;
	size_t spill_off, spill_len;
	/* buffers last (ANSER_ALLOC_HEAD) */
	uint8_t out[VMESS_CHUNK + 2 + TAG + 512];
	uint8_t spill[VMESS_MAX_IN];
	uint8_t in[2 * VMESS_MAX_IN];
};

static int vm_flush(struct anser_stream *st)
{
	struct vmess_stream *v = (struct vmess_stream *)st;
	int r = anser_stream_lower_drain(st, v->out, &v->out_off, &v->out_len);
	return r < 0 ? r : anser_stream_lower_flush(st);
}

/* Appends one chunk of n bytes (n may be 0: the end marker). */
static int put_chunk(struct vmess_stream *v, const uint8_t *p, size_t n)
{
	uint8_t *o = v->out + v->out_off + v->out_len;
	if (v->sec == SEC_NONE) {
		o[0] = (uint8_t)(n >> 8);
		o[1] = (uint8_t)n;
		if (n) /* the end marker has no bytes (and p is NULL) */
			memcpy(o + 2, p, n);
		v->out_len += 2 + n;
		return 0;
	}
	uint8_t nonce[12];
	size_t cl = n + TAG;
	o[0] = (uint8_t)(cl >> 8);
	o[1] = (uint8_t)cl;
	body_nonce(&v->enc, nonce);
	if (gnutls_aead_cipher_encrypt(v->enc.h, nonce, 12, NULL, 0, TAG, p, n, o + 2, &cl) < 0)
		return -EIO;
	v->out_len += 2 + cl;
	return 0;
}

static ssize_t vm_write(struct anser_stream *st, const uint8_t *buf, size_t len)
{
	struct vmess_stream *v = (struct vmess_stream *)st;
	size_t n = len < VMESS_CHUNK ? len : VMESS_CHUNK;
	int r;
	if (n == 0)
		return 0;
	if (v->out_off > 0 && v->out_len > 0)
		memmove(v->out, v->out + v->out_off, v->out_len);
	v->out_off = 0;
	/* the request header goes out with the first chunk when both fit */
	if (v->out_len + 2 + n + TAG > sizeof(v->out)) {
		r = vm_flush(st);
		if (r < 0)
			return r;
	}
	r = put_chunk(v, buf, n);
	if (r < 0)
		return r;
	r = vm_flush(st);
	if (r < 0 && r != -EAGAIN)
		return r;
	return (ssize_t)n;
}

static int vm_close_write(struct anser_stream *st)
{
	struct vmess_stream *v = (struct vmess_stream *)st;
	int r = vm_flush(st);
	if (r < 0)
		return r;
	if (!v->term_queued) {
		v->term_queued = true;
		r = put_chunk(v, NULL, 0);
		if (r < 0)
			return r;
	}
	return vm_flush(st);
}

/* Opens sealed bytes (len includes the tag) into out; -EBADMSG. */
static int open_body(struct vmess_stream *v, const uint8_t *in, size_t len, uint8_t *out)
{
	if (v->sec == SEC_NONE) {
		memcpy(out, in, len);
		return (int)len;
	}
	if (len < TAG)
		return -EBADMSG;
	uint8_t nonce[12];
	size_t pl = len - TAG;
	body_nonce(&v->dec, nonce);
	if (gnutls_aead_cipher_decrypt(v->dec.h, nonce, 12, NULL, 0, TAG, in, len, out, &pl) < 0)
		return -EBADMSG;
	return (int)pl;
}

static int resp_header_step(struct vmess_stream *v, const uint8_t *p)
{
	uint8_t k[32], n[32], plain[2 + 260];
	if (v->rstate == RS_LEN) {
		kdf(v->resp_key, 16, "AEAD Resp Header Len Key", NULL, 0, NULL, 0, k);
		kdf(v->resp_iv, 16, "AEAD Resp Header Len IV", NULL, 0, NULL, 0, n);
		if (gcm(false, k, n, NULL, 0, p, 2 + TAG, plain) != 2)
			return -EBADMSG;
		size_t hl = (size_t)plain[0] << 8 | plain[1];
		if (hl < 4 || hl > 260)
			return -EPROTO;
		v->rstate = RS_HEADER;
		v->want = hl + TAG;
		return 0;
	}
	kdf(v->resp_key, 16, "AEAD Resp Header Key", NULL, 0, NULL, 0, k);
	kdf(v->resp_iv, 16, "AEAD Resp Header IV", NULL, 0, NULL, 0, n);
	int r = gcm(false, k, n, NULL, 0, p, v->want, plain);
	if (r < 4 || plain[0] != v->v)
		return -EBADMSG; /* a response to someone else's request */
	v->rstate = RS_SIZE;
	v->want = 2;
	return 0;
}

static ssize_t vm_decode(struct vmess_stream *v, uint8_t *buf, size_t len)
{
	size_t got = 0;
	for (;;) {
		if (v->spill_len > 0) {
			size_t n = v->spill_len < len - got ? v->spill_len : len - got;
			memcpy(buf + got, v->spill + v->spill_off, n);
			v->spill_off += n;
			v->spill_len -= n;
			got += n;
			if (v->spill_len > 0)
				return (ssize_t)got;
		}
		if (got == len || v->rstate == RS_EOF || v->in_len < v->want)
			return (ssize_t)got;
		const uint8_t *p = v->in + v->in_off;
		size_t used = v->want;
		if (v->rstate == RS_LEN || v->rstate == RS_HEADER) {
			int r = resp_header_step(v, p);
			if (r < 0)
				return r;
		} else if (v->rstate == RS_SIZE) {
			size_t n = (size_t)p[0] << 8 | p[1];
			if (n > VMESS_MAX_IN || (v->sec != SEC_NONE && n < TAG))
				return -EPROTO;
			v->rstate = RS_DATA;
			v->want = n;
			if (n == 0) { /* security none: the end marker */
				v->rstate = RS_EOF;
				v->want = 0;
			}
		} else {
			bool direct = len - got >= v->want;
			int n = open_body(v, p, v->want, direct ? buf + got : v->spill);
			if (n < 0)
				return n;
			if (n == 0) {
				v->rstate = RS_EOF;
			} else if (direct) {
				got += (size_t)n;
				if (v->packets) {
					v->rstate = RS_SIZE;
					v->want = 2;
					v->in_off += used;
					v->in_len -= used;
					return (ssize_t)got;
				}
			} else {
				v->spill_off = 0;
				v->spill_len = (size_t)n;
			}
			if (v->rstate != RS_EOF) {
				v->rstate = RS_SIZE;
				v->want = 2;
			}
		}
		v->in_off += used;
		v->in_len -= used;
	}
}

static ssize_t vm_read(struct anser_stream *st, uint8_t *buf, size_t len)
{
	struct vmess_stream *v = (struct vmess_stream *)st;
	if (len == 0)
		return 0;
	for (;;) {
		ssize_t got = vm_decode(v, buf, len);
		if (got != 0)
			return got;
		if (v->rstate == RS_EOF)
			return 0;
		if (v->in_off > 0) {
			memmove(v->in, v->in + v->in_off, v->in_len);
			v->in_off = 0;
		}
		ssize_t n =
			anser_stream_lower_read(st, v->in + v->in_len, sizeof(v->in) - v->in_len);
		if (n < 0)
			return n;
		/* A server that finished sends the empty chunk first (v2ray does
		 * on every clean end): a close without it is a cut stream, and
		 * the app must see an error, not a clean but short end. */
		if (n == 0)
			return v->in_len > 0 || v->rstate != RS_SIZE ? -EPROTO : -ECONNRESET;
		v->in_len += (size_t)n;
	}
}

static bool vm_pending(const struct anser_stream *st)
{
	return ((const struct vmess_stream *)st)->out_len > 0 || anser_stream_lower_pending(st);
}

static bool vm_readable(const struct anser_stream *st)
{
	const struct vmess_stream *v = (const struct vmess_stream *)st;
	return v->spill_len > 0 || v->rstate == RS_EOF || (v->want > 0 && v->in_len >= v->want) ||
	       anser_stream_lower_readable(st);
}

static void vm_free(struct anser_stream *st)
{
	struct vmess_stream *v = (struct vmess_stream *)st;
	if (v->enc.h)
		gnutls_aead_cipher_deinit(v->enc.h);
	if (v->dec.h)
		gnutls_aead_cipher_deinit(v->dec.h);
	explicit_bzero(v->resp_key, sizeof(v->resp_key));
	free(v);
}

static const struct anser_stream_ops vmess_ops = {
	.write = vm_write,
	.read = vm_read,
	.flush = vm_flush,
	.pending = vm_pending,
	.readable = vm_readable,
	.free = vm_free,
	.close_write = vm_close_write,
};

/* The plaintext request header; its length. */
static ssize_t request_header(uint8_t *h, const uint8_t iv[16], const uint8_t key[16], uint8_t v,
			      int sec, const struct sockaddr *dst, const char *name, bool udp)
{
	size_t o = 0;
	uint8_t pad = 0;
	h[o++] = 1;
	memcpy(h + o, iv, 16);
	o += 16;
	memcpy(h + o, key, 16);
	o += 16;
	h[o++] = v;
	h[o++] = OPT_CHUNK;
	if (gnutls_rnd(GNUTLS_RND_NONCE, &pad, 1) < 0)
		return -EIO;
	pad &= 0x0F;
	h[o++] = (uint8_t)(pad << 4 | sec);
	h[o++] = 0;
	h[o++] = udp ? 2 : 1;
	ssize_t al = anser_put_port_addr(h + o, SOCKS5_MAX_ADDR_MSG, dst, name);
	if (al < 0)
		return al;
	o += (size_t)al;
	if (pad && gnutls_rnd(GNUTLS_RND_NONCE, h + o, pad) < 0)
		return -EIO;
	o += pad;
	put_be32(h + o, fnv1a32(h, o));
	return (ssize_t)(o + 4);
}

static int seal_request(struct vmess_stream *v, const uint8_t cmd_key[16], const uint8_t *hdr,
			size_t hl)
{
	uint8_t *o = v->out;
	uint8_t aid[16], cn[8], k[32], n[32], lenb[2] = { (uint8_t)(hl >> 8), (uint8_t)hl };
	if (auth_id(cmd_key, aid) < 0 || gnutls_rnd(GNUTLS_RND_NONCE, cn, 8) < 0)
		return -EIO;
	memcpy(o, aid, 16);
	kdf(cmd_key, 16, "VMess Header AEAD Key_Length", aid, 16, cn, 8, k);
	kdf(cmd_key, 16, "VMess Header AEAD Nonce_Length", aid, 16, cn, 8, n);
	if (gcm(true, k, n, aid, 16, lenb, 2, o + 16) != 2 + TAG)
		return -EIO;
	memcpy(o + 16 + 2 + TAG, cn, 8);
	kdf(cmd_key, 16, "VMess Header AEAD Key", aid, 16, cn, 8, k);
	kdf(cmd_key, 16, "VMess Header AEAD Nonce", aid, 16, cn, 8, n);
	int r = gcm(true, k, n, aid, 16, hdr, hl, o + 16 + 2 + TAG + 8);
	if (r != (int)(hl + TAG))
		return -EIO;
	v->out_len = 16 + 2 + TAG + 8 + hl + TAG;
	return 0;
}

int anser_vmess_stream_new(int fd, struct anser_stream *inner, const uint8_t uuid[16],
			   enum anser_cipher cipher, const struct sockaddr *dst, const char *name,
			   bool udp, struct anser_stream **out)
{
	int sec;
	switch (cipher) {
	case ANSER_CIPHER_AUTO:
	case ANSER_CIPHER_AES_128_GCM:
		sec = SEC_AES128GCM;
		break;
	case ANSER_CIPHER_CHACHA20_POLY1305:
		sec = SEC_CHACHA;
		break;
	case ANSER_CIPHER_NONE:
		sec = SEC_NONE;
		break;
	default:
		return -EPROTONOSUPPORT;
	}
	struct vmess_stream *v = ANSER_ALLOC_HEAD(struct vmess_stream, out);
	if (!v)
		return -ENOMEM;
	/* the longest header: a 255-byte name and 15 bytes of padding */
	uint8_t key[16], iv[16], cmd_key[16], hdr[384], h32[32];
	int r = gnutls_rnd(GNUTLS_RND_RANDOM, key, 16) < 0 ||
				gnutls_rnd(GNUTLS_RND_NONCE, iv, 16) < 0 ||
				gnutls_rnd(GNUTLS_RND_NONCE, &v->v, 1) < 0
			? -EIO
			: 0;
	v->sec = sec;
	anser_vmess_cmd_key(uuid, cmd_key);
	gnutls_hash_fast(GNUTLS_DIG_SHA256, key, 16, h32);
	memcpy(v->resp_key, h32, 16);
	gnutls_hash_fast(GNUTLS_DIG_SHA256, iv, 16, h32);
	memcpy(v->resp_iv, h32, 16);
	ssize_t hl = r < 0 ? r : request_header(hdr, iv, key, v->v, sec, dst, name, udp);
	v->packets = udp;
	r = hl < 0 ? (int)hl : seal_request(v, cmd_key, hdr, (size_t)hl);
	if (r == 0)
		r = body_init(&v->enc, sec, key, iv);
	if (r == 0)
		r = body_init(&v->dec, sec, v->resp_key, v->resp_iv);
	explicit_bzero(key, sizeof(key));
	explicit_bzero(cmd_key, sizeof(cmd_key));
	if (r < 0) {
		vm_free(&v->s);
		return r;
	}
	v->rstate = RS_LEN;
	v->want = 2 + TAG;
	v->s.ops = &vmess_ops;
	v->s.fd = fd;
	v->s.inner = inner;
	*out = &v->s;
	return 0;
}
