/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * outbound: turn (group, original destination) into a connected stream or
 * a datagram session. Non-blocking: each dial is a small state machine the
 * relay's epoll loop drives (dial -> handshake -> ready).
 *
 * Groups pick a node by policy (fixed(n), random) among the group's nodes.
 */
#ifndef ANSER_OUTBOUND_H
#define ANSER_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../config/config.h"

/* Index into cfg->nodes chosen for a new flow of group `group`, or -1. */
int anser_group_pick(const struct anser_config *cfg, size_t group);

#endif
