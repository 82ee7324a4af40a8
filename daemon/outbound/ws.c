// SPDX-License-Identifier: GPL-2.0-or-later
#include "ws.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <glib.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "http.h"

#define WS_GUID	     "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_FRAME 16370 /* header + payload fit one TLS record */
#define WS_OUT_CAP   (WS_MAX_FRAME + 14 + 131)
#define WS_IN_CAP    (32 * 1024)

enum {
	WS_OP_CONT = 0,
	WS_OP_TEXT = 1,
	WS_OP_BIN = 2,
	WS_OP_CLOSE = 8,
	WS_OP_PING = 9,
	WS_OP_PONG = 10
};

struct ws_stream {
	struct anser_stream s;
	bool upgraded, req_sent, closed;
	char accept[29]; /* the Sec-WebSocket-Accept we expect */
	size_t out_off, out_len;
	size_t in_off, in_len;
	uint64_t left; /* payload bytes of the current data frame still to give */
	size_t pong_len;
	bool pong_due;
	/* buffers last (ANSER_ALLOC_HEAD) */
	uint8_t pong[125];
	/* output: one frame (or the upgrade request) at a time */
	uint8_t out[WS_OUT_CAP];
	/* input: frame headers and payload bytes not yet given out */
	uint8_t in[WS_IN_CAP];
};

size_t anser_ws_frame_header(uint8_t *buf, uint8_t opcode, size_t n, const uint8_t *mask)
{
	size_t h = 2;
	buf[0] = (uint8_t)(0x80 | opcode);
	if (n < 126) {
		buf[1] = (uint8_t)n;
	} else if (n <= 0xFFFF) {
		buf[1] = 126;
		buf[2] = (uint8_t)(n >> 8);
		buf[3] = (uint8_t)n;
		h = 4;
	} else {
		buf[1] = 127;
		for (int i = 0; i < 8; i++)
			buf[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
		h = 10;
	}
	if (mask) {
		buf[1] |= 0x80;
		memcpy(buf + h, mask, 4);
		h += 4;
	}
	return h;
}

int anser_ws_parse_header(const uint8_t *buf, size_t len, uint8_t *opcode, int *fin,
			  uint64_t *payload)
{
	if (len < 2)
		return -EAGAIN;
	if (buf[0] & 0x70)
		return -EPROTO; /* no extension was negotiated */
	if (buf[1] & 0x80)
		return -EPROTO; /* servers never mask */
	*fin = buf[0] >> 7;
	*opcode = buf[0] & 0x0F;
	uint64_t n = buf[1] & 0x7F;
	size_t h = 2;
	if (n == 126) {
		if (len < 4)
			return -EAGAIN;
		n = (uint64_t)buf[2] << 8 | buf[3];
		h = 4;
	} else if (n == 127) {
		if (len < 10)
			return -EAGAIN;
		n = 0;
		for (int i = 0; i < 8; i++)
			n = n << 8 | buf[2 + i];
		if (n >> 62)
			return -EPROTO;
		h = 10;
	}
	switch (*opcode) {
	case WS_OP_CONT:
	case WS_OP_TEXT:
	case WS_OP_BIN:
		break;
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		if (n > 125 || !*fin)
			return -EPROTO;
		break;
	default:
		return -EPROTO;
	}
	*payload = n;
	return (int)h;
}

static void mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t m[4])
{
	uint64_t m8;
	uint8_t mm[8];
	for (int i = 0; i < 8; i++)
		mm[i] = m[i & 3];
	memcpy(&m8, mm, 8);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, src + i, 8);
		v ^= m8;
		memcpy(dst + i, &v, 8);
	}
	for (; i < n; i++)
		dst[i] = src[i] ^ m[i & 3];
}

static int ws_flush(struct anser_stream *st)
{
	struct ws_stream *w = (struct ws_stream *)st;
	int r = anser_stream_lower_drain(st, w->out, &w->out_off, &w->out_len);
	if (r < 0)
		return r;
	if (w->pong_due && w->upgraded) {
		uint8_t m[4];
		gnutls_rnd(GNUTLS_RND_NONCE, m, 4);
		size_t h = anser_ws_frame_header(w->out, WS_OP_PONG, w->pong_len, m);
		mask_copy(w->out + h, w->pong, w->pong_len, m);
		w->out_len = h + w->pong_len;
		w->pong_due = false;
		return ws_flush(st);
	}
	return anser_stream_lower_flush(st);
}

