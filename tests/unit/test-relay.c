// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The relay engine end to end, without BPF: the proxy runs with dp NULL and
 * learns flows from test hooks. Apps are sockets of this test connecting to
 * the real listeners; remotes are echo/greeter servers in threads; SOCKS5
 * nodes are real microsocks (TCP), dante (UDP ASSOCIATE) and ss-server
 * (shadowsocks, both) processes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/outbound/health.h"
#include "daemon/proxy/proxy.h"
#include "daemon/util/bigbuf.h"
#include "daemon/util/log.h"

/* --- stand-ins for modules this test does not exercise ---
 * Weak: the real definitions win whenever the library provides them. The
 * datapath ones are never called (dp is NULL) but proxy.o references them. */

__attribute__((weak)) int anser_datapath_tcp_lookup(struct anser_datapath *dp,
						    const struct sockaddr *peer,
						    struct anser_flow *out)
{
	return -ENOSYS;
}

__attribute__((weak)) int anser_datapath_udp_lookup(struct anser_datapath *dp, uint32_t id,
						    struct anser_flow *out)
{
	return -ENOSYS;
}

__attribute__((weak)) int anser_datapath_udp_rev_add(struct anser_datapath *dp,
						     const struct sockaddr *reply_local,
						     const struct sockaddr *remote)
{
	return -ENOSYS;
}

__attribute__((weak)) int anser_datapath_udp_rev_del(struct anser_datapath *dp,
						     const struct sockaddr *reply_local)
{
	return -ENOSYS;
}

__attribute__((weak)) void anser_config_free(struct anser_config *c)
{
	for (size_t i = 0; i < c->n_nodes; i++) {
		free(c->nodes[i].name);
		free(c->nodes[i].host);
		free(c->nodes[i].user);
		free(c->nodes[i].pass);
		free(c->nodes[i].link);
	}
	for (size_t i = 0; i < c->n_groups; i++) {
		free(c->groups[i].name);
		free(c->groups[i].nodes);
	}
	free(c->nodes);
	free(c->groups);
	free(c);
}

__attribute__((weak)) struct anser_gen *anser_gen_new(struct anser_config *cfg, uint64_t number,
						      unsigned slot)
{
	struct anser_gen *g = calloc(1, sizeof(*g));
	atomic_init(&g->refs, 1);
	g->number = number;
	g->slot = slot;
	g->cfg = cfg;
	return g;
}

__attribute__((weak)) struct anser_gen *anser_gen_ref(struct anser_gen *g)
{
	atomic_fetch_add(&g->refs, 1);
	return g;
}

__attribute__((weak)) void anser_gen_unref(struct anser_gen *g)
{
	if (g && atomic_fetch_sub(&g->refs, 1) == 1) {
		anser_config_free(g->cfg);
		free(g);
	}
}

/* --- helpers --- */

static struct anser_proxy *proxy;
static uint16_t tcp4_port, udp4_port;
static uint16_t port_ms, port_ms_auth, port_dead, port_dante, port_ss;
static pid_t pid_ms = -1, pid_ms_auth = -1, pid_dante = -1, pid_ss = -1;
static char *dante_dir;

static int free_port(int type)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, type, 0);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&a, &al), ==, 0);
	close(fd);
	return ntohs(a.sin_port);
}

static struct sockaddr_in loopback(uint16_t port)
{
	return (struct sockaddr_in){ .sin_family = AF_INET,
				     .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				     .sin_port = htons(port) };
}

static bool wait_tcp(uint16_t port)
{
	for (int i = 0; i < 200; i++) {
		struct sockaddr_in a = loopback(port);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
		close(fd);
		if (r == 0)
			return true;
		g_usleep(10000);
	}
	return false;
}

/* Servers run in their own process groups so a failed assertion (abort)
 * still takes them down, forks included. */
static pid_t spawned[8];
static size_t n_spawned;

static void kill_spawned(int sig)
{
	for (size_t i = 0; i < n_spawned; i++)
		if (spawned[i] > 0)
			kill(-spawned[i], SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

static pid_t spawn(char **argv)
{
	pid_t pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		if (!g_getenv("ANSER_TEST_VERBOSE"))
			dup2(null, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);
	g_assert_cmpuint(n_spawned, <, G_N_ELEMENTS(spawned));
	spawned[n_spawned++] = pid;
	return pid;
}

static void stop(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
		kill(-*pid, SIGKILL); /* any fork left behind */
		for (size_t i = 0; i < n_spawned; i++)
			if (spawned[i] == *pid)
				spawned[i] = 0;
		*pid = -1;
	}
}

/* Flows by app port, as the BPF maps would hold them. */
#define MAX_FLOWS 64
static struct {
	uint16_t port; /* TCP: app's local port; UDP: mark */
	struct anser_flow flow;
} flows[MAX_FLOWS];
static size_t n_flows;
static pthread_mutex_t flows_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
	struct sockaddr_storage local, remote;
	bool live;
} revs[MAX_FLOWS];
static size_t n_revs;

