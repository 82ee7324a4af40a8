// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Loading, attaching and feeding the BPF side.
 *
 * Fail-open by construction: every program is attached through a BPF link
 * owned by this process, so when anserd exits, crashes or is SIGKILLed the
 * kernel closes the links and detaches the programs; the apps' next
 * connect() goes direct. Unless fail_mode is closed: then the steering
 * links are also pinned in a bpf filesystem (pin_dir) and outlive a
 * crash, the programs refusing what they would steer to a listener that
 * is gone; a clean exit unpins them, and the next anserd removes the pins
 * a crashed one left.
 */
#include "datapath.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "../routing/routing.h"
#include "../util/log.h"
#include "../util/proc.h"
#include "bpf/anser.skel.h"
#include "lanroute.h"
#include "sockdiag.h"

/* enum bpf_attach_type BPF_TCX_EGRESS (Linux 6.6), newer than our headers */
#define BPF_TCX_EGRESS_TYPE  ((enum bpf_attach_type)47)
#define BPF_TCX_INGRESS_TYPE ((enum bpf_attach_type)46)

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

struct anser_datapath {
	struct anser_bpf *skel;
	char *cgroup_path;
	char *cg_mount; /* the cgroup2 mount point */
	char *cg_rel;	/* cgroup_path from the cgroup2 root: "/" or "/a/b" */
	/* anserd's own cgroup, when outside cg_rel: its sockets (listeners,
	 * the relay's) are left out of socket dumps */
	uint64_t own_cgroup;
	int cgroup_fd;
	struct bpf_link *links[16];
	size_t n_links;
	size_t n_steer; /* links[0..n_steer): the steering ones (cgroup hooks) */
	int lo_link_fd; /* tcx egress link on loopback, -1 if none */
	/* fail_mode: closed: want it; where the links are pinned; pinned now */
	bool want_closed, pinned;
	char *pin_dir;
	/* gateway mode: tcx ingress links on the LAN interfaces */
	int lan_if[ANSER_MAX_LAN_IFACES], lan_link[ANSER_MAX_LAN_IFACES];
	size_t n_lan;
	bool lan_warned;		/* "needs a restart", said once */
	bool lan_routed;		/* lanroute.c's rule and route are in place */
	bool gateway;			/* made with ANSER_DATAPATH_GATEWAY */
	int lan_lookup_link;		/* sk_lookup link (anser_lan_lookup), -1 if none */
	volatile struct anser_ctl *ctl; /* mmap of the ctl map */
	/* What each slot holds in the shared maps, to remove it on reuse. */
	struct anser_compiled slots[ANSER_GENS];
	/* Decisions reported by the kernel, by socket cookie, for the list. */
	struct ring_buffer *events;	  /* process names, log wakeups */
	struct anser_log_head *log_heads; /* mmap, one per possible CPU */
	struct anser_log_rec *log;	  /* mmap, ANSER_LOG_SLOTS per CPU */
	int64_t log_read_at;		  /* g_get_monotonic_time() of the last read */
	unsigned poll_ms;		  /* when to read again; 0: no need */
	size_t log_heads_len, log_len;
	unsigned n_cpus;
	uint64_t log_lost;	/* records overwritten before they were read */
	uint64_t log_lost_told; /* log_lost when last logged */
	GHashTable *flows;	/* &flow->cookie -> struct anser_flow */
	GHashTable *procs;	/* tgid -> process name (char *) */
	unsigned prune_at;
	uint32_t rules_version;
	uint32_t verified_max; /* most instructions the verifier walked for one program */
	/* Names the DNS service gave addresses (dom_ip): `names` and the
	 * slots' domain rules under names_lock (the service's thread learns,
	 * this one loads rules). */
	pthread_mutex_t names_lock;
	GHashTable *names; /* struct named_addr * (by its address) */
	uint64_t names_sweep_at;
};

#define NAMES_PER_ADDR 8
#define NAME_MIN_S     30 /* an answer with a shorter TTL still routes the connect after it */
#define NAMES_SWEEP_MS 5000

struct named_addr {
	uint8_t addr[16];
	char *names[NAMES_PER_ADDR]; /* the oldest first */
	unsigned n;
	uint64_t expires; /* CLOCK_MONOTONIC ms */
};

static uint64_t mono_ms(void);
static void names_sweep(struct anser_datapath *dp, uint64_t now);

#define PRUNE_MIN 4096

static guint named_hash(gconstpointer p)
{
	const uint8_t *a = ((const struct named_addr *)p)->addr;
	guint h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ a[i]) * 16777619u;
	return h;
}

static gboolean named_equal(gconstpointer a, gconstpointer b)
{
	return memcmp(((const struct named_addr *)a)->addr, ((const struct named_addr *)b)->addr,
		      16) == 0;
}

static void named_free(gpointer p)
{
	struct named_addr *e = p;
	for (unsigned i = 0; i < e->n; i++)
		free(e->names[i]);
	free(e);
}

static void on_flow(struct anser_datapath *dp, const struct anser_flow_event *e)
{
	struct anser_flow f = { 0 };
	struct anser_flow *old;
	const char *name;

	if (!e->cookie)
		return;
	f.cookie = e->cookie;
	f.pid = e->pid;
	f.family = e->family;
	f.proto = e->proto;
	f.outbound = e->outbound;
	f.rule = e->rule;
	f.gen = e->gen;
	f.flags = e->flags;
	f.dport = e->dport;
	memcpy(f.daddr, e->daddr, sizeof(f.daddr));
	name = g_hash_table_lookup(dp->procs, GUINT_TO_POINTER(e->pid));
	if (!name) {
		char *n = anser_proc_name(e->pid);
		if (n)
			g_hash_table_replace(dp->procs, GUINT_TO_POINTER(e->pid), n);
		name = n ? n : "?";
	}
	g_strlcpy(f.pname, name, sizeof(f.pname));

	old = g_hash_table_lookup(dp->flows, &f.cookie);
	if (old) {
		/* An unconnected UDP socket is shown by its first destination;
		 * a re-connect()ed socket by its latest. */
		if (f.proto == IPPROTO_UDP && !(f.flags & ANSER_FLOW_F_CONNECTED))
			return;
		*old = f;
		return;
	}
	struct anser_flow *copy = g_memdup2(&f, sizeof(f));
	g_hash_table_insert(dp->flows, &copy->cookie, copy);
}

/* ---- app() and cgroup(): cg_set entries (bpf/anser_abi.h) ---- */

/* File the set of the cgroup `id` at `path` in `slot`, if it differs from
 * its parent's (or it is where the hooks are attached: the walk up
 * always ends there). Returns 1 when an entry was written. */
static int cg_file(struct anser_datapath *dp, unsigned slot, uint64_t id, const char *path,
		   bool always)
{
	const struct anser_cg_rules *m = dp->slots[slot].cg;
	struct anser_cg_key key = { .set = slot, .id = id };
	struct anser_rules set, parent;

	anser_cg_rules_eval(m, path, &set);
	if (!always && strcmp(path, dp->cg_rel) != 0) {
		char *up = strdup(path), *slash = up ? strrchr(up, '/') : NULL;
		if (!up)
			return -ENOMEM;
		if (slash == up)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		anser_cg_rules_eval(m, up, &parent);
		free(up);
		if (memcmp(&set, &parent, sizeof(set)) == 0)
			return 0;
	}
	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.cg_set), &key, &set, BPF_ANY) < 0)
		return log_warning_errno(errno, "Cannot file the rules of cgroup %s: %m", path);
	return 1;
}

#define CG_MAX_DEPTH 64

/* Every cgroup below dfd (whose path is path[0..len)). */
static void cg_walk(struct anser_datapath *dp, unsigned slot, int dfd, char *path, size_t len,
		    unsigned depth, size_t *filed)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;

	if (!d) {
		close(dfd);
		return;
	}
	while ((e = readdir(d))) {
		struct stat st;
		size_t n = strlen(e->d_name);
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0)
			continue;
		if (len + 1 + n >= PATH_MAX || depth >= CG_MAX_DEPTH ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		size_t at = len;
		if (len > 1)
			path[at++] = '/';
		memcpy(path + at, e->d_name, n + 1);
		if (cg_file(dp, slot, st.st_ino, path, false) > 0)
			(*filed)++;
		int cfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cfd >= 0)
			cg_walk(dp, slot, cfd, path, at + n, depth + 1, filed);
		path[len] = '\0';
	}
	closedir(d);
}

/* The sets of the attached cgroup and all below it, for a slot's rules. */
static int cg_scan(struct anser_datapath *dp, unsigned slot)
{
	char *path = malloc(PATH_MAX);
	struct stat st;
	size_t filed = 0;
	int fd, r;

	if (!path)
		return -ENOMEM;
	fd = open(dp->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = log_error_errno(errno, "Cannot read cgroup %s: %m", dp->cgroup_path);
		if (fd >= 0)
			close(fd);
		free(path);
		return r;
	}
	snprintf(path, PATH_MAX, "%s", dp->cg_rel);
	r = cg_file(dp, slot, st.st_ino, path, true);
	if (r >= 0) {
		filed += (size_t)r;
		cg_walk(dp, slot, fd, path, strlen(path), 0, &filed);
		r = 0;
	} else {
		close(fd);
	}
	log_debug("Filed the app()/cgroup() rules of %zu cgroups under %s", filed, dp->cg_rel);
	free(path);
	return r;
}

