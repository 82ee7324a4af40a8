// SPDX-License-Identifier: GPL-2.0-or-later
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

static int authority(char *buf, size_t len, const struct sockaddr *dst, const char *name)
{
	char ip[INET6_ADDRSTRLEN];

	if (name && *name && dst->sa_family == AF_INET)
		return snprintf(buf, len, "%s:%u", name,
				ntohs(((const struct sockaddr_in *)dst)->sin_port));
	if (name && *name && dst->sa_family == AF_INET6)
		return snprintf(buf, len, "%s:%u", name,
				ntohs(((const struct sockaddr_in6 *)dst)->sin6_port));
	if (dst->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)dst;
		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		return snprintf(buf, len, "%s:%u", ip, ntohs(s->sin_port));
	}
	if (dst->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)dst;
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
			inet_ntop(AF_INET, &s->sin6_addr.s6_addr[12], ip, sizeof(ip));
			return snprintf(buf, len, "%s:%u", ip, ntohs(s->sin6_port));
		}
		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		return snprintf(buf, len, "[%s]:%u", ip, ntohs(s->sin6_port));
	}
	return -1;
}

ssize_t anser_http_connect_request(char *buf, size_t len, const struct sockaddr *dst,
				   const char *name, const char *user, const char *pass)
{
	char auth[272];
	int n;

	n = authority(auth, sizeof(auth), dst, name);
	if (n < 0 || (size_t)n >= sizeof(auth))
		return -EINVAL;
	if (user) {
		g_autofree char *up = g_strdup_printf("%s:%s", user, pass ? pass : "");
		g_autofree char *b64 = g_base64_encode((const guchar *)up, strlen(up));
		n = snprintf(buf, len,
			     "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic "
			     "%s\r\n\r\n",
			     auth, auth, b64);
	} else {
		n = snprintf(buf, len, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", auth, auth);
	}
	if (n < 0 || (size_t)n >= len)
		return -ENOBUFS;
	return n;
}

int anser_http_parse_head(const uint8_t *buf, size_t len, int *status)
{
	*status = 0;
	/* "HTTP/1.x NNN" then anything up to CRLF */
	static const char pfx[] = "HTTP/1.";
	size_t k = len < 7 ? len : 7;
	if (memcmp(buf, pfx, k) != 0)
		return -EPROTO;
	if (len < 12)
		return -EAGAIN;
	if ((buf[7] != '0' && buf[7] != '1') || buf[8] != ' ' || !g_ascii_isdigit(buf[9]) ||
	    !g_ascii_isdigit(buf[10]) || !g_ascii_isdigit(buf[11]) ||
	    (len > 12 && buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n'))
		return -EPROTO;
	int st = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	/* the head ends at an empty line; bare LF line ends are tolerated */
	for (size_t i = 12; i < len && i < HTTP_MAX_HEAD; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n') {
			*status = st;
			return (int)(i + 2);
		}
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
			*status = st;
			return (int)(i + 3);
		}
	}
	return len >= HTTP_MAX_HEAD ? -EPROTO : -EAGAIN;
}

int anser_http_parse_response(const uint8_t *buf, size_t len, int *status)
{
	int r = anser_http_parse_head(buf, len, status);
	if (r < 0 || (*status >= 200 && *status < 300))
		return r;
	if (*status == 401 || *status == 403 || *status == 407)
		return -EACCES;
	if (*status == 502 || *status == 504)
		return -EHOSTUNREACH;
	return -ECONNREFUSED;
}