static void add_flow(uint16_t key, const struct sockaddr_in *dst, unsigned outbound, uint8_t flags)
{
	struct anser_flow f = { 0 };
	f.cookie = 1000 + key;
	f.pid = (uint32_t)getpid();
	f.family = AF_INET;
	f.outbound = (uint16_t)outbound;
	f.rule = 0;
	f.gen = 0;
	f.flags = flags | ANSER_FLOW_F_PROXIED;
	f.dport = dst->sin_port;
	f.daddr[10] = f.daddr[11] = 0xff;
	memcpy(f.daddr + 12, &dst->sin_addr, 4);
	snprintf(f.pname, sizeof(f.pname), "test-app");
	pthread_mutex_lock(&flows_lock);
	g_assert_cmpuint(n_flows, <, MAX_FLOWS);
	flows[n_flows].port = key;
	flows[n_flows].flow = f;
	n_flows++;
	pthread_mutex_unlock(&flows_lock);
}

static int find_flow(uint16_t key, struct anser_flow *out)
{
	int r = -ENOENT;
	pthread_mutex_lock(&flows_lock);
	for (size_t i = 0; i < n_flows; i++)
		if (flows[i].port == key) {
			*out = flows[i].flow;
			r = 0;
		}
	pthread_mutex_unlock(&flows_lock);
	return r;
}

static int hook_tcp_lookup(void *ud, const struct sockaddr *peer, struct anser_flow *out)
{
	return find_flow(ntohs(((const struct sockaddr_in *)peer)->sin_port), out);
}

static int hook_udp_lookup(void *ud, uint32_t id, struct anser_flow *out)
{
	return find_flow((uint16_t)id, out);
}

static int hook_rev_add(void *ud, const struct sockaddr *local, const struct sockaddr *remote)
{
	pthread_mutex_lock(&flows_lock);
	g_assert_cmpuint(n_revs, <, MAX_FLOWS);
	memcpy(&revs[n_revs].local, local, sizeof(struct sockaddr_in));
	memcpy(&revs[n_revs].remote, remote, sizeof(struct sockaddr_in));
	revs[n_revs].live = true;
	n_revs++;
	pthread_mutex_unlock(&flows_lock);
	return 0;
}

static int hook_rev_del(void *ud, const struct sockaddr *local)
{
	pthread_mutex_lock(&flows_lock);
	for (size_t i = 0; i < n_revs; i++)
		if (memcmp(&revs[i].local, local, sizeof(struct sockaddr_in)) == 0)
			revs[i].live = false;
	pthread_mutex_unlock(&flows_lock);
	return 0;
}

/* An app socket: bound first so its port is known to the "kernel". */
static int app_connect(const struct sockaddr_in *dst, unsigned outbound)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = loopback(0);
	socklen_t al = sizeof(a);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&a, &al), ==, 0);
	add_flow(ntohs(a.sin_port), dst, outbound, 0);
	struct sockaddr_in l = loopback(tcp4_port);
	g_assert_cmpint(connect(fd, (struct sockaddr *)&l, sizeof(l)), ==, 0);
	return fd;
}

static void wait_sessions_gone(void)
{
	for (int i = 0; i < 500 && anser_proxy_n_sessions(proxy) > 0; i++)
		g_usleep(10000);
	g_assert_cmpuint(anser_proxy_n_sessions(proxy), ==, 0);
}

/* --- remotes --- */

struct server {
	int fd;
	struct sockaddr_in addr;
	pthread_t thread;
	void (*serve)(int fd);
};

static struct server echo_srv, greeter_srv;

#define GREETING_SIZE (1024 * 1024 + 7)
static pthread_mutex_t greeter_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t greeter_cond = PTHREAD_COND_INITIALIZER;
static char *greeter_digest; /* what the greeter received after its FIN */
static size_t greeter_got;

static void fill_pattern(uint8_t *b, size_t n, uint32_t seed)
{
	GRand *r = g_rand_new_with_seed(seed);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)g_rand_int(r);
	g_rand_free(r);
}

static bool write_all(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		b += w;
		n -= (size_t)w;
	}
	return true;
}

/* Echoes until EOF, then half-closes: the app sees its EOF passed on. */
static void serve_echo(int fd)
{
	uint8_t buf[16384];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0 || !write_all(fd, buf, (size_t)n))
			break;
	}
	shutdown(fd, SHUT_WR);
	/* Wait for the relay to finish the connection. */
	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
}