/* A cgroup was made or removed somewhere: file the set of a new one under
 * ours for each slot with app()/cgroup() rules, so its threads look again. */
static void on_cgroup_event(struct anser_datapath *dp, const struct anser_cgroup_event *e)
{
	int fd = bpf_map__fd(dp->skel->maps.cg_set);
	char path[ANSER_CG_PATH_LEN + 1];
	bool any = false;

	if (e->removed) {
		for (unsigned slot = 0; slot < ANSER_GENS; slot++) {
			struct anser_cg_key key = { .set = slot, .id = e->id };
			bpf_map_delete_elem(fd, &key);
		}
		return;
	}
	memcpy(path, e->path, ANSER_CG_PATH_LEN);
	path[ANSER_CG_PATH_LEN] = '\0';
	if (!dp->cg_mount || !anser_cgroup_path_under(path, dp->cg_rel))
		return;
	for (unsigned slot = 0; slot < ANSER_GENS; slot++)
		any |= dp->slots[slot].cg != NULL;
	if (!any)
		return;
	/* Only the cgroup2 hierarchy counts (v1 hierarchies report too). */
	char *full = g_strconcat(dp->cg_mount, strcmp(path, "/") ? path : "", NULL);
	struct stat st;
	bool ours = stat(full, &st) == 0 && st.st_ino == e->id;
	g_free(full);
	if (!ours) {
		if (strlen(path) >= ANSER_CG_PATH_LEN - 1)
			log_warning("A new cgroup's path is too long to match app() and cgroup() "
				    "rules: %s...",
				    path);
		return;
	}
	bool filed = false;
	for (unsigned slot = 0; slot < ANSER_GENS; slot++)
		if (dp->slots[slot].cg && cg_file(dp, slot, e->id, path, false) > 0)
			filed = true;
	if (filed) {
		atomic_thread_fence(memory_order_seq_cst);
		dp->ctl->cg_version++;
		log_debug("Filed the app()/cgroup() rules of new cgroup %s", path);
	}
}

int anser_datapath_file_cgroup(struct anser_datapath *dp, unsigned slot, uint64_t id,
			       const char *path, bool always)
{
	slot &= 1;
	if (!dp->slots[slot].cg)
		return 0;
	int r = cg_file(dp, slot, id, path, always);
	if (r > 0) {
		atomic_thread_fence(memory_order_seq_cst);
		dp->ctl->cg_version++;
	}
	return r;
}

static void cg_clear_slot(struct anser_datapath *dp, unsigned slot)
{
	int fd = bpf_map__fd(dp->skel->maps.cg_set);
	/* a key no entry has (sets are 0 and 1) starts at the first entry,
	 * without passing NULL (which valgrind takes for a bad pointer) */
	struct anser_cg_key key = { .set = UINT32_MAX }, next;
	GArray *del = g_array_new(FALSE, FALSE, sizeof(key));

	while (bpf_map_get_next_key(fd, &key, &next) == 0) {
		if (next.set == slot)
			g_array_append_val(del, next);
		key = next;
	}
	for (guint i = 0; i < del->len; i++)
		bpf_map_delete_elem(fd, &g_array_index(del, struct anser_cg_key, i));
	g_array_free(del, TRUE);
}

/* Where the cgroup we attach to sits in the cgroup2 hierarchy. */
static int cg_locate(struct anser_datapath *dp)
{
	char mount[4096];
	char *real_mount = NULL, *real = NULL;
	int r = anser_cgroup2_mount(mount, sizeof(mount));

	if (r < 0)
		return r;
	real_mount = realpath(mount, NULL);
	real = realpath(dp->cgroup_path, NULL);
	if (!real_mount || !real) {
		r = -errno;
	} else {
		size_t n = strlen(real_mount);
		if (strncmp(real, real_mount, n) != 0 || (real[n] && real[n] != '/')) {
			r = -EXDEV;
		} else {
			dp->cg_mount = strdup(real_mount);
			dp->cg_rel = strdup(real[n] ? real + n : "/");
			r = dp->cg_mount && dp->cg_rel ? 0 : -ENOMEM;
		}
	}
	free(real_mount);
	free(real);
	return r;
}

/* anserd's own cgroup id, if no app of ours can share it (it is not in
 * the attached subtree). */
static void own_cgroup_locate(struct anser_datapath *dp)
{
	char *self = anser_proc_cgroup((unsigned)getpid());
	struct stat st;

	if (self && !anser_cgroup_path_under(self, dp->cg_rel)) {
		char *full = g_strconcat(dp->cg_mount, strcmp(self, "/") ? self : "", NULL);
		if (stat(full, &st) == 0)
			dp->own_cgroup = st.st_ino;
		g_free(full);
	}
	free(self);
}

static int on_flow_event(void *ctx, void *data, size_t len)
{
	struct anser_datapath *dp = ctx;
	const struct anser_proc_event *pe = data;

	/* A process (or a new image after exec) names itself before its first
	 * flow: later flows of this tgid carry this name. Wakeups need no
	 * handling: the log is read after the ring. */
	if (len >= sizeof(struct anser_cgroup_event) && pe->type == ANSER_EV_CGROUP) {
		on_cgroup_event(dp, data);
		return 0;
	}
	if (len >= sizeof(*pe) && pe->type == ANSER_EV_PROC)
		g_hash_table_replace(dp->procs, GUINT_TO_POINTER(pe->pid),
				     g_strndup(pe->pname, sizeof(pe->pname)));
	return 0;
}

/* Live sockets by cookie, the cookie itself as the key (no allocation
 * per socket: a listing may see tens of thousands). */
static void collect_live(const struct anser_diag_sock *s, void *ud)
{
	g_hash_table_add(ud, GSIZE_TO_POINTER((gsize)s->cookie));
}

static gboolean is_dead(gpointer key, gpointer value, gpointer live)
{
	return !g_hash_table_contains(live, GSIZE_TO_POINTER((gsize) * (const uint64_t *)key));
}

static gboolean is_gone_process(gpointer pid, gpointer name, gpointer ud)
{
	return kill((pid_t)GPOINTER_TO_UINT(pid), 0) < 0 && errno == ESRCH;
}

/* Forget flows whose sockets are gone, and processes that are gone. */
static void prune_flows(struct anser_datapath *dp)
{
	GHashTable *live = g_hash_table_new(NULL, NULL);
	if (anser_sockdiag_dump(dp->own_cgroup, collect_live, live) == 0)
		g_hash_table_foreach_remove(dp->flows, is_dead, live);
	g_hash_table_unref(live);
	g_hash_table_foreach_remove(dp->procs, is_gone_process, NULL);
	unsigned n = g_hash_table_size(dp->flows);
	dp->prune_at = n * 2 > PRUNE_MIN ? n * 2 : PRUNE_MIN;
}

/* A record still being written is waited for while it is among the last
 * few; further back, its writer is taken to have failed. */
#define LOG_PENDING_MAX 256

/* Pace of the reads: aim to read when the busiest CPU's log is a quarter
 * full at the rate just seen (the kernel's wakeup at three quarters stays a
 * backstop for bursts), but not more often than every POLL_MIN_MS nor less
 * often than POLL_MAX_MS while flows come; none at all when none came. */
#define POLL_MIN_MS 5
#define POLL_MAX_MS 60000

static void pace_reads(struct anser_datapath *dp, uint64_t most)
{
	int64_t now = g_get_monotonic_time();
	uint64_t dt_ms = (uint64_t)(now - dp->log_read_at) / 1000;

	dp->log_read_at = now;
	if (!most) {
		dp->poll_ms = 0;
		return;
	}
	uint64_t ms = dt_ms * (ANSER_LOG_SLOTS / 4) / most;
	dp->poll_ms = ms < POLL_MIN_MS	 ? POLL_MIN_MS
		      : ms > POLL_MAX_MS ? POLL_MAX_MS
					 : (unsigned)ms;
}

/* Read what each CPU's flow log holds past what was read before. */
static void drain_log(struct anser_datapath *dp)
{
	uint64_t most = 0;

	for (unsigned cpu = 0; cpu < dp->n_cpus; cpu++) {
		uint64_t head = __atomic_load_n(&dp->log_heads[cpu].head, __ATOMIC_ACQUIRE);
		uint64_t t = dp->log_heads[cpu].tail, start = t;
		if (head - t > ANSER_LOG_SLOTS) {
			dp->log_lost += head - t - ANSER_LOG_SLOTS;
			t = head - ANSER_LOG_SLOTS;
		}
		for (; t < head; t++) {
			struct anser_log_rec *rec =
				&dp->log[(size_t)cpu * ANSER_LOG_SLOTS + (t % ANSER_LOG_SLOTS)];
			uint64_t seq = __atomic_load_n(&rec->seq, __ATOMIC_ACQUIRE);
			if (seq != t + 1) {
				if (seq < t + 1 && head - t <= LOG_PENDING_MAX)
					break; /* still being written: next time */
				dp->log_lost++;
				continue;
			}
			struct anser_flow_event ev;
			memcpy(&ev, &rec->ev, sizeof(ev));
			/* Writers take an index before they write: if none has
			 * taken this slot's next index yet, the copy is whole. */
			atomic_thread_fence(memory_order_acquire);
			if (__atomic_load_n(&dp->log_heads[cpu].head, __ATOMIC_RELAXED) - t >
			    ANSER_LOG_SLOTS) {
				dp->log_lost++;
				continue;
			}
			on_flow(dp, &ev); /* the log holds flow records only */
		}
		/* The kernel reads it to tell whether anserd lags. */
		__atomic_store_n(&dp->log_heads[cpu].tail, t, __ATOMIC_RELAXED);
		if (head - start > most)
			most = head - start;
	}
	pace_reads(dp, most);
	if (dp->log_lost != dp->log_lost_told) {
		log_warning("%" PRIu64 " flow records were overwritten before they were read; the "
			    "connection list misses those flows (routing does not)",
			    dp->log_lost - dp->log_lost_told);
		dp->log_lost_told = dp->log_lost;
	}
}

