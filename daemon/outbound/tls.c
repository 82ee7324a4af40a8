// SPDX-License-Identifier: GPL-2.0-or-later
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <gnutls/gnutls.h>

#include "../util/log.h"

struct tls_stream {
	struct anser_stream s;
	gnutls_session_t ses;
	bool pending; /* a record went out only in part: flush before more */
	int err;      /* the handshake's gnutls error */
	char why[160];
};

static gnutls_certificate_credentials_t creds;
static int creds_err;
static pthread_once_t creds_once = PTHREAD_ONCE_INIT;

static void creds_init(void)
{
	creds_err = gnutls_certificate_allocate_credentials(&creds);
	if (creds_err < 0)
		return;
	int n = gnutls_certificate_set_x509_system_trust(creds);
	if (n < 0)
		log_warning("No system trust store for TLS nodes (%s): only nodes that allow "
			    "insecure connections will work",
			    gnutls_strerror(n));
	/* as OpenSSL and curl do: $SSL_CERT_FILE adds trust anchors (a private
	 * CA, a test's own) */
	const char *extra = getenv("SSL_CERT_FILE");
	if (extra && *extra &&
	    (n = gnutls_certificate_set_x509_trust_file(creds, extra, GNUTLS_X509_FMT_PEM)) < 0)
		log_warning("Cannot read the certificates in SSL_CERT_FILE=%s: %s", extra,
			    gnutls_strerror(n));
}

static ssize_t gerr(ssize_t r)
{
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
		return -EAGAIN;
	return -ECONNRESET;
}

static int tls_flush(struct anser_stream *st)
{
	struct tls_stream *t = (struct tls_stream *)st;
	if (!t->pending)
		return 0;
	ssize_t r = gnutls_record_send(t->ses, NULL, 0);
	if (r < 0)
		return (int)gerr(r);
	t->pending = false;
	return 0;
}

static ssize_t tls_write(struct anser_stream *st, const uint8_t *buf, size_t len)
{
	struct tls_stream *t = (struct tls_stream *)st;
	int f = tls_flush(st);
	if (f < 0)
		return f;
	/* one record at a time keeps a partial send to one record */
	size_t n = len < 16384 ? len : 16384;
	ssize_t r = gnutls_record_send(t->ses, buf, n);
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
		/* GnuTLS holds the sealed record; it goes out with a flush */
		t->pending = true;
		return (ssize_t)n;
	}
	return r < 0 ? gerr(r) : r;
}

static ssize_t tls_read(struct anser_stream *st, uint8_t *buf, size_t len)
{
	struct tls_stream *t = (struct tls_stream *)st;
	for (;;) {
		ssize_t r = gnutls_record_recv(t->ses, buf, len);
		if (r >= 0)
			return r;
		/* servers that close without close_notify: a plain end */
		if (r == GNUTLS_E_PREMATURE_TERMINATION)
			return 0;
		if (r == GNUTLS_E_REHANDSHAKE || r == GNUTLS_E_WARNING_ALERT_RECEIVED)
			continue;
		return gerr(r);
	}
}

static bool tls_pending(const struct anser_stream *st)
{
	return ((const struct tls_stream *)st)->pending;
}

static bool tls_readable(const struct anser_stream *st)
{
	return gnutls_record_check_pending(((const struct tls_stream *)st)->ses) > 0;
}

static void tls_free(struct anser_stream *st)
{
	struct tls_stream *t = (struct tls_stream *)st;
	gnutls_deinit(t->ses);
	free(t);
}

static const struct anser_stream_ops tls_ops = {
	.write = tls_write,
	.read = tls_read,
	.flush = tls_flush,
	.pending = tls_pending,
	.readable = tls_readable,
	.free = tls_free,
};

static bool is_ip(const char *s)
{
	uint8_t b[16];
	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

int anser_tls_stream_new(int fd, const char *server_name, const char *alpn, bool insecure,
			 struct anser_stream **out)
{
	pthread_once(&creds_once, creds_init);
	if (creds_err < 0)
		return -ENOMEM;
	struct tls_stream *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->s.ops = &tls_ops;
	t->s.fd = fd;
	/* NO_SIGNAL: a node that reset the connection is an error, not a
	 * SIGPIPE */
	if (gnutls_init(&t->ses, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0) {
		free(t);
		return -ENOMEM;
	}
	int r = gnutls_set_default_priority(t->ses);
	if (r >= 0)
		r = gnutls_credentials_set(t->ses, GNUTLS_CRD_CERTIFICATE, creds);
	if (r >= 0 && server_name && !is_ip(server_name))
		r = gnutls_server_name_set(t->ses, GNUTLS_NAME_DNS, server_name,
					   strlen(server_name));
	if (r >= 0 && alpn && *alpn) {
		gnutls_datum_t protos[8];
		unsigned n = 0;
		const char *p = alpn;
		while (*p && n < 8) {
			const char *c = strchr(p, ',');
			size_t l = c ? (size_t)(c - p) : strlen(p);
			if (l > 0 && l < 256)
				protos[n++] = (gnutls_datum_t){ (unsigned char *)p, (unsigned)l };
			p += l + (c != NULL);
		}
		if (n)
			r = gnutls_alpn_set_protocols(t->ses, protos, n, 0);
	}
	if (r >= 0 && !insecure && server_name)
		gnutls_session_set_verify_cert(t->ses, server_name, 0);
	if (r < 0) {
		gnutls_deinit(t->ses);
		free(t);
		return -EINVAL;
	}
	gnutls_transport_set_int(t->ses, fd);
	gnutls_handshake_set_timeout(t->ses, 0); /* the dial owns the deadline */
	*out = &t->s;
	return 0;
}

int anser_tls_handshake(struct anser_stream *st)
{
	struct tls_stream *t = (struct tls_stream *)st;
	int r;
	do {
		r = gnutls_handshake(t->ses);
	} while (r == GNUTLS_E_INTERRUPTED ||
		 (r < 0 && r != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(r)));
	if (r == 0)
		return 0;
	if (r == GNUTLS_E_AGAIN)
		return -EAGAIN;
	t->err = r;
	if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		gnutls_datum_t msg = { 0 };
		unsigned status = gnutls_session_get_verify_cert_status(t->ses);
		if (gnutls_certificate_verification_status_print(
			    status, gnutls_certificate_type_get(t->ses), &msg, 0) >= 0) {
			snprintf(t->why, sizeof(t->why), "%s", (char *)msg.data);
			gnutls_free(msg.data);
		} else {
			snprintf(t->why, sizeof(t->why), "certificate rejected");
		}
		return -EPERM;
	}
	snprintf(t->why, sizeof(t->why), "%s", gnutls_strerror(r));
	return -ECONNREFUSED;
}

uint32_t anser_tls_events(const struct anser_stream *st)
{
	const struct tls_stream *t = (const struct tls_stream *)st;
	return gnutls_record_get_direction(t->ses) ? EPOLLOUT : EPOLLIN;
}

const char *anser_tls_error(const struct anser_stream *st)
{
	const struct tls_stream *t = (const struct tls_stream *)st;
	return t->why[0] ? t->why : "no error";
}