/* Speaks first, half-closes, then keeps reading what the app sends. */
static void serve_greeter(int fd)
{
	uint8_t *b = g_malloc(GREETING_SIZE);
	fill_pattern(b, GREETING_SIZE, 7);
	bool ok = write_all(fd, b, GREETING_SIZE);
	g_free(b);
	shutdown(fd, SHUT_WR);
	GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
	size_t got = 0;
	uint8_t buf[16384];
	ssize_t n;
	while (ok && (n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		g_checksum_update(ck, buf, (gssize)n);
		got += (size_t)n;
	}
	pthread_mutex_lock(&greeter_lock);
	g_free(greeter_digest);
	greeter_digest = g_strdup(g_checksum_get_string(ck));
	greeter_got = got;
	pthread_cond_broadcast(&greeter_cond);
	pthread_mutex_unlock(&greeter_lock);
	g_checksum_free(ck);
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	for (;;) {
		int c = accept(s->fd, NULL, NULL);
		if (c < 0)
			break;
		s->serve(c);
		close(c);
	}
	return NULL;
}

static void server_start(struct server *s, void (*serve)(int))
{
	socklen_t al = sizeof(s->addr);
	s->serve = serve;
	s->addr = loopback(0);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	g_assert_cmpint(bind(s->fd, (struct sockaddr *)&s->addr, sizeof(s->addr)), ==, 0);
	g_assert_cmpint(listen(s->fd, 16), ==, 0);
	g_assert_cmpint(getsockname(s->fd, (struct sockaddr *)&s->addr, &al), ==, 0);
	g_assert_cmpint(pthread_create(&s->thread, NULL, server_main, s), ==, 0);
}

static void server_stop(struct server *s)
{
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->fd);
}

/* --- app-side transfers --- */

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Sends `total` bytes and reads the echo until EOF. half_close: send the
 * FIN right after the last byte, while the echo is still flowing back;
 * otherwise only once everything came back (microsocks ends a connection
 * at the first EOF from either side: it cannot relay a half-close). */
static void echo_transfer(int fd, size_t total, bool half_close)
{
	uint8_t *out = g_malloc(total);
	fill_pattern(out, total, (uint32_t)total);
	GChecksum *sent = g_checksum_new(G_CHECKSUM_SHA256);
	GChecksum *got = g_checksum_new(G_CHECKSUM_SHA256);
	g_checksum_update(sent, out, (gssize)total);
	size_t off = 0, rcvd = 0;
	bool shut = false, eof = false;
	uint8_t buf[65536];

	set_nonblock(fd);
	gint64 end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
	while (!eof) {
		g_assert_cmpint(g_get_monotonic_time(), <, end);
		struct pollfd pfd = { .fd = fd, .events = POLLIN | (off < total ? POLLOUT : 0) };
		g_assert_cmpint(poll(&pfd, 1, 1000), >=, 0);
		if (off < total && (pfd.revents & POLLOUT)) {
			ssize_t n = send(fd, out + off, MIN(total - off, 65536), MSG_NOSIGNAL);
			g_assert_true(n > 0 || errno == EAGAIN);
			if (n > 0)
				off += (size_t)n;
		}
		if (off == total && !shut && (half_close || rcvd == total)) {
			g_assert_cmpint(shutdown(fd, SHUT_WR), ==, 0);
			shut = true;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			if (n == 0)
				eof = true;
			else if (n > 0) {
				g_checksum_update(got, buf, (gssize)n);
				rcvd += (size_t)n;
			} else {
				g_assert_cmpint(errno, ==, EAGAIN);
			}
		}
	}
	g_assert_cmpuint(rcvd, ==, total);
	g_assert_cmpstr(g_checksum_get_string(got), ==, g_checksum_get_string(sent));
	g_checksum_free(sent);
	g_checksum_free(got);
	g_free(out);
}

/* Expects the proxy to drop the connection soon (EOF or RST). */
static void expect_closed(int fd, double within_s)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	gint64 t0 = g_get_monotonic_time();
	g_assert_cmpint(poll(&pfd, 1, (int)(within_s * 1000)), ==, 1);
	uint8_t b[16];
	ssize_t n = recv(fd, b, sizeof(b), 0);
	g_assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	g_assert_cmpint(g_get_monotonic_time() - t0, <, (gint64)(within_s * G_USEC_PER_SEC));
}

/* --- config --- */

enum {
	OUT_MS = ANSER_OUT_FIRST_GROUP,
	OUT_MS_AUTH,
	OUT_DEAD,
	OUT_BADPASS,
	OUT_RANDOM,
	OUT_DANTE,
	OUT_SS,
};

static void add_node(struct anser_config *c, const char *name, const char *host, uint16_t port,
		     const char *user, const char *pass)
{
	c->nodes = realloc(c->nodes, (c->n_nodes + 1) * sizeof(*c->nodes));
	struct anser_node *n = &c->nodes[c->n_nodes++];
	memset(n, 0, sizeof(*n));
	n->name = strdup(name);
	n->proto = ANSER_NODE_SOCKS5;
	n->host = strdup(host);
	n->port = port;
	n->user = user ? strdup(user) : NULL;
	n->pass = pass ? strdup(pass) : NULL;
}

