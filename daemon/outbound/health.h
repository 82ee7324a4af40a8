/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Node health and group policies.
 *
 * For every node and network type (tcp4, tcp6, udp4, udp6) the health
 * checker records whether the last check passed and how long it took;
 * from those each latency group keeps its chosen node, changing it only
 * for a node faster by more than check_tolerance (or when it dies).
 *
 * Threads: the checker records and updates on the main thread; workers
 * pick nodes concurrently (atomic loads only, no lock, no syscall).
 */
#ifndef ANSER_HEALTH_H
#define ANSER_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"

enum anser_nettype {
	ANSER_NT_TCP4,
	ANSER_NT_TCP6,
	ANSER_NT_UDP4,
	ANSER_NT_UDP6,
	ANSER_NT_N,
};

#define ANSER_LATENCY_UNKNOWN INT64_MAX

const char *anser_nettype_name(enum anser_nettype t); /* "tcp4" ... */

struct anser_health;

/* For cfg's nodes and groups (copied: the object does not keep cfg).
 * Measurements of prev carry over to nodes with the same name and link. */
struct anser_health *anser_health_new(const struct anser_config *cfg,
				      const struct anser_health *prev);
struct anser_health *anser_health_ref(struct anser_health *h);
void anser_health_unref(struct anser_health *h);

/* A check result: latency in ns, -1 for a failed check (logged when the
 * node was not dead), -2 for a node that cannot carry that type at all. */
void anser_health_record(struct anser_health *h, size_t node, enum anser_nettype t,
			 int64_t latency_ns);
/* Re-chooses the node of every latency group (after a round of checks);
 * logs changes. True when a group's choice changed. */
bool anser_health_update(struct anser_health *h);

/* The node (index into cfg->nodes) for a new flow of group `group` and
 * network type t; -1 when the group has no live node. Data path. */
int anser_group_pick(const struct anser_health *h, size_t group, enum anser_nettype t);
/* The node the group uses now for t (fixed and latency policies), -1. */
int anser_health_current(const struct anser_health *h, size_t group, enum anser_nettype t);

struct anser_node_stat {
	int alive;	    /* 1, 0, or -1 not checked yet */
	int64_t last;	    /* ns, ANSER_LATENCY_UNKNOWN */
	int64_t avg10;	    /* of the last 10 good checks */
	int64_t moving_avg; /* (avg + new) / 2 on each good check */
};
void anser_health_stat(const struct anser_health *h, size_t node, enum anser_nettype t,
		       struct anser_node_stat *st);

#endif
