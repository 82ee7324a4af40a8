// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DNS over HTTPS (RFC 8484) for https:// upstreams: one HTTP/2 session
 * (nghttp2) over the upstream's TLS connection (ALPN "h2"), each query a
 * POST of application/dns-message to the endpoint's path, many streams at
 * once on the one connection. nghttp2 does the framing; bytes go in and
 * out through the connection code in transport.c. Answers are handed on
 * after nghttp2 has returned, never from inside its callbacks.
 */
#include <arpa/inet.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service-private.h"
#include "../util/log.h"

#define MAX_BODY 65535

struct h2_stream {
	uint8_t *q; /* the query: the request's body */
	size_t qlen, qoff;
	GByteArray *body;
	int status;
};

struct h2_ctx {
	GHashTable *streams; /* stream id -> struct h2_stream */
	GPtrArray *done;     /* GByteArray: answers to hand on */
	bool in_recv;
};

static void stream_free(gpointer p)
{
	struct h2_stream *st = p;
	g_free(st->q);
	g_byte_array_unref(st->body);
	g_free(st);
}

static ssize_t read_body(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *ud)
{
	struct h2_stream *st = src->ptr;
	size_t n = st->qlen - st->qoff < len ? st->qlen - st->qoff : len;

	memcpy(buf, st->q + st->qoff, n);
	st->qoff += n;
	if (st->qoff == st->qlen)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	struct h2_ctx *c = ud;
	struct h2_stream *st =
		g_hash_table_lookup(c->streams, GINT_TO_POINTER(frame->hd.stream_id));

	if (st && namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen == 3)
		st->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
	return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		   void *ud)
{
	struct h2_ctx *c = ud;
	struct h2_stream *st = g_hash_table_lookup(c->streams, GINT_TO_POINTER(id));

	if (!st)
		return 0;
	if (st->body->len + len > MAX_BODY) /* not a DNS message: reset it */
		return nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, id,
						 NGHTTP2_REFUSED_STREAM) < 0
			       ? NGHTTP2_ERR_CALLBACK_FAILURE
			       : 0;
	g_byte_array_append(st->body, data, (guint)len);
	return 0;
}

static int on_close(nghttp2_session *h2, int32_t id, uint32_t error, void *ud)
{
	struct h2_ctx *c = ud;
	struct h2_stream *st = g_hash_table_lookup(c->streams, GINT_TO_POINTER(id));

	if (!st)
		return 0;
	if (error == NGHTTP2_NO_ERROR && st->status == 200 && st->body->len >= 12)
		g_ptr_array_add(c->done, g_byte_array_ref(st->body));
	else
		log_debug("DNS over HTTPS: stream %d ended with status %d, error %u", id,
			  st->status, error);
	g_hash_table_remove(c->streams, GINT_TO_POINTER(id));
	return 0;
}

void dns_h2_close(struct upstream *u)
{
	if (!u->h2)
		return;
	nghttp2_session_del(u->h2);
	g_hash_table_unref(u->h2ctx->streams);
	g_ptr_array_unref(u->h2ctx->done);
	g_free(u->h2ctx);
	u->h2 = NULL;
	u->h2ctx = NULL;
}

static int open_session(struct upstream *u)
{
	nghttp2_session_callbacks *cb;
	struct h2_ctx *c = g_new0(struct h2_ctx, 1);

	if (nghttp2_session_callbacks_new(&cb) != 0) {
		g_free(c);
		return -1;
	}
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	int r = nghttp2_session_client_new(&u->h2, cb, c);
	nghttp2_session_callbacks_del(cb);
	if (r != 0) {
		g_free(c);
		u->h2 = NULL;
		return -1;
	}
	c->streams = g_hash_table_new_full(NULL, NULL, NULL, stream_free);
	c->done = g_ptr_array_new_with_free_func((GDestroyNotify)g_byte_array_unref);
	u->h2ctx = c;
	nghttp2_settings_entry set[] = { { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 } };
	if (nghttp2_submit_settings(u->h2, NGHTTP2_FLAG_NONE, set, 1) != 0) {
		dns_h2_close(u);
		return -1;
	}
	return 0;
}