static void add_group(struct anser_config *c, const char *name, enum anser_policy policy,
		      size_t n_nodes, const size_t *nodes)
{
	c->groups = realloc(c->groups, (c->n_groups + 1) * sizeof(*c->groups));
	struct anser_group *g = &c->groups[c->n_groups++];
	memset(g, 0, sizeof(*g));
	g->name = strdup(name);
	g->policy = policy;
	g->n_nodes = n_nodes;
	g->nodes = malloc(n_nodes * sizeof(size_t));
	memcpy(g->nodes, nodes, n_nodes * sizeof(size_t));
}

static void install_config(void)
{
	struct anser_config *c = calloc(1, sizeof(*c));
	add_node(c, "ms", "127.0.0.1", port_ms, NULL, NULL);
	/* A host name exercises resolution at install time; only when it
	 * leads to the IPv4 listener microsocks has. */
	struct addrinfo *ai = NULL;
	const char *host = "127.0.0.1";
	if (getaddrinfo("localhost", NULL, &(struct addrinfo){ .ai_socktype = SOCK_STREAM }, &ai) ==
		    0 &&
	    ai->ai_family == AF_INET)
		host = "localhost";
	if (ai)
		freeaddrinfo(ai);
	add_node(c, "ms-auth", host, port_ms_auth, "alice", "s3cret");
	add_node(c, "dead", "127.0.0.1", port_dead, NULL, NULL);
	add_node(c, "ms-badpass", "127.0.0.1", port_ms_auth, "alice", "wrong");
	add_node(c, "dante", "127.0.0.1", port_dante, NULL, NULL);
	add_group(c, "g-ms", ANSER_POLICY_FIXED, 1, (size_t[]){ 0 });
	add_group(c, "g-auth", ANSER_POLICY_FIXED, 1, (size_t[]){ 1 });
	add_group(c, "g-dead", ANSER_POLICY_FIXED, 1, (size_t[]){ 2 });
	add_group(c, "g-badpass", ANSER_POLICY_FIXED, 1, (size_t[]){ 3 });
	add_group(c, "g-random", ANSER_POLICY_RANDOM, 2, (size_t[]){ 0, 1 });
	add_group(c, "g-dante", ANSER_POLICY_FIXED, 1, (size_t[]){ 4 });
	add_node(c, "ss", "127.0.0.1", port_ss, NULL, "relay-pw");
	c->nodes[5].proto = ANSER_NODE_SS;
	c->nodes[5].cipher = ANSER_CIPHER_AES_128_GCM;
	add_group(c, "g-ss", ANSER_POLICY_FIXED, 1, (size_t[]){ 5 });
	struct anser_gen *g = anser_gen_new(c, 1, 0);
	struct anser_health *h = anser_health_new(c, NULL);
	anser_proxy_set_gen(proxy, g, h);
	anser_health_unref(h);
	anser_gen_unref(g);
}

/* --- tests --- */

static void test_direct(void)
{
	int fd = app_connect(&echo_srv.addr, ANSER_OUT_DIRECT);
	echo_transfer(fd, 3 * 1024 * 1024 + 11, true);
	close(fd);
	wait_sessions_gone();
}

static void test_socks5(void)
{
	int fd = app_connect(&echo_srv.addr, OUT_MS);
	echo_transfer(fd, 4 * 1024 * 1024 + 3, false);
	close(fd);
	wait_sessions_gone();
}

static void test_socks5_auth(void)
{
	int fd = app_connect(&echo_srv.addr, OUT_MS_AUTH);
	echo_transfer(fd, 1024 * 1024, false);
	close(fd);
	/* random picks either node; both must carry the flow. */
	for (int i = 0; i < 4; i++) {
		fd = app_connect(&echo_srv.addr, OUT_RANDOM);
		echo_transfer(fd, 65536 + (size_t)i, false);
		close(fd);
	}
	wait_sessions_gone();
}

