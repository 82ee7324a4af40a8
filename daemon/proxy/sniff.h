/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sniff: the name a client asks for, read from the first bytes it sends
 * on a proxied flow -- a TLS ClientHello's server_name (RFC 8446, 6066),
 * an HTTP/1 request's Host (RFC 9112), or the ClientHello inside QUIC
 * Initial packets (v1: RFC 9000/9001; v2: RFC 9369), decrypted with the
 * Initial keys every observer can derive from the packet's Destination
 * Connection ID.
 *
 * Each returns ANSER_SNIFF_FOUND with `name` written (lowercase, no
 * trailing dot, NUL-terminated, 1..253 bytes of letters, digits, '-', '_'
 * and dots, with at least one letter: never an IP literal),
 * ANSER_SNIFF_MORE when the bytes are a proper prefix of something that
 * may still carry a name (the caller waits for more, within its
 * sniffing_timeout and buffer), or ANSER_SNIFF_NONE when they are not
 * that protocol or carry no usable name. Pure: no allocation that
 * outlives a call, no global state, safe from any thread; fuzzed by
 * tests/fuzz/fuzz-sniff-*.c.
 */
#ifndef ANSER_SNIFF_H
#define ANSER_SNIFF_H

#include <stddef.h>
#include <stdint.h>

#define ANSER_SNIFF_NAME_MAX 253

enum anser_sniff {
	ANSER_SNIFF_NONE = 0,
	ANSER_SNIFF_MORE = 1,
	ANSER_SNIFF_FOUND = 2,
};

/* A stream's first bytes: one or more TLS records holding a ClientHello
 * (which may span records). */
enum anser_sniff anser_sniff_tls(const uint8_t *p, size_t n, char name[ANSER_SNIFF_NAME_MAX + 1]);
/* A stream's first bytes: an HTTP/1.x request line and headers. */
enum anser_sniff anser_sniff_http(const uint8_t *p, size_t n, char name[ANSER_SNIFF_NAME_MAX + 1]);
/* Either of the two, whichever the first bytes look like. */
enum anser_sniff anser_sniff_stream(const uint8_t *p, size_t n,
				    char name[ANSER_SNIFF_NAME_MAX + 1]);

/* The first datagrams of a UDP flow, in the order they were sent (each
 * may hold coalesced QUIC packets; only Initial packets are read). The
 * CRYPTO frames of all of them are put together by offset, so a
 * ClientHello split over several Initial packets, or sent in shuffled
 * CRYPTO frames, is read whole. MORE: Initial packets whose CRYPTO data
 * does not reach the server_name yet. */
enum anser_sniff anser_sniff_quic(const uint8_t *const *pkts, const size_t *lens, size_t n_pkts,
				  char name[ANSER_SNIFF_NAME_MAX + 1]);

/* QUIC's Initial secrets for the client's packets (exposed for tests
 * against the RFCs' vectors): version 1 (0x00000001) or 2 (0x6b3343cf).
 * 0, or -EPROTONOSUPPORT for other versions, -EIO if the crypto fails. */
struct anser_quic_keys {
	uint8_t key[16], iv[12], hp[16];
};
int anser_quic_client_keys(uint32_t version, const uint8_t *dcid, size_t dcid_len,
			   struct anser_quic_keys *out);

#endif
