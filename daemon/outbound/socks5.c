// SPDX-License-Identifier: GPL-2.0-or-later
#include "socks5.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

ssize_t anser_socks5_greeting(uint8_t *buf, size_t len, bool offer_userpass)
{
	size_t n = offer_userpass ? 4 : 3;
	if (len < n)
		return -ENOBUFS;
	buf[0] = SOCKS5_VERSION;
	buf[1] = offer_userpass ? 2 : 1;
	buf[2] = SOCKS5_METHOD_NONE;
	if (offer_userpass)
		buf[3] = SOCKS5_METHOD_USERPASS;
	return (ssize_t)n;
}

int anser_socks5_parse_method(const uint8_t *buf, size_t len, bool offered_userpass,
			      uint8_t *method)
{
	if (len >= 1 && buf[0] != SOCKS5_VERSION)
		return -EPROTO;
	if (len < 2)
		return -EAGAIN;
	if (buf[1] == SOCKS5_METHOD_UNACCEPTABLE)
		return -EACCES;
	/* A server choosing something we did not offer is broken or hostile. */
	if (buf[1] != SOCKS5_METHOD_NONE && !(offered_userpass && buf[1] == SOCKS5_METHOD_USERPASS))
		return -EPROTO;
	*method = buf[1];
	return 2;
}

ssize_t anser_socks5_auth_request(uint8_t *buf, size_t len, const char *user, const char *pass)
{
	size_t ul = user ? strlen(user) : 0, pl = pass ? strlen(pass) : 0;
	if (ul == 0 || ul > 255 || pl == 0 || pl > 255)
		return -EINVAL;
	if (len < 3 + ul + pl)
		return -ENOBUFS;
	buf[0] = SOCKS5_AUTH_VERSION;
	buf[1] = (uint8_t)ul;
	memcpy(buf + 2, user, ul);
	buf[2 + ul] = (uint8_t)pl;
	memcpy(buf + 3 + ul, pass, pl);
	return (ssize_t)(3 + ul + pl);
}

int anser_socks5_parse_auth_reply(const uint8_t *buf, size_t len)
{
	/* RFC 1929 says version 1; some servers answer with 5, accept both. */
	if (len >= 1 && buf[0] != SOCKS5_AUTH_VERSION && buf[0] != SOCKS5_VERSION)
		return -EPROTO;
	if (len < 2)
		return -EAGAIN;
	return buf[1] == 0 ? 2 : -EACCES;
}

ssize_t anser_socks5_put_addr(uint8_t *buf, size_t len, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		if (len < 7)
			return -ENOBUFS;
		buf[0] = SOCKS5_ATYP_IPV4;
		memcpy(buf + 1, &s->sin_addr, 4);
		memcpy(buf + 5, &s->sin_port, 2);
		return 7;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
			if (len < 7)
				return -ENOBUFS;
			buf[0] = SOCKS5_ATYP_IPV4;
			memcpy(buf + 1, &s->sin6_addr.s6_addr[12], 4);
			memcpy(buf + 5, &s->sin6_port, 2);
			return 7;
		}
		if (len < 19)
			return -ENOBUFS;
		buf[0] = SOCKS5_ATYP_IPV6;
		memcpy(buf + 1, &s->sin6_addr, 16);
		memcpy(buf + 17, &s->sin6_port, 2);
		return 19;
	}
	return -EAFNOSUPPORT;
}

int anser_sockaddr_port_be(const struct sockaddr *sa, uint16_t *port)
{
	if (sa->sa_family == AF_INET)
		*port = ((const struct sockaddr_in *)sa)->sin_port;
	else if (sa->sa_family == AF_INET6)
		*port = ((const struct sockaddr_in6 *)sa)->sin6_port;
	else
		return -EAFNOSUPPORT;
	return 0;
}

ssize_t anser_socks5_put_dest(uint8_t *buf, size_t len, const struct sockaddr *dst,
			      const char *name)
{
	size_t nl = name ? strlen(name) : 0;
	uint16_t port;

	if (!nl)
		return anser_socks5_put_addr(buf, len, dst);
	if (nl > 255)
		return -EINVAL;
	if (anser_sockaddr_port_be(dst, &port) < 0)
		return -EAFNOSUPPORT;
	if (len < 1 + 1 + nl + 2)
		return -ENOBUFS;
	buf[0] = SOCKS5_ATYP_DOMAIN;
	buf[1] = (uint8_t)nl;
	memcpy(buf + 2, name, nl);
	memcpy(buf + 2 + nl, &port, 2);
	return (ssize_t)(4 + nl);
}

