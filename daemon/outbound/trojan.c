// SPDX-License-Identifier: GPL-2.0-or-later
#include "trojan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

ssize_t anser_trojan_header(uint8_t *buf, size_t len, const char *password, uint8_t cmd,
			    const struct sockaddr *dst, const char *name)
{
	static const char hexd[] = "0123456789abcdef";
	uint8_t h[28];

	if (len < 56 + 2 + 1)
		return -ENOBUFS;
	if (gnutls_hash_fast(GNUTLS_DIG_SHA224, password, strlen(password), h) < 0)
		return -EIO;
	for (size_t i = 0; i < 28; i++) {
		buf[2 * i] = (uint8_t)hexd[h[i] >> 4];
		buf[2 * i + 1] = (uint8_t)hexd[h[i] & 15];
	}
	buf[56] = '\r';
	buf[57] = '\n';
	buf[58] = cmd;
	ssize_t al = anser_socks5_put_dest(buf + 59, len - 59, dst, name);
	if (al < 0)
		return al;
	if ((size_t)(59 + al + 2) > len)
		return -ENOBUFS;
	buf[59 + al] = '\r';
	buf[60 + al] = '\n';
	return 61 + al;
}

int anser_trojan_stream_new(int fd, struct anser_stream *inner, const char *password, uint8_t cmd,
			    const struct sockaddr *dst, const char *name, struct anser_stream **out)
{
	uint8_t hdr[TROJAN_HDR_MAX];
	ssize_t hl = anser_trojan_header(hdr, sizeof(hdr), password, cmd, dst, name);
	if (hl < 0)
		return (int)hl;
	int r = anser_prefix_stream_new(fd, inner, hdr, (size_t)hl, NULL, out);
	explicit_bzero(hdr, sizeof(hdr));
	return r;
}

ssize_t anser_trojan_udp_frame(uint8_t *buf, size_t len, const struct sockaddr *dst,
			       const char *name, const uint8_t *p, size_t n)
{
	if (n > 0xFFFF)
		return -EMSGSIZE;
	ssize_t al = anser_socks5_put_dest(buf, len, dst, name);
	if (al < 0)
		return al;
	if ((size_t)al + 4 + n > len)
		return -ENOBUFS;
	buf[al] = (uint8_t)(n >> 8);
	buf[al + 1] = (uint8_t)n;
	buf[al + 2] = '\r';
	buf[al + 3] = '\n';
	memcpy(buf + al + 4, p, n);
	return al + 4 + (ssize_t)n;
}

int anser_trojan_udp_parse(const uint8_t *buf, size_t len, struct anser_socks5_addr *src,
			   const uint8_t **payload, size_t *plen)
{
	int al = anser_socks5_get_addr(buf, len, src);
	if (al < 0)
		return al;
	if (len < (size_t)al + 4)
		return -EAGAIN;
	size_t n = (size_t)buf[al] << 8 | buf[al + 1];
	if (buf[al + 2] != '\r' || buf[al + 3] != '\n')
		return -EPROTO;
	if (len < (size_t)al + 4 + n)
		return -EAGAIN;
	*payload = buf + al + 4;
	*plen = n;
	return al + 4 + (int)n;
}
