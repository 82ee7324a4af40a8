// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * netmon: rtnetlink events (links, addresses, routes) and NetworkManager
 * notifications both only mark the state stale; one resync a few
 * milliseconds later reads everything again and reports what differs.
 * So a burst (NM taking a connection down removes addresses, routes and
 * changes its primary connection) is one change, and no event can be
 * half-applied.
 */
#include "netmon.h"

#include <errno.h>
#include <fnmatch.h>
#include <glib-unix.h>
#include <glib.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netmon-private.h"
#include "../util/log.h"

/* Long enough to fold one burst, short against the 200 ms a switch may
 * take in all. */
#define RESYNC_MS 10

struct anser_netmon {
	char **wan, **lan;
	int nl_fd;
	guint nl_source;
	guint resync_source;
	struct anser_nm *nm;
	struct anser_netstate state;
	anser_netmon_changed_fn changed;
	void *ud;
};

const char *anser_if_role_name(enum anser_if_role role)
{
	return role == ANSER_IF_LAN ? "lan" : "wan";
}

static bool matches(char *const *patterns, const char *name)
{
	for (size_t i = 0; patterns && patterns[i]; i++)
		if (fnmatch(patterns[i], name, 0) == 0)
			return true;
	return false;
}

static bool wan_auto(char *const *wan)
{
	if (!wan || !wan[0])
		return true;
	for (size_t i = 0; wan[i]; i++)
		if (strcmp(wan[i], "auto") == 0)
			return true;
	return false;
}

static int netif_cmp(const void *a, const void *b)
{
	const struct anser_netif *x = a, *y = b;
	if (x->role != y->role)
		return x->role < y->role ? -1 : 1;
	return strcmp(x->name, y->name);
}

struct anser_netif *anser_netmon_compute(const struct anser_nl_link *links, size_t n,
					 char *const *wan, char *const *lan, size_t *n_out)
{
	GArray *v = g_array_new(FALSE, TRUE, sizeof(struct anser_netif));
	bool autow = wan_auto(wan);

	for (size_t i = 0; i < n; i++) {
		struct anser_netif f = { .ifindex = links[i].ifindex };
		memcpy(f.name, links[i].name, sizeof(f.name));
		if ((autow && links[i].default_route) || (links[i].up && matches(wan, f.name))) {
			f.role = ANSER_IF_WAN;
			g_array_append_val(v, f);
		}
		if (matches(lan, f.name)) {
			f.role = ANSER_IF_LAN;
			g_array_append_val(v, f);
		}
	}
	g_array_sort(v, netif_cmp);
	*n_out = v->len;
	return (struct anser_netif *)(void *)g_array_free(v, FALSE);
}