int anser_datapath_events_fd(struct anser_datapath *dp)
{
	return ring_buffer__epoll_fd(dp->events);
}

unsigned anser_datapath_drain(struct anser_datapath *dp)
{
	pthread_mutex_lock(&dp->names_lock);
	names_sweep(dp, mono_ms());
	pthread_mutex_unlock(&dp->names_lock);
	/* Names first: a flow's process names itself before the flow. */
	ring_buffer__consume(dp->events);
	drain_log(dp);
	if (g_hash_table_size(dp->flows) > dp->prune_at)
		prune_flows(dp);
	return dp->poll_ms;
}

int anser_cgroup2_mount(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	char dev[256], dir[4096], type[64];
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (fscanf(f, "%255s %4095s %63s %*s %*d %*d\n", dev, dir, type) == 3) {
		if (strcmp(type, "cgroup2") == 0) {
			if (strlen(dir) >= len) {
				r = -ENAMETOOLONG;
				break;
			}
			strcpy(buf, dir);
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	if (level == LIBBPF_DEBUG && anser_log_get_level() < ANSER_LOG_DEBUG)
		return 0;
		/* libbpf's own format strings; the callback type has no format attribute. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(line, sizeof(line), fmt, ap);
#pragma GCC diagnostic pop
	size_t n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[n - 1] = '\0';
	anser_log(level == LIBBPF_WARN ? ANSER_LOG_WARNING : ANSER_LOG_DEBUG, "libbpf: %s", line);
	return 0;
}

static int own_netns_cookie(uint64_t *cookie)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t len = sizeof(*cookie);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len) < 0)
		r = -errno;
	close(fd);
	return r;
}

static void *map_array(struct bpf_map *map, size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
	return m == MAP_FAILED ? NULL : m;
}

/* The flow log, mapped. Its maps are new, so reading starts at index 0. */
static int map_log(struct anser_datapath *dp)
{
	dp->log_heads_len = dp->n_cpus * sizeof(struct anser_log_head);
	dp->log_len = (size_t)dp->n_cpus * ANSER_LOG_SLOTS * sizeof(struct anser_log_rec);
	dp->log_heads = map_array(dp->skel->maps.log_heads, dp->log_heads_len);
	dp->log = map_array(dp->skel->maps.flow_log, dp->log_len);
	dp->log_read_at = g_get_monotonic_time();
	if (!dp->log_heads || !dp->log)
		return log_error_errno(errno ? errno : ENOMEM, "Failed to map the flow log: %m");
	return 0;
}

/* The verifier's work per program: a program near the kernel's limit of a
 * million instructions is one rule-engine change away from not loading. */
static void note_verifier(struct anser_datapath *dp, uint64_t usec)
{
	struct bpf_program *prog;
	uint64_t total = 0;
	const char *biggest = "?";

	bpf_object__for_each_program(prog, dp->skel->obj)
	{
		struct bpf_prog_info info = { 0 };
		uint32_t len = sizeof(info);
		int fd = bpf_program__fd(prog);

		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
			continue;
		total += info.verified_insns;
		if (info.verified_insns > dp->verified_max) {
			dp->verified_max = info.verified_insns;
			biggest = bpf_program__name(prog);
		}
	}
	log_debug("BPF programs loaded in %" PRIu64 " ms; the verifier walked %" PRIu64
		  " instructions, at most %" PRIu32 " for one program (%s)",
		  usec / 1000, total, dp->verified_max, biggest);
}

int anser_datapath_new(const char *cgroup_path, unsigned flags, struct anser_datapath **out)
{
	struct anser_datapath *dp;
	char root[4096];
	uint64_t cookie = 0;
	int r;

	libbpf_set_print(libbpf_print);
	if (!cgroup_path) {
		r = anser_cgroup2_mount(root, sizeof(root));
		if (r < 0)
			return log_error_errno(r,
					       "No cgroup2 mount found in /proc/self/mounts: %m");
		cgroup_path = root;
	}
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->cgroup_fd = -1;
	dp->lo_link_fd = -1;
	dp->lan_lookup_link = -1;
	dp->cgroup_path = strdup(cgroup_path);
	if (!dp->cgroup_path) {
		free(dp);
		return -ENOMEM;
	}
	r = cg_locate(dp);
	if (r < 0)
		log_warning_errno(r,
				  "Cannot place %s in the cgroup2 hierarchy, app() and cgroup() "
				  "rules will not match: %m",
				  dp->cgroup_path);
	else
		own_cgroup_locate(dp);

	r = own_netns_cookie(&cookie);
	if (r < 0)
		log_warning_errno(r, "Cannot read own netns cookie, hooks act in every netns: %m");

	dp->skel = anser_bpf__open();
	if (!dp->skel) {
		r = log_error_errno(errno, "Failed to open BPF object: %m");
		goto fail;
	}
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0) {
		r = log_error_errno(ncpu < 0 ? ncpu : -EINVAL, "Cannot count the CPUs: %m");
		goto fail;
	}
	dp->n_cpus = (unsigned)ncpu;
	bpf_map__set_max_entries(dp->skel->maps.log_heads, dp->n_cpus);
	bpf_map__set_max_entries(dp->skel->maps.flow_log, dp->n_cpus * ANSER_LOG_SLOTS);
	bpf_program__set_autoload(dp->skel->progs.anser_eval, flags & ANSER_DATAPATH_EVAL);
	bpf_program__set_autoload(dp->skel->progs.anser_lan_ingress,
				  flags & ANSER_DATAPATH_GATEWAY);
	bpf_program__set_autoload(dp->skel->progs.anser_lan_lookup, flags & ANSER_DATAPATH_GATEWAY);
	dp->gateway = flags & ANSER_DATAPATH_GATEWAY;
	if (!dp->gateway) { /* its flow cache (~10 MB preallocated) and sets */
		bpf_map__set_max_entries(dp->skel->maps.lan_flows, 1);
		bpf_map__set_max_entries(dp->skel->maps.lan_frags, 1);
		bpf_map__set_max_entries(dp->skel->maps.sport_class, 1);
		bpf_map__set_max_entries(dp->skel->maps.sport_rules, 1);
		bpf_map__set_max_entries(dp->skel->maps.dscp_rules, 1);
	}
	dp->skel->rodata->self_tgid = (uint32_t)getpid();
	dp->skel->rodata->netns_cookie = cookie;
	uint64_t t0 = g_get_monotonic_time();
	r = anser_bpf__load(dp->skel);
	if (r < 0) {
		r = log_error_errno(r, "Failed to load BPF programs (kernel >= 6.1 with BTF and "
				       "root/CAP_BPF+CAP_NET_ADMIN needed): %m");
		goto fail;
	}
	note_verifier(dp, g_get_monotonic_time() - t0);
	void *m = mmap(NULL, sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED,
		       bpf_map__fd(dp->skel->maps.ctl), 0);
	if (m == MAP_FAILED) {
		r = log_error_errno(errno, "Failed to map the control map: %m");
		goto fail;
	}
	dp->ctl = m;
	dp->ctl->enabled = 1;
	r = map_log(dp);
	if (r < 0)
		goto fail;
	dp->flows = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
	dp->procs = g_hash_table_new_full(NULL, NULL, NULL, g_free);
	pthread_mutex_init(&dp->names_lock, NULL);
	dp->names = g_hash_table_new_full(named_hash, named_equal, NULL, named_free);
	dp->prune_at = PRUNE_MIN;
	dp->events =
		ring_buffer__new(bpf_map__fd(dp->skel->maps.flow_events), on_flow_event, dp, NULL);
	if (!dp->events) {
		r = log_error_errno(errno, "Failed to open the flow event ring: %m");
		goto fail;
	}
	*out = dp;
	return 0;
fail:
	anser_datapath_free(dp);
	return r;
}

/* The names steering links are pinned under in pin_dir: the programs'
 * names, in the order attach() makes their links. */
static const char *const pin_names[] = {
	"anser_connect4", "anser_connect6",  "anser_sendmsg4",	   "anser_sendmsg6",
	"anser_recvmsg4", "anser_recvmsg6",  "anser_getpeername4", "anser_getpeername6",
	"anser_egress",	  "anser_lo_egress",
};

static char *pin_path(const struct anser_datapath *dp, const char *name)
{
	return g_build_filename(dp->pin_dir, name, NULL);
}

/* Gateway mode's links: "anser_lan_<ifindex>". A crashed anserd's keep
 * forwarding direct flows and drop proxied ones (their listener is gone). */
#define LAN_PIN_PREFIX "anser_lan_"

static char *lan_pin_path(const struct anser_datapath *dp, int ifindex)
{
	char name[32];
	snprintf(name, sizeof(name), LAN_PIN_PREFIX "%d", ifindex);
	return pin_path(dp, name);
}

/* Pin the LAN link i (fail_mode: closed); -errno, logged. */
static int pin_lan(struct anser_datapath *dp, size_t i)
{
	char *path = lan_pin_path(dp, dp->lan_if[i]);
	int r = bpf_obj_pin(dp->lan_link[i], path) < 0 ? -errno : 0;
	if (r < 0)
		log_error_errno(r, "Cannot pin %s: %m; LAN flows go direct if anserd stops", path);
	g_free(path);
	return r;
}

/* Remove every pin of ours in pin_dir: ours (unpin) or a crashed anserd's
 * (its programs go with the last pin). */
static void remove_pins(struct anser_datapath *dp, bool stale)
{
	size_t removed = 0;

	if (!dp->pin_dir)
		return;
	for (size_t i = 0; i < sizeof(pin_names) / sizeof(*pin_names); i++) {
		char *path = pin_path(dp, pin_names[i]);
		if (unlink(path) == 0)
			removed++;
		else if (errno != ENOENT)
			log_warning_errno(errno, "Cannot remove %s: %m", path);
		g_free(path);
	}
	/* gateway mode's, one per LAN interface */
	DIR *d = opendir(dp->pin_dir);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (strncmp(e->d_name, LAN_PIN_PREFIX, strlen(LAN_PIN_PREFIX)) != 0)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			removed++;
		else
			log_warning_errno(errno, "Cannot remove %s/%s: %m", dp->pin_dir, e->d_name);
	}
	if (d)
		closedir(d);
	if (stale && removed)
		log_notice("Removed %zu programs a stopped anserd left pinned in %s (fail_mode: "
			   "closed): this one steers now",
			   removed, dp->pin_dir);
}

static void unpin(struct anser_datapath *dp)
{
	if (!dp->pinned)
		return;
	remove_pins(dp, false);
	dp->pinned = false;
	dp->ctl->fail_closed = 0;
	log_info("fail_mode open: programs unpinned, flows go direct if anserd stops");
}

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

static int pin(struct anser_datapath *dp)
{
	struct statfs sf;
	int r = 0;

	if (dp->pinned || !dp->n_steer)
		return 0;
	if (!dp->pin_dir)
		return -EINVAL;
	if (mkdir(dp->pin_dir, 0700) < 0 && errno != EEXIST)
		r = -errno;
	else if (statfs(dp->pin_dir, &sf) < 0)
		r = -errno;
	else if ((uint32_t)sf.f_type != BPF_FS_MAGIC)
		r = -ENOTSUP;
	if (r < 0)
		return log_error_errno(
			r,
			"fail_mode: closed needs a bpf filesystem at %s (mount -t bpf "
			"bpf /sys/fs/bpf): %m; flows go direct if anserd stops",
			dp->pin_dir);
	for (size_t i = 0; i <= dp->n_steer && r == 0; i++) {
		int fd = i < dp->n_steer ? bpf_link__fd(dp->links[i]) : dp->lo_link_fd;
		/* links[] holds the cgroup hooks in pin_names' order, then
		 * anser_egress when lo has no tcx */
		const char *name = i < dp->n_steer ? pin_names[i] : "anser_lo_egress";
		if (fd < 0)
			continue;
		char *path = pin_path(dp, name);
		if (bpf_obj_pin(fd, path) < 0) {
			r = -errno;
			log_error_errno(r, "Cannot pin %s: %m; flows go direct if anserd stops",
					path);
		}
		g_free(path);
	}
	for (size_t i = 0; i < dp->n_lan && r == 0; i++)
		r = pin_lan(dp, i);
	if (r < 0) {
		remove_pins(dp, false);
		return r;
	}
	dp->pinned = true;
	/* the programs refuse to steer to a listener that is gone */
	dp->ctl->fail_closed = 1;
	log_info("fail_mode closed: programs pinned in %s, flows they would steer are refused "
		 "if anserd stops",
		 dp->pin_dir);
	return 0;
}

void anser_datapath_set_pin_dir(struct anser_datapath *dp, const char *dir)
{
	g_free(dp->pin_dir);
	dp->pin_dir = dir ? g_strdup(dir) : NULL;
}

int anser_datapath_set_fail_closed(struct anser_datapath *dp, bool closed)
{
	dp->want_closed = closed;
	if (!dp->n_steer)
		return 0; /* attach() pins */
	if (!closed) {
		unpin(dp);
		return 0;
	}
	return pin(dp);
}

void anser_datapath_detach(struct anser_datapath *dp)
{
	if (!dp)
		return;
	unpin(dp); /* stopped on purpose: fail open */
	for (size_t i = 0; i < dp->n_links; i++)
		bpf_link__destroy(dp->links[i]);
	if (dp->n_links)
		log_info("Detached from cgroup %s", dp->cgroup_path);
	dp->n_links = dp->n_steer = 0;
	if (dp->lo_link_fd >= 0)
		close(dp->lo_link_fd);
	dp->lo_link_fd = -1;
	if (dp->lan_lookup_link >= 0)
		close(dp->lan_lookup_link);
	dp->lan_lookup_link = -1;
	anser_datapath_set_lan(dp, NULL, 0);
}

/* ARPHRD_* of an interface, -errno. */
static int if_hwtype(int ifindex)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	if (!if_indextoname((unsigned)ifindex, ifr.ifr_name)) {
		r = -errno;
	} else {
		r = ioctl(fd, SIOCGIFHWADDR, &ifr) < 0 ? -errno : ifr.ifr_hwaddr.sa_family;
	}
	close(fd);
	return r;
}