/* What nghttp2 has to send, into tout (not from inside its callbacks). */
static int pump(struct upstream *u)
{
	for (;;) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(u->h2, &data);
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		g_byte_array_append(u->tout, data, (guint)n);
	}
}

bool dns_h2_submit(struct upstream *u, const uint8_t *q, size_t n)
{
	if (!u->h2 && open_session(u) < 0)
		return false;
	char authority[300], len[16];
	uint16_t port = ntohs(u->ep.addr.ss_family == AF_INET6
				      ? ((struct sockaddr_in6 *)&u->ep.addr)->sin6_port
				      : ((struct sockaddr_in *)&u->ep.addr)->sin_port);
	bool v6 = strchr(u->ep.host, ':') != NULL;
	if (port == 443)
		snprintf(authority, sizeof(authority), v6 ? "[%s]" : "%s", u->ep.host);
	else
		snprintf(authority, sizeof(authority), v6 ? "[%s]:%u" : "%s:%u", u->ep.host, port);
	snprintf(len, sizeof(len), "%zu", n);
#define NV(k, v)                                                                                   \
	{                                                                                          \
		(uint8_t *)(k), (uint8_t *)(v), sizeof(k) - 1, strlen(v),                          \
			NGHTTP2_NV_FLAG_NO_COPY_NAME                                               \
	}
	const nghttp2_nv hdrs[] = {
		NV(":method", "POST"),
		NV(":scheme", "https"),
		NV(":authority", authority),
		NV(":path", u->ep.path),
		NV("content-type", "application/dns-message"),
		NV("accept", "application/dns-message"),
		NV("content-length", len),
	};
#undef NV
	struct h2_stream *st = g_new0(struct h2_stream, 1);
	st->q = g_memdup2(q, n);
	st->qlen = n;
	st->body = g_byte_array_new();
	nghttp2_data_provider prd = { .source.ptr = st, .read_callback = read_body };
	int32_t id = nghttp2_submit_request(u->h2, NULL, hdrs, G_N_ELEMENTS(hdrs), &prd, NULL);
	if (id < 0) {
		stream_free(st);
		return false;
	}
	g_hash_table_insert(u->h2ctx->streams, GINT_TO_POINTER(id), st);
	return u->h2ctx->in_recv || pump(u) == 0;
}

int dns_h2_recv(struct anser_dns_service *s, int up, const uint8_t *data, size_t n)
{
	struct upstream *u = &s->conf->ups[up];

	if (!u->h2)
		return -1;
	u->h2ctx->in_recv = true;
	ssize_t r = nghttp2_session_mem_recv(u->h2, data, n);
	u->h2ctx->in_recv = false;
	if (r < 0 || pump(u) < 0) {
		log_debug("DNS upstream %s: HTTP/2: %s", u->name,
			  nghttp2_strerror(r < 0 ? (int)r : NGHTTP2_ERR_CALLBACK_FAILURE));
		return -1;
	}
	/* the answers, now that nghttp2 is out of the way (handling one may
	 * send a query on this session) */
	GPtrArray *done = g_steal_pointer(&u->h2ctx->done);
	u->h2ctx->done = g_ptr_array_new_with_free_func((GDestroyNotify)g_byte_array_unref);
	for (guint i = 0; i < done->len; i++) {
		GByteArray *b = g_ptr_array_index(done, i);
		memcpy(s->buf, b->data, b->len);
		dns_handle_answer(s, up, s->buf, b->len, true);
	}
	g_ptr_array_unref(done);
	/* a GOAWAY or an error ended it: the next query makes a new one */
	if (u->h2 && !nghttp2_session_want_read(u->h2) && !nghttp2_session_want_write(u->h2))
		return -1;
	return 0;
}
