// SPDX-License-Identifier: GPL-2.0-or-later
/* netmon: the interface set from links and roles (pure), and the live
 * watch in a network namespace of the test's own (root: the test process
 * unshares its network namespace, so nothing of the host's is seen or
 * touched): default routes, multipath, routes going away, links going
 * down, globs, and one change reported per burst. */
#include <glib.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/netmon/netmon.h"

static struct anser_nl_link L(int ifindex, const char *name, bool up, bool def) {
	struct anser_nl_link l = { .ifindex = ifindex, .up = up, .default_route = def };
	g_strlcpy(l.name, name, sizeof(l.name));
	return l;
}

/* "wan:a lan:b ..." */
static char *
ifs_str(const struct anser_netif *v, size_t n)
{
	GString *s = g_string_new(NULL);
	for (size_t i = 0; i < n; i++)
		g_string_append_printf(s, "%s%s:%s", i ? " " : "", anser_if_role_name(v[i].role),
				       v[i].name);
	return g_string_free(s, FALSE);
}

static char *compute(const struct anser_nl_link *links, size_t n, const char *wan, const char *lan)
{
	g_auto(GStrv) w = wan ? g_strsplit(wan, ",", -1) : NULL;
	g_auto(GStrv) l = lan ? g_strsplit(lan, ",", -1) : NULL;
	size_t k = 0;
	g_autofree struct anser_netif *v = anser_netmon_compute(links, n, w, l, &k);
	return ifs_str(v, k);
}

static void test_compute(void)
{
	const struct anser_nl_link links[] = {
		L(5, "wlan0", true, true),  L(2, "eth0", true, true),  L(3, "eth1", true, false),
		L(4, "tun0", true, true),   L(6, "lan1", true, false), L(7, "lan2", false, false),
		L(8, "usb0", false, false),
	};
	size_t n = G_N_ELEMENTS(links);
	char *s;

	/* auto: the default route carriers, sorted */
	s = compute(links, n, NULL, NULL);
	g_assert_cmpstr(s, ==, "wan:eth0 wan:tun0 wan:wlan0");
	g_free(s);
	s = compute(links, n, "auto", "lan*");
	g_assert_cmpstr(s, ==, "wan:eth0 wan:tun0 wan:wlan0 lan:lan1 lan:lan2");
	g_free(s);
	/* named: only those (up), auto adds the carriers */
	s = compute(links, n, "eth*", NULL);
	g_assert_cmpstr(s, ==, "wan:eth0 wan:eth1");
	g_free(s);
	s = compute(links, n, "usb0,auto", NULL);
	g_assert_cmpstr(s, ==, "wan:eth0 wan:tun0 wan:wlan0");
	g_free(s);
	s = compute(links, n, "nothing", "eth1");
	g_assert_cmpstr(s, ==, "lan:eth1");
	g_free(s);
	s = compute(NULL, 0, NULL, "*");
	g_assert_cmpstr(s, ==, "");
	g_free(s);
}

static void sh(const char *cmd)
{
	g_autofree char *err = NULL;
	int status = 0;
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL,
				   &err, &status, NULL));
	if (!g_spawn_check_wait_status(status, NULL))
		g_error("%s: %s", cmd, err);
}

struct seen {
	unsigned calls;
	unsigned what;
	char *ifs;
};

static void on_changed(void *ud, const struct anser_netstate *now, unsigned what)
{
	struct seen *s = ud;
	s->calls++;
	s->what |= what;
	g_free(s->ifs);
	s->ifs = ifs_str(now->ifs, now->n_ifs);
}

/* Run the loop until the set reads `want` (2 s at most). */
static void wait_ifs(struct seen *s, struct anser_netmon *m, const char *want)
{
	gint64 end = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
	for (;;) {
		const struct anser_netstate *st = anser_netmon_state(m);
		g_autofree char *now = ifs_str(st->ifs, st->n_ifs);
		if (strcmp(now, want) == 0)
			return;
		if (g_get_monotonic_time() > end)
			g_error("interfaces are '%s', expected '%s'", now, want);
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
}

static void test_live(void)
{
	if (geteuid() != 0) {
		g_test_skip("needs root (a network namespace of its own)");
		return;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		g_test_skip("cannot unshare the network namespace");
		return;
	}
	sh("ip link set lo up && ip link add a0 type veth peer name b0 && "
	   "ip link add c0 type veth peer name d0 && ip link set a0 up && ip link set b0 up && "
	   "ip link set c0 up && ip link set d0 up && ip addr add 10.9.0.1/24 dev a0 && "
	   "ip addr add 10.8.0.1/24 dev c0 && ip addr add fd09::1/64 dev b0 nodad");

	struct seen s = { 0 };
	char *lan[] = { "lan*", NULL };
	struct anser_netmon_opts o = { .lan = lan, .no_nm = true };
	struct anser_netmon *m = NULL;
	g_assert_cmpint(anser_netmon_new(&o, on_changed, &s, &m), ==, 0);
	g_assert_cmpuint(anser_netmon_state(m)->n_ifs, ==, 0);
	g_assert_false(anser_netmon_state(m)->nm_running);
	g_assert_cmpstr(anser_netmon_state(m)->primary.id, ==, "");

	sh("ip route add default via 10.9.0.2 dev a0");
	wait_ifs(&s, m, "wan:a0");
	g_assert_cmpuint(s.what, ==, ANSER_NETMON_IFACES);
	/* IPv6 counts; a higher-metric second default route counts too */
	sh("ip -6 route add default via fd09::2 dev b0 && "
	   "ip route add default via 10.8.0.2 dev c0 metric 500");
	wait_ifs(&s, m, "wan:a0 wan:b0 wan:c0");
	sh("ip -6 route del default && ip route del default via 10.8.0.2");
	wait_ifs(&s, m, "wan:a0");
	/* multipath: both paths */
	sh("ip route replace default nexthop via 10.9.0.2 dev a0 nexthop via 10.8.0.2 dev c0");
	wait_ifs(&s, m, "wan:a0 wan:c0");
	/* a link going down takes its routes with it */
	sh("ip link set c0 down");
	wait_ifs(&s, m, "wan:a0");
	/* a LAN interface made later is found by its glob, and gone when deleted */
	sh("ip link add lan7 type veth peer name lan7p");
	wait_ifs(&s, m, "wan:a0 lan:lan7 lan:lan7p");
	sh("ip link del lan7");
	wait_ifs(&s, m, "wan:a0");
	/* a route in another table (a VPN's policy routing) counts */
	sh("ip route add default via 10.9.0.2 dev b0 table 51820 onlink");
	wait_ifs(&s, m, "wan:a0 wan:b0");
	/* a burst is one change: many route changes, then quiet */
	unsigned before = s.calls;
	sh("for i in 1 2 3 4 5 6 7 8; do ip route add 10.$i.0.0/16 via 10.9.0.2; done; "
	   "ip route del default table 51820");
	wait_ifs(&s, m, "wan:a0");
	for (int i = 0; i < 50; i++) { /* let anything late arrive */
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
	g_assert_cmpuint(s.calls - before, <=, 2);
	/* roles changed on reload: at once, reported */
	char *wan[] = { "a0", "b0", NULL };
	anser_netmon_set_roles(m, wan, NULL);
	g_assert_cmpstr(s.ifs, ==, "wan:a0 wan:b0");
	anser_netmon_free(m);
	g_free(s.ifs);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/netmon/compute", test_compute);
	g_test_add_func("/netmon/live", test_live);
	return g_test_run();
}
