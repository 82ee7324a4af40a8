// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A small client the integration tests copy to names like appA/appB, so
 * that pname() rules see a known argv[0]. It prints what it observed in a
 * line-oriented form the tests parse.
 *
 *   tcp HOST PORT [HOLD_MS]        HTTP GET /, print "peer=ADDR" and the body
 *   tcpget HOST PORT PATH          HTTP GET PATH, print the body's length and
 *                                  FNV-1a hash: "len=N fnv=HEX"
 *   udp HOST PORT MSG [N]          sendto() N times, print each reply as
 *                                  "from=ADDR reply=..."
 *   udpc HOST PORT MSG             same over a connect()ed socket
 *   tcpconn HOST PORT N            N sequential connect()+close(); prints
 *                                  "connects=N median_us=X p99_us=Y mean_us=Z"
 *   tcpconn-ab HOST PORT N CG_A CG_B
 *                                  N connects in blocks of 100, moving itself
 *                                  between cgroup directories CG_A and CG_B
 *                                  (ABBA) between blocks, so both sides run
 *                                  interleaved; prints "a_median_us=X
 *                                  b_median_us=Y a_p99_us=.. b_p99_us=.. a_mean_us=.. b_mean_us=.."
 *   tcpput HOST PORT N             upload N bytes of the test server's
 *                                  pattern (PUT /sink/N), print its verdict
 *                                  ("put=ok len=N" when they arrived whole)
 *   tcprr HOST PORT N              N sequential connect(), wait for the
 *                                  server's close (tcpsink closes at once:
 *                                  through a proxy that is a full round
 *                                  trip), close; prints "conns=N per_s=X"
 *   tcpmany HOST PORT N HOLD_MS    open N connections at once (non-blocking),
 *                                  print "open=N" when all are up, hold them
 *                                  HOLD_MS, then send GET / on each and read
 *                                  every answer: "ok=K fail=F"
 *   tcpsink PORT [http]            accept and close TCP connections on
 *                                  [::]:PORT until killed (for tcpconn:
 *                                  no accept queue overflow, no SYN retries);
 *                                  prints "ready" once listening; with
 *                                  "http", first read a request and answer
 *                                  it (200, "ok", Connection: close), for
 *                                  wrk
 * Exit status: 0 ok, 2 connect/send failed (prints "error=<strerror>"),
 * 3 no reply, 1 usage.
 */
#include <arpa/inet.h>
#include <sys/resource.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s->sin_port));
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s->sin6_port));
	}
	return buf;
}

static int resolve(const char *host, const char *port, int type, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = type, .ai_flags = AI_NUMERICHOST }, *res;
	int r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		fprintf(stderr, "bad address %s: %s\n", host, gai_strerror(r));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int do_tcp(const char *host, const char *port, const char *path, int hold_ms, int hash)
{
	struct sockaddr_storage ss, peer;
	socklen_t len, plen = sizeof(peer);
	char buf[65536], pbuf[128];
	int fd;

	if (resolve(host, port, SOCK_STREAM, &ss, &len) < 0)
		return 1;
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
		printf("error=%s\n", strerror(errno));
		return 2;
	}
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
		printf("peer=%s\n", addr_str(&peer, pbuf, sizeof(pbuf)));
	fflush(stdout);
	if (hold_ms > 0) {
		struct timespec ts = { hold_ms / 1000, (hold_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
	int n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
	if (write(fd, buf, (size_t)n) != n) {
		printf("error=%s\n", strerror(errno));
		return 2;
	}
	/* Read the whole response; split headers from body. */
	size_t total = 0, body_len = 0;
	int in_body = 0, state = 0;
	uint64_t fnv = 1469598103934665603ull;
	char head[4096];
	size_t head_len = 0;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			printf("error=%s\n", strerror(errno));
			return 2;
		}
		if (r == 0)
			break;
		for (ssize_t i = 0; i < r; i++) {
			unsigned char ch = (unsigned char)buf[i];
			total++;
			if (!in_body) {
				if (head_len < sizeof(head) - 1)
					head[head_len++] = (char)ch;
				/* \r\n\r\n */
				state = (ch == '\r')
						? (state == 2 ? 3 : 1)
						: (ch == '\n'
							   ? (state == 1 ? 2 : (state == 3 ? 4 : 0))
							   : 0);
				if (state == 4)
					in_body = 1;
				continue;
			}
			body_len++;
			fnv = (fnv ^ ch) * 1099511628211ull;
			if (!hash)
				putchar(ch);
		}
	}
	close(fd);
	if (hash)
		printf("len=%zu fnv=%016llx\n", body_len, (unsigned long long)fnv);
	return total ? 0 : 3;
}

