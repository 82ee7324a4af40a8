// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * BLAKE3 from its specification: 1 KiB chunks of 64-byte blocks, each
 * chunk's chaining value merged into a binary tree through a stack (a
 * subtree is complete when the chunk count has a trailing zero bit), the
 * root compressed once more per 64 bytes of output.
 */
#include "blake3.h"

#include <string.h>

enum {
	CHUNK_START = 1 << 0,
	CHUNK_END = 1 << 1,
	PARENT = 1 << 2,
	ROOT = 1 << 3,
	KEYED_HASH = 1 << 4,
	DERIVE_KEY_CONTEXT = 1 << 5,
	DERIVE_KEY_MATERIAL = 1 << 6,
};

#define BLOCK_LEN 64
#define CHUNK_LEN 1024

static const uint32_t IV[8] = { 0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
				0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19 };

static const uint8_t PERMUTATION[16] = { 2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8 };

static inline uint32_t rotr(uint32_t x, unsigned n)
{
	return x >> n | x << (32 - n);
}

static inline void g(uint32_t s[16], int a, int b, int c, int d, uint32_t mx, uint32_t my)
{
	s[a] = s[a] + s[b] + mx;
	s[d] = rotr(s[d] ^ s[a], 16);
	s[c] = s[c] + s[d];
	s[b] = rotr(s[b] ^ s[c], 12);
	s[a] = s[a] + s[b] + my;
	s[d] = rotr(s[d] ^ s[a], 8);
	s[c] = s[c] + s[d];
	s[b] = rotr(s[b] ^ s[c], 7);
}

static uint32_t load32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* The compression function: all 16 words of output. */
static void compress(const uint32_t cv[8], const uint8_t block[BLOCK_LEN], uint64_t counter,
		     uint32_t block_len, uint32_t flags, uint32_t out[16])
{
	uint32_t m[16], t[16];
	uint32_t s[16] = { cv[0],
			   cv[1],
			   cv[2],
			   cv[3],
			   cv[4],
			   cv[5],
			   cv[6],
			   cv[7],
			   IV[0],
			   IV[1],
			   IV[2],
			   IV[3],
			   (uint32_t)counter,
			   (uint32_t)(counter >> 32),
			   block_len,
			   flags };

	for (int i = 0; i < 16; i++)
		m[i] = load32(block + 4 * i);
	for (int r = 0; r < 7; r++) {
		g(s, 0, 4, 8, 12, m[0], m[1]);
		g(s, 1, 5, 9, 13, m[2], m[3]);
		g(s, 2, 6, 10, 14, m[4], m[5]);
		g(s, 3, 7, 11, 15, m[6], m[7]);
		g(s, 0, 5, 10, 15, m[8], m[9]);
		g(s, 1, 6, 11, 12, m[10], m[11]);
		g(s, 2, 7, 8, 13, m[12], m[13]);
		g(s, 3, 4, 9, 14, m[14], m[15]);
		for (int i = 0; i < 16; i++)
			t[i] = m[PERMUTATION[i]];
		memcpy(m, t, sizeof(m));
	}
	for (int i = 0; i < 8; i++) {
		out[i] = s[i] ^ s[i + 8];
		out[i + 8] = s[i + 8] ^ cv[i];
	}
}

static void init(struct anser_blake3 *h, const uint32_t key[8], uint8_t flags)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->key, key, sizeof(h->key));
	memcpy(h->cv, key, sizeof(h->cv));
	h->flags = flags;
}

void anser_blake3_init(struct anser_blake3 *h)
{
	init(h, IV, 0);
}

void anser_blake3_init_keyed(struct anser_blake3 *h, const uint8_t key[ANSER_BLAKE3_KEY_LEN])
{
	uint32_t k[8];
	for (int i = 0; i < 8; i++)
		k[i] = load32(key + 4 * i);
	init(h, k, KEYED_HASH);
}

void anser_blake3_init_derive(struct anser_blake3 *h, const char *context)
{
	uint8_t ck[ANSER_BLAKE3_KEY_LEN];
	uint32_t k[8];

	init(h, IV, DERIVE_KEY_CONTEXT);
	anser_blake3_update(h, context, strlen(context));
	anser_blake3_final(h, ck, sizeof(ck));
	for (int i = 0; i < 8; i++)
		k[i] = load32(ck + 4 * i);
	init(h, k, DERIVE_KEY_MATERIAL);
}

