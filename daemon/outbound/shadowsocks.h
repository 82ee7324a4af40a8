/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shadowsocks AEAD (SIP004): aes-128-gcm, aes-256-gcm and
 * chacha20-ietf-poly1305 with GnuTLS. The codec is pure (byte buffers in,
 * byte buffers out) so it can be unit-tested and fuzzed; the stream in
 * ss-stream.c does the socket I/O.
 *
 * TCP:  [salt][len(2)+tag][payload+tag][len+tag][payload+tag]...
 *       the first payload bytes of the client are the target address
 *       (SOCKS5 ATYP ADDR PORT); payloads are at most 0x3FFF bytes.
 * UDP:  [salt][AEAD(address + payload)] with nonce 0, per datagram.
 * Subkey = HKDF-SHA1(master key, salt, "ss-subkey"); master key =
 * OpenSSL's EVP_BytesToKey(MD5) of the password. Nonces are 12-byte
 * little-endian counters.
 *
 * Shadowsocks 2022 (SIP022: 2022-blake3-aes-128-gcm, -aes-256-gcm): the
 * key is the base64 PSK itself; subkey = BLAKE3 derive_key("shadowsocks
 * 2022 session subkey", PSK || salt).
 * TCP request:  [salt][AEAD(type 0, time(8), len(2))][AEAD(address,
 *               padding length(2), padding)] then chunks as above, whose
 *               payloads may be up to 0xFFFF bytes.
 * TCP response: [salt][AEAD(type 1, time(8), request salt, len(2))]
 *               [AEAD(first payload)] then chunks.
 * UDP: [AES-ECB(PSK, session id(8) packet id(8))][AEAD(body)] with the
 *      subkey of PSK || session id and the header's last 12 bytes as the
 *      nonce; body = type 0, time, padding length, padding, address,
 *      payload (replies: type 1, time, the client's session id, ...).
 * Timestamps are Unix seconds, big-endian, and must be within 30 s.
 */
#ifndef ANSER_SHADOWSOCKS_H
#define ANSER_SHADOWSOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "../config/config.h"
#include "socks5.h"
#include "stream.h"

#define SS_MAX_PAYLOAD	   0x3FFF
#define SS2022_MAX_PAYLOAD 0xFFFF
#define SS_TAG		   16
#define SS_MAX_SALT	   32
#define SS_MAX_KEY	   32
/* length header of a chunk: 2 bytes + tag */
#define SS_LEN_HDR (2 + SS_TAG)

struct anser_ss_key {
	int alg; /* gnutls_cipher_algorithm_t */
	size_t key_len, salt_len;
	uint8_t key[SS_MAX_KEY];
	bool v2022;
	/* 2022 UDP: this session's id (random at init) and the next packet's */
	uint64_t session_id, packet_id;
};

/* -EPROTONOSUPPORT for what has no implementation (2022 multi-user
 * iPSK:uPSK keys); -EINVAL for a 2022 key that is not base64 of the
 * cipher's key size. */
int anser_ss_key_init(struct anser_ss_key *k, enum anser_cipher c, const char *password);

/* One direction of a TCP stream: the subkey's cipher and the nonce. */
struct anser_ss_aead {
	void *h; /* gnutls_aead_cipher_hd_t */
	uint8_t nonce[12];
};

int anser_ss_aead_init(struct anser_ss_aead *a, const struct anser_ss_key *k, const uint8_t *salt);
void anser_ss_aead_fini(struct anser_ss_aead *a);
/* Seals n (1..SS_MAX_PAYLOAD) bytes as one chunk into out (room for
 * n + 2 * SS_TAG + 2); returns the chunk's size. */
ssize_t anser_ss_seal_chunk(struct anser_ss_aead *a, const uint8_t *p, size_t n, uint8_t *out);
/* Opens a chunk's length header (SS_LEN_HDR bytes): the payload length
 * (1..max) or -EBADMSG. */
int anser_ss_open_len(struct anser_ss_aead *a, const uint8_t *in, int max);
/* Seals n bytes (a 2022 header) into out (n + SS_TAG) with the next
 * nonce: 0 or -EIO. */
int anser_ss_seal(struct anser_ss_aead *a, const uint8_t *p, size_t n, uint8_t *out);
/* Opens n bytes (a payload or a 2022 header) followed by their tag into
 * out with the next nonce. 0 / -EBADMSG. */
int anser_ss_open_payload(struct anser_ss_aead *a, const uint8_t *in, size_t n, uint8_t *out);

/* UDP: one datagram to dst, or to name:port of dst (name as in
 * anser_socks5_put_dest; 2022: counts the packet id up). Returns its
 * length, -ENOBUFS, -errno. */
ssize_t anser_ss_udp_seal(struct anser_ss_key *k, const struct sockaddr *dst, const char *name,
			  const uint8_t *p, size_t n, uint8_t *out, size_t cap);
/* Opens a datagram from the server in place: the payload starts at
 * *payload (inside buf) and the return value is its length; src is
 * where it came from. -EBADMSG for a forged one, -EPROTO for bad
 * framing, -ESTALE for a 2022 reply too old or for another session. */
ssize_t anser_ss_udp_open(const struct anser_ss_key *k, uint8_t *buf, size_t len, uint8_t **payload,
			  struct anser_socks5_addr *src);

/* A TCP stream over a connected fd (taken) to dst (or name:port, name as
 * in anser_socks5_put_dest): the first bytes sent are the salt and the
 * address chunk (2022: the request headers). */
int anser_ss_stream_new(const struct anser_ss_key *k, int fd, const struct sockaddr *dst,
			const char *name, struct anser_stream **out);

#endif
