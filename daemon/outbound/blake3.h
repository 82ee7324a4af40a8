/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * BLAKE3 (hash, keyed hash, key derivation; any output length), written
 * from the BLAKE3 specification for shadowsocks 2022's session subkeys.
 * Portable, one block at a time: shadowsocks derives a key from tens of
 * bytes per session, so SIMD would buy nothing. tests/unit/test-blake3.c
 * compares it with Debian's b3sum (the BLAKE3 team's tool).
 */
#ifndef ANSER_BLAKE3_H
#define ANSER_BLAKE3_H

#include <stddef.h>
#include <stdint.h>

#define ANSER_BLAKE3_KEY_LEN 32

struct anser_blake3 {
	uint32_t key[8];
	uint32_t cv[8]; /* of the chunk being read */
	uint64_t chunk; /* its number */
	uint8_t block[64];
	uint8_t block_len;
	uint8_t blocks; /* compressed in this chunk */
	uint8_t flags;
	uint8_t stack_len;
	uint32_t stack[54][8]; /* subtree chaining values: 2^54 chunks */
};

void anser_blake3_init(struct anser_blake3 *h);
void anser_blake3_init_keyed(struct anser_blake3 *h, const uint8_t key[ANSER_BLAKE3_KEY_LEN]);
/* The key-derivation mode: context is a hard-coded, application-wide
 * string; the key material follows with update(). */
void anser_blake3_init_derive(struct anser_blake3 *h, const char *context);
void anser_blake3_update(struct anser_blake3 *h, const void *data, size_t len);
/* Any length of output (the state is not changed: finalize again for the
 * same bytes). */
void anser_blake3_final(const struct anser_blake3 *h, uint8_t *out, size_t len);

/* derive_key(context, material) in one call. */
void anser_blake3_derive(const char *context, const void *material, size_t len, uint8_t *out,
			 size_t out_len);

#endif