static ssize_t ws_write(struct anser_stream *st, const uint8_t *buf, size_t len)
{
	struct ws_stream *w = (struct ws_stream *)st;
	int r = ws_flush(st);
	if (r < 0)
		return r;
	size_t n = len < WS_MAX_FRAME ? len : WS_MAX_FRAME;
	uint8_t m[4];
	if (gnutls_rnd(GNUTLS_RND_NONCE, m, 4) < 0)
		return -EIO;
	size_t h = anser_ws_frame_header(w->out, WS_OP_BIN, n, m);
	mask_copy(w->out + h, buf, n, m);
	w->out_len = h + n;
	r = ws_flush(st);
	if (r < 0 && r != -EAGAIN)
		return r;
	return (ssize_t)n;
}

/* Gives out payload bytes from `in`, handling control frames; bytes
 * given (0: need more input), or -errno. */
static ssize_t ws_decode(struct ws_stream *w, uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (got < len && !w->closed) {
		if (w->left > 0) {
			size_t n = w->in_len;
			if (n > w->left)
				n = (size_t)w->left;
			if (n > len - got)
				n = len - got;
			if (n == 0)
				break;
			memcpy(buf + got, w->in + w->in_off, n);
			w->in_off += n;
			w->in_len -= n;
			w->left -= n;
			got += n;
			continue;
		}
		uint8_t op;
		int fin;
		uint64_t pl;
		int h = anser_ws_parse_header(w->in + w->in_off, w->in_len, &op, &fin, &pl);
		if (h == -EAGAIN)
			break;
		if (h < 0)
			return h;
		if (op >= WS_OP_CLOSE) {
			if (w->in_len < (size_t)h + pl)
				break; /* the whole control frame first */
			if (op == WS_OP_PING && !w->pong_due) {
				memcpy(w->pong, w->in + w->in_off + h, (size_t)pl);
				w->pong_len = (size_t)pl;
				w->pong_due = true;
			}
			if (op == WS_OP_CLOSE)
				w->closed = true;
			w->in_off += (size_t)h + (size_t)pl;
			w->in_len -= (size_t)h + (size_t)pl;
			continue;
		}
		w->in_off += (size_t)h;
		w->in_len -= (size_t)h;
		w->left = pl;
	}
	return (ssize_t)got;
}

static ssize_t ws_read(struct anser_stream *st, uint8_t *buf, size_t len)
{
	struct ws_stream *w = (struct ws_stream *)st;
	if (len == 0)
		return 0;
	for (;;) {
		ssize_t got = ws_decode(w, buf, len);
		if (got != 0)
			return got;
		if (w->closed)
			return 0;
		if (w->in_off > 0) {
			memmove(w->in, w->in + w->in_off, w->in_len);
			w->in_off = 0;
		}
		if (w->in_len == WS_IN_CAP)
			return -EPROTO;
		ssize_t n = anser_stream_lower_read(st, w->in + w->in_len, WS_IN_CAP - w->in_len);
		if (n < 0)
			return n;
		if (n == 0) /* an end without a close frame inside a frame is a cut */
			return w->left > 0 || w->in_len > 0 ? -EPROTO : 0;
		w->in_len += (size_t)n;
	}
}

static bool ws_pending(const struct anser_stream *st)
{
	const struct ws_stream *w = (const struct ws_stream *)st;
	return w->out_len > 0 || w->pong_due || anser_stream_lower_pending(st);
}

static bool ws_readable(const struct anser_stream *st)
{
	const struct ws_stream *w = (const struct ws_stream *)st;
	if (w->closed || (w->left > 0 && w->in_len > 0))
		return true;
	uint8_t op;
	int fin;
	uint64_t pl;
	if (w->left == 0 &&
	    anser_ws_parse_header(w->in + w->in_off, w->in_len, &op, &fin, &pl) != -EAGAIN)
		return true;
	return anser_stream_lower_readable(st);
}