/* An interface's entries in lan_ifaces (mfd) and lan_if_small (sfd) gone. */
static void lan_if_forget(int mfd, int sfd, uint32_t key)
{
	uint32_t none = 0;

	if (mfd >= 0)
		bpf_map_delete_elem(mfd, &key);
	if (sfd >= 0 && key < ANSER_LAN_IF_SMALL)
		bpf_map_update_elem(sfd, &key, &none, BPF_ANY);
}

int anser_datapath_set_lan(struct anser_datapath *dp, const int *ifindex, size_t n)
{
	int mfd = dp->skel ? bpf_map__fd(dp->skel->maps.lan_ifaces) : -1;
	int sfd = dp->skel ? bpf_map__fd(dp->skel->maps.lan_if_small) : -1;
	int pfd = dp->skel ? bpf_program__fd(dp->skel->progs.anser_lan_ingress) : -1;
	int err = 0;

	if (n && pfd < 0) {
		if (!dp->lan_warned)
			log_warning("Gateway mode needs a restart of anserd: lan_interface was not "
				    "set when it started");
		dp->lan_warned = true;
		return -ENOTSUP;
	}

	/* links of interfaces that left the set */
	for (size_t i = 0; i < dp->n_lan;) {
		bool keep = false;
		for (size_t k = 0; k < n && !keep; k++)
			keep = ifindex[k] == dp->lan_if[i];
		if (keep) {
			i++;
			continue;
		}
		close(dp->lan_link[i]);
		if (dp->pinned) {
			char *path = lan_pin_path(dp, dp->lan_if[i]);
			(void)unlink(path);
			g_free(path);
		}
		lan_if_forget(mfd, sfd, (uint32_t)dp->lan_if[i]);
		log_info("Gateway: left interface %d", dp->lan_if[i]);
		dp->lan_if[i] = dp->lan_if[dp->n_lan - 1];
		dp->lan_link[i] = dp->lan_link[dp->n_lan - 1];
		dp->n_lan--;
	}
	for (size_t k = 0; k < n; k++) {
		bool have = false;
		for (size_t i = 0; i < dp->n_lan && !have; i++)
			have = dp->lan_if[i] == ifindex[k];
		if (have)
			continue;
		if (dp->n_lan == ANSER_MAX_LAN_IFACES) {
			err = log_error_errno(-E2BIG, "Gateway: more than %d LAN interfaces",
					      ANSER_MAX_LAN_IFACES);
			break;
		}
		int t = if_hwtype(ifindex[k]);
		uint32_t key = (uint32_t)ifindex[k];
		uint32_t flags = t == ARPHRD_ETHER ? 0 : ANSER_LAN_F_L3;
		if (t < 0 || bpf_map_update_elem(mfd, &key, &flags, BPF_ANY) < 0 ||
		    (key < ANSER_LAN_IF_SMALL &&
		     bpf_map_update_elem(sfd, &key, &flags, BPF_ANY) < 0)) {
			err = log_warning_errno(t < 0 ? t : -errno,
						"Gateway: interface %d not watched: %m",
						ifindex[k]);
			lan_if_forget(mfd, sfd, key);
			continue;
		}
		int fd = bpf_link_create(pfd, ifindex[k], BPF_TCX_INGRESS_TYPE, NULL);
		if (fd < 0) {
			lan_if_forget(mfd, sfd, key);
			err = log_warning_errno(fd, "Gateway: cannot attach to interface %d: %m",
						ifindex[k]);
			continue;
		}
		dp->lan_if[dp->n_lan] = ifindex[k];
		dp->lan_link[dp->n_lan++] = fd;
		if (dp->pinned)
			(void)pin_lan(dp, dp->n_lan - 1);
		log_info("Gateway: deciding the traffic that arrives on interface %d%s", ifindex[k],
			 flags & ANSER_LAN_F_L3 ? " (no link-layer header)" : "");
	}
	/* proxied LAN flows need the policy rule while any interface is watched */
	if (dp->n_lan && !dp->lan_routed) {
		dp->lan_routed = true;
		(void)anser_lan_route_add();
	} else if (!dp->n_lan && dp->lan_routed) {
		dp->lan_routed = false;
		anser_lan_route_del();
	}
	return err;
}