/* Uploads N bytes of the test server's pattern (PUT /sink/N) and prints
 * its verdict. */
static int do_tcpput(const char *host, const char *port, const char *count)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[65536];
	size_t n = (size_t)strtoull(count, NULL, 10), sent = 0, pos = 0;
	uint32_t x = 12345;

	if (resolve(host, port, SOCK_STREAM, &ss, &len) < 0)
		return 1;
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
		printf("error=%s\n", strerror(errno));
		return 2;
	}
	int h = snprintf(buf, sizeof(buf), "PUT /sink/%zu HTTP/1.0\r\nHost: %s\r\n\r\n", n, host);
	if (write(fd, buf, (size_t)h) != h) {
		printf("error=%s\n", strerror(errno));
		return 2;
	}
	while (sent < n) {
		/* testserver.py's pattern(): an LCG, 4 bytes little-endian each */
		for (pos = 0; pos < sizeof(buf) && sent + pos < n; pos += 4) {
			x = (x * 1103515245u + 12345u) & 0x7fffffffu;
			for (size_t k = 0; k < 4 && pos + k < sizeof(buf); k++)
				buf[pos + k] = (char)(x >> (8 * k));
		}
		size_t m = n - sent < sizeof(buf) ? n - sent : sizeof(buf);
		for (size_t off = 0; off < m;) {
			ssize_t w = write(fd, buf + off, m - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				printf("error=%s\n", strerror(errno));
				return 2;
			}
			off += (size_t)w;
		}
		sent += m;
	}
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf) - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		fwrite(buf, 1, (size_t)r, stdout);
	}
	close(fd);
	return 0;
}

static int do_udp(const char *host, const char *port, const char *msg, int count, int connected)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, got = 0;

	if (resolve(host, port, SOCK_DGRAM, &ss, &len) < 0)
		return 1;
	fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	if (fd < 0)
		return 2;
	if (connected && connect(fd, (struct sockaddr *)&ss, len) < 0) {
		printf("error=%s\n", strerror(errno));
		return 2;
	}
	for (int i = 0; i < count; i++) {
		char out[512];
		int n = snprintf(out, sizeof(out), "%s-%d", msg, i);
		ssize_t w = connected ? send(fd, out, (size_t)n, 0)
				      : sendto(fd, out, (size_t)n, 0, (struct sockaddr *)&ss, len);
		if (w < 0) {
			printf("error=%s\n", strerror(errno));
			return 2;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 3000) <= 0)
			continue;
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		char in[2048], fbuf[128];
		ssize_t r = recvfrom(fd, in, sizeof(in) - 1, 0, (struct sockaddr *)&from, &flen);
		if (r < 0)
			continue;
		in[r] = '\0';
		printf("from=%s reply=%s\n", addr_str(&from, fbuf, sizeof(fbuf)), in);
		got++;
	}
	close(fd);
	return got ? 0 : 3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double mean_of(const double *v, int n)
{
	double sum = 0;

	for (int i = 0; i < n; i++)
		sum += v[i];
	return n ? sum / n : 0;
}

