// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A DNS responder that does no work, for bench/bench_dns.py: what dnsperf
 * reaches against a server that costs nothing is the most any server can
 * show with it on this machine (dnsperf's ceiling, as the proxy bench
 * states the crypto ceiling).
 *
 * Every query anserd's own parser takes (anser_dns_parse_query(), the
 * one the service uses and tests/fuzz fuzzes) gets its question back with
 * one A record (10.77.0.1, TTL 3600) -- the size of the bench's cache
 * hits -- and its OPT when it had one (anser_dns_error_reply() with
 * NOERROR, the record put before the OPT), read and answered in batches
 * of up to 64 (recvmmsg/sendmmsg), as soon as they come. Anything else is
 * dropped.
 *
 * Usage: bench-dnsnull ADDRESS PORT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/dns/message.h"

#define BATCH	 64
#define MSG_ROOM 512
#define OPT_LEN	 11 /* the OPT anser_dns_error_reply() ends with */

static const uint8_t answer_rr[] = {
	0xc0, 0x0c,		/* the question's name */
	0x00, 0x01, 0x00, 0x01, /* A, IN */
	0x00, 0x00, 0x0e, 0x10, /* TTL 3600 */
	0x00, 0x04, 10,	  77,	0, 1,
};

/* The reply to the query in `in`, written to out; 0 to drop it. */
static size_t make_reply(const uint8_t *in, size_t len, uint8_t *out)
{
	struct anser_dns_query q;

	if (anser_dns_parse_query(in, len, &q) != ANSER_DNS_QUERY)
		return 0;
	ssize_t n = anser_dns_error_reply(&q, ANSER_DNS_NOERROR, out, MSG_ROOM - sizeof(answer_rr));
	if (n < 0)
		return 0;
	size_t at = (size_t)n - (q.edns ? OPT_LEN : 0); /* after the question */
	memmove(out + at + sizeof(answer_rr), out + at, (size_t)n - at);
	memcpy(out + at, answer_rr, sizeof(answer_rr));
	out[7] = 1; /* ANCOUNT */
	return (size_t)n + sizeof(answer_rr);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	if (argc != 3 || inet_pton(AF_INET, argv[1], &a.sin_addr) != 1 || atoi(argv[2]) <= 0 ||
	    atoi(argv[2]) > 65535) {
		fprintf(stderr, "usage: bench-dnsnull ADDRESS PORT\n");
		return 2;
	}
	a.sin_port = htons((uint16_t)atoi(argv[2]));
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("bench-dnsnull");
		return 1;
	}

	static uint8_t buf[BATCH][MSG_ROOM], reply[BATCH][MSG_ROOM];
	struct sockaddr_in from[BATCH];
	struct iovec iov[BATCH], riov[BATCH];
	struct mmsghdr in[BATCH], out[BATCH];
	for (;;) {
		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ buf[i], MSG_ROOM };
			in[i].msg_hdr = (struct msghdr){ .msg_name = &from[i],
							 .msg_namelen = sizeof(from[i]),
							 .msg_iov = &iov[i],
							 .msg_iovlen = 1 };
		}
		int n = recvmmsg(fd, in, BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("bench-dnsnull: recvmmsg");
			return 1;
		}
		int m = 0;
		for (int i = 0; i < n; i++) {
			size_t rl = make_reply(buf[i], in[i].msg_len, reply[i]);
			if (!rl)
				continue;
			riov[i] = (struct iovec){ reply[i], rl };
			out[m] = in[i];
			out[m++].msg_hdr.msg_iov = &riov[i];
		}
		for (int sent = 0; sent < m;) {
			int r = sendmmsg(fd, out + sent, (unsigned)(m - sent), 0);
			if (r <= 0)
				break; /* a full socket buffer: those replies are lost, as a
					  server's would be */
			sent += r;
		}
	}
}
