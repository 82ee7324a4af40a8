/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Gateway mode's policy routing for proxied LAN flows (lanroute.c). */
#ifndef ANSER_LANROUTE_H
#define ANSER_LANROUTE_H

/* Add the rule and the local route, IPv4 and IPv6 (what an earlier anserd
 * left is kept): 0, or -errno (logged). */
int anser_lan_route_add(void);
/* Remove them; what is not there is no error. */
void anser_lan_route_del(void);

#endif
