/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Health checks, on the main GLib loop (never on the workers): every
 * check_interval (with +-10 % jitter) each node that is in a group is
 * checked through itself, per network type:
 *   tcp4/tcp6: an HTTP request (tcp_check_http_method, tcp_check_url's
 *              path and Host) to the URL's v4/v6 address; a 2xx or 3xx
 *              status passes, the time to it is the latency;
 *   udp4/udp6: a DNS query for udp_check_dns's host to its v4/v6 address
 *              through the node's UDP (socks5, shadowsocks, trojan, vmess); any answer
 *              with our ID passes. Nodes without UDP count as dead for UDP.
 * Checks run non-blocking, at most 64 at once, each with a deadline of
 * min(5 s, check_interval). Results go to the health object; when a round
 * ends the groups choose again.
 */
#ifndef ANSER_CHECKER_H
#define ANSER_CHECKER_H

#include "../routing/routing.h"
#include "health.h"

struct anser_checker;

struct anser_checker *anser_checker_new(void);
void anser_checker_free(struct anser_checker *c);
/* Check gen's nodes into h from now on (the first round starts at once);
 * checks of the previous generation are dropped. gen NULL: stop. */
void anser_checker_set(struct anser_checker *c, struct anser_gen *gen, struct anser_health *h);
/* A round now for the nodes of group (NULL: every group); done(ud, n) is
 * called with the number of checks when it ends. -ENOENT: no such group;
 * -EBUSY: a round is running (done is called when it ends). */
int anser_checker_test(struct anser_checker *c, const char *group,
		       void (*done)(void *ud, unsigned n_checks), void *ud);
/* Called (on the main loop) when checks changed what a group uses or
 * which nodes are alive: for the Groups property's PropertiesChanged. */
void anser_checker_on_change(struct anser_checker *c, void (*fn)(void *ud), void *ud);

#endif