static uint8_t start_flag(const struct anser_blake3 *h)
{
	return h->blocks == 0 ? CHUNK_START : 0;
}

/* A finished chunk's (or parent's) chaining value into the tree: merge
 * every subtree the new chunk count completes. */
static void push_chunk(struct anser_blake3 *h, const uint32_t cv[8], uint64_t total)
{
	uint32_t v[8], out[16];
	uint8_t block[BLOCK_LEN];

	memcpy(v, cv, sizeof(v));
	while ((total & 1) == 0) {
		const uint32_t *left = h->stack[--h->stack_len];
		for (int i = 0; i < 8; i++) {
			store32(block + 4 * i, left[i]);
			store32(block + 32 + 4 * i, v[i]);
		}
		compress(h->key, block, 0, BLOCK_LEN, PARENT | h->flags, out);
		memcpy(v, out, sizeof(v));
		total >>= 1;
	}
	memcpy(h->stack[h->stack_len++], v, sizeof(v));
}

void anser_blake3_update(struct anser_blake3 *h, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t out[16];

	while (len > 0) {
		/* a full block is compressed only once more input follows: the
		 * last block of the last chunk is the output's */
		if (h->block_len == BLOCK_LEN) {
			if (h->blocks == CHUNK_LEN / BLOCK_LEN - 1) {
				compress(h->cv, h->block, h->chunk, BLOCK_LEN,
					 h->flags | start_flag(h) | CHUNK_END, out);
				push_chunk(h, out, ++h->chunk);
				memcpy(h->cv, h->key, sizeof(h->cv));
				h->blocks = 0;
			} else {
				compress(h->cv, h->block, h->chunk, BLOCK_LEN,
					 h->flags | start_flag(h), out);
				memcpy(h->cv, out, sizeof(h->cv));
				h->blocks++;
			}
			h->block_len = 0;
			memset(h->block, 0, sizeof(h->block));
		}
		size_t take = BLOCK_LEN - h->block_len;
		if (take > len)
			take = len;
		memcpy(h->block + h->block_len, p, take);
		h->block_len += (uint8_t)take;
		p += take;
		len -= take;
	}
}

void anser_blake3_final(const struct anser_blake3 *h, uint8_t *out, size_t len)
{
	/* the output node: the open chunk's last block, then up the stack */
	uint32_t cv[8], w[16];
	uint8_t block[BLOCK_LEN];
	uint64_t counter = h->chunk;
	uint32_t block_len = h->block_len;
	uint32_t flags = h->flags | start_flag(h) | CHUNK_END;

	memcpy(cv, h->cv, sizeof(cv));
	memcpy(block, h->block, sizeof(block));
	for (size_t i = h->stack_len; i > 0; i--) {
		compress(cv, block, counter, block_len, flags, w);
		for (int k = 0; k < 8; k++) {
			store32(block + 4 * k, h->stack[i - 1][k]);
			store32(block + 32 + 4 * k, w[k]);
		}
		memcpy(cv, h->key, sizeof(cv));
		counter = 0;
		block_len = BLOCK_LEN;
		flags = PARENT | h->flags;
	}
	for (uint64_t n = 0; len > 0; n++) {
		uint8_t bytes[BLOCK_LEN];
		compress(cv, block, n, block_len, flags | ROOT, w);
		for (int k = 0; k < 16; k++)
			store32(bytes + 4 * k, w[k]);
		size_t take = len < BLOCK_LEN ? len : BLOCK_LEN;
		memcpy(out, bytes, take);
		out += take;
		len -= take;
	}
}

void anser_blake3_derive(const char *context, const void *material, size_t len, uint8_t *out,
			 size_t out_len)
{
	struct anser_blake3 h;

	anser_blake3_init_derive(&h, context);
	anser_blake3_update(&h, material, len);
	anser_blake3_final(&h, out, out_len);
	memset(&h, 0, sizeof(h));
}
