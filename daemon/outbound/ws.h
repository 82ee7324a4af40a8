/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * WebSocket client transport (RFC 6455) for vmess, vless and trojan
 * nodes with type=ws: the upgrade request, the server's 101 with a
 * checked Sec-WebSocket-Accept, then binary frames (masked from us,
 * unmasked from the server). Pings are answered, a close frame is an end.
 */
#ifndef ANSER_WS_H
#define ANSER_WS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stream.h"

/* A WebSocket stream over inner, or over fd when inner is NULL (taken on success); the upgrade request
 * is built now and sent by anser_ws_handshake(). host: the Host header. */
int anser_ws_stream_new(int fd, struct anser_stream *inner, const char *host, const char *path,
			struct anser_stream **out);
/* 0 when upgraded, -EAGAIN (wait for anser_ws_events()), -ECONNREFUSED
 * when the server answered something else than 101 with the right
 * accept key (*status set to its status), -EPROTO for garbage. */
int anser_ws_handshake(struct anser_stream *s, int *status);
uint32_t anser_ws_events(const struct anser_stream *s);
/* The Sec-WebSocket-Accept the server must send (tests and fuzzing). */
const char *anser_ws_expected_accept(const struct anser_stream *s);

/* Frame codec, exposed for tests and fuzzing. A frame header for n
 * payload bytes (mask: 4 bytes, NULL for none); its length. */
size_t anser_ws_frame_header(uint8_t *buf, uint8_t opcode, size_t n, const uint8_t *mask);
/* Parses a frame header: its length (> 0) and *opcode, *fin, *payload;
 * -EAGAIN if incomplete; -EPROTO if invalid (a masked server frame,
 * reserved bits, a control frame over 125 bytes or fragmented, a length
 * over 2^62). */
int anser_ws_parse_header(const uint8_t *buf, size_t len, uint8_t *opcode, int *fin,
			  uint64_t *payload);

#endif
