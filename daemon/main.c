// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * anserd: wires config -> routing -> datapath + proxy, serves D-Bus, and
 * runs the GLib main loop. Startup order matters for fail-open: the
 * listeners exist and the rules are in the maps before any program is
 * attached, and on exit the programs are detached before the listeners
 * close.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glib-unix.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "anser-build.h"
#include "daemon/bus/bus.h"
#include "daemon/config/config.h"
#include "daemon/datapath/datapath.h"
#include "daemon/dns/service.h"
#include "daemon/netmon/kparam.h"
#include "daemon/netmon/netmon.h"
#include "daemon/outbound/checker.h"
#include "daemon/outbound/fetch.h"
#include "daemon/outbound/health.h"
#include "daemon/proxy/proxy.h"
#include "daemon/routing/routing.h"
#include "daemon/util/log.h"
#include "daemon/util/proc.h"

#define DEFAULT_CONFIG ANSER_SYSCONFDIR "/config.dae"

/* fail_mode: closed pins the programs here (bpffs) */
#define ANSER_BPF_DIR "/sys/fs/bpf/anser"

struct daemon {
	GMainLoop *loop;
	char *config_path; /* NULL: built-in default */
	char *cgroup;
	char *bus_address;
	bool no_bus;
	bool validate; /* --validate: diagnostics with source excerpts, then exit */
	unsigned workers;
	int log_level_cli; /* -1: from config */
	const char *state;
	struct anser_datapath *dp;
	struct anser_proxy *proxy;
	struct anser_bus *bus;
	struct anser_netmon *netmon;
	struct anser_kparams *kparams; /* auto_config_kernel_parameter */
	struct anser_dns_service *dns;
	struct anser_gen *gens[ANSER_GENS];
	unsigned active;
	struct anser_health *health; /* of the active generation */
	struct anser_checker *checker;
	char *persist_dir; /* <state dir>/persist.d: kept copies of subscriptions */
	uint64_t generation;
	guint events_source;
	guint poll_source; /* the next read of the flow log, 0: none */
	int exit_code;
	/* app routes (SetAppRoute), persisted in <state_dir>/app-routes */
	const char *state_dir;
	const char *bpf_dir; /* fail_mode: closed pins the programs here */
	char *routes_path;
	struct anser_app_route *routes;
	size_t n_routes;
	/* ActiveApps: looked at once a second while there are flows, and
	 * invalidated (one signal) when it changed */
	guint apps_source;
	unsigned apps_ms; /* its period: 1 s after a change, up to 8 s while none */
	char *apps_seen;
	/* SelectNode: groups made to use one node (kept until anserd exits) */
	struct anser_node_pick *picks;
	size_t n_picks;
	/* network(): the active rules depend on the primary connection, and
	 * are compiled again (on an idle turn of the loop) when it changes */
	bool rules_network;
	guint network_source;
};

/* The primary connection rules are compiled for (NULL: none known). */
static const struct anser_network *current_network(const struct daemon *d)
{
	return d->netmon ? &anser_netmon_state(d->netmon)->primary : NULL;
}

/* Two fds per proxied TCP connection, more for UDP sessions: the default
 * soft limit of 1024 would cap anserd near 500 connections. Everything
 * here uses epoll or poll, so a high limit is safe. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rlim_t was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warning_errno(errno, "Failed to raise the open file limit from %llu: %m",
				  (unsigned long long)was);
}

static void routes_free(struct anser_app_route *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].selector);
		free(v[i].outbound);
	}
	free(v);
}

/* <state_dir>/app-routes: "SELECTOR -> OUTBOUND" per line, '#' comments.
 * A line that does not read is logged and dropped. */