void anser_datapath_free(struct anser_datapath *dp)
{
	if (!dp)
		return;
	/* Links first: the kernel stops steering before maps go away. */
	anser_datapath_detach(dp);
	ring_buffer__free(dp->events);
	if (dp->flows)
		g_hash_table_unref(dp->flows);
	if (dp->procs)
		g_hash_table_unref(dp->procs);
	if (dp->names) {
		g_hash_table_unref(dp->names);
		pthread_mutex_destroy(&dp->names_lock);
	}
	if (dp->ctl)
		munmap((void *)dp->ctl, sysconf(_SC_PAGESIZE));
	if (dp->log_heads)
		munmap(dp->log_heads, dp->log_heads_len);
	if (dp->log)
		munmap(dp->log, dp->log_len);
	anser_bpf__destroy(dp->skel);
	if (dp->cgroup_fd >= 0)
		close(dp->cgroup_fd);
	for (int i = 0; i < ANSER_GENS; i++)
		anser_compiled_clear(&dp->slots[i]);
	free(dp->cgroup_path);
	g_free(dp->pin_dir);
	free(dp->cg_mount);
	free(dp->cg_rel);
	free(dp);
}

int anser_datapath_set_ports(struct anser_datapath *dp, uint16_t tcp4, uint16_t tcp6, uint16_t udp4,
			     uint16_t udp6)
{
	dp->ctl->tcp4_port = tcp4;
	dp->ctl->tcp6_port = tcp6;
	dp->ctl->udp4_port = udp4;
	dp->ctl->udp6_port = udp6;
	atomic_thread_fence(memory_order_seq_cst);
	return 0;
}

int anser_datapath_set_lan_socks(struct anser_datapath *dp, int udp4, int udp6)
{
	int mfd = bpf_map__fd(dp->skel->maps.lan_socks);
	int pfd = bpf_program__fd(dp->skel->progs.anser_lan_lookup);
	const int fds[2] = { udp4, udp6 };
	int err = 0;

	for (uint32_t i = 0; i < 2; i++) {
		uint64_t v = (uint64_t)fds[i];
		if (fds[i] < 0)
			bpf_map_delete_elem(mfd, &i);
		else if (bpf_map_update_elem(mfd, &i, &v, BPF_ANY) < 0)
			err = log_warning_errno(
				-errno,
				"Gateway: no IPv%c UDP listener for LAN flows (they "
				"go direct): %m",
				i ? '6' : '4');
	}
	if (pfd >= 0 && dp->lan_lookup_link < 0) {
		int ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		dp->lan_lookup_link =
			ns < 0 ? -errno : bpf_link_create(pfd, ns, BPF_SK_LOOKUP, NULL);
		if (ns >= 0)
			close(ns);
		if (dp->lan_lookup_link < 0) {
			err = log_warning_errno(
				dp->lan_lookup_link,
				"Gateway: cannot follow reassembled UDP of proxied LAN "
				"flows (fragmented datagrams are lost): %m");
			dp->lan_lookup_link = -1;
		}
	}
	return err;
}

/* --- names from DNS (dom_ip) --- */

static void dom_key(struct anser_lpm_key *k, unsigned slot, const uint8_t addr[16])
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = 32 + 128;
	k->set = (slot << 31) | ANSER_SET_DOMAIN;
	memcpy(k->data, addr, 16);
}

/* e's entry for slot: the rules whose domain() conditions hold for one
 * of its names. names_lock held. */
static void dom_write(struct anser_datapath *dp, unsigned slot, const struct named_addr *e)
{
	const struct anser_domain_rules *dom = dp->slots[slot].dom;
	struct anser_rules v = { 0 }, one;
	struct anser_lpm_key k;

	if (!dom)
		return;
	for (unsigned i = 0; i < e->n; i++) {
		anser_domain_rules_eval(dom, e->names[i], &one);
		for (unsigned w = 0; w < ANSER_RULE_WORDS; w++)
			v.w[w] |= one.w[w];
	}
	dom_key(&k, slot, e->addr);
	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.dom_ip), &k, &v, BPF_ANY) < 0)
		log_debug_errno(errno, "Failed to file a resolved address: %m");
}

static void dom_delete(struct anser_datapath *dp, unsigned slot, const struct named_addr *e)
{
	struct anser_lpm_key k;

	dom_key(&k, slot, e->addr);
	(void)bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.dom_ip), &k);
}

static gboolean dom_expired(gpointer key, gpointer value, gpointer ud)
{
	struct anser_datapath *dp = ((void **)ud)[0];
	const uint64_t *now = ((void **)ud)[1];
	const struct named_addr *e = key;

	if (e->expires > *now)
		return FALSE;
	for (unsigned slot = 0; slot < ANSER_GENS; slot++)
		dom_delete(dp, slot, e);
	return TRUE;
}

static uint64_t mono_ms(void)
{
	return (uint64_t)g_get_monotonic_time() / 1000;
}

/* names_lock held */
static void names_sweep(struct anser_datapath *dp, uint64_t now)
{
	void *ud[2] = { dp, &now };

	if (now < dp->names_sweep_at)
		return;
	dp->names_sweep_at = now + NAMES_SWEEP_MS;
	g_hash_table_foreach_remove(dp->names, dom_expired, ud);
}

int anser_datapath_learn(struct anser_datapath *dp, const uint8_t addr[16], const char *name,
			 uint32_t seconds)
{
	uint64_t now = mono_ms();
	struct named_addr probe, *e;
	int r = 0;

	memcpy(probe.addr, addr, 16);
	pthread_mutex_lock(&dp->names_lock);
	names_sweep(dp, now);
	e = g_hash_table_lookup(dp->names, &probe);
	if (!e) {
		if (g_hash_table_size(dp->names) >= ANSER_DOM_MAX_ENTRIES ||
		    !(e = calloc(1, sizeof(*e)))) {
			r = -ENOSPC;
			goto out;
		}
		memcpy(e->addr, addr, 16);
		g_hash_table_add(dp->names, e);
	}
	uint64_t until = now + (uint64_t)(seconds > NAME_MIN_S ? seconds : NAME_MIN_S) * 1000;
	if (until > e->expires)
		e->expires = until;
	for (unsigned i = 0; i < e->n; i++)
		if (strcmp(e->names[i], name) == 0)
			goto out; /* known: the entries say so already */
	char *copy = strdup(name);
	if (!copy) {
		r = -ENOMEM;
		goto out;
	}
	if (e->n == NAMES_PER_ADDR) {
		free(e->names[0]);
		memmove(e->names, e->names + 1, (NAMES_PER_ADDR - 1) * sizeof(*e->names));
		e->n--;
	}
	e->names[e->n++] = copy;
	/* both slots: a reload may be between loading and activating one */
	for (unsigned slot = 0; slot < ANSER_GENS; slot++)
		dom_write(dp, slot, e);
out:
	pthread_mutex_unlock(&dp->names_lock);
	return r;
}

/* A slot's entries for every named address (after its rules are in
 * dp->slots[slot]); names_lock held. */
static void names_write_slot(struct anser_datapath *dp, unsigned slot)
{
	GHashTableIter it;
	gpointer key;

	g_hash_table_iter_init(&it, dp->names);
	while (g_hash_table_iter_next(&it, &key, NULL))
		dom_write(dp, slot, key);
}

void anser_datapath_set_dns(struct anser_datapath *dp, uint16_t v4, uint16_t v6,
			    const uint8_t (*virt)[16], size_t n_virt)
{
	atomic_thread_fence(memory_order_seq_cst);
	dp->ctl->dns4_port = 0; /* off while the addresses change */
	dp->ctl->dns6_port = 0;
	atomic_thread_fence(memory_order_seq_cst);
	if (n_virt > 2)
		n_virt = 2;
	for (size_t i = 0; i < n_virt; i++)
		memcpy((void *)dp->ctl->vdns[i], virt[i], 16);
	dp->ctl->n_vdns = (uint32_t)n_virt;
	atomic_thread_fence(memory_order_seq_cst);
	dp->ctl->dns4_port = v4;
	dp->ctl->dns6_port = v6;
	atomic_thread_fence(memory_order_seq_cst);
}

