/* SPDX-License-Identifier: GPL-2.0-or-later */
/* QUIC long-header packets protected the way a client protects its
 * Initials (RFC 9001 5: AEAD, then header protection), for the sniffing
 * tests and fuzzer. Keys come from anser_quic_client_keys(), which the
 * unit test checks against the RFCs' vectors; test-sniff also checks
 * that this reproduces the RFCs' sample packets byte for byte. */
#ifndef ANSER_TESTS_QUICSEAL_H
#define ANSER_TESTS_QUICSEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "daemon/proxy/sniff.h"

#define QUICSEAL_V1 0x00000001u
#define QUICSEAL_V2 0x6b3343cfu

enum quicseal_type {
	QUICSEAL_INITIAL,
	QUICSEAL_0RTT,
	QUICSEAL_HANDSHAKE,
};

struct quicseal {
	uint32_t version;
	enum quicseal_type type;
	const uint8_t *dcid, *scid, *token;
	size_t dcid_len, scid_len, token_len;
	uint32_t pn;
	size_t pn_len;	   /* 1..4 */
	bool no_fixed_bit; /* greased, as RFC 9287 lets a client */
	unsigned reserved; /* the two reserved bits, which must be 0 */
};

/* A packet carrying `frames` at out; PADDING is added when the payload
 * is too short to sample for header protection. Its length, 0 if it
 * does not fit in cap. */
static inline size_t quicseal(const struct quicseal *q, const uint8_t *frames, size_t n,
			      uint8_t *out, size_t cap)
{
	struct anser_quic_keys k;
	uint8_t plain[4096], nonce[12], iv[16] = { 0 }, mask[16];
	size_t i = 0, min = 4 - q->pn_len;
	unsigned type = q->type;

	if (n > sizeof(plain) || q->pn_len < 1 || q->pn_len > 4 || q->dcid_len > 255 ||
	    q->scid_len > 255 || q->token_len > 16383)
		return 0;
	if (n)
		memcpy(plain, frames, n);
	if (n < min) {
		memset(plain + n, 0, min - n);
		n = min;
	}
	size_t length = q->pn_len + n + 16;
	if (length > 16383 ||
	    cap < 1 + 4 + 2 + q->dcid_len + q->scid_len + 2 + q->token_len + 2 + length)
		return 0;
	if (anser_quic_client_keys(q->version, q->dcid, q->dcid_len, &k) < 0)
		return 0;
	if (q->version == QUICSEAL_V2)
		type = (type + 1) & 3; /* RFC 9369 3.2 */
	out[i++] = (uint8_t)((q->no_fixed_bit ? 0x80 : 0xc0) | type << 4 | (q->reserved & 3) << 2 |
			     (q->pn_len - 1));
	for (int s = 24; s >= 0; s -= 8)
		out[i++] = (uint8_t)(q->version >> s);
	out[i++] = (uint8_t)q->dcid_len;
	if (q->dcid_len)
		memcpy(out + i, q->dcid, q->dcid_len);
	i += q->dcid_len;
	out[i++] = (uint8_t)q->scid_len;
	if (q->scid_len)
		memcpy(out + i, q->scid, q->scid_len);
	i += q->scid_len;
	if (q->type == QUICSEAL_INITIAL) {
		if (q->token_len < 64) {
			out[i++] = (uint8_t)q->token_len;
		} else {
			out[i++] = (uint8_t)(0x40 | q->token_len >> 8);
			out[i++] = (uint8_t)q->token_len;
		}
		if (q->token_len)
			memcpy(out + i, q->token, q->token_len);
		i += q->token_len;
	}
	out[i++] = (uint8_t)(0x40 | length >> 8);
	out[i++] = (uint8_t)length;
	size_t pn = i;
	for (size_t b = q->pn_len; b > 0; b--)
		out[i++] = (uint8_t)(q->pn >> (8 * (b - 1)));
	memcpy(nonce, k.iv, sizeof(nonce));
	for (size_t b = 0; b < 4; b++)
		nonce[11 - b] ^= (uint8_t)(q->pn >> (8 * b));

	gnutls_aead_cipher_hd_t a;
	gnutls_datum_t kd = { k.key, sizeof(k.key) };
	size_t cl = n + 16;
	bool ok = gnutls_aead_cipher_init(&a, GNUTLS_CIPHER_AES_128_GCM, &kd) >= 0;
	if (ok) {
		ok = gnutls_aead_cipher_encrypt(a, nonce, sizeof(nonce), out, i, 16, plain, n,
						out + i, &cl) >= 0;
		gnutls_aead_cipher_deinit(a);
	}

	gnutls_cipher_hd_t h;
	gnutls_datum_t hd = { k.hp, sizeof(k.hp) }, ivd = { iv, sizeof(iv) };
	if (ok && gnutls_cipher_init(&h, GNUTLS_CIPHER_AES_128_CBC, &hd, &ivd) >= 0) {
		ok = gnutls_cipher_encrypt2(h, out + pn + 4, 16, mask, 16) >= 0;
		gnutls_cipher_deinit(h);
	} else {
		ok = false;
	}
	if (!ok)
		return 0;
	out[0] ^= mask[0] & 0x0f;
	for (size_t b = 0; b < q->pn_len; b++)
		out[pn + b] ^= mask[1 + b];
	return i + cl;
}

#endif
