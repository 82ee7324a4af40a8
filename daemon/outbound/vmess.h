/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * VMess with AEAD headers (alterId 0), as v2ray 4.28+ speaks it.
 *
 * Request: AuthID(16) = AES-128(KDF(cmdKey, "AES Auth ID Encryption"),
 *          time(8) rand(4) crc32(4)); then the header length and the
 *          header, each sealed with AES-128-GCM under keys and nonces
 *          derived from cmdKey, AuthID and an 8-byte connection nonce.
 *          cmdKey = MD5(uuid || "c48619fe-8f02-49e0-b9e9-edf763e17e21").
 * Header:  VER(1) IV(16) KEY(16) V(1) OPT(1) PAD<<4|SEC(1) 0(1) CMD(1)
 *          PORT(2) ATYP(1) ADDR PADDING FNV1a32(4)
 * Body:    chunks LEN(2) SEALED(LEN) with nonce COUNT(2) || IV[2..12];
 *          an empty chunk ends a direction. The response uses
 *          SHA256(KEY)[0..16] and SHA256(IV)[0..16], and starts with its
 *          own sealed length and header (V must echo ours).
 * KDF:     nested HMAC: H0 = HMAC-SHA256 keyed "VMess AEAD KDF",
 *          Hi = HMAC over H(i-1) keyed path[i-1]; KDF(k, path) = Hn(k).
 *
 * We send OPT = chunk stream only (no length masking, no padding), which
 * every VMess AEAD server accepts.
 */
#ifndef ANSER_VMESS_H
#define ANSER_VMESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "../config/config.h"
#include "stream.h"

/* KDF(key, path[0..n)) -> 32 bytes. n <= 4. */
void anser_vmess_kdf(const uint8_t *key, size_t klen, const uint8_t *const *path,
		     const size_t *plen, size_t n, uint8_t out[32]);
void anser_vmess_cmd_key(const uint8_t uuid[16], uint8_t out[16]);

/* A stream over inner, or over fd when inner is NULL (taken on success).
 * cipher: ANSER_CIPHER_AUTO, _AES_128_GCM, _CHACHA20_POLY1305 or _NONE.
 * udp: a UDP "connection" to dst (command 2): each write of at most
 * VMESS_MAX_DATAGRAM bytes is one datagram, each read returns one. */
#define VMESS_MAX_DATAGRAM 8000
int anser_vmess_stream_new(int fd, struct anser_stream *inner, const uint8_t uuid[16],
			   enum anser_cipher cipher, const struct sockaddr *dst, const char *name,
			   bool udp, struct anser_stream **out);

#endif