static void clear_slot(struct anser_datapath *dp, unsigned slot)
{
	struct anser_compiled *c = &dp->slots[slot];
	int lpm = bpf_map__fd(dp->skel->maps.match_lpm);
	int pn = bpf_map__fd(dp->skel->maps.pname_set);

	for (size_t i = 0; i < c->n_lpm; i++)
		bpf_map_delete_elem(lpm, &c->lpm[i].key);
	for (size_t i = 0; i < c->n_pnames; i++)
		bpf_map_delete_elem(pn, &c->pnames[i].key);
	if (c->cg)
		cg_clear_slot(dp, slot);
	pthread_mutex_lock(&dp->names_lock);
	if (c->dom) {
		GHashTableIter it;
		gpointer key;
		g_hash_table_iter_init(&it, dp->names);
		while (g_hash_table_iter_next(&it, &key, NULL))
			dom_delete(dp, slot, key);
	}
	anser_compiled_clear(c);
	pthread_mutex_unlock(&dp->names_lock);
}

/* A port table of a slot: a class byte per port, packed 8 to a word,
 * and the classes' rules. */
static int write_port_table(const struct bpf_map *class_map, const struct bpf_map *rules_map,
			    const uint8_t *port_class, const struct anser_rules *rules,
			    size_t n_rules, unsigned slot)
{
	uint32_t keys[ANSER_PORT_CLASS_WORDS];
	uint64_t words[ANSER_PORT_CLASS_WORDS];
	uint32_t n = ANSER_PORT_CLASS_WORDS;

	for (uint32_t i = 0; i < n; i++) {
		keys[i] = slot * ANSER_PORT_CLASS_WORDS + i;
		words[i] = 0;
		for (unsigned b = 0; b < 8; b++)
			words[i] |= (uint64_t)port_class[i * 8 + b] << (8 * b);
	}
	if (bpf_map_update_batch(bpf_map__fd(class_map), keys, words, &n, NULL) < 0)
		return -errno;
	for (uint32_t i = 0; i < n_rules; i++) {
		uint32_t key = slot * ANSER_MAX_PORT_CLASSES + i;
		if (bpf_map_update_elem(bpf_map__fd(rules_map), &key, &rules[i], BPF_ANY) < 0)
			return -errno;
	}
	return 0;
}

/* dport(), and in gateway mode sport() and dscp(). */
static int write_ports(struct anser_datapath *dp, const struct anser_compiled *c, unsigned slot)
{
	int r = 0;

	if (c->port_class)
		r = write_port_table(dp->skel->maps.port_class, dp->skel->maps.port_rules,
				     c->port_class, c->port_rules, c->n_port_classes, slot);
	if (r < 0 || !dp->gateway)
		return r; /* (the maps of the others have room for nothing) */
	if (c->sport_class)
		r = write_port_table(dp->skel->maps.sport_class, dp->skel->maps.sport_rules,
				     c->sport_class, c->sport_rules, c->n_sport_classes, slot);
	for (uint32_t v = 0; r == 0 && c->dscp_rules && v < ANSER_DSCP_VALUES; v++) {
		uint32_t key = slot * ANSER_DSCP_VALUES + v;
		if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.dscp_rules), &key,
					&c->dscp_rules[v], BPF_ANY) < 0)
			r = -errno;
	}
	return r;
}

int anser_datapath_load_rules(struct anser_datapath *dp, const struct anser_config *cfg,
			      unsigned slot)
{
	struct anser_compiled c;
	int r;

	r = anser_routing_compile(cfg, NULL, slot, &c);
	if (r == -E2BIG)
		return log_error_errno(r, "The routing rules do not fit the kernel's tables (%s)",
				       c.limit);
	if (r < 0)
		return log_error_errno(r, "Failed to compile routing rules: %m");
	return anser_datapath_load_compiled(dp, &c, slot);
}

int anser_datapath_load_compiled(struct anser_datapath *dp, struct anser_compiled *compiled,
				 unsigned slot)
{
	struct anser_compiled c = *compiled;
	struct anser_gen_info gi;
	int r;

	memset(compiled, 0, sizeof(*compiled)); /* ours now, whatever happens */
	slot &= 1;
	if (slot == dp->ctl->active_gen && dp->slots[slot].info.n_rules) {
		anser_compiled_clear(&c);
		return log_error_errno(-EBUSY, "Refusing to overwrite the active rule slot %u",
				       slot);
	}
	anser_compiled_set_slot(&c, slot);
	clear_slot(dp, slot);

	int lfd = bpf_map__fd(dp->skel->maps.match_lpm);
	int pfd = bpf_map__fd(dp->skel->maps.pname_set);

	/* The tables first, then the slot's info that makes them count: the
	 * slot is not active yet, but keep the order meaningful anyway. */
	for (size_t i = 0; i < c.n_lpm; i++)
		if (bpf_map_update_elem(lfd, &c.lpm[i].key, &c.lpm[i].rules, BPF_ANY) < 0) {
			r = log_error_errno(errno, "Failed to write address set: %m");
			goto fail;
		}
	for (size_t i = 0; i < c.n_pnames; i++)
		if (bpf_map_update_elem(pfd, &c.pnames[i].key, &c.pnames[i].rules, BPF_ANY) < 0) {
			r = log_error_errno(errno, "Failed to write process name set: %m");
			goto fail;
		}
	if ((r = write_ports(dp, &c, slot)) < 0) {
		log_error_errno(r, "Failed to write port sets: %m");
		goto fail;
	}
	if (c.cg) {
		dp->slots[slot].cg = c.cg; /* cg_file reads it there */
		r = dp->cg_rel ? cg_scan(dp, slot) : 0;
		dp->slots[slot].cg = NULL;
		if (r < 0)
			goto fail;
	}
	gi = c.info;
	gi.version = ++dp->rules_version;
	uint32_t key = slot;
	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.gen_info), &key, &gi, BPF_ANY) < 0) {
		r = log_error_errno(errno, "Failed to write the rules: %m");
		goto fail;
	}
	pthread_mutex_lock(&dp->names_lock);
	dp->slots[slot] = c;
	names_write_slot(dp, slot);
	pthread_mutex_unlock(&dp->names_lock);
	log_debug("Loaded %u rules, %zu address prefixes, %zu names, %zu port classes into slot "
		  "%u",
		  c.info.n_rules, c.n_lpm, c.n_pnames, c.n_port_classes, slot);
	return 0;
fail:
	pthread_mutex_lock(&dp->names_lock);
	dp->slots[slot] = c; /* so the next load removes what made it in */
	pthread_mutex_unlock(&dp->names_lock);
	return r;
}

void anser_datapath_set_enabled(struct anser_datapath *dp, bool enabled)
{
	atomic_thread_fence(memory_order_seq_cst);
	dp->ctl->enabled = enabled ? 1 : 0;
	atomic_thread_fence(memory_order_seq_cst);
}

bool anser_datapath_enabled(const struct anser_datapath *dp)
{
	return dp->ctl->enabled != 0;
}

int anser_datapath_activate(struct anser_datapath *dp, unsigned slot)
{
	atomic_thread_fence(memory_order_seq_cst);
	dp->ctl->active_gen = slot & 1;
	atomic_thread_fence(memory_order_seq_cst);
	return 0;
}

int anser_datapath_attach(struct anser_datapath *dp)
{
	struct bpf_program *progs[] = {
		dp->skel->progs.anser_connect4,	    dp->skel->progs.anser_connect6,
		dp->skel->progs.anser_sendmsg4,	    dp->skel->progs.anser_sendmsg6,
		dp->skel->progs.anser_recvmsg4,	    dp->skel->progs.anser_recvmsg6,
		dp->skel->progs.anser_getpeername4, dp->skel->progs.anser_getpeername6,
	};

	if (dp->cgroup_fd < 0) {
		dp->cgroup_fd = open(dp->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dp->cgroup_fd < 0)
			return log_error_errno(errno, "Cannot open cgroup %s: %m", dp->cgroup_path);
	}
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		struct bpf_link *l = bpf_program__attach_cgroup(progs[i], dp->cgroup_fd);
		if (!l) {
			int r = -errno;
			for (size_t j = 0; j < dp->n_links; j++)
				bpf_link__destroy(dp->links[j]);
			dp->n_links = 0;
			return log_error_errno(r, "Failed to attach %s to %s: %m",
					       bpf_program__name(progs[i]), dp->cgroup_path);
		}
		dp->links[dp->n_links++] = l;
	}
	/* UDP marking: a tcx link on loopback (Linux >= 6.6; dies with its fd
	 * like the cgroup links), else the cgroup egress hook. libbpf 1.1 has
	 * no tcx API, but bpf_link_create() passes the attach type through. */
	dp->lo_link_fd = bpf_link_create(bpf_program__fd(dp->skel->progs.anser_lo_egress),
					 1 /* lo */, BPF_TCX_EGRESS_TYPE, NULL);
	if (dp->lo_link_fd < 0) {
		log_info("No tcx on this kernel (%s), marking UDP in the cgroup egress hook",
			 strerror(-dp->lo_link_fd));
		dp->lo_link_fd = -1;
		struct bpf_link *l =
			bpf_program__attach_cgroup(dp->skel->progs.anser_egress, dp->cgroup_fd);
		if (!l) {
			int r = -errno;
			anser_datapath_detach(dp);
			return log_error_errno(r, "Failed to attach anser_egress to %s: %m",
					       dp->cgroup_path);
		}
		dp->links[dp->n_links++] = l;
	}
	dp->n_steer = dp->n_links;
	/* Not a steering link: without it anserd finds flows with sock_diag. */
	struct bpf_link *so =
		bpf_program__attach_cgroup(dp->skel->progs.anser_sockops, dp->cgroup_fd);
	if (so)
		dp->links[dp->n_links++] = so;
	else
		log_info("No sockops program on %s (%s): accepted connections are matched "
			 "with sock_diag",
			 dp->cgroup_path, strerror(errno));
	/* New cgroups, for app() and cgroup() rules: these links watch, they
	 * steer nothing, so failing to attach them only costs those rules
	 * their reach into cgroups made later. */
	struct bpf_program *watch[] = { dp->skel->progs.anser_cgroup_mkdir,
					dp->skel->progs.anser_cgroup_rmdir };
	for (size_t i = 0; i < 2; i++) {
		struct bpf_link *l = bpf_program__attach(watch[i]);
		if (!l)
			log_warning_errno(
				-errno,
				"Cannot follow new cgroups (%s), app() and cgroup() rules "
				"see only cgroups that exist when rules are loaded: %m",
				bpf_program__name(watch[i]));
		else
			dp->links[dp->n_links++] = l;
	}
	log_info("Attached %zu programs to cgroup %s%s", dp->n_links, dp->cgroup_path,
		 dp->lo_link_fd >= 0 ? " and a tcx egress program to lo" : "");
	/* ours steer now: the programs a crashed anserd left can go */
	remove_pins(dp, true);
	if (dp->want_closed)
		(void)pin(dp);
	return 0;
}