static void routes_load(struct daemon *d)
{
	g_autofree char *text = NULL;
	GError *err = NULL;

	if (!g_file_get_contents(d->routes_path, &text, NULL, &err)) {
		if (!g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			log_warning("Cannot read the app routes in %s: %s", d->routes_path,
				    err->message);
		g_error_free(err);
		return;
	}
	char **lines = g_strsplit(text, "\n", -1);
	for (size_t i = 0; lines[i]; i++) {
		char *line = g_strstrip(lines[i]), *arrow = strstr(line, " -> "), *why = NULL;
		if (!*line || *line == '#')
			continue;
		char *sel = NULL;
		if (arrow) {
			*arrow = '\0';
			sel = anser_selector_canonical(line, &why);
		}
		const char *out = arrow ? g_strstrip(arrow + 4) : "";
		if (!sel || !*out) {
			log_warning("%s:%zu: not a route (SELECTOR -> OUTBOUND)%s%s, dropped",
				    d->routes_path, i + 1, why ? ": " : "", why ? why : "");
			free(why);
			free(sel);
			continue;
		}
		d->routes = g_renew(struct anser_app_route, d->routes, d->n_routes + 1);
		d->routes[d->n_routes++] = (struct anser_app_route){ sel, strdup(out) };
	}
	g_strfreev(lines);
	if (d->n_routes)
		log_info("%zu app route%s from %s", d->n_routes, d->n_routes == 1 ? "" : "s",
			 d->routes_path);
}

/* Write the routes atomically (a temporary file renamed over the old). */
static int routes_save(struct daemon *d)
{
	GString *s = g_string_new("# App routes set through org.anser.Anser1 (SetAppRoute).\n"
				  "# Tried before the config's rules. Managed by anserd.\n");
	GError *err = NULL;
	int r = 0;

	for (size_t i = 0; i < d->n_routes; i++)
		g_string_append_printf(s, "%s -> %s\n", d->routes[i].selector,
				       d->routes[i].outbound);
	if (g_mkdir_with_parents(d->state_dir, 0755) < 0) {
		r = -errno;
		log_error_errno(r, "Cannot make %s: %m", d->state_dir);
	} else if (!g_file_set_contents_full(d->routes_path, s->str, (gssize)s->len,
					     G_FILE_SET_CONTENTS_CONSISTENT, 0644, &err)) {
		log_error("Cannot write %s: %s", d->routes_path, err->message);
		g_error_free(err);
		r = -EIO;
	}
	g_string_free(s, TRUE);
	return r;
}

static void set_state(struct daemon *d, const char *state)
{
	if (d->state && strcmp(d->state, state) == 0)
		return;
	d->state = state;
	if (d->bus)
		anser_bus_state_changed(d->bus);
}

static void apply_log_level(struct daemon *d, const struct anser_config *cfg)
{
	if (d->log_level_cli >= 0)
		return;
	int l = cfg->log_level ? anser_log_parse_level(cfg->log_level) : -EINVAL;
	anser_log_set_level(l >= 0 ? (enum anser_log_level)l : ANSER_LOG_INFO);
}

/* Parse the configured file (or the built-in default) and compile its
 * rules into *compiled (for install_config(), so a config is compiled
 * once). On failure *message gets the diagnostics. Warnings are logged
 * either way. */
/* `base` with what the D-Bus API added: the app routes first, then the
 * node selections. Takes base. */
static struct anser_config *with_api_state(struct daemon *d, struct anser_config *base)
{
	struct anser_config *cfg = NULL;
	size_t skipped = 0;

	anser_config_with_routes(base, d->routes, d->n_routes, d->routes_path, &cfg, &skipped);
	anser_config_free(base);
	if (skipped)
		log_warning("%zu app route%s name an outbound this config lacks, left out until it "
			    "has it",
			    skipped, skipped == 1 ? "" : "s");
	anser_config_apply_picks(cfg, d->picks, d->n_picks, &skipped);
	if (skipped)
		log_warning("%zu node selection%s name a group or node this config lacks, left out",
			    skipped, skipped == 1 ? "" : "s");
	return cfg;
}

/* Why cfg's rules did not compile (cr): "FILE[:LINE:COL]: ...", naming the
 * first rule that does not fit the kernel's tables when that is why. */
static char *compile_failure(const struct anser_config *cfg, const struct anser_compiled *c, int cr,
			     const char *file)
{
	const struct anser_rule *lr =
		cr == -E2BIG && c->limit_rule < cfg->n_rules ? &cfg->rules[c->limit_rule] : NULL;
	char *msg;

	if (lr && lr->file < cfg->n_files)
		file = cfg->files[lr->file];
	if (cr != -E2BIG)
		return asprintf(&msg, "%s: cannot compile the routing rules: %s", file,
				strerror(-cr)) < 0
			       ? NULL
			       : msg;
	if (lr)
		return asprintf(&msg,
				"%s:%u:%u: the routing rules do not fit the kernel's tables: %s; "
				"merge rules that share an outbound",
				file, lr->line, lr->col, c->limit ? c->limit : "") < 0
			       ? NULL
			       : msg;
	return asprintf(&msg,
			"%s: the routing rules do not fit the kernel's tables: %s; merge rules "
			"that share an outbound",
			file, c->limit ? c->limit : "") < 0
		       ? NULL
		       : msg;
}

static int load_config(struct daemon *d, struct anser_config **out, struct anser_compiled *compiled,
		       char **message)
{
	struct anser_diags diags = { 0 };
	int r;

	memset(compiled, 0, sizeof(*compiled));
	if (d->config_path && !d->validate) {
		/* subscriptions: fetched now (blocking, 15 s at most each), a
		 * copy of each kept in <state dir>/persist.d */
		struct anser_fetcher f;
		g_free(d->persist_dir);
		d->persist_dir = g_build_filename(d->state_dir, "persist.d", NULL);
		anser_fetcher_init(&f, d->persist_dir);
		r = anser_config_parse_file_fetch(d->config_path, &f, out, &diags);
	} else if (d->config_path) {
		r = anser_config_parse_file(d->config_path, out, &diags);
	} else
		r = anser_config_parse_string("<builtin>", anser_config_builtin,
					      strlen(anser_config_builtin), out, &diags);
	if (r >= 0 && !d->validate)
		*out = with_api_state(d, *out);
	if (r >= 0) {
		/* The kernel's tables have limits the grammar does not: say so
		 * here, so --check and Reload report it like any other error. */
		int cr = anser_routing_compile(*out, current_network(d), 0, compiled);
		if (cr < 0) {
			if (message)
				*message = compile_failure(*out, compiled, cr,
							   d->config_path ? d->config_path
									  : "<builtin>");
			anser_compiled_clear(compiled);
			anser_config_free(*out);
			*out = NULL;
			anser_diags_clear(&diags);
			return cr;
		}
	}
	char *text = d->validate ? anser_diags_format_excerpts(&diags) : anser_diags_format(&diags);
	if (d->validate && text && *text) {
		size_t errors = anser_diags_errors(&diags), warnings = diags.n - errors;
		char *summary;
		if (asprintf(&summary, "%s%zu error%s, %zu warning%s", text, errors,
			     errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s") >= 0) {
			free(text);
			text = summary;
		}
	}
	anser_diags_clear(&diags);
	if (r >= 0 && text && *text) {
		if (d->validate)
			fprintf(stderr, "%s\n", text);
		else
			log_warning("%s", text);
	}
	if (r < 0 && message) {
		/* The caller owns the diagnostics from here. */
		*message = text && *text ? text : strdup("configuration rejected");
		if (*message != text)
			free(text);
		return r;
	}
	free(text);
	return r;
}

/* Install cfg and its compiled rules into the inactive slot and flip to
 * it. Takes both. */
/* On the DNS service's thread: the datapath is thread-safe for this. */
static void learn_name(void *ud, const uint8_t addr[16], const char *name, uint32_t seconds)
{
	struct daemon *d = ud;
	int r = d->dp ? anser_datapath_learn(d->dp, addr, name, seconds) : 0;
	if (r < 0)
		log_debug_errno(r, "Name %s not filed for routing: %m", name);
}

/* asis: the server an app's DNS taken over was for (DNS service thread) */
static int dns_orig_udp(void *ud, uint32_t mark, struct sockaddr_storage *orig)
{
	struct daemon *d = ud;
	struct anser_flow f;
	int r = d->dp ? anser_datapath_udp_lookup(d->dp, mark, &f) : -ENOENT;
	if (r == 0)
		anser_flow_dst(&f, orig);
	return r;
}

static int dns_orig_tcp(void *ud, const struct sockaddr *peer, uint16_t port,
			struct sockaddr_storage *orig)
{
	struct daemon *d = ud;
	struct anser_flow f;
	int r = d->dp ? anser_datapath_tcp_lookup_at(d->dp, peer, port, &f) : -ENOENT;
	if (r == 0)
		anser_flow_dst(&f, orig);
	return r;
}

/* The DNS service's own upstream sockets, routed by the routing section
 * (its thread): through a group, fd goes to the proxy's listener, which
 * finds the flow filed for it. */
static int dns_via(void *ud, const struct sockaddr *dst, bool udp, const char *name, int fd,
		   struct sockaddr_storage *to)
{
	struct daemon *d = ud;
	struct anser_flow f;
	uint16_t port[4];

	if (!d->dp || !d->proxy)
		return 0;
	int r = anser_proxy_route_own(d->proxy, dst, udp, name, &f);
	if (r <= 0)
		return r;
	r = anser_datapath_file_own(d->dp, fd, &f);
	if (r < 0)
		return r;
	anser_proxy_ports(d->proxy, &port[0], &port[1], &port[2], &port[3]);
	memset(to, 0, sizeof(*to));
	if (dst->sa_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)to;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		a->sin6_port = htons(port[udp ? 3 : 1]);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)to;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons(port[udp ? 2 : 0]);
	}
	return 1;
}

/* The apps' DNS to the DNS service's takeover listeners, with the dns
 * section's virtual_address. */
static void steer_dns(struct daemon *d, const struct anser_config *cfg)
{
	uint16_t dns4, dns6;

	anser_dns_service_takeover_ports(d->dns, &dns4, &dns6);
	anser_datapath_set_dns(d->dp, dns4, dns6, (const uint8_t(*)[16])cfg->dns.virtual_addr,
			       cfg->dns.n_virtual);
}

static void follow_kparams(struct daemon *d, const struct anser_netstate *now);

static int install_config(struct daemon *d, struct anser_config *cfg,
			  struct anser_compiled *compiled, bool first)
{
	unsigned slot = first ? 0 : 1 - d->active;
	int r;