/* The remote finishes first; the app keeps sending after the FIN. */
static void half_close_remote(unsigned outbound)
{
	int fd = app_connect(&greeter_srv.addr, outbound);
	uint8_t *want = g_malloc(GREETING_SIZE);
	fill_pattern(want, GREETING_SIZE, 7);
	uint8_t *got = g_malloc(GREETING_SIZE + 1);
	size_t n = 0;
	ssize_t r;
	while ((r = recv(fd, got + n, GREETING_SIZE + 1 - n, 0)) > 0)
		n += (size_t)r;
	g_assert_cmpint(r, ==, 0);
	g_assert_cmpuint(n, ==, GREETING_SIZE);
	g_assert_cmpmem(got, n, want, GREETING_SIZE);

	pthread_mutex_lock(&greeter_lock);
	g_clear_pointer(&greeter_digest, g_free);
	pthread_mutex_unlock(&greeter_lock);

	size_t up = 2 * 1024 * 1024 + 5;
	uint8_t *out = g_malloc(up);
	fill_pattern(out, up, 99);
	g_assert_true(write_all(fd, out, up));
	g_assert_cmpint(shutdown(fd, SHUT_WR), ==, 0);
	/* Both directions done: the proxy closes. */
	g_assert_cmpint(recv(fd, got, 1, 0), ==, 0);

	pthread_mutex_lock(&greeter_lock);
	while (!greeter_digest)
		pthread_cond_wait(&greeter_cond, &greeter_lock);
	gchar *expect = g_compute_checksum_for_data(G_CHECKSUM_SHA256, out, up);
	g_assert_cmpuint(greeter_got, ==, up);
	g_assert_cmpstr(greeter_digest, ==, expect);
	pthread_mutex_unlock(&greeter_lock);
	g_free(expect);
	g_free(out);
	g_free(got);
	g_free(want);
	close(fd);
	wait_sessions_gone();
}

static void test_half_close_direct(void)
{
	half_close_remote(ANSER_OUT_DIRECT);
}

/* dante relays a half-close; microsocks does not (see echo_transfer). */
static void test_half_close_socks5(void)
{
	if (pid_dante < 0) {
		g_test_skip("dante-server not available");
		return;
	}
	half_close_remote(OUT_DANTE);
	int fd = app_connect(&echo_srv.addr, OUT_DANTE);
	echo_transfer(fd, 2 * 1024 * 1024 + 1, true);
	close(fd);
	wait_sessions_gone();
}

static void test_dead_node(void)
{
	int fd = app_connect(&echo_srv.addr, OUT_DEAD);
	expect_closed(fd, 1.0);
	close(fd);
	fd = app_connect(&echo_srv.addr, OUT_BADPASS);
	expect_closed(fd, 1.0);
	close(fd);
	/* No flow known for this app: closed, nothing relayed. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in l = loopback(tcp4_port);
	g_assert_cmpint(connect(fd, (struct sockaddr *)&l, sizeof(l)), ==, 0);
	expect_closed(fd, 1.0);
	close(fd);
	/* Block verdicts never dial. */
	fd = app_connect(&echo_srv.addr, ANSER_OUT_BLOCK);
	expect_closed(fd, 1.0);
	close(fd);
	wait_sessions_gone();
}

static void test_list_sessions(void)
{
	int fd = app_connect(&echo_srv.addr, OUT_MS);
	uint8_t b[1000] = { 1 }, r[1000];
	g_assert_true(write_all(fd, b, sizeof(b)));
	size_t n = 0;
	while (n < sizeof(r)) {
		ssize_t k = recv(fd, r + n, sizeof(r) - n, 0);
		g_assert_cmpint(k, >, 0);
		n += (size_t)k;
	}
	struct anser_flow f;
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &al);
	g_assert_cmpint(find_flow(ntohs(a.sin_port), &f), ==, 0);

	/* Every session listed with what its flow knows. */
	struct anser_conn_list l = { 0 };
	anser_proxy_list_sessions(proxy, &l);
	g_assert_cmpuint(l.n, ==, 1);
	g_assert_cmpuint(l.v[0].cookie, ==, f.cookie);
	g_assert_cmpstr(l.v[0].node, ==, "ms");
	g_assert_cmpstr(l.v[0].outbound, ==, "g-ms");
	g_assert_cmpstr(l.v[0].proto, ==, "tcp");
	g_assert_cmpstr(l.v[0].pname, ==, "test-app");
	g_assert_cmpuint(l.v[0].bytes_up, ==, 1000);
	g_assert_cmpuint(l.v[0].bytes_down, ==, 1000);
	g_assert_cmpint(((struct sockaddr_in *)&l.v[0].src)->sin_port, ==, a.sin_port);
	g_assert_cmpint(((struct sockaddr_in *)&l.v[0].dst)->sin_port, ==, echo_srv.addr.sin_port);

	/* A listing's entry with the session's cookie takes its node and
	 * counts, once; one with another cookie nothing; the session is
	 * then not left over. */
	struct anser_conn_index *x = anser_conn_index_new(&l);
	struct anser_conn_info mine = { .cookie = f.cookie }, other = { .cookie = 42 };
	size_t pos = 0;
	g_assert_true(anser_conn_index_fill(x, &mine));
	g_assert_cmpstr(mine.node, ==, "ms");
	g_assert_cmpstr(mine.outbound, ==, "g-ms");
	g_assert_cmpuint(mine.bytes_up, ==, 1000);
	g_assert_false(anser_conn_index_fill(x, &mine));
	g_assert_false(anser_conn_index_fill(x, &other));
	g_assert_cmpstr(other.node, ==, "");
	g_assert_null(anser_conn_index_next_unused(x, &pos));
	anser_conn_index_free(x);
	x = anser_conn_index_new(&l);
	pos = 0;
	g_assert_true(anser_conn_index_next_unused(x, &pos) == &l.v[0]);
	g_assert_null(anser_conn_index_next_unused(x, &pos));
	anser_conn_index_free(x);
	anser_conn_list_clear(&l);

	/* A reload in the same slot does not break the live session. */
	install_config();
	g_assert_true(write_all(fd, b, sizeof(b)));
	n = 0;
	while (n < sizeof(r)) {
		ssize_t k = recv(fd, r + n, sizeof(r) - n, 0);
		g_assert_cmpint(k, >, 0);
		n += (size_t)k;
	}
	close(fd);
	wait_sessions_gone();
}