/* An address as the maps store it: 16 bytes (IPv4 mapped) and a BE port. */
struct ep {
	uint8_t family;
	uint16_t port;
	uint8_t addr[16];
};

static void sockaddr_to_ep(const struct sockaddr *sa, struct ep *ep)
{
	memset(ep, 0, sizeof(*ep));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		ep->family = AF_INET;
		ep->port = s->sin_port;
		ep->addr[10] = 0xff;
		ep->addr[11] = 0xff;
		memcpy(ep->addr + 12, &s->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		ep->family = AF_INET6;
		ep->port = s->sin6_port;
		memcpy(ep->addr, &s->sin6_addr, 16);
	}
}

int anser_datapath_lan_lookup(struct anser_datapath *dp, int proto, const struct sockaddr *src,
			      const struct sockaddr *dst, struct anser_flow *out)
{
	struct anser_lan_key k = { .proto = (uint8_t)proto };
	struct anser_lan_flow fl;
	struct ep s, d;

	if ((src->sa_family != AF_INET && src->sa_family != AF_INET6) ||
	    (dst->sa_family != AF_INET && dst->sa_family != AF_INET6))
		return -EAFNOSUPPORT;
	sockaddr_to_ep(src, &s);
	sockaddr_to_ep(dst, &d);
	/* the kernel keys v4 flows as AF_INET; a v6 socket may report them mapped */
	k.family = IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)d.addr) ? AF_INET : AF_INET6;
	k.sport = s.port;
	k.dport = d.port;
	memcpy(k.saddr, s.addr, 16);
	memcpy(k.daddr, d.addr, 16);
	if (bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.lan_flows), &k, &fl) < 0)
		return -ENOENT;
	if (fl.outbound == ANSER_OUT_BLOCK)
		return -EACCES;
	memset(out, 0, sizeof(*out));
	out->family = k.family;
	out->proto = (uint8_t)proto;
	out->outbound = fl.outbound;
	out->rule = fl.rule;
	out->gen = fl.gen;
	out->flags = ANSER_FLOW_F_LAN | ANSER_FLOW_F_PROXIED;
	out->dport = k.dport;
	memcpy(out->daddr, k.daddr, 16);
	/* no process: the client's address names the flow in logs */
	if (k.family == AF_INET)
		inet_ntop(AF_INET, k.saddr + 12, out->pname, sizeof(out->pname));
	else
		inet_ntop(AF_INET6, k.saddr, out->pname, sizeof(out->pname));
	return 0;
}

int anser_datapath_tcp_lookup(struct anser_datapath *dp, const struct sockaddr *peer,
			      struct anser_flow *out)
{
	return anser_datapath_tcp_lookup_at(
		dp, peer, peer->sa_family == AF_INET6 ? dp->ctl->tcp6_port : dp->ctl->tcp4_port,
		out);
}

int anser_datapath_tcp_lookup_at(struct anser_datapath *dp, const struct sockaddr *peer,
				 uint16_t port, struct anser_flow *out)
{
	struct sockaddr_storage listener = { 0 };
	struct anser_tcp_src src = { 0 };
	struct ep ep;
	uint64_t cookie;
	int rfd = bpf_map__fd(dp->skel->maps.tcp_redir);
	int r;

	if (peer->sa_family != AF_INET && peer->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	/* Filed under its source by the sockops program: one syscall. */
	sockaddr_to_ep(peer, &ep);
	memcpy(src.addr, ep.addr, sizeof(src.addr));
	src.port = ntohs(ep.port);
	if (bpf_map_lookup_and_delete_elem(bpf_map__fd(dp->skel->maps.tcp_src), &src, out) == 0)
		return 0;

	/* The app's socket is the one from `peer` to our listener; its cookie
	 * is the key the connect hook filed the flow under. */
	if (peer->sa_family == AF_INET) {
		struct sockaddr_in *l = (struct sockaddr_in *)&listener;
		l->sin_family = AF_INET;
		l->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		l->sin_port = htons(port);
	} else {
		struct sockaddr_in6 *l = (struct sockaddr_in6 *)&listener;
		l->sin6_family = AF_INET6;
		l->sin6_addr = in6addr_loopback;
		l->sin6_port = htons(port);
	}
	r = anser_sockdiag_tcp_cookie(peer, (struct sockaddr *)&listener, &cookie);
	if (r < 0)
		return r;
	/* one syscall: the entry is used once */
	if (bpf_map_lookup_and_delete_elem(rfd, &cookie, out) < 0)
		return -ENOENT;
	log_debug("Flow of socket %" PRIu64 " found by sock_diag", cookie);
	return 0;
}

unsigned anser_datapath_active_slot(const struct anser_datapath *dp)
{
	return dp->ctl->active_gen & 1;
}

int anser_datapath_file_own(struct anser_datapath *dp, int fd, const struct anser_flow *f)
{
	if (f->proto == IPPROTO_TCP) {
		uint64_t cookie;
		socklen_t l = sizeof(cookie);
		if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &l) < 0)
			return -errno;
		struct anser_flow copy = *f;
		copy.cookie = cookie;
		return bpf_map_update_elem(bpf_map__fd(dp->skel->maps.tcp_redir), &cookie, &copy,
					   BPF_ANY) < 0
			       ? -errno
			       : 0;
	}
	/* UDP: the socket's mark is its flow's id (the one it has, or a new
	 * one from the ids the hooks hand out) */
	uint32_t id = 0;
	socklen_t l = sizeof(id);
	if (getsockopt(fd, SOL_SOCKET, SO_MARK, &id, &l) < 0)
		return -errno;
	if (!id) {
		/* as the kernel hands them out: never 0, never ANSER_LAN_MARK's bit */
		id = __atomic_add_fetch(&dp->ctl->next_udp_id, 1, __ATOMIC_SEQ_CST) &
		     ANSER_UDP_ID_MASK;
		if (!id)
			id = __atomic_add_fetch(&dp->ctl->next_udp_id, 1, __ATOMIC_SEQ_CST) &
			     ANSER_UDP_ID_MASK;
		if (setsockopt(fd, SOL_SOCKET, SO_MARK, &id, sizeof(id)) < 0)
			return -errno;
	}
	return bpf_map_update_elem(bpf_map__fd(dp->skel->maps.udp_flows), &id, f, BPF_ANY) < 0
		       ? -errno
		       : 0;
}

int anser_datapath_udp_lookup(struct anser_datapath *dp, uint32_t id, struct anser_flow *out)
{
	if (bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.udp_flows), &id, out) < 0)
		return -ENOENT;
	return 0;
}

static int rev_key(const struct sockaddr *sa, struct anser_rev_key *k)
{
	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET)
		k->port = ((const struct sockaddr_in *)sa)->sin_port;
	else if (sa->sa_family == AF_INET6)
		k->port = ((const struct sockaddr_in6 *)sa)->sin6_port;
	else
		return -EAFNOSUPPORT;
	k->family = (uint8_t)sa->sa_family;
	return 0;
}

int anser_datapath_udp_rev_add(struct anser_datapath *dp, const struct sockaddr *reply_local,
			       const struct sockaddr *remote)
{
	struct anser_rev_key k;
	struct anser_rev_val v = { 0 };
	struct ep ep;
	int r = rev_key(reply_local, &k);

	if (r < 0)
		return r;
	if (remote->sa_family != AF_INET && remote->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	sockaddr_to_ep(remote, &ep);
	v.port = ep.port;
	memcpy(v.addr, ep.addr, 16);
	v.family = (uint8_t)remote->sa_family;
	/* A v4-mapped remote is shown to v4 apps as plain IPv4. */
	if (remote->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)remote)->sin6_addr))
		v.family = AF_INET;
	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.udp_rev), &k, &v, BPF_ANY) < 0)
		return -errno;
	return 0;
}

