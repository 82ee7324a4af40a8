/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * TLS client streams (GnuTLS) for https, trojan, vmess and vless nodes:
 * SNI, ALPN, verification against the system trust store (or none when
 * the node allows insecure), non-blocking handshake.
 */
#ifndef ANSER_TLS_H
#define ANSER_TLS_H

#include <stdbool.h>
#include <stdint.h>

#include "stream.h"

/* A TLS stream over fd (taken on success). server_name: SNI and the name
 * the certificate must match (an IP literal is matched against IP SANs
 * and sent without SNI); alpn: comma-separated, NULL for none. */
int anser_tls_stream_new(int fd, const char *server_name, const char *alpn, bool insecure,
			 struct anser_stream **out);
/* Drives the handshake: 0 done, -EAGAIN (wait for anser_tls_events()),
 * -ECONNREFUSED (TLS alert or failure), -EPERM (certificate rejected). */
int anser_tls_handshake(struct anser_stream *s);
uint32_t anser_tls_events(const struct anser_stream *s);
/* What went wrong in the handshake, for logs ("certificate not trusted"). */
const char *anser_tls_error(const struct anser_stream *s);

#endif