/* --- UDP --- */

static int udp_echo_fd = -1;
static pthread_t udp_echo_thread;
static struct sockaddr_in udp_echo_addr;

static void *udp_echo_main(void *arg)
{
	uint8_t buf[65536];
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n =
			recvfrom(udp_echo_fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 0)
			break;
		if (n == 4 && memcmp(buf, "quit", 4) == 0)
			break;
		sendto(udp_echo_fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
	}
	return NULL;
}

static int udp_app(uint32_t mark)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
		close(fd);
		return -1;
	}
	struct timeval tv = { .tv_sec = 3 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Sends through the UDP listener and checks the reply and where it came
 * from: the listener for connect()ed apps, a mapped reply socket else. */
static void udp_roundtrip(unsigned outbound, uint32_t mark, bool connected)
{
	int fd = udp_app(mark);
	if (fd < 0) {
		g_test_skip("SO_MARK needs CAP_NET_ADMIN");
		return;
	}
	add_flow((uint16_t)mark, &udp_echo_addr, outbound, connected ? ANSER_FLOW_F_CONNECTED : 0);
	struct sockaddr_in l = loopback(udp4_port);
	for (int i = 0; i < 5; i++) {
		char msg[64], rep[128];
		int len = snprintf(msg, sizeof(msg), "datagram %d via %u", i, outbound);
		g_assert_cmpint(sendto(fd, msg, (size_t)len, 0, (struct sockaddr *)&l, sizeof(l)),
				==, len);
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, rep, sizeof(rep), 0, (struct sockaddr *)&from, &fl);
		g_assert_cmpint(n, ==, len);
		g_assert_cmpmem(rep, (size_t)n, msg, (size_t)len);
		if (connected) {
			g_assert_cmpint(from.sin_port, ==, l.sin_port);
			continue;
		}
		/* The reply socket is mapped to the remote the app talked to. */
		bool mapped = false;
		pthread_mutex_lock(&flows_lock);
		for (size_t k = 0; k < n_revs; k++) {
			const struct sockaddr_in *lo = (struct sockaddr_in *)&revs[k].local;
			const struct sockaddr_in *re = (struct sockaddr_in *)&revs[k].remote;
			if (revs[k].live && lo->sin_port == from.sin_port &&
			    re->sin_port == udp_echo_addr.sin_port &&
			    re->sin_addr.s_addr == udp_echo_addr.sin_addr.s_addr)
				mapped = true;
		}
		pthread_mutex_unlock(&flows_lock);
		g_assert_true(mapped);
	}
	close(fd);
}

struct writer {
	int fd;
	const uint8_t *data;
	size_t len;
	bool ok;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	w->ok = write_all(w->fd, w->data, w->len);
	return NULL;
}

/* Shadowsocks: a big echo, then a slow app (a small receive buffer, read
 * a little at a time) while the node keeps sending, so decoded bytes wait
 * in the stream while the app cannot take them. */
static void test_ss(void)
{
	if (pid_ss < 0) {
		g_test_skip("shadowsocks-libev not available");
		return;
	}
	int fd = app_connect(&echo_srv.addr, OUT_SS);
	echo_transfer(fd, 4 * 1024 * 1024 + 5, false);
	close(fd);

	fd = app_connect(&echo_srv.addr, OUT_SS);
	int small = 65536;
	g_assert_cmpint(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), ==, 0);
	size_t total = 4 * 1024 * 1024 + 7;
	uint8_t *out = g_malloc(total), *in = g_malloc(total);
	fill_pattern(out, total, 99);
	/* write from a thread: the echo comes back while we still send */
	struct writer wr = { fd, out, total, false };
	pthread_t th;
	g_assert_cmpint(pthread_create(&th, NULL, writer_main, &wr), ==, 0);
	size_t got = 0;
	gint64 t0 = g_get_monotonic_time();
	for (unsigned i = 0; got < total; i++) {
		ssize_t n = recv(fd, in + got, MIN(total - got, 3000), 0);
		g_assert_cmpint(n, >, 0);
		got += (size_t)n;
		if (i % 16 == 0)
			g_usleep(300);
	}
	/* a stall (bytes left in the stream with no event to wake the relay)
	 * would show as seconds here */
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
	pthread_join(th, NULL);
	g_assert_true(wr.ok);
	g_assert_cmpmem(in, total, out, total);
	close(fd);
	g_free(out);
	g_free(in);
	udp_roundtrip(OUT_SS, 40005, false);
	udp_roundtrip(OUT_SS, 40006, true);
}