int anser_datapath_udp_rev_del(struct anser_datapath *dp, const struct sockaddr *reply_local)
{
	struct anser_rev_key k;
	int r = rev_key(reply_local, &k);
	if (r < 0)
		return r;
	if (bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.udp_rev), &k) < 0)
		return -errno;
	return 0;
}

/* A listing under way: the worker thread dumps the kernel's sockets and
 * joins them with the flow table into out (never moved: room for every
 * flow is made up front), publishing how many entries are complete. */
struct anser_list_stream {
	struct anser_datapath *dp;
	struct anser_conn_list *out;
	GHashTable *live; /* cookies the dump saw */
	pthread_t thread;
	bool threaded;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t published; /* out->v[0 .. published) are complete */
	bool done;
	int result;
	size_t dropped; /* no room (a socket listed twice) */
};

static void publish(struct anser_list_stream *st, bool done)
{
	pthread_mutex_lock(&st->lock);
	st->published = st->out->n;
	st->done = done;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

/* The newest name DNS gave addr that is still in force, into buf ("" if none). */
static void newest_name(struct anser_datapath *dp, const uint8_t addr[16], char *buf, size_t len)
{
	struct named_addr probe, *e;

	buf[0] = '\0';
	memcpy(probe.addr, addr, 16);
	pthread_mutex_lock(&dp->names_lock);
	e = g_hash_table_size(dp->names) ? g_hash_table_lookup(dp->names, &probe) : NULL;
	if (e && e->n && e->expires > mono_ms())
		snprintf(buf, len, "%s", e->names[e->n - 1]);
	pthread_mutex_unlock(&dp->names_lock);
}

static void on_socket(const struct anser_diag_sock *s, void *ud)
{
	struct anser_list_stream *st = ud;
	struct anser_conn_list *out = st->out;
	struct anser_conn_info *ci;
	const struct anser_flow *fp;

	fp = g_hash_table_lookup(st->dp->flows, &s->cookie);
	if (!fp)
		return;
	g_hash_table_add(st->live, GSIZE_TO_POINTER((gsize)s->cookie));
	if (out->n == out->cap) {
		st->dropped++;
		return;
	}
	const struct anser_flow f = *fp;
	ci = &out->v[out->n];
	memset(ci, 0, sizeof(*ci));
	ci->cookie = s->cookie;
	ci->pid = f.pid;
	memcpy(ci->pname, f.pname, sizeof(ci->pname) - 1);
	strcpy(ci->proto, s->proto == IPPROTO_TCP ? "tcp" : "udp");
	ci->src = s->src;
	anser_flow_dst(&f, &ci->dst);
	ci->outbound_id = f.outbound;
	ci->gen_slot = f.gen;
	ci->proxied = (f.flags & ANSER_FLOW_F_PROXIED) != 0;
	anser_flow_rule_label(&f, ci->rule, sizeof(ci->rule));
	newest_name(st->dp, f.daddr, ci->domain, sizeof(ci->domain));
	if (!(f.flags & ANSER_FLOW_F_PROXIED)) {
		/* tcp_info counts the SYN's sequence number as acked data. */
		ci->bytes_up = s->bytes_sent ? s->bytes_sent - 1 : 0;
		ci->bytes_down = s->bytes_received;
	}
	/* in steps: a wakeup per entry would cost more than the entry */
	if (++out->n % 32 == 0)
		publish(st, false);
}

static void *list_worker(void *ud)
{
	struct anser_list_stream *st = ud;

	st->result = anser_sockdiag_dump(st->dp->own_cgroup, on_socket, st);
	publish(st, true);
	return NULL;
}

int anser_datapath_list_begin(struct anser_datapath *dp, struct anser_conn_list *out,
			      struct anser_list_stream **stream)
{
	struct anser_list_stream *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	/* the log first: the flow table is the worker's to read from now
	 * until anser_datapath_list_end(), and nobody's to change */
	ring_buffer__consume(dp->events);
	drain_log(dp);
	size_t want = out->n + g_hash_table_size(dp->flows) + 16;
	if (want > out->cap) {
		struct anser_conn_info *v = realloc(out->v, want * sizeof(*v));
		if (!v) {
			free(st);
			return -ENOMEM;
		}
		out->v = v;
		out->cap = want;
	}
	st->dp = dp;
	st->out = out;
	st->live = g_hash_table_new(NULL, NULL);
	st->published = out->n;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	/* The kernel's walk and the caller's use of the entries (a D-Bus
	 * reply) cost about the same: on a thread of its own the walk runs
	 * beside it. Without a thread, here and now. */
	st->threaded = pthread_create(&st->thread, NULL, list_worker, st) == 0;
	if (!st->threaded)
		list_worker(st);
	*stream = st;
	return 0;
}

size_t anser_list_stream_wait(struct anser_list_stream *st, size_t seen)
{
	size_t n;

	pthread_mutex_lock(&st->lock);
	while (!st->done && st->published <= seen)
		pthread_cond_wait(&st->cond, &st->lock);
	n = st->published;
	pthread_mutex_unlock(&st->lock);
	return n;
}

int anser_datapath_list_end(struct anser_list_stream *st)
{
	int r;

	if (st->threaded)
		pthread_join(st->thread, NULL);
	r = st->result;
	if (r == 0) /* only a complete dump may say a socket is gone */
		g_hash_table_foreach_remove(st->dp->flows, is_dead, st->live);
	if (st->dropped)
		log_warning("Listing: %zu sockets seen twice, left out", st->dropped);
	g_hash_table_unref(st->live);
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->cond);
	free(st);
	if (r < 0)
		return log_warning_errno(r, "Failed to list sockets: %m");
	return 0;
}

/* The kernel's is_v4_builtin_direct() / is_v6_builtin_direct(). */
static bool builtin_direct(const uint8_t a[16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t zero[16] = { 0 };

	if (memcmp(a, mapped, sizeof(mapped)) == 0)
		return a[12] == 127 || a[12] == 0 || (a[12] & 0xf0) == 0xe0 ||
		       (a[12] == 255 && a[13] == 255 && a[14] == 255 && a[15] == 255);
	if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1))
		return true; /* :: and ::1 */
	return a[0] == 0xff; /* multicast */
}

unsigned anser_datapath_explain(struct anser_datapath *dp, unsigned slot, const char *pname,
				const char *cgroup, const uint8_t daddr[16], uint16_t port,
				bool udp)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (builtin_direct(daddr))
		return ANSER_RULE_BUILTIN;
	return anser_compiled_match(&dp->slots[slot & 1], pname, cgroup, daddr, port, udp,
				    memcmp(daddr, mapped, sizeof(mapped)) != 0);
}

unsigned anser_datapath_route_name(struct anser_datapath *dp, unsigned slot, uint32_t pid,
				   const char *pname, const uint8_t daddr[16], uint16_t port,
				   bool udp, const char *name)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char *cgroup = NULL;

	if (builtin_direct(daddr))
		return ANSER_RULE_BUILTIN;
	/* a reload replaces slots under names_lock */
	pthread_mutex_lock(&dp->names_lock);
	bool need_cg = dp->slots[slot & 1].cg != NULL;
	pthread_mutex_unlock(&dp->names_lock);
	if (need_cg) /* only rules with app() or cgroup() need the file read */
		cgroup = anser_proc_cgroup(pid);
	pthread_mutex_lock(&dp->names_lock);
	unsigned r =
		anser_compiled_match_name(&dp->slots[slot & 1], pname, cgroup, daddr, port, udp,
					  memcmp(daddr, mapped, sizeof(mapped)) != 0, name);
	pthread_mutex_unlock(&dp->names_lock);
	free(cgroup);
	return r;
}

bool anser_datapath_named(struct anser_datapath *dp, const uint8_t addr[16], const char *name)
{
	struct named_addr probe, *e;
	bool yes = false;

	memcpy(probe.addr, addr, 16);
	pthread_mutex_lock(&dp->names_lock);
	e = g_hash_table_lookup(dp->names, &probe);
	if (e && e->expires > mono_ms())
		for (unsigned i = 0; i < e->n && !yes; i++)
			yes = !name || g_ascii_strcasecmp(e->names[i], name) == 0;
	pthread_mutex_unlock(&dp->names_lock);
	return yes;
}

uint32_t anser_datapath_verified_max(struct anser_datapath *dp)
{
	return dp ? dp->verified_max : 0;
}

int anser_datapath_lan_fd(struct anser_datapath *dp)
{
	int fd = dp ? bpf_program__fd(dp->skel->progs.anser_lan_ingress) : -1;

	return fd < 0 ? -1 : fd; /* not loaded */
}

int anser_datapath_lan_lookup_fd(struct anser_datapath *dp)
{
	int fd = dp ? bpf_program__fd(dp->skel->progs.anser_lan_lookup) : -1;

	return fd < 0 ? -1 : fd;
}

int anser_datapath_eval_fd(struct anser_datapath *dp)
{
	int fd = dp ? bpf_program__fd(dp->skel->progs.anser_eval) : -1;

	return fd < 0 ? -1 : fd; /* not loaded */
}
