/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HTTP CONNECT (RFC 9110 9.3.6) codec: the request, and the proxy's
 * response head. Pure functions over byte buffers, fuzzed.
 */
#ifndef ANSER_HTTP_H
#define ANSER_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Longest response head we wait for. */
#define HTTP_MAX_HEAD 8192

/* "CONNECT host:port HTTP/1.1" with Host and, when user is set, Basic
 * Proxy-Authorization; host is name when it is set (non-empty), else
 * dst's address. Bytes written or -ENOBUFS/-EINVAL. */
ssize_t anser_http_connect_request(char *buf, size_t len, const struct sockaddr *dst,
				   const char *name, const char *user, const char *pass);
/* The response head in buf, whatever its status: its length (> 0) with
 * *status set; -EAGAIN if incomplete; -EPROTO if it is not HTTP/1.x or
 * longer than HTTP_MAX_HEAD. */
int anser_http_parse_head(const uint8_t *buf, size_t len, int *status);
/* The same for a CONNECT answer: its length (> 0) with *status 2xx; -EAGAIN
 * if incomplete; -EPROTO if it is not HTTP/1.x or longer than
 * HTTP_MAX_HEAD; for other statuses *status is set and -EACCES (401, 403,
 * 407), -EHOSTUNREACH (502, 504), -ECONNREFUSED (others). */
int anser_http_parse_response(const uint8_t *buf, size_t len, int *status);

#endif