static void test_udp_direct(void)
{
	udp_roundtrip(ANSER_OUT_DIRECT, 40001, false);
	udp_roundtrip(ANSER_OUT_DIRECT, 40002, true);
}

static bool dante_start(void)
{
	g_autofree char *danted = g_find_program_in_path("danted");
	if (!danted)
		danted = g_strdup("/usr/sbin/danted");
	if (!g_file_test(danted, G_FILE_TEST_IS_EXECUTABLE) || geteuid() != 0)
		return false;
	dante_dir = g_dir_make_tmp("anser-test-dante-XXXXXX", NULL);
	g_autofree char *conf = g_build_filename(dante_dir, "danted.conf", NULL);
	g_autofree char *pidf = g_build_filename(dante_dir, "danted.pid", NULL);
	g_autofree char *text = g_strdup_printf("logoutput: stderr\n"
						"internal: 127.0.0.1 port = %u\n"
						"external: 127.0.0.1\n"
						"clientmethod: none\n"
						"socksmethod: none\n"
						"user.privileged: root\n"
						"user.unprivileged: nobody\n"
						"client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
						"socks pass {\n"
						"  from: 0.0.0.0/0 to: 0.0.0.0/0\n"
						"  command: connect udpassociate udpreply\n"
						"}\n",
						port_dante);
	g_assert_true(g_file_set_contents(conf, text, -1, NULL));
	char *argv[] = { danted, "-f", conf, "-p", pidf, "-N", "1", NULL };
	pid_dante = spawn(argv);
	return wait_tcp(port_dante);
}

static void test_udp_socks5(void)
{
	if (pid_dante < 0) {
		g_test_skip("dante-server not available");
		return;
	}
	udp_roundtrip(OUT_DANTE, 40003, false);
	udp_roundtrip(OUT_DANTE, 40004, true);
	struct anser_conn_list l = { 0 };
	anser_proxy_list_sessions(proxy, &l);
	bool seen = false;
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.v[i].node, "dante") == 0 && strcmp(l.v[i].proto, "udp") == 0 &&
		    l.v[i].bytes_down > 0)
			seen = true;
	g_assert_true(seen);
	anser_conn_list_clear(&l);
}

/* Bulk flows' buffers: at most the budget out at once, each writable,
 * and what is given back can be had again. */
