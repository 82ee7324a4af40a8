// SPDX-License-Identifier: GPL-2.0-or-later
/* DNS endpoint URLs. */
#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	enum anser_dns_scheme scheme;
	unsigned port;
} schemes[] = {
	{ "udp", ANSER_DNS_UDP, 53 },	      { "tcp", ANSER_DNS_TCP, 53 },
	{ "tcp+udp", ANSER_DNS_TCP_UDP, 53 }, { "tls", ANSER_DNS_TLS, 853 },
	{ "https", ANSER_DNS_HTTPS, 443 },    { "h3", ANSER_DNS_H3, 443 },
	{ "quic", ANSER_DNS_QUIC, 853 },
};

const char *anser_dns_scheme_name(enum anser_dns_scheme s)
{
	for (size_t i = 0; i < sizeof(schemes) / sizeof(*schemes); i++)
		if (schemes[i].scheme == s)
			return schemes[i].name;
	return "?";
}

int anser_dns_endpoint_parse(const char *url, struct anser_dns_endpoint *out, const char **why)
{
	const char *sep = strstr(url, "://");
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; sep && i < sizeof(schemes) / sizeof(*schemes); i++)
		if (strlen(schemes[i].name) == (size_t)(sep - url) &&
		    strncmp(url, schemes[i].name, (size_t)(sep - url)) == 0)
			break;
	if (!sep || i == sizeof(schemes) / sizeof(*schemes)) {
		*why = "expected udp://, tcp://, tcp+udp://, tls://, https://, h3:// or quic://";
		return -EINVAL;
	}
	out->scheme = schemes[i].scheme;
	out->port = schemes[i].port;
	const char *h = sep + 3, *end;
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end) {
			*why = "an IPv6 address needs its closing ']'";
			return -EINVAL;
		}
		if ((size_t)(end - h - 1) >= sizeof(out->host)) {
			*why = "the host is too long";
			return -EINVAL;
		}
		memcpy(out->host, h + 1, (size_t)(end - h - 1));
		end++;
	} else {
		end = h + strcspn(h, ":/?#");
		if ((size_t)(end - h) >= sizeof(out->host)) {
			*why = "the host is too long";
			return -EINVAL;
		}
		memcpy(out->host, h, (size_t)(end - h));
	}
	if (!out->host[0]) {
		*why = "no host";
		return -EINVAL;
	}
	if (*end == ':') {
		char *e;
		unsigned long p = strtoul(end + 1, &e, 10);
		if (e == end + 1 || p < 1 || p > 65535) {
			*why = "the port must be 1..65535";
			return -EINVAL;
		}
		out->port = (unsigned)p;
		end = e;
	}
	if (*end == '/') {
		size_t n = strcspn(end, "?#");
		if (n >= sizeof(out->path)) {
			*why = "the path is too long";
			return -EINVAL;
		}
		memcpy(out->path, end, n);
		end += n;
	} else if (out->scheme == ANSER_DNS_HTTPS || out->scheme == ANSER_DNS_H3) {
		strcpy(out->path, "/dns-query");
	}
	if (*end && *end != '?' && *end != '#') {
		*why = "unexpected text after the host and port";
		return -EINVAL;
	}
	out->addr_len = anser_dns_literal_addr(out->host, (uint16_t)out->port, &out->addr);
	out->literal = out->addr_len > 0;
	return 0;
}

socklen_t anser_dns_literal_addr(const char *host, uint16_t port, struct sockaddr_storage *out)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		return sizeof(*a4);
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		return sizeof(*a6);
	}
	memset(out, 0, sizeof(*out)); /* what a failed inet_pton() may have left */
	return 0;
}