	bool network = compiled->network; /* the load takes `compiled` */
	r = anser_datapath_load_compiled(d->dp, compiled, slot);
	if (r < 0) {
		anser_config_free(cfg);
		return r;
	}
	d->rules_network = network;
	apply_log_level(d, cfg);
	struct anser_gen *g = anser_gen_new(cfg, ++d->generation, slot);
	if (!g) {
		anser_config_free(cfg);
		return -ENOMEM;
	}
	/* The proxy learns the new groups before the kernel starts naming them. */
	/* measurements of nodes the new config keeps carry over */
	struct anser_health *h = anser_health_new(cfg, d->health);
	anser_proxy_set_gen(d->proxy, g, h);
	r = anser_datapath_activate(d->dp, slot);
	if (r < 0) {
		anser_health_unref(h);
		anser_gen_unref(g);
		return r;
	}
	anser_gen_unref(d->gens[slot]);
	d->gens[slot] = g;
	d->active = slot;
	anser_health_unref(d->health);
	d->health = h;
	anser_checker_set(d->checker, g, h);
	(void)anser_datapath_set_fail_closed(d->dp, cfg->fail_closed);
	if (d->netmon) {
		anser_netmon_set_roles(d->netmon, cfg->wan_interfaces, cfg->lan_interfaces);
		follow_kparams(d, anser_netmon_state(d->netmon));
	}
	char *why = NULL;
	/* the dns section's listeners: a setup that cannot be made (a port
	 * taken) keeps the running one */
	const struct anser_dns_hooks hooks = { learn_name, dns_orig_udp, dns_orig_tcp, dns_via, d };
	if (anser_dns_service_apply(&d->dns, cfg, &hooks, &why) < 0)
		log_error("DNS service not (re)configured: %s", why ? why : "failed");
	const struct anser_network *net = current_network(d);
	anser_dns_service_set_network(d->dns, net ? net->dns : NULL);
	if (d->dp)
		steer_dns(d, cfg);
	g_free(why);
	if (d->bus) {
		char *changed[] = { "Generation", "ConfigFiles", "Groups", NULL };
		anser_bus_properties_changed(d->bus, changed);
	}
	log_info("Configuration generation %llu active (%s, %zu rules, %zu groups)",
		 (unsigned long long)g->number, cfg->source ? cfg->source : "?", cfg->n_rules,
		 cfg->n_groups);
	return 0;
}

static int do_reload(void *ud, char **message)
{
	struct daemon *d = ud;
	struct anser_config *cfg = NULL;
	const char *prev = d->state;
	int r;

	set_state(d, "reloading");
	sd_notify(0, "RELOADING=1");
	struct anser_compiled compiled;
	r = load_config(d, &cfg, &compiled, message);
	if (r < 0) {
		sd_notify(0, "READY=1");
		log_error("Reload failed, keeping generation %llu:\n%s",
			  (unsigned long long)d->generation, message && *message ? *message : "");
		set_state(d, prev);
		return r;
	}
	r = install_config(d, cfg, &compiled, false);
	if (r < 0) {
		sd_notify(0, "READY=1");
		if (message && asprintf(message, "cannot install rules: %s", strerror(-r)) < 0)
			*message = NULL;
		set_state(d, prev);
		return r;
	}
	set_state(d, "running");
	sd_notifyf(0, "READY=1\nSTATUS=Running, generation %llu",
		   (unsigned long long)d->generation);
	return 0;
}

static const char *get_state(void *ud)
{
	return ((struct daemon *)ud)->state;
}

/* The kernel's live sockets joined with the flow table (dumped on the
 * datapath's thread while this one hands entries to emit), the proxy's
 * sessions giving proxied ones their node and byte counts, then the
 * sessions the kernel did not list. emit's failure stops the listing. */
static int list_connections(void *ud, int (*emit)(void *eud, const struct anser_conn_info *c),
			    void *eud)
{
	struct daemon *d = ud;
	struct anser_conn_list dumped = { 0 }, sessions = { 0 };
	struct anser_list_stream *st;
	const struct anser_conn_info *extra;
	size_t seen = 0, n, pos = 0;
	int r, q = 0;

	r = anser_datapath_list_begin(d->dp, &dumped, &st);
	if (r < 0)
		return r;
	anser_proxy_list_sessions(d->proxy, &sessions);
	struct anser_conn_index *by_cookie = anser_conn_index_new(&sessions);
	while (q >= 0 && (n = anser_list_stream_wait(st, seen)) > seen)
		for (; q >= 0 && seen < n; seen++) {
			struct anser_conn_info *ci = &dumped.v[seen];
			struct anser_gen *g = d->gens[ci->gen_slot & 1];
			if (g)
				snprintf(ci->outbound, sizeof(ci->outbound), "%s",
					 anser_config_outbound_name(g->cfg,
								    (unsigned)ci->outbound_id));
			anser_conn_index_fill(by_cookie, ci);
			q = emit(eud, ci);
		}
	r = anser_datapath_list_end(st);
	while (q >= 0 && r >= 0 && (extra = anser_conn_index_next_unused(by_cookie, &pos)))
		q = emit(eud, extra);
	anser_conn_index_free(by_cookie);
	anser_conn_list_clear(&sessions);
	anser_conn_list_clear(&dumped);
	return r < 0 ? r : q;
}

static int add_to_list(void *ud, const struct anser_conn_info *c)
{
	struct anser_conn_info *to = anser_conn_list_add(ud);
	if (!to)
		return -ENOMEM;
	*to = *c;
	return 0;
}

/* "192.0.2.1", "192.0.2.1:443", "2001:db8::1", "[2001:db8::1]:443" into a
 * 16-byte address (IPv4 mapped) and a port (0 when none is given). */
static int parse_destination(const char *s, uint8_t addr[16], uint16_t *port)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *p = NULL;
	size_t n;

	*port = 0;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || (close[1] && close[1] != ':'))
			return -EINVAL;
		n = (size_t)(close - s - 1);
		if (n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, n);
		host[n] = '\0';
		p = close[1] ? close + 2 : NULL;
	} else {
		const char *colon = strchr(s, ':');
		bool v4_port = colon && !strchr(colon + 1, ':');
		n = v4_port ? (size_t)(colon - s) : strlen(s);
		if (n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = '\0';
		p = v4_port ? colon + 1 : NULL;
	}
	struct in_addr a4;
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, host, &a4) == 1) {
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &a4, 4);
	} else if (inet_pton(AF_INET6, host, addr) != 1) {
		return -EINVAL;
	}
	if (p) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (!*p || *end || v < 1 || v > 65535)
			return -EINVAL;
		*port = (uint16_t)v;
	}
	return 0;
}

/* A cgroup path that gives its processes the application id `id`. */
static char *app_cgroup(const char *id)
{
	GString *s = g_string_new("/app-");

	for (const char *c = id; *c; c++) {
		if (*c == '-' || *c == '/' || *c == '\\')
			g_string_append_printf(s, "\\x%02x", (unsigned char)*c);
		else
			g_string_append_c(s, *c);
	}
	g_string_append(s, ".slice");
	return g_string_free(s, FALSE);
}