static void ws_free(struct anser_stream *st)
{
	free(st);
}

static const struct anser_stream_ops ws_ops = {
	.write = ws_write,
	.read = ws_read,
	.flush = ws_flush,
	.pending = ws_pending,
	.readable = ws_readable,
	.free = ws_free,
};

int anser_ws_stream_new(int fd, struct anser_stream *inner, const char *host, const char *path,
			struct anser_stream **out)
{
	struct ws_stream *w = ANSER_ALLOC_HEAD(struct ws_stream, pong);
	uint8_t key[16], sha[20];
	if (!w)
		return -ENOMEM;
	if (gnutls_rnd(GNUTLS_RND_NONCE, key, sizeof(key)) < 0) {
		free(w);
		return -EIO;
	}
	g_autofree char *k64 = g_base64_encode(key, sizeof(key));
	g_autofree char *cat = g_strconcat(k64, WS_GUID, NULL);
	gnutls_hash_fast(GNUTLS_DIG_SHA1, cat, strlen(cat), sha);
	g_autofree char *acc = g_base64_encode(sha, sizeof(sha));
	snprintf(w->accept, sizeof(w->accept), "%s", acc);
	int n = snprintf((char *)w->out, sizeof(w->out),
			 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Mozilla/5.0\r\n"
			 "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\n\r\n",
			 path && *path ? path : "/", host, k64);
	if (n < 0 || (size_t)n >= sizeof(w->out)) {
		free(w);
		return -ENOBUFS;
	}
	w->out_len = (size_t)n;
	w->s.ops = &ws_ops;
	w->s.fd = fd;
	w->s.inner = inner;
	*out = &w->s;
	return 0;
}

/* The value of header `name` in a response head, or NULL (case-insensitive). */
static bool header_is(const char *head, const char *name, const char *want)
{
	size_t nl = strlen(name);
	for (const char *l = strchr(head, '\n'); l; l = strchr(l + 1, '\n')) {
		const char *p = l + 1;
		if (g_ascii_strncasecmp(p, name, nl) != 0 || p[nl] != ':')
			continue;
		p += nl + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		size_t wl = strlen(want);
		return g_ascii_strncasecmp(p, want, wl) == 0 &&
		       (p[wl] == '\r' || p[wl] == '\n' || p[wl] == ' ' || p[wl] == '\0');
	}
	return false;
}

int anser_ws_handshake(struct anser_stream *st, int *status)
{
	struct ws_stream *w = (struct ws_stream *)st;
	*status = 0;
	if (!w->req_sent) {
		int r = ws_flush(st);
		if (r < 0)
			return r;
		w->req_sent = true;
	}
	for (;;) {
		int hl = anser_http_parse_head(w->in, w->in_len, status);
		if (hl == -EAGAIN) {
			ssize_t n = anser_stream_lower_read(st, w->in + w->in_len,
							    HTTP_MAX_HEAD - w->in_len);
			if (n < 0)
				return (int)n;
			if (n == 0)
				return -ECONNRESET;
			w->in_len += (size_t)n;
			continue;
		}
		if (hl < 0)
			return hl;
		if (*status != 101)
			return -ECONNREFUSED;
		char head[HTTP_MAX_HEAD + 1];
		memcpy(head, w->in, (size_t)hl);
		head[hl] = '\0';
		if (!header_is(head, "Upgrade", "websocket") ||
		    !header_is(head, "Sec-WebSocket-Accept", w->accept))
			return -ECONNREFUSED;
		memmove(w->in, w->in + hl, w->in_len - (size_t)hl);
		w->in_len -= (size_t)hl;
		w->upgraded = true;
		return 0;
	}
}

uint32_t anser_ws_events(const struct anser_stream *st)
{
	const struct ws_stream *w = (const struct ws_stream *)st;
	return !w->req_sent || anser_stream_lower_pending(st) ? EPOLLOUT : EPOLLIN;
}

const char *anser_ws_expected_accept(const struct anser_stream *st)
{
	return ((const struct ws_stream *)st)->accept;
}