static bool same_ifs(const struct anser_netstate *a, const struct anser_netif *ifs, size_t n)
{
	if (a->n_ifs != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (netif_cmp(&a->ifs[i], &ifs[i]) != 0 || a->ifs[i].ifindex != ifs[i].ifindex)
			return false;
	return true;
}

static bool same_network(const struct anser_network *a, const struct anser_network *b)
{
	return g_strcmp0(a->id, b->id) == 0 && g_strcmp0(a->uuid, b->uuid) == 0 &&
	       g_strcmp0(a->type, b->type) == 0 && g_strcmp0(a->ssid, b->ssid) == 0 &&
	       g_strcmp0(a->iface, b->iface) == 0 && a->metered == b->metered;
}

static bool same_dns(const struct anser_network *a, const struct anser_network *b)
{
	return a->dns && b->dns
		       ? g_strv_equal((const char *const *)a->dns, (const char *const *)b->dns)
		       : a->dns == b->dns;
}

static void log_ifs(const struct anser_netstate *s)
{
	GString *w = g_string_new(NULL), *l = g_string_new(NULL);

	for (size_t i = 0; i < s->n_ifs; i++) {
		GString *t = s->ifs[i].role == ANSER_IF_LAN ? l : w;
		g_string_append_printf(t, "%s%s", t->len ? " " : "", s->ifs[i].name);
	}
	log_info("Interfaces now: wan %s; lan %s", w->len ? w->str : "(none)",
		 l->len ? l->str : "(none)");
	g_string_free(w, TRUE);
	g_string_free(l, TRUE);
}

static void log_primary(const struct anser_netstate *s)
{
	const struct anser_network *p = &s->primary;

	if (!s->nm_running)
		log_info("NetworkManager is not running: no primary connection");
	else if (!*p->id)
		log_info("NetworkManager: no primary connection");
	else {
		g_autofree char *dns = p->dns ? g_strjoinv(" ", p->dns) : NULL;
		log_info("Primary connection now '%s' (%s%s%s on %s%s; DNS %s)", p->id, p->type,
			 *p->ssid ? " " : "", p->ssid, *p->iface ? p->iface : "?",
			 p->metered ? ", metered" : "", dns ? dns : "none");
	}
}

/* Read everything, report what differs. */
static void resync(struct anser_netmon *m)
{
	struct anser_nl_link *links = NULL;
	size_t n_links = 0, n_ifs = 0;
	unsigned what = 0;
	int r = anser_nl_dump(&links, &n_links);

	if (r < 0) {
		/* keep what was: a failed read is no reason to drop interfaces */
		log_warning_errno(r, "Cannot read the interfaces and routes, keeping the last "
				     "known set: %m");
	} else {
		struct anser_netif *ifs =
			anser_netmon_compute(links, n_links, m->wan, m->lan, &n_ifs);
		if (!same_ifs(&m->state, ifs, n_ifs)) {
			g_free(m->state.ifs);
			m->state.ifs = ifs;
			m->state.n_ifs = n_ifs;
			what |= ANSER_NETMON_IFACES;
		} else {
			g_free(ifs);
		}
	}
	g_free(links);

	struct anser_network net = { 0 };
	bool running = false;
	if (m->nm)
		anser_nm_read(m->nm, &net, &running);
	else
		net = (struct anser_network){ g_strdup(""), g_strdup(""), g_strdup(""),
					      g_strdup(""), g_strdup(""), false,
					      NULL };
	bool dns = !same_dns(&m->state.primary, &net);
	if (!same_network(&m->state.primary, &net) || running != m->state.nm_running || dns) {
		if (dns)
			what |= ANSER_NETMON_DNS;
		if (!same_network(&m->state.primary, &net) || running != m->state.nm_running)
			what |= ANSER_NETMON_PRIMARY;
		anser_network_clear(&m->state.primary);
		m->state.primary = net;
		m->state.nm_running = running;
	} else {
		anser_network_clear(&net);
	}
	if (what & ANSER_NETMON_IFACES)
		log_ifs(&m->state);
	if (what & (ANSER_NETMON_PRIMARY | ANSER_NETMON_DNS))
		log_primary(&m->state);
	if (what && m->changed)
		m->changed(m->ud, &m->state, what);
}

static gboolean on_resync(gpointer ud)
{
	struct anser_netmon *m = ud;
	m->resync_source = 0;
	resync(m);
	return G_SOURCE_REMOVE;
}

void anser_netmon_resync(struct anser_netmon *m)
{
	if (!m->resync_source)
		m->resync_source = g_timeout_add(RESYNC_MS, on_resync, m);
}

static void on_nm_changed(void *ud)
{
	anser_netmon_resync(ud);
}

/* The events' contents do not matter: any of them means "read again".
 * ENOBUFS (events lost) means the same. */
static gboolean on_netlink(gint fd, GIOCondition cond, gpointer ud)
{
	struct anser_netmon *m = ud;
	char buf[8192];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0 || (n < 0 && (errno == EINTR || errno == ENOBUFS)))
			continue;
		if (n < 0 && errno != EAGAIN)
			log_warning_errno(errno, "rtnetlink events, ignoring: %m");
		break;
	}
	anser_netmon_resync(m);
	return G_SOURCE_CONTINUE;
}

static int open_events(void)
{
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
			     RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
	};
	int size = 1 << 20;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int anser_netmon_new(const struct anser_netmon_opts *opts, anser_netmon_changed_fn changed,
		     void *ud, struct anser_netmon **out)
{
	struct anser_netmon *m = g_new0(struct anser_netmon, 1);

	m->changed = changed;
	m->ud = ud;
	m->wan = g_strdupv((char **)opts->wan);
	m->lan = g_strdupv((char **)opts->lan);
	m->nl_fd = open_events();
	if (m->nl_fd < 0) {
		int r = m->nl_fd;
		g_strfreev(m->wan);
		g_strfreev(m->lan);
		g_free(m);
		return log_error_errno(r, "Failed to watch rtnetlink: %m");
	}
	m->nl_source = g_unix_fd_add(m->nl_fd, G_IO_IN, on_netlink, m);
	m->state.primary =
		(struct anser_network){ g_strdup(""), g_strdup(""), g_strdup(""), g_strdup(""),
					g_strdup(""), false,	    NULL };
	if (!opts->no_nm)
		m->nm = anser_nm_new(opts->bus_address, on_nm_changed, m);
	/* the first read, without a callback: the caller reads the state */
	anser_netmon_changed_fn cb = m->changed;
	m->changed = NULL;
	resync(m);
	m->changed = cb;
	*out = m;
	return 0;
}

void anser_netmon_set_roles(struct anser_netmon *m, char *const *wan, char *const *lan)
{
	g_strfreev(m->wan);
	g_strfreev(m->lan);
	m->wan = g_strdupv((char **)wan);
	m->lan = g_strdupv((char **)lan);
	if (m->resync_source) {
		g_source_remove(m->resync_source);
		m->resync_source = 0;
	}
	resync(m);
}

const struct anser_netstate *anser_netmon_state(const struct anser_netmon *m)
{
	return &m->state;
}

void anser_netmon_free(struct anser_netmon *m)
{
	if (!m)
		return;
	if (m->resync_source)
		g_source_remove(m->resync_source);
	if (m->nl_source)
		g_source_remove(m->nl_source);
	if (m->nl_fd >= 0)
		close(m->nl_fd);
	/* nothing of ours may run from here on */
	m->changed = NULL;
	anser_nm_free(m->nm);
	g_free(m->state.ifs);
	anser_network_clear(&m->state.primary);
	g_strfreev(m->wan);
	g_strfreev(m->lan);
	g_free(m);
}
