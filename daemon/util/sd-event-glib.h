/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sd-event on the GLib main loop: the whole sd_event becomes ONE GSource
 * polling the sd_event's epoll fd (timers are timerfds inside it, so no GLib
 * timeout is needed). GLib owns the loop; sd-bus and other sd-event users ride
 * on it.
 */
#ifndef ANSER_SD_EVENT_GLIB_H
#define ANSER_SD_EVENT_GLIB_H

#include <glib.h>
#include <systemd/sd-event.h>

/* A new (unattached) GSource holding a reference on e. Attach it with
 * g_source_attach(); destroy it (g_source_destroy + g_source_unref) before
 * the last user of e goes away. */
GSource *anser_sd_event_source_new(sd_event *e);

/* Convenience: new source attached to ctx (NULL: the global default context);
 * returns the source (one reference owned by the caller). */
GSource *anser_sd_event_attach_glib(sd_event *e, GMainContext *ctx);

#endif
