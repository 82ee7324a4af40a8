// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A lean cache-hit load generator for bench/bench_dns.py, for when dnsperf
 * is the limit. On this machine dnsperf fills its core before the
 * servers fill theirs (bench_dns.py measures it: a responder that does no
 * work reaches only ~1.2x unbound with it), so its QPS says little about
 * a fast server. This one does as little per query as it can: connected
 * UDP sockets (one send() and recv() path, no address per datagram, and
 * so none of the kernel's per-datagram sock_addr hooks that an
 * unconnected sendto() runs into while any such program is attached),
 * queries built once and sent and read in batches (sendmmsg/recvmmsg),
 * and a poll() only when every socket's window is full and nothing has
 * come back. What it sends is what dnsperf sends for the same input: the
 * question with RD set, no EDNS.
 *
 * Each of SOCKETS sockets (4) keeps up to WINDOW (32) queries outstanding,
 * going round the names in the file's order. A reply counts when it matches an
 * outstanding query's id on its socket, has QR set and NOERROR with at
 * least one answer; other replies are counted apart. 128 in flight keep a
 * server's batches full (anserd and bench-dnsnull read up to 64 at once)
 * and stay under what a default receive buffer holds (~250 datagrams this
 * small), so a busy server is measured, not its drops. A query unanswered
 * after a second is lost (and its id free again). It prints one line:
 *
 *   sent N answered N other N lost N seconds S qps Q
 *
 * where qps counts the answered ones over the run.
 *
 * Usage: bench-dnsq ADDRESS PORT NAMES SECONDS [SOCKETS [WINDOW]]
 * NAMES: dnsperf's format, "name TYPE" per line (A, AAAA or TYPEn).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/dns/message.h"

#define BATCH	   64
#define MSG_ROOM   512
#define MAX_SOCKS  64
#define LOST_AFTER 1000000000ull /* ns */

struct query {
	uint8_t wire[MSG_ROOM]; /* header (id filled in when sent) + question */
	size_t len;
};

struct sock {
	int fd;
	uint16_t next_id, oldest; /* ids in [oldest, next_id) may be out */
	unsigned out;
	uint64_t sent_at[65536]; /* 0: not outstanding */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct query *load(const char *path, size_t *count)
{
	FILE *f = fopen(path, "r");
	struct query *q = NULL;
	size_t n = 0, cap = 0;
	char line[512], name[300], type[32];

	if (!f) {
		fprintf(stderr, "bench-dnsq: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%299s %31s", name, type) != 2 || name[0] == '#')
			continue;
		uint16_t qtype;
		if (!strcasecmp(type, "A"))
			qtype = 1;
		else if (!strcasecmp(type, "AAAA"))
			qtype = 28;
		else if (!strncasecmp(type, "TYPE", 4) && isdigit((unsigned char)type[4]))
			qtype = (uint16_t)atoi(type + 4);
		else
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			struct query *g = realloc(q, cap * sizeof(*q));
			if (!g) {
				free(q);
				fclose(f);
				return NULL;
			}
			q = g;
		}
		ssize_t len = anser_dns_stub_query(name, qtype, 0, q[n].wire, sizeof(q[n].wire));
		if (len > 0) {
			q[n].len = (size_t)len;
			n++;
		}
	}
	fclose(f);
	*count = n;
	return q;
}