/* APP is a process name, a PID (that process's name and cgroup) or
 * app:ID (any process of the desktop application ID). */
static int explain_flow(const char *process, char **pname, char **cgroup, char **message)
{
	if (!*process)
		return (*message = strdup("the process name is empty")) ? -EINVAL : -ENOMEM;
	if (strncmp(process, "app:", 4) == 0) {
		if (!process[4])
			return (*message = strdup("app: needs an application id, like "
						  "app:org.mozilla.firefox"))
				       ? -EINVAL
				       : -ENOMEM;
		*pname = strdup("");
		*cgroup = app_cgroup(process + 4);
		return *pname ? 0 : -ENOMEM;
	}
	if (strspn(process, "0123456789") == strlen(process)) {
		unsigned long pid = strtoul(process, NULL, 10);
		*pname = pid <= UINT32_MAX ? anser_proc_name((unsigned)pid) : NULL;
		*cgroup = *pname ? anser_proc_cgroup((unsigned)pid) : NULL;
		if (!*pname)
			return asprintf(message, "no process with PID %s", process) < 0 ? -ENOMEM
											: -EINVAL;
		return 0;
	}
	*pname = strdup(process);
	return *pname ? 0 : -ENOMEM;
}

static int explain_decide(void *ud, const char *process, const char *cgroup,
			  const char *destination, const char *protocol,
			  struct anser_explanation *out, char **message)
{
	struct daemon *d = ud;
	struct anser_gen *g = d->gens[d->active];
	uint8_t addr[16];
	uint16_t port;
	bool udp;

	if (strcmp(protocol, "tcp") == 0 || !*protocol)
		udp = false;
	else if (strcmp(protocol, "udp") == 0)
		udp = true;
	else
		return asprintf(message, "unknown protocol '%s' (tcp or udp)", protocol) < 0
			       ? -ENOMEM
			       : -EINVAL;
	if (parse_destination(destination, addr, &port) < 0)
		return asprintf(message,
				"'%s' is not an IP address with an optional port (e.g. "
				"192.0.2.1:443, [2001:db8::1]:443)",
				destination) < 0
			       ? -ENOMEM
			       : -EINVAL;
	if (!g)
		return (*message = strdup("no configuration is active")) ? -EINVAL : -ENOMEM;

	const struct anser_config *cfg = g->cfg;
	unsigned rule = anser_datapath_explain(d->dp, d->active, process, cgroup, addr, port, udp);
	/* the kernel names the first of merged rules; say which one holds */
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (rule < cfg->n_rules)
		rule = anser_rule_refine(cfg, rule, process, cgroup, addr, port, udp,
					 memcmp(addr, mapped, sizeof(mapped)) != 0);
	unsigned file = 0;
	out->port = port;
	if (rule == ANSER_RULE_BUILTIN) {
		out->index = -2;
		out->outbound = strdup("direct");
		out->rule = strdup("loopback, unspecified, multicast and broadcast addresses are "
				   "never steered");
	} else if (rule == ANSER_RULE_FALLBACK || rule >= cfg->n_rules) {
		out->index = -1;
		out->outbound = strdup(anser_config_outbound_name(cfg, cfg->fallback));
		out->rule = anser_fallback_format(cfg);
		out->line = cfg->fallback_line;
		out->col = cfg->fallback_col;
		file = cfg->fallback_file;
	} else {
		out->index = (int)rule;
		out->outbound = strdup(anser_config_outbound_name(cfg, cfg->rules[rule].outbound));
		out->rule = anser_rule_format(cfg, rule);
		out->line = cfg->rules[rule].line;
		out->col = cfg->rules[rule].col;
		file = cfg->rules[rule].file;
	}
	const char *fname = file < cfg->n_files ? cfg->files[file] : cfg->source;
	if (out->line && fname)
		out->file = strdup(fname);
	if (!out->outbound || !out->rule || (out->line && fname && !out->file)) {
		anser_explanation_clear(out);
		return -ENOMEM;
	}
	return 0;
}

static int explain(void *ud, const char *process, const char *destination, const char *protocol,
		   struct anser_explanation *out, char **message)
{
	g_autofree char *pname = NULL, *cgroup = NULL;
	int r = explain_flow(process, &pname, &cgroup, message);

	if (r < 0)
		return r;
	return explain_decide(ud, pname, cgroup, destination, protocol, out, message);
}

/* The active config's base with the current routes, compiled and
 * installed: new flows follow within a reload's time (milliseconds). */
/* The active config's base with the API's routes and selections,
 * compiled and installed: new flows follow at once. */
static int apply_api_state(struct daemon *d, char **message)
{
	struct anser_gen *g = d->gens[d->active];
	struct anser_config *base = g ? (g->cfg->base ? g->cfg->base : g->cfg) : NULL;
	struct anser_compiled compiled;
	int r;

	if (!base)
		return (*message = strdup("no configuration is active")) ? -EIO : -ENOMEM;
	struct anser_config *cfg = with_api_state(d, anser_config_ref(base));
	r = anser_routing_compile(cfg, current_network(d), 1 - d->active, &compiled);
	if (r < 0) {
		*message = compile_failure(cfg, &compiled, r, d->routes_path);
		anser_compiled_clear(&compiled);
		anser_config_free(cfg);
		return r == -E2BIG ? -EINVAL : r;
	}
	r = install_config(d, cfg, &compiled, false);
	if (r < 0 && asprintf(message, "cannot install rules: %s", strerror(-r)) < 0)
		*message = NULL;
	return r;
}

static bool outbound_known(const struct daemon *d, const char *name)
{
	const struct anser_gen *g = d->gens[d->active];
	if (strcmp(name, "direct") == 0 || strcmp(name, "block") == 0)
		return true;
	for (size_t i = 0; g && i < g->cfg->n_groups; i++)
		if (strcmp(g->cfg->groups[i].name, name) == 0)
			return true;
	return false;
}

/* Swap in a new list, save it and apply it; on failure the old list is
 * back (and saved again). Takes `v`. */
static int routes_replace(struct daemon *d, struct anser_app_route *v, size_t n, char **message)
{
	struct anser_app_route *old = d->routes;
	size_t old_n = d->n_routes;
	int r;

	d->routes = v;
	d->n_routes = n;
	r = routes_save(d);
	if (r < 0) {
		if (asprintf(message, "cannot save the routes in %s", d->routes_path) < 0)
			*message = NULL;
	} else {
		r = apply_api_state(d, message);
	}
	if (r < 0) {
		d->routes = old;
		d->n_routes = old_n;
		routes_free(v, n);
		routes_save(d);
		return r;
	}
	routes_free(old, old_n);
	if (d->bus)
		anser_bus_property_changed(d->bus, "AppRoutes");
	return 0;
}

static struct anser_app_route *routes_copy(const struct daemon *d, size_t extra)
{
	struct anser_app_route *v = g_new0(struct anser_app_route, d->n_routes + extra + 1);
	for (size_t i = 0; i < d->n_routes; i++)
		v[i] = (struct anser_app_route){ strdup(d->routes[i].selector),
						 strdup(d->routes[i].outbound) };
	return v;
}

