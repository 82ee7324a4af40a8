/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * netmon: which interfaces carry traffic now, and which network the
 * machine is on. The kernel's routing table is the truth for the
 * interface set (rtnetlink, always watched, so it works without
 * NetworkManager and while NetworkManager restarts); NetworkManager
 * (libnm, asynchronous, on the GLib main context) names the primary
 * connection. Bursts of events are folded into one "changed" call.
 */
#ifndef ANSER_NETMON_H
#define ANSER_NETMON_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

enum anser_if_role {
	ANSER_IF_WAN, /* carries a default route, or listed in wan_interface */
	ANSER_IF_LAN, /* matches lan_interface */
};

struct anser_netif {
	char name[IF_NAMESIZE];
	int ifindex;
	enum anser_if_role role;
};

/* NetworkManager's primary connection; strings are "" when unknown. */
struct anser_network {
	char *id; /* the profile's name, "Home Wi-Fi" */
	char *uuid;
	char *type;  /* "ethernet", "wifi", "vpn", "gsm", ... (NM's name otherwise) */
	char *ssid;  /* Wi-Fi only */
	char *iface; /* its IP interface */
	bool metered;
	/* its DNS servers, IPv4 then IPv6, as NetworkManager lists them
	 * (NULL-terminated; NULL: none) */
	char **dns;
};

struct anser_netstate {
	struct anser_netif *ifs; /* sorted by role, then name */
	size_t n_ifs;
	struct anser_network primary;
	bool nm_running; /* NetworkManager owns its bus name */
};

const char *anser_if_role_name(enum anser_if_role role); /* "wan", "lan" */

enum {
	ANSER_NETMON_IFACES = 1 << 0,  /* ifs changed */
	ANSER_NETMON_PRIMARY = 1 << 1, /* primary or nm_running changed */
	ANSER_NETMON_DNS = 1 << 2,     /* the primary connection's DNS servers changed */
};

struct anser_netmon;

/* what: ANSER_NETMON_* bits. `now` is borrowed until the next change. */
typedef void (*anser_netmon_changed_fn)(void *ud, const struct anser_netstate *now, unsigned what);

/* Which interfaces have which role. wan: names or globs; NULL, empty or
 * an entry "auto" means "whatever carries the default routes" (the
 * union with the named ones). lan: names or globs. Both NULL-terminated,
 * copied. */
struct anser_netmon_opts {
	char *const *wan;
	char *const *lan;
	/* NetworkManager on this bus address (NULL: the system bus); no_nm:
	 * rtnetlink only */
	const char *bus_address;
	bool no_nm;
};

/* Reads the current state before it returns (anser_netmon_state() is
 * valid at once; NetworkManager's part follows when its client is
 * ready). 0 or -errno. */
int anser_netmon_new(const struct anser_netmon_opts *opts, anser_netmon_changed_fn changed,
		     void *ud, struct anser_netmon **out);
/* New roles (on reload): recomputed at once, `changed` called if the
 * set differs. */
void anser_netmon_set_roles(struct anser_netmon *m, char *const *wan, char *const *lan);
/* Read everything again soon (the dispatcher's nudge). */
void anser_netmon_resync(struct anser_netmon *m);
const struct anser_netstate *anser_netmon_state(const struct anser_netmon *m);
void anser_netmon_free(struct anser_netmon *m);

/* The pieces, for tests. rtnetlink dump of this network namespace: the
 * links (ifindex, name, up) and the interfaces that carry a default
 * route (any table but local, unicast, not dead or linkdown). */
struct anser_nl_link {
	int ifindex;
	char name[IF_NAMESIZE];
	bool up;
	bool default_route;
};
/* 0 and *out (g_free) or -errno. */
int anser_nl_dump(struct anser_nl_link **out, size_t *n);
/* The interface set for these links and roles (sorted, g_free). */
struct anser_netif *anser_netmon_compute(const struct anser_nl_link *links, size_t n,
					 char *const *wan, char *const *lan, size_t *n_out);

#endif
