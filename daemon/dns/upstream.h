/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * DNS upstreams and listeners as the dns section writes them:
 * "udp://192.0.2.1:53", "tcp+udp://[2001:db8::1]:53", "tls://9.9.9.9:853",
 * "https://1.1.1.1/dns-query"; bind: "udp://127.0.0.1:5353",
 * "tcp+udp://0.0.0.0:53".
 */
#ifndef ANSER_DNS_UPSTREAM_H
#define ANSER_DNS_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum anser_dns_scheme {
	ANSER_DNS_UDP,
	ANSER_DNS_TCP,
	ANSER_DNS_TCP_UDP, /* UDP, and TCP when an answer is truncated */
	ANSER_DNS_TLS,
	ANSER_DNS_HTTPS,
	ANSER_DNS_H3,
	ANSER_DNS_QUIC,
};

struct anser_dns_endpoint {
	enum anser_dns_scheme scheme;
	char host[256];
	bool literal; /* host is an IP address: addr is set */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	unsigned port;
	char path[256]; /* https: the path, "/dns-query" by default */
};

/* 0, or -EINVAL with *why (static) saying what is wrong. Ports default to
 * 53 (853 for tls and quic, 443 for https and h3). */
int anser_dns_endpoint_parse(const char *url, struct anser_dns_endpoint *out, const char **why);

const char *anser_dns_scheme_name(enum anser_dns_scheme s);

/* host as an IPv4 or IPv6 address with port into *out: its length, or 0
 * when host is no address. */
socklen_t anser_dns_literal_addr(const char *host, uint16_t port, struct sockaddr_storage *out);

#endif