/* The canonical form of a selector, or -EINVAL and *message. */
static int canonical_selector(const char *selector, char **sel, char **message)
{
	char *why = NULL;

	*sel = anser_selector_canonical(selector, &why);
	if (*sel)
		return 0;
	int r = asprintf(message, "'%s' is not a selector: %s", selector, why ? why : "");
	free(why);
	return r < 0 ? -ENOMEM : -EINVAL;
}

static int set_app_route(void *ud, const char *selector, const char *outbound, char **message)
{
	struct daemon *d = ud;
	char *sel;
	int r = canonical_selector(selector, &sel, message);

	if (r < 0)
		return r;
	if (!outbound_known(d, outbound)) {
		free(sel);
		return asprintf(message,
				"no outbound '%s' (direct, block or a group of the configuration)",
				outbound) < 0
			       ? -ENOMEM
			       : -EINVAL;
	}
	struct anser_app_route *v = routes_copy(d, 1);
	size_t n = d->n_routes, i;
	for (i = 0; i < n; i++)
		if (strcmp(v[i].selector, sel) == 0)
			break;
	if (i < n) {
		free(v[i].outbound);
		v[i].outbound = strdup(outbound);
		free(sel);
	} else {
		v[n++] = (struct anser_app_route){ sel, strdup(outbound) };
	}
	return routes_replace(d, v, n, message);
}

static int clear_app_route(void *ud, const char *selector, char **message)
{
	struct daemon *d = ud;
	char *sel;
	int r = canonical_selector(selector, &sel, message);

	if (r < 0)
		return r;
	struct anser_app_route *v = routes_copy(d, 0);
	size_t n = d->n_routes, i;
	for (i = 0; i < n; i++)
		if (strcmp(v[i].selector, sel) == 0)
			break;
	if (i == n) {
		routes_free(v, n);
		r = asprintf(message, "no route for %s", sel);
		free(sel);
		return r < 0 ? -ENOMEM : -ENOENT;
	}
	free(sel);
	free(v[i].selector);
	free(v[i].outbound);
	memmove(v + i, v + i + 1, (n - i - 1) * sizeof(*v));
	return routes_replace(d, v, n - 1, message);
}

static const struct anser_app_route *get_app_routes(void *ud, size_t *n)
{
	struct daemon *d = ud;
	*n = d->n_routes;
	return d->routes;
}

static bool get_enabled(void *ud)
{
	struct daemon *d = ud;
	return d->dp && anser_datapath_enabled(d->dp);
}

static int set_enabled(void *ud, bool enabled)
{
	struct daemon *d = ud;

	if (!d->dp)
		return -EIO;
	anser_datapath_set_enabled(d->dp, enabled);
	set_state(d, enabled ? "running" : "suspended");
	return 0;
}

static uint64_t get_generation(void *ud)
{
	struct daemon *d = ud;
	return d->gens[d->active] ? d->gens[d->active]->number : 0;
}

/* The configuration's own files (not the app routes' file). */
static char *const *get_config_files(void *ud, size_t *n)
{
	struct daemon *d = ud;
	const struct anser_gen *g = d->gens[d->active];
	const struct anser_config *c = g ? (g->cfg->base ? g->cfg->base : g->cfg) : NULL;

	*n = c && d->config_path ? c->n_files : 0;
	return c ? c->files : NULL;
}

static int validate_text(void *ud, const char *text, struct anser_diags *diags,
			 char **compile_error)
{
	struct anser_config *cfg = NULL;
	struct anser_compiled compiled;

	*compile_error = NULL;
	if (anser_config_parse_string("<text>", text, strlen(text), &cfg, diags) < 0)
		return 0;
	int r = anser_routing_compile(cfg, current_network(ud), 0, &compiled);
	if (r == -E2BIG)
		*compile_error = compile_failure(cfg, &compiled, r, "<text>");
	anser_compiled_clear(&compiled);
	anser_config_free(cfg);
	return r < 0 && r != -E2BIG ? r : 0;
}

/* Applications with live connections: one per desktop application id
 * (from the process's cgroup) or, without one, per process name. */
static int get_active_apps(void *ud, long only_uid, struct anser_app_info **out, size_t *n)
{
	struct daemon *d = ud;
	struct anser_conn_list list = { 0 };
	GHashTable *by_key = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTable *app_of_pid = g_hash_table_new_full(NULL, NULL, NULL, g_free);
	GArray *apps = g_array_new(FALSE, TRUE, sizeof(struct anser_app_info));
	/* per app: outbound -> count, to name the one most connections use */
	GPtrArray *tallies = g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);
	int r = list_connections(d, add_to_list, &list);

	*out = NULL;
	*n = 0;
	for (size_t i = 0; r >= 0 && i < list.n; i++) {
		const struct anser_conn_info *c = &list.v[i];
		if (only_uid >= 0) {
			char proc[32];
			struct stat st;
			snprintf(proc, sizeof(proc), "/proc/%u", c->pid);
			if (stat(proc, &st) < 0 || (long)st.st_uid != only_uid)
				continue;
		}
		char *app = g_hash_table_lookup(app_of_pid, GUINT_TO_POINTER(c->pid));
		if (!app) {
			char buf[256] = "";
			char *cg = anser_proc_cgroup(c->pid);
			if (!cg || !anser_cgroup_app_id(cg, buf, sizeof(buf)))
				buf[0] = '\0';
			free(cg);
			app = g_strdup(buf);
			g_hash_table_insert(app_of_pid, GUINT_TO_POINTER(c->pid), app);
		}
		char *key = g_strdup_printf("%s\n%s", app, *app ? "" : c->pname);
		gpointer idx;
		if (!g_hash_table_lookup_extended(by_key, key, NULL, &idx)) {
			struct anser_app_info a = { .app_id = strdup(app),
						    .pname = strndup(c->pname, sizeof(c->pname)) };
			g_array_append_val(apps, a);
			g_ptr_array_add(tallies, g_hash_table_new_full(g_str_hash, g_str_equal,
								       g_free, NULL));
			idx = GUINT_TO_POINTER(apps->len);
			g_hash_table_insert(by_key, key, idx);
		} else {
			g_free(key);
		}
		size_t k = GPOINTER_TO_UINT(idx) - 1;
		struct anser_app_info *a = &g_array_index(apps, struct anser_app_info, k);
		a->connections++;
		a->bytes_up += c->bytes_up;
		a->bytes_down += c->bytes_down;
		GHashTable *t = g_ptr_array_index(tallies, k);
		char *ok = g_strdup_printf("%.64s\n%.32s", c->outbound, c->rule);
		unsigned cnt = GPOINTER_TO_UINT(g_hash_table_lookup(t, ok)) + 1;
		g_hash_table_replace(t, ok, GUINT_TO_POINTER(cnt));
	}
	for (guint k = 0; k < apps->len; k++) {
		struct anser_app_info *a = &g_array_index(apps, struct anser_app_info, k);
		GHashTableIter it;
		gpointer key, val;
		const char *best = NULL;
		unsigned best_n = 0;
		g_hash_table_iter_init(&it, g_ptr_array_index(tallies, k));
		while (g_hash_table_iter_next(&it, &key, &val))
			if (GPOINTER_TO_UINT(val) > best_n ||
			    (GPOINTER_TO_UINT(val) == best_n && strcmp(key, best) < 0)) {
				best = key;
				best_n = GPOINTER_TO_UINT(val);
			}
		const char *nl = best ? strchr(best, '\n') : NULL;
		a->outbound = best ? strndup(best, (size_t)(nl - best)) : strdup("");
		a->rule = strdup(nl ? nl + 1 : "");
	}
	anser_conn_list_clear(&list);
	g_ptr_array_unref(tallies);
	g_hash_table_unref(app_of_pid);
	g_hash_table_unref(by_key);
	*n = apps->len;
	*out = (struct anser_app_info *)(void *)g_array_free(apps, FALSE);
	return r < 0 ? r : 0;
}