/* Frees the ids of queries unanswered for too long, oldest first. */
static unsigned expire(struct sock *s, uint64_t now)
{
	unsigned lost = 0;

	while (s->oldest != s->next_id) {
		uint64_t t = s->sent_at[s->oldest];
		if (t && now - t < LOST_AFTER)
			break;
		if (t) {
			s->sent_at[s->oldest] = 0;
			s->out--;
			lost++;
		}
		s->oldest++;
	}
	return lost;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	if (argc < 5 || argc > 7) {
		fprintf(stderr,
			"usage: bench-dnsq ADDRESS PORT NAMES SECONDS [SOCKETS [WINDOW]]\n");
		return 2;
	}
	int nsocks = argc > 5 ? atoi(argv[5]) : 4;
	unsigned window = argc > 6 ? (unsigned)atoi(argv[6]) : 32;
	double seconds = atof(argv[4]);
	if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1 || atoi(argv[2]) <= 0 ||
	    atoi(argv[2]) > 65535 || seconds <= 0 || nsocks < 1 || nsocks > MAX_SOCKS ||
	    window < 1 || window > 30000) {
		fprintf(stderr, "bench-dnsq: bad argument\n");
		return 2;
	}
	a.sin_port = htons((uint16_t)atoi(argv[2]));
	size_t nq = 0, next_q = 0;
	struct query *qs = load(argv[3], &nq);
	if (!qs || !nq) {
		fprintf(stderr, "bench-dnsq: no queries in %s\n", argv[3]);
		free(qs);
		return 2;
	}
	struct sock *socks = calloc((size_t)nsocks, sizeof(*socks));
	struct pollfd *pfd = calloc((size_t)nsocks, sizeof(*pfd));
	if (!socks || !pfd)
		return 1;
	for (int i = 0; i < nsocks; i++) {
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			perror("bench-dnsq: socket");
			return 1;
		}
		socks[i].fd = fd;
		socks[i].next_id = socks[i].oldest = (uint16_t)(i * 7919);
		pfd[i] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}

	static uint8_t out[BATCH][MSG_ROOM], in[BATCH][MSG_ROOM];
	struct mmsghdr smsg[BATCH], rmsg[BATCH];
	struct iovec siov[BATCH], riov[BATCH];
	memset(rmsg, 0, sizeof(rmsg));
	for (int i = 0; i < BATCH; i++) {
		riov[i] = (struct iovec){ .iov_base = in[i], .iov_len = MSG_ROOM };
		rmsg[i].msg_hdr.msg_iov = &riov[i];
		rmsg[i].msg_hdr.msg_iovlen = 1;
	}
	unsigned long sent = 0, answered = 0, other = 0, lost = 0;
	uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9), now = start;

	while (now < end) {
		int busy = 0;
		for (int i = 0; i < nsocks; i++) {
			struct sock *s = &socks[i];
			unsigned room = window - s->out;
			int n = 0;
			for (; n < BATCH && (unsigned)n < room; n++) {
				if (s->sent_at[s->next_id]) /* id still out: wait for it */
					break;
				const struct query *q = &qs[next_q];
				memcpy(out[n], q->wire, q->len);
				out[n][0] = (uint8_t)(s->next_id >> 8);
				out[n][1] = (uint8_t)s->next_id;
				siov[n] = (struct iovec){ .iov_base = out[n], .iov_len = q->len };
				memset(&smsg[n], 0, sizeof(smsg[n]));
				smsg[n].msg_hdr.msg_iov = &siov[n];
				smsg[n].msg_hdr.msg_iovlen = 1;
				s->sent_at[s->next_id++] = now;
				next_q = next_q + 1 == nq ? 0 : next_q + 1;
			}
			int ok = n ? sendmmsg(s->fd, smsg, (unsigned)n, 0) : 0;
			if (ok < 0)
				ok = 0; /* EAGAIN, or ECONNREFUSED before the server is up */
			/* the ones not sent give their ids back */
			for (int j = n - 1; j >= ok; j--)
				s->sent_at[--s->next_id] = 0;
			if (n > ok)
				next_q = (next_q + nq - (size_t)(n - ok) % nq) % nq;
			s->out += (unsigned)ok;
			sent += (unsigned long)ok;
			busy |= ok > 0;

			int got = recvmmsg(s->fd, rmsg, BATCH, MSG_DONTWAIT, NULL);
			for (int j = 0; j < got; j++) {
				const uint8_t *m = in[j];
				unsigned len = rmsg[j].msg_len;
				if (len < 12)
					continue;
				uint16_t id = (uint16_t)(m[0] << 8 | m[1]);
				if (!s->sent_at[id] || !(m[2] & 0x80))
					continue; /* not ours, or not a reply */
				s->sent_at[id] = 0;
				s->out--;
				if ((m[3] & 0x0f) == 0 && (m[6] || m[7]))
					answered++;
				else
					other++;
			}
			busy |= got > 0;
		}
		now = now_ns();
		for (int i = 0; i < nsocks; i++)
			lost += expire(&socks[i], now);
		if (!busy) {
			(void)poll(pfd, (nfds_t)nsocks, 1);
			now = now_ns();
		}
	}
	double took = (double)(now - start) / 1e9;
	printf("sent %lu answered %lu other %lu lost %lu seconds %.3f qps %.0f\n", sent, answered,
	       other, lost, took, (double)answered / took);
	for (int i = 0; i < nsocks; i++)
		close(socks[i].fd);
	free(socks);
	free(pfd);
	free(qs);
	return 0;
}