/* Time one connect()+close() to ss, in microseconds; -1 on error. */
static double time_connect(const struct sockaddr_storage *ss, socklen_t len)
{
	struct timespec a, b;
	int fd = socket(ss->ss_family, SOCK_STREAM, 0);

	clock_gettime(CLOCK_MONOTONIC, &a);
	if (fd < 0 || connect(fd, (const struct sockaddr *)ss, len) < 0) {
		printf("error=%s\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	/* RST instead of FIN: no TIME_WAIT pile-up across thousands of runs */
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	return (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
}

static int do_tcpconn(const char *host, const char *port, int n)
{
	struct sockaddr_storage ss;
	socklen_t len;
	double *us;

	if (n <= 0 || resolve(host, port, SOCK_STREAM, &ss, &len) < 0)
		return 1;
	us = calloc((size_t)n, sizeof(*us));
	if (!us)
		return 1;
	for (int i = 0; i < n; i++) {
		us[i] = time_connect(&ss, len);
		if (us[i] < 0) {
			free(us);
			return 2;
		}
	}
	double mean = mean_of(us, n);
	qsort(us, (size_t)n, sizeof(*us), cmp_double);
	printf("connects=%d median_us=%.1f p99_us=%.1f mean_us=%.2f\n", n, us[n / 2],
	       us[(n * 99) / 100], mean);
	free(us);
	return 0;
}

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* n connections one after the other, each read until the server's EOF;
 * shut: the client ends its side first (shutdown(SHUT_WR)), so a relay
 * that waits for both directions to end closes at once. */
static int do_tcprr(const char *host, const char *port, int n, bool shut)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char b[64];

	if (n <= 0 || resolve(host, port, SOCK_STREAM, &ss, &len) < 0)
		return 1;
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		int fd = socket(ss.ss_family, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
			printf("error=%s at %d\n", strerror(errno), i);
			return 2;
		}
		if (shut)
			(void)shutdown(fd, SHUT_WR);
		while (read(fd, b, sizeof(b)) > 0)
			;
		close(fd);
	}
	double s = (now_us() - t0) / 1e6;
	printf("conns=%d per_s=%.1f\n", n, n / s);
	return 0;
}

static int do_tcpmany(const char *host, const char *port, int n, int hold_ms)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct rlimit rl;

	if (n <= 0 || resolve(host, port, SOCK_STREAM, &ss, &len) < 0)
		return 1;
	/* n sockets and a few more */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct pollfd *p = calloc((size_t)n, sizeof(*p));
	char *buf = malloc(65536);
	int *done = calloc((size_t)n, sizeof(int));
	if (!p || !buf || !done)
		return 1;
	for (int i = 0; i < n; i++) {
		p[i].fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (p[i].fd < 0 ||
		    (connect(p[i].fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)) {
			printf("error=%s at %d\n", strerror(errno), i);
			return 2;
		}
		p[i].events = POLLOUT;
	}
	int up = 0, failed = 0;
	while (up + failed < n) {
		if (poll(p, (nfds_t)n, 20000) <= 0)
			break;
		for (int i = 0; i < n; i++) {
			if (!p[i].revents || done[i])
				continue;
			int err = 0;
			socklen_t el = sizeof(err);
			getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &err, &el);
			done[i] = 1;
			p[i].events = 0;
			if (err)
				failed++;
			else
				up++;
		}
	}
	printf("open=%d failed=%d\n", up, failed);
	usleep((useconds_t)hold_ms * 1000);
	static const char req[] = "GET / HTTP/1.0\r\n\r\n";
	int ok = 0;
	for (int i = 0; i < n; i++) {
		done[i] = 0;
		p[i].events = POLLIN;
		if (write(p[i].fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
			done[i] = -1;
	}
	int left = n;
	for (int i = 0; i < n; i++)
		if (done[i] < 0) {
			p[i].events = 0;
			left--;
		}
	while (left > 0) {
		if (poll(p, (nfds_t)n, 20000) <= 0)
			break;
		for (int i = 0; i < n; i++) {
			if (!p[i].revents || !p[i].events)
				continue;
			ssize_t r = read(p[i].fd, buf, 65536);
			if (r > 0) {
				if (memmem(buf, (size_t)r, "client=", 7))
					done[i] = 1;
				continue;
			}
			ok += done[i] == 1;
			p[i].events = 0;
			left--;
		}
	}
	for (int i = 0; i < n; i++)
		close(p[i].fd);
	printf("ok=%d fail=%d\n", ok, n - ok);
	free(p);
	free(buf);
	free(done);
	return ok == n ? 0 : 3;
}

static int join_cgroup(const char *dir)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "we");
	if (!f)
		return -1;
	fprintf(f, "0\n"); /* 0: the writing process */
	return fclose(f);
}