ssize_t anser_put_port_addr(uint8_t *buf, size_t len, const struct sockaddr *dst, const char *name)
{
	uint8_t a[SOCKS5_MAX_ADDR_MSG];
	ssize_t n = anser_socks5_put_dest(a, sizeof(a), dst, name);

	if (n < 0)
		return n;
	if ((size_t)n > len)
		return -ENOBUFS;
	memcpy(buf, a + n - 2, 2);
	buf[2] = a[0] == SOCKS5_ATYP_IPV4 ? 1 : a[0] == SOCKS5_ATYP_DOMAIN ? 2 : 3;
	memcpy(buf + 3, a + 1, (size_t)n - 3);
	return n;
}

ssize_t anser_socks5_request(uint8_t *buf, size_t len, uint8_t cmd, const struct sockaddr *dst,
			     const char *name)
{
	if (len < 3)
		return -ENOBUFS;
	buf[0] = SOCKS5_VERSION;
	buf[1] = cmd;
	buf[2] = 0;
	ssize_t n = anser_socks5_put_dest(buf + 3, len - 3, dst, name);
	return n < 0 ? n : n + 3;
}

int anser_socks5_get_addr(const uint8_t *buf, size_t len, struct anser_socks5_addr *a)
{
	size_t need;

	memset(a, 0, sizeof(*a));
	if (len < 1)
		return -EAGAIN;
	a->atyp = buf[0];
	switch (buf[0]) {
	case SOCKS5_ATYP_IPV4: {
		need = 1 + 4 + 2;
		if (len < need)
			return -EAGAIN;
		struct sockaddr_in *s = (struct sockaddr_in *)&a->sa;
		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, buf + 1, 4);
		memcpy(&s->sin_port, buf + 5, 2);
		break;
	}
	case SOCKS5_ATYP_IPV6: {
		need = 1 + 16 + 2;
		if (len < need)
			return -EAGAIN;
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a->sa;
		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, buf + 1, 16);
		memcpy(&s->sin6_port, buf + 17, 2);
		break;
	}
	case SOCKS5_ATYP_DOMAIN: {
		if (len < 2)
			return -EAGAIN;
		size_t dl = buf[1];
		/* An empty name or one with a NUL cannot be a host name. */
		if (dl == 0 || memchr(buf + 2, 0, dl < len - 2 ? dl : len - 2))
			return -EPROTO;
		need = 2 + dl + 2;
		if (len < need)
			return -EAGAIN;
		memcpy(a->domain, buf + 2, dl);
		a->domain[dl] = '\0';
		break;
	}
	default:
		return -EPROTO;
	}
	a->port = (uint16_t)(buf[need - 2] << 8 | buf[need - 1]);
	return (int)need;
}

int anser_socks5_parse_reply(const uint8_t *buf, size_t len, uint8_t *rep,
			     struct anser_socks5_addr *bnd)
{
	if (len >= 1 && buf[0] != SOCKS5_VERSION)
		return -EPROTO;
	if (len >= 3 && buf[2] != 0)
		return -EPROTO;
	if (len < 4)
		return -EAGAIN;
	*rep = buf[1];
	int r = anser_socks5_get_addr(buf + 3, len - 3, bnd);
	if (r < 0)
		return r;
	if (buf[1] != 0)
		return anser_socks5_reply_errno(buf[1]);
	return r + 3;
}

int anser_socks5_reply_errno(uint8_t rep)
{
	switch (rep) {
	case 0x00:
		return 0;
	case 0x01:
		return -ECONNABORTED;
	case 0x02:
		return -EACCES;
	case 0x03:
		return -ENETUNREACH;
	case 0x04:
		return -EHOSTUNREACH;
	case 0x05:
		return -ECONNREFUSED;
	case 0x06:
		return -ETIMEDOUT;
	case 0x07:
		return -EOPNOTSUPP;
	case 0x08:
		return -EAFNOSUPPORT;
	default:
		return -EPROTO;
	}
}

const char *anser_socks5_reply_str(uint8_t rep)
{
	static const char *const s[] = {
		"succeeded",
		"general SOCKS server failure",
		"connection not allowed by ruleset",
		"network unreachable",
		"host unreachable",
		"connection refused",
		"TTL expired",
		"command not supported",
		"address type not supported",
	};
	return rep < sizeof(s) / sizeof(s[0]) ? s[rep] : "unassigned reply code";
}

ssize_t anser_socks5_udp_header(uint8_t *buf, size_t len, const struct sockaddr *dst,
				const char *name)
{
	if (len < 3)
		return -ENOBUFS;
	buf[0] = buf[1] = 0;
	buf[2] = 0; /* FRAG: we never fragment */
	ssize_t n = anser_socks5_put_dest(buf + 3, len - 3, dst, name);
	return n < 0 ? n : n + 3;
}

int anser_socks5_udp_parse(const uint8_t *buf, size_t len, struct anser_socks5_addr *src)
{
	if (len < 4 || buf[0] != 0 || buf[1] != 0 || buf[2] != 0)
		return -EPROTO;
	int r = anser_socks5_get_addr(buf + 3, len - 3, src);
	if (r == -EAGAIN)
		return -EPROTO;
	return r < 0 ? r : r + 3;
}
