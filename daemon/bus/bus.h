/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bus: org.anser.Anser1 on the system bus (or a given address), served by
 * sd-bus on the GLib main loop, with polkit checks for every method that
 * changes anything.
 */
#ifndef ANSER_BUS_H
#define ANSER_BUS_H

#include "../util/conninfo.h"

struct anser_bus;

struct anser_bus_ops {
	const char *(*get_state)(void *ud); /* "starting", "running", ... */
	/* 0 on success; on failure -errno and *message (malloc'd) saying why. */
	int (*reload)(void *ud, char **message);
	int (*list_connections)(void *ud, struct anser_conn_list *out);
};

/* address NULL: the system bus. Requests org.anser.Anser1; fails with
 * -EEXIST if another owner has it. */
int anser_bus_new(const char *address, const struct anser_bus_ops *ops, void *ud,
		  struct anser_bus **out);
/* Emit PropertiesChanged for State (call after a state change). */
void anser_bus_state_changed(struct anser_bus *b);
void anser_bus_free(struct anser_bus *b);

#endif