static const struct anser_config *get_config(void *ud)
{
	struct daemon *d = ud;
	return d->gens[d->active] ? d->gens[d->active]->cfg : NULL;
}

static int select_node(void *ud, const char *group, const char *node, char **message)
{
	struct daemon *d = ud;
	const struct anser_config *c = get_config(d);
	size_t gi, k = 0;

	for (gi = 0; c && gi < c->n_groups; gi++)
		if (strcmp(c->groups[gi].name, group) == 0)
			break;
	if (!c || gi == c->n_groups)
		return asprintf(message, "no group '%s'", group) < 0 ? -ENOMEM : -ENOENT;
	const struct anser_group *g = &c->groups[gi];
	for (; k < g->n_nodes; k++)
		if (strcmp(c->nodes[g->nodes[k]].name, node) == 0)
			break;
	if (k == g->n_nodes)
		return asprintf(message, "group '%s' has no node '%s'", group, node) < 0 ? -ENOMEM
											 : -ENOENT;
	size_t i;
	for (i = 0; i < d->n_picks; i++)
		if (strcmp(d->picks[i].group, group) == 0)
			break;
	char *old = NULL;
	if (i == d->n_picks) {
		d->picks = g_renew(struct anser_node_pick, d->picks, d->n_picks + 1);
		d->picks[d->n_picks++] =
			(struct anser_node_pick){ g_strdup(group), g_strdup(node) };
	} else {
		old = d->picks[i].node;
		d->picks[i].node = g_strdup(node);
	}
	int r = apply_api_state(d, message);
	if (r < 0) { /* back to what was */
		if (old) {
			g_free(d->picks[i].node);
			d->picks[i].node = old;
		} else {
			g_free(d->picks[--d->n_picks].group);
			g_free(d->picks[d->n_picks].node);
		}
		return r;
	}
	g_free(old);
	return 0;
}

static void groups_changed(void *ud)
{
	struct daemon *d = ud;
	char *changed[] = { "Groups", NULL };
	if (d->bus)
		anser_bus_properties_changed(d->bus, changed);
}

static const struct anser_health *get_health(void *ud)
{
	struct daemon *d = ud;
	return d->health;
}

static int test_nodes(void *ud, const char *group, void (*done)(void *done_ud, unsigned n),
		      void *done_ud)
{
	struct daemon *d = ud;
	int r = anser_checker_test(d->checker, *group ? group : NULL, done, done_ud);
	return r == -EBUSY ? 0 : r; /* a running round answers it */
}

static const struct anser_netstate *get_netstate(void *ud)
{
	struct daemon *d = ud;
	return d->netmon ? anser_netmon_state(d->netmon) : NULL;
}

/* auto_config_kernel_parameter, as the active config and the interfaces
 * now say: set (as LAN interfaces come) or put back (when the config no
 * longer asks, or a record an earlier anserd left says so). */
static void follow_kparams(struct daemon *d, const struct anser_netstate *now)
{
	const struct anser_gen *g = d->gens[d->active];
	const struct anser_config *cfg = g ? g->cfg : NULL;
	const char *lan[ANSER_MAX_LAN_IFACES], *wan[ANSER_MAX_LAN_IFACES];
	size_t n_lan = 0, n_wan = 0;

	if (!d->kparams)
		return;
	if (!cfg || !cfg->auto_config_kernel_parameter || !cfg->lan_interfaces ||
	    !cfg->lan_interfaces[0]) {
		if (anser_kparams_changed(d->kparams))
			anser_kparams_restore(d->kparams);
		return;
	}
	for (size_t i = 0; now && i < now->n_ifs; i++) {
		const struct anser_netif *f = &now->ifs[i];
		if (f->role == ANSER_IF_LAN && n_lan < ANSER_MAX_LAN_IFACES)
			lan[n_lan++] = f->name;
		else if (f->role == ANSER_IF_WAN && n_wan < ANSER_MAX_LAN_IFACES)
			wan[n_wan++] = f->name;
	}
	anser_kparams_apply(d->kparams, lan, n_lan, wan, n_wan);
}

/* Gateway mode: the LAN interfaces of now, watched by the datapath. */
static void follow_lan(struct daemon *d, const struct anser_netstate *now)
{
	int ifs[ANSER_MAX_LAN_IFACES];
	size_t n = 0;

	for (size_t i = 0; now && i < now->n_ifs && n < ANSER_MAX_LAN_IFACES; i++)
		if (now->ifs[i].role == ANSER_IF_LAN)
			ifs[n++] = now->ifs[i].ifindex;
	if (d->dp)
		(void)anser_datapath_set_lan(d->dp, ifs, n);
	follow_kparams(d, now);
}

/* The primary connection changed under rules with network(): the active
 * config compiled for the new one and swapped in, as a reload would (flows
 * decided already keep their route). */
static gboolean on_network_rules(gpointer ud)
{
	struct daemon *d = ud;
	char *message = NULL;

	d->network_source = 0;
	if (!d->rules_network || !d->gens[d->active])
		return G_SOURCE_REMOVE;
	const struct anser_network *net = current_network(d);
	int r = apply_api_state(d, &message);
	if (r < 0)
		log_error("Rules with network() not compiled for the new network, the old ones "
			  "stay: %s",
			  message ? message : strerror(-r));
	else
		log_info("Rules with network() now follow network '%s' (generation %llu)",
			 net && net->id ? net->id : "", (unsigned long long)d->generation);
	free(message);
	return G_SOURCE_REMOVE;
}

/* The network changed: one PropertiesChanged for what did. */
static void on_net_changed(void *ud, const struct anser_netstate *now, unsigned what)
{
	struct daemon *d = ud;
	char *changed[4];
	size_t n = 0;

	if (what & ANSER_NETMON_IFACES)
		follow_lan(d, now);
	if (what & ANSER_NETMON_DNS)
		anser_dns_service_set_network(d->dns, now->primary.dns);
	/* not from here: this may run inside install_config() */
	if ((what & ANSER_NETMON_PRIMARY) && d->rules_network && !d->network_source)
		d->network_source = g_idle_add(on_network_rules, d);

	if (what & ANSER_NETMON_IFACES)
		changed[n++] = "Interfaces";
	if (what & ANSER_NETMON_PRIMARY) {
		changed[n++] = "PrimaryConnection";
		changed[n++] = "Network";
	}
	changed[n] = NULL;
	if (d->bus && n)
		anser_bus_properties_changed(d->bus, changed);
}

