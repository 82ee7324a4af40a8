// SPDX-License-Identifier: GPL-2.0-or-later
#include "sd-event-glib.h"

#include "log.h"

struct sd_event_gsource {
	GSource source;
	GPollFD pollfd;
	sd_event *event;
};

static sd_event *source_event(GSource *s)
{
	return ((struct sd_event_gsource *)s)->event;
}

static gboolean sd_event_gsource_prepare(GSource *s, gint *timeout)
{
	sd_event *e = source_event(s);
	int r;

	*timeout = -1;

	/* GLib may call prepare() twice without check() in between: when another
	 * thread adds or removes a polled source while this one sits in poll(),
	 * or when a higher-priority source is ready. The sd_event is then still
	 * ARMED from the previous prepare(), and calling sd_event_prepare() on it
	 * would fail with -EBUSY (an assertion inside libsystemd). Its epoll fd is
	 * already armed, so let poll() -> check() -> dispatch() finish the cycle. */
	if (sd_event_get_state(e) == SD_EVENT_ARMED)
		return FALSE;

	r = sd_event_prepare(e);
	if (r < 0) {
		log_debug_errno(r, "Failed to prepare sd-event loop, ignoring: %m");
		return FALSE;
	}
	return r > 0;
}

static gboolean sd_event_gsource_check(GSource *s)
{
	int r;

	r = sd_event_wait(source_event(s), 0);
	if (r < 0) {
		log_debug_errno(r, "Failed to poll sd-event loop, ignoring: %m");
		return FALSE;
	}
	return r > 0;
}

static gboolean sd_event_gsource_dispatch(GSource *s, GSourceFunc callback, gpointer user_data)
{
	int r;

	r = sd_event_dispatch(source_event(s));
	if (r < 0)
		log_warning_errno(r, "Failed to dispatch sd-event loop, ignoring: %m");
	/* Keep the source even after sd_event_exit(): its owner removes it. */
	return G_SOURCE_CONTINUE;
}

static void sd_event_gsource_finalize(GSource *s)
{
	struct sd_event_gsource *src = (struct sd_event_gsource *)s;

	src->event = sd_event_unref(src->event);
}

static GSourceFuncs sd_event_gsource_funcs = {
	.prepare = sd_event_gsource_prepare,
	.check = sd_event_gsource_check,
	.dispatch = sd_event_gsource_dispatch,
	.finalize = sd_event_gsource_finalize,
};

GSource *anser_sd_event_source_new(sd_event *e)
{
	struct sd_event_gsource *src;

	g_return_val_if_fail(e, NULL);

	src = (struct sd_event_gsource *)g_source_new(&sd_event_gsource_funcs, sizeof(*src));
	src->event = sd_event_ref(e);
	src->pollfd = (GPollFD){
		.fd = sd_event_get_fd(e),
		.events = G_IO_IN | G_IO_HUP | G_IO_ERR,
	};
	g_source_add_poll(&src->source, &src->pollfd);
	g_source_set_name(&src->source, "sd-event");
	return &src->source;
}

GSource *anser_sd_event_attach_glib(sd_event *e, GMainContext *ctx)
{
	GSource *s = anser_sd_event_source_new(e);

	if (s)
		g_source_attach(s, ctx);
	return s;
}