static int do_tcpconn_ab(const char *host, const char *port, int n, const char *cg_a,
			 const char *cg_b)
{
	enum { BLOCK = 100 };
	struct sockaddr_storage ss;
	socklen_t len;
	double *v[2];
	int cnt[2] = { 0, 0 };

	if (n <= 0 || resolve(host, port, SOCK_STREAM, &ss, &len) < 0)
		return 1;
	v[0] = calloc((size_t)n, sizeof(double));
	v[1] = calloc((size_t)n, sizeof(double));
	if (!v[0] || !v[1])
		return 1;
	for (int b = 0; cnt[0] + cnt[1] < n; b++) {
		int side = (b % 4 == 1 || b % 4 == 2); /* ABBA */
		if (join_cgroup(side ? cg_b : cg_a) < 0) {
			printf("error=cgroup %s\n", strerror(errno));
			return 2;
		}
		for (int i = 0; i < BLOCK && cnt[0] + cnt[1] < n; i++) {
			double us = time_connect(&ss, len);
			if (us < 0)
				return 2;
			v[side][cnt[side]++] = us;
		}
	}
	double mean[2] = { mean_of(v[0], cnt[0]), mean_of(v[1], cnt[1]) };
	for (int s = 0; s < 2; s++)
		qsort(v[s], (size_t)cnt[s], sizeof(double), cmp_double);
	printf("a_median_us=%.2f b_median_us=%.2f a_p99_us=%.1f b_p99_us=%.1f a_mean_us=%.2f "
	       "b_mean_us=%.2f\n",
	       v[0][cnt[0] / 2], v[1][cnt[1] / 2], v[0][(cnt[0] * 99) / 100],
	       v[1][(cnt[1] * 99) / 100], mean[0], mean[1]);
	free(v[0]);
	free(v[1]);
	return 0;
}

/* One HTTP request on c answered, within a second. */
static void http_answer(int c)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
				   "Connection: close\r\n\r\nok";
	struct timeval tv = { .tv_sec = 1 };
	char buf[4096];
	size_t have = 0;

	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (have < sizeof(buf) - 1) {
		ssize_t n = read(c, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			return;
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	if (write(c, resp, sizeof(resp) - 1) < 0)
		return;
}

static int do_tcpsink(const char *port, bool http)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6,
				  .sin6_port = htons((uint16_t)atoi(port)) };
	int one = 1, fd = socket(AF_INET6, SOCK_STREAM, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4096) < 0) {
		printf("error=%s\n", strerror(errno));
		return 2;
	}
	printf("ready\n");
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c >= 0) {
			if (http)
				http_answer(c);
			close(c);
		} else if (errno != EINTR && errno != ECONNABORTED)
			return 2;
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 4 && strcmp(argv[1], "tcp") == 0)
		return do_tcp(argv[2], argv[3], "/", argc > 4 ? atoi(argv[4]) : 0, 0);
	if (argc == 5 && strcmp(argv[1], "tcpput") == 0)
		return do_tcpput(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "tcpget") == 0)
		return do_tcp(argv[2], argv[3], argv[4], 0, 1);
	if (argc >= 5 && strcmp(argv[1], "udp") == 0)
		return do_udp(argv[2], argv[3], argv[4], argc > 5 ? atoi(argv[5]) : 1, 0);
	if (argc == 5 && strcmp(argv[1], "tcpconn") == 0)
		return do_tcpconn(argv[2], argv[3], atoi(argv[4]));
	if (argc == 7 && strcmp(argv[1], "tcpconn-ab") == 0)
		return do_tcpconn_ab(argv[2], argv[3], atoi(argv[4]), argv[5], argv[6]);
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "tcprr") == 0)
		return do_tcprr(argv[2], argv[3], atoi(argv[4]),
				argc == 6 && strcmp(argv[5], "shut") == 0);
	if (argc == 6 && strcmp(argv[1], "tcpmany") == 0)
		return do_tcpmany(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "tcpsink") == 0)
		return do_tcpsink(argv[2], argc == 4 && strcmp(argv[3], "http") == 0);
	if (argc == 5 && strcmp(argv[1], "udpc") == 0)
		return do_udp(argv[2], argv[3], argv[4], 1, 1);
	fprintf(stderr, "usage: %s tcp|tcpget|tcpput|udp|udpc HOST PORT ...\n", argv[0]);
	return 1;
}