static void resync(void *ud)
{
	struct daemon *d = ud;
	if (d->netmon)
		anser_netmon_resync(d->netmon);
}

static const struct anser_bus_ops bus_ops = {
	.get_state = get_state,
	.reload = do_reload,
	.list_connections = list_connections,
	.explain = explain,
	.set_app_route = set_app_route,
	.clear_app_route = clear_app_route,
	.get_app_routes = get_app_routes,
	.get_enabled = get_enabled,
	.set_enabled = set_enabled,
	.get_generation = get_generation,
	.get_config_files = get_config_files,
	.validate = validate_text,
	.get_active_apps = get_active_apps,
	.get_config = get_config,
	.select_node = select_node,
	.get_health = get_health,
	.test_nodes = test_nodes,
	.get_netstate = get_netstate,
	.resync = resync,
};

static gboolean on_sigterm(gpointer ud)
{
	struct daemon *d = ud;
	log_info("Exiting on signal");
	g_main_loop_quit(d->loop);
	return G_SOURCE_CONTINUE;
}

static gboolean on_poll_flows(gpointer ud);

static int get_active_apps(void *ud, long only_uid, struct anser_app_info **out, size_t *n);

/* A second after flows were seen, then every 1 to 8 seconds while apps
 * have connections: compare ActiveApps with what was last announced. At
 * most one PropertiesChanged per second, however many connections come
 * and go. */
static gboolean on_apps_timer(gpointer ud)
{
	struct daemon *d = ud;
	struct anser_app_info *v = NULL;
	size_t n = 0;
	GString *s = g_string_new(NULL);

	if (get_active_apps(d, -1, &v, &n) == 0)
		for (size_t i = 0; i < n; i++)
			g_string_append_printf(s, "%s|%s|%u|%s\n", v[i].app_id, v[i].pname,
					       v[i].connections, v[i].outbound);
	anser_app_infos_free(v, n);
	bool changed = g_strcmp0(s->str, d->apps_seen ? d->apps_seen : "") != 0;
	if (changed) {
		g_free(d->apps_seen);
		d->apps_seen = g_string_free(s, FALSE);
		anser_bus_property_changed(d->bus, "ActiveApps");
	} else {
		g_string_free(s, TRUE);
	}
	d->apps_source = 0;
	if (n == 0)
		return G_SOURCE_REMOVE;
	/* each look is a socket dump: while nothing changes, look less often */
	d->apps_ms = changed ? 1000 : MIN(d->apps_ms * 2, 8000);
	d->apps_source = g_timeout_add(d->apps_ms, on_apps_timer, d);
	return G_SOURCE_REMOVE;
}

/* Read the flow log now and schedule the next read at its pace. */
static void drain_flows(struct daemon *d)
{
	unsigned ms = anser_datapath_drain(d->dp);

	/* new flows: look again within a second */
	if (d->bus && d->apps_source && d->apps_ms > 1000) {
		g_source_remove(d->apps_source);
		d->apps_source = 0;
	}
	if (d->bus && !d->apps_source) {
		d->apps_ms = 1000;
		d->apps_source = g_timeout_add(d->apps_ms, on_apps_timer, d);
	}

	if (d->poll_source)
		g_source_remove(d->poll_source);
	d->poll_source = 0;
	if (ms)
		d->poll_source = g_timeout_add(ms, on_poll_flows, d);
}

static gboolean on_poll_flows(gpointer ud)
{
	struct daemon *d = ud;

	d->poll_source = 0; /* drain_flows() schedules the next one */
	drain_flows(d);
	return G_SOURCE_REMOVE;
}

static gboolean on_flow_events(gint fd, GIOCondition cond, gpointer ud)
{
	drain_flows(ud);
	return G_SOURCE_CONTINUE;
}