static void test_bigbuf_budget(void)
{
	const size_t n = 256 * 1024, most = ANSER_BIGBUF_BUDGET / n;
	g_autofree void **got = g_new0(void *, most + 1);
	size_t k = 0;

	g_assert_cmpuint(anser_bigbuf_used(), ==, 0);
	while (k <= most && (got[k] = anser_bigbuf_get(n)) != NULL) {
		memset(got[k], (int)k, n);
		k++;
	}
	g_assert_cmpuint(k, ==, most);
	g_assert_cmpuint(anser_bigbuf_used(), ==, most * n);
	g_assert_null(anser_bigbuf_get(1));
	anser_bigbuf_put(got[0], n);
	got[0] = anser_bigbuf_get(n);
	g_assert_nonnull(got[0]);
	g_assert_cmpuint(((uint8_t *)got[most - 1])[n - 1], ==, (uint8_t)(most - 1));
	for (size_t i = 0; i < k; i++)
		anser_bigbuf_put(got[i], n);
	anser_bigbuf_put(NULL, n);
	g_assert_cmpuint(anser_bigbuf_used(), ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGABRT, kill_spawned);
	signal(SIGTERM, kill_spawned);
	signal(SIGINT, kill_spawned);
	if (!g_getenv("ANSER_TEST_VERBOSE"))
		anser_log_set_level(ANSER_LOG_ERROR);
	else
		anser_log_set_level(ANSER_LOG_DEBUG);

	g_autofree char *ms = g_find_program_in_path("microsocks");
	if (!ms) {
		g_printerr("microsocks not installed, skipping\n");
		return 77;
	}
	port_ms = (uint16_t)free_port(SOCK_STREAM);
	port_ms_auth = (uint16_t)free_port(SOCK_STREAM);
	port_dead = (uint16_t)free_port(SOCK_STREAM);
	port_dante = (uint16_t)free_port(SOCK_STREAM);
	g_autofree char *p1 = g_strdup_printf("%u", port_ms);
	g_autofree char *p2 = g_strdup_printf("%u", port_ms_auth);
	char *a1[] = { ms, "-i", "127.0.0.1", "-p", p1, NULL };
	char *a2[] = { ms, "-i", "127.0.0.1", "-p", p2, "-u", "alice", "-P", "s3cret", NULL };
	pid_ms = spawn(a1);
	pid_ms_auth = spawn(a2);
	g_assert_true(wait_tcp(port_ms));
	g_assert_true(wait_tcp(port_ms_auth));
	if (!dante_start())
		stop(&pid_dante);
	g_autofree char *ssd = g_find_program_in_path("ss-server");
	port_ss = (uint16_t)free_port(SOCK_STREAM);
	g_autofree char *p3 = g_strdup_printf("%u", port_ss);
	char *a3[] = { ssd,	   "-s", "127.0.0.1",	"-p", p3,  "-k",
		       "relay-pw", "-m", "aes-128-gcm", "-u", NULL };
	if (ssd) {
		pid_ss = spawn(a3);
		if (!wait_tcp(port_ss))
			stop(&pid_ss);
	}

	server_start(&echo_srv, serve_echo);
	server_start(&greeter_srv, serve_greeter);
	udp_echo_fd = socket(AF_INET, SOCK_DGRAM, 0);
	udp_echo_addr = loopback(0);
	socklen_t al = sizeof(udp_echo_addr);
	g_assert_cmpint(bind(udp_echo_fd, (struct sockaddr *)&udp_echo_addr, al), ==, 0);
	g_assert_cmpint(getsockname(udp_echo_fd, (struct sockaddr *)&udp_echo_addr, &al), ==, 0);
	g_assert_cmpint(pthread_create(&udp_echo_thread, NULL, udp_echo_main, NULL), ==, 0);

	struct anser_proxy_opts opts = { .workers = 2, .dial_timeout = 3 };
	g_assert_cmpint(anser_proxy_new(NULL, &opts, &proxy), ==, 0);
	struct anser_proxy_hooks hooks = {
		.tcp_lookup = hook_tcp_lookup,
		.udp_lookup = hook_udp_lookup,
		.udp_rev_add = hook_rev_add,
		.udp_rev_del = hook_rev_del,
	};
	anser_proxy_set_hooks(proxy, &hooks);
	anser_proxy_ports(proxy, &tcp4_port, NULL, &udp4_port, NULL);
	g_assert_cmpuint(tcp4_port, !=, 0);
	g_assert_cmpuint(udp4_port, !=, 0);
	install_config();
	g_assert_cmpint(anser_proxy_start(proxy), ==, 0);

	g_test_add_func("/relay/bigbuf-budget", test_bigbuf_budget);
	g_test_add_func("/relay/direct", test_direct);
	g_test_add_func("/relay/socks5", test_socks5);
	g_test_add_func("/relay/socks5-auth", test_socks5_auth);
	g_test_add_func("/relay/half-close-direct", test_half_close_direct);
	g_test_add_func("/relay/half-close-socks5", test_half_close_socks5);
	g_test_add_func("/relay/dead-node", test_dead_node);
	g_test_add_func("/relay/list-sessions", test_list_sessions);
	g_test_add_func("/relay/udp-direct", test_udp_direct);
	g_test_add_func("/relay/udp-socks5", test_udp_socks5);
	g_test_add_func("/relay/shadowsocks", test_ss);
	int r = g_test_run();

	anser_proxy_free(proxy);
	/* Every session closed its reply mappings. */
	for (size_t i = 0; i < n_revs; i++)
		g_assert_false(revs[i].live);
	server_stop(&echo_srv);
	server_stop(&greeter_srv);
	struct sockaddr_in me = udp_echo_addr;
	int q = socket(AF_INET, SOCK_DGRAM, 0);
	sendto(q, "quit", 4, 0, (struct sockaddr *)&me, sizeof(me));
	close(q);
	pthread_join(udp_echo_thread, NULL);
	close(udp_echo_fd);
	stop(&pid_ms);
	stop(&pid_ms_auth);
	stop(&pid_dante);
	stop(&pid_ss);
	if (dante_dir) {
		g_autofree char *conf = g_build_filename(dante_dir, "danted.conf", NULL);
		g_autofree char *pidf = g_build_filename(dante_dir, "danted.pid", NULL);
		g_unlink(conf);
		g_unlink(pidf);
		g_rmdir(dante_dir);
		g_free(dante_dir);
	}
	g_free(greeter_digest);
	return r;
}
