/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside netmon: the NetworkManager client (nm.c). */
#ifndef ANSER_NETMON_PRIVATE_H
#define ANSER_NETMON_PRIVATE_H

#include "netmon.h"

struct anser_nm;

/* Something NetworkManager reports changed: read it with anser_nm_read(). */
typedef void (*anser_nm_changed_fn)(void *ud);

/* Connects (asynchronously) to NetworkManager on bus_address (NULL: the
 * system bus). Never fails: without NetworkManager it reports nothing. */
struct anser_nm *anser_nm_new(const char *bus_address, anser_nm_changed_fn changed, void *ud);
/* The primary connection from the client's cache (no D-Bus call); *out's
 * strings are g_strdup'd, "" when unknown. */
void anser_nm_read(struct anser_nm *n, struct anser_network *out, bool *running);
void anser_nm_free(struct anser_nm *n);

void anser_network_clear(struct anser_network *net);

#endif