static gboolean on_sighup(gpointer ud)
{
	char *msg = NULL;
	log_info("Reloading on SIGHUP");
	do_reload(ud, &msg);
	free(msg);
	return G_SOURCE_CONTINUE;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: anserd [OPTIONS]\n"
		"Transparent per-application traffic splitter.\n\n"
		"  -c, --config=FILE       dae-style config (default: %s if it exists,\n"
		"                          else the built-in default: everything direct)\n"
		"      --cgroup=PATH       cgroup v2 directory to attach to (default: the\n"
		"                          cgroup2 root from /proc/self/mounts)\n"
		"      --bus-address=ADDR  D-Bus address to serve on (default: system bus)\n"
		"      --no-bus            do not connect to D-Bus\n"
		"      --workers=N         relay threads (default: one per CPU)\n"
		"      --state-dir=DIR     where app routes are kept (default: " ANSER_STATEDIR
		")\n"
		"      --bpf-dir=DIR       where fail_mode: closed pins the programs, on a\n"
		"                          bpf filesystem (default: " ANSER_BPF_DIR ")\n"
		"      --log-level=LEVEL   error, warning, notice, info, debug\n"
		"      --validate          check the config (also against the kernel's\n"
		"                          limits), print every problem with its line and a\n"
		"                          caret, exit 0 if it can be used (--check: the same)\n"
		"  -h, --help              this text\n"
		"      --version           print the version\n",
		DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
	enum {
		OPT_CGROUP = 256,
		OPT_BUS,
		OPT_NO_BUS,
		OPT_WORKERS,
		OPT_LOG,
		OPT_CHECK,
		OPT_VER,
		OPT_STATE,
		OPT_BPF_DIR,
	};
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "cgroup", required_argument, NULL, OPT_CGROUP },
		{ "state-dir", required_argument, NULL, OPT_STATE },
		{ "bpf-dir", required_argument, NULL, OPT_BPF_DIR },
		{ "bus-address", required_argument, NULL, OPT_BUS },
		{ "no-bus", no_argument, NULL, OPT_NO_BUS },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "log-level", required_argument, NULL, OPT_LOG },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "validate", no_argument, NULL, OPT_CHECK },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VER },
		{ 0 },
	};
	struct daemon d = { .log_level_cli = -1, .exit_code = EXIT_FAILURE };
	/* A peer that closed its end must cost one connection, not the
	 * daemon: every write to a socket fails with EPIPE instead (systemd
	 * ignores SIGPIPE for services too, but anserd is also started by
	 * hand and by the tests). */
	signal(SIGPIPE, SIG_IGN);

	struct anser_config *cfg = NULL;
	bool check_only = false;
	char *message = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) >= 0) {
		switch (c) {
		case 'c':
			d.config_path = optarg;
			break;
		case OPT_CGROUP:
			d.cgroup = optarg;
			break;
		case OPT_STATE:
			d.state_dir = optarg;
			break;
		case OPT_BPF_DIR:
			d.bpf_dir = optarg;
			break;
		case OPT_BUS:
			d.bus_address = optarg;
			break;
		case OPT_NO_BUS:
			d.no_bus = true;
			break;
		case OPT_WORKERS: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v > 256) {
				fprintf(stderr, "anserd: --workers: expected 0..256, got '%s'\n",
					optarg);
				return EXIT_FAILURE;
			}
			d.workers = (unsigned)v;
			break;
		}
		case OPT_LOG:
			r = anser_log_parse_level(optarg);
			if (r < 0) {
				fprintf(stderr, "anserd: unknown log level '%s'\n", optarg);
				return EXIT_FAILURE;
			}
			d.log_level_cli = r;
			anser_log_set_level((enum anser_log_level)r);
			break;
		case OPT_CHECK:
			check_only = true;
			d.validate = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case OPT_VER:
			printf("anserd %s\n", ANSER_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_FAILURE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "anserd: unexpected argument '%s'\n", argv[optind]);
		return EXIT_FAILURE;
	}
	if (!d.config_path && access(DEFAULT_CONFIG, F_OK) == 0)
		d.config_path = DEFAULT_CONFIG;

	d.state = "starting";
	if (!d.state_dir)
		d.state_dir = ANSER_STATEDIR;
	if (!check_only) {
		d.routes_path = g_build_filename(d.state_dir, "app-routes", NULL);
		routes_load(&d);
	}
	struct anser_compiled compiled;
	r = load_config(&d, &cfg, &compiled, &message);
	if (r < 0) {
		fprintf(stderr, "%s\n", message ? message : "configuration rejected");
		free(message);
		routes_free(d.routes, d.n_routes);
		g_free(d.routes_path);
		g_free(d.persist_dir);
		return EXIT_FAILURE;
	}
	if (check_only) {
		fflush(stderr);
		printf("%s: OK (%zu file%s, %zu nodes, %zu groups, %zu rules)\n",
		       d.config_path ? d.config_path : "<builtin>", cfg->n_files,
		       cfg->n_files == 1 ? "" : "s", cfg->n_nodes, cfg->n_groups, cfg->n_rules);
		anser_config_free(cfg);
		anser_compiled_clear(&compiled);
		return EXIT_SUCCESS;
	}
	if (!d.config_path)
		log_info("No config file, running on the built-in default (everything direct)");

	raise_fd_limit();
	r = anser_datapath_new(d.cgroup, cfg->lan_interfaces ? ANSER_DATAPATH_GATEWAY : 0, &d.dp);
	if (r < 0)
		goto out;
	anser_datapath_set_pin_dir(d.dp, d.bpf_dir ? d.bpf_dir : ANSER_BPF_DIR);
	d.checker = anser_checker_new();
	anser_checker_on_change(d.checker, groups_changed, &d);
	struct anser_proxy_opts popts = { .workers = d.workers,
					  .gateway = cfg->lan_interfaces != NULL };
	r = anser_proxy_new(d.dp, &popts, &d.proxy);
	if (r < 0) {
		log_error_errno(r, "Failed to open the transparent listeners: %m");
		goto out;
	}
	uint16_t t4, t6, u4, u6;
	anser_proxy_ports(d.proxy, &t4, &t6, &u4, &u6);
	anser_datapath_set_ports(d.dp, t4, t6, u4, u6);
	if (popts.gateway) {
		int lan4, lan6;
		anser_proxy_lan_socks(d.proxy, &lan4, &lan6);
		(void)anser_datapath_set_lan_socks(d.dp, lan4, lan6);
	}
	r = install_config(&d, cfg, &compiled, true);
	cfg = NULL;
	if (r < 0)
		goto out;
	r = anser_proxy_start(d.proxy);
	if (r < 0) {
		log_error_errno(r, "Failed to start relay workers: %m");
		goto out;
	}
	r = anser_datapath_attach(d.dp);
	if (r < 0)
		goto out;

	d.loop = g_main_loop_new(NULL, FALSE);
	/* NetworkManager on the bus anserd serves (a test's private bus
	 * meets the test's NetworkManager); without a bus, the kernel's
	 * routes only */
	struct anser_netmon_opts nopts = {
		.wan = d.gens[d.active]->cfg->wan_interfaces,
		.lan = d.gens[d.active]->cfg->lan_interfaces,
		.bus_address = d.bus_address,
		.no_nm = d.no_bus,
	};
	r = anser_netmon_new(&nopts, on_net_changed, &d, &d.netmon);
	if (r < 0)
		goto out;
	/* before the first follow_lan(), which sets them */
	char *kp_path = g_build_filename(d.state_dir, "kernel-parameters", NULL);
	(void)anser_kparams_new("/proc/sys", kp_path, &d.kparams);
	g_free(kp_path);
	follow_lan(&d, anser_netmon_state(d.netmon));
	if (!d.no_bus) {
		r = anser_bus_new(d.bus_address, &bus_ops, &d, &d.bus);
		if (r < 0) {
			log_error_errno(r, "Failed to serve org.anser.Anser1 on D-Bus: %m");
			goto out;
		}
	}
	d.events_source =
		g_unix_fd_add(anser_datapath_events_fd(d.dp), G_IO_IN, on_flow_events, &d);
	g_unix_signal_add(SIGTERM, on_sigterm, &d);
	g_unix_signal_add(SIGINT, on_sigterm, &d);
	g_unix_signal_add(SIGHUP, on_sighup, &d);
	set_state(&d, "running");
	/* the name is ours and the rules are installed: tell systemd (a no-op
	 * outside a service) */
	sd_notifyf(0, "READY=1\nSTATUS=Running, generation %llu", (unsigned long long)d.generation);
	log_info("anserd %s running (listeners tcp %u/%u udp %u/%u)", ANSER_VERSION, t4, t6, u4,
		 u6);
	g_main_loop_run(d.loop);
	sd_notify(0, "STOPPING=1");
	d.exit_code = EXIT_SUCCESS;

out:
	if (d.events_source)
		g_source_remove(d.events_source);
	if (d.poll_source)
		g_source_remove(d.poll_source);
	if (d.network_source)
		g_source_remove(d.network_source);
	anser_netmon_free(d.netmon);
	if (d.kparams)
		anser_kparams_restore(d.kparams);
	anser_kparams_free(d.kparams);
	if (d.dp) /* the apps' DNS goes where they send it again, first */
		anser_datapath_set_dns(d.dp, 0, 0, NULL, 0);
	anser_dns_service_free(d.dns);
	anser_bus_free(d.bus);
	anser_checker_free(d.checker);
	/* Detach before the listeners close: new flows go direct from here.
	 * The workers still use the maps until they stop. */
	anser_datapath_detach(d.dp);
	anser_proxy_free(d.proxy);
	anser_datapath_free(d.dp);
	for (int i = 0; i < ANSER_GENS; i++)
		anser_gen_unref(d.gens[i]);
	anser_health_unref(d.health);
	anser_config_free(cfg);
	routes_free(d.routes, d.n_routes);
	g_free(d.routes_path);
	g_free(d.persist_dir);
	if (d.apps_source)
		g_source_remove(d.apps_source);
	for (size_t i = 0; i < d.n_picks; i++) {
		g_free(d.picks[i].group);
		g_free(d.picks[i].node);
	}
	g_free(d.picks);
	g_free(d.apps_seen);
	if (d.loop)
		g_main_loop_unref(d.loop);
	return d.exit_code;
}
