// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * polkit checks as asynchronous calls of polkitd's CheckAuthorization on
 * the bus connection the checked call came in on -- no second (GDBus)
 * connection to the system bus. That one, shared by libpolkit-gobject
 * through g_bus_get(), was found closed at the first check in clean-clone
 * CI runs ("Error initializing authority: The connection is closed"),
 * which denied the call, or took the daemon down with GDBus's
 * exit-on-close. systemd's own services ask polkitd the same way.
 */
#include "polkit.h"

#include <errno.h>
#include <glib.h>
#include <stdbool.h>

#include "../util/log.h"

/* An interactive check waits for the user to type a password. */
#define CHECK_TIMEOUT_USEC	       (25ULL * 1000000)
#define INTERACTIVE_CHECK_TIMEOUT_USEC (300ULL * 1000000)

struct anser_polkit {
	int unused;
};

struct anser_polkit_query {
	sd_bus_slot *slot; /* the call to polkitd in flight */
	sd_bus_message *message;
	char *action_id;
	anser_polkit_cb cb;
	void *userdata;
};

static void query_free(struct anser_polkit_query *q)
{
	sd_bus_slot_unref(q->slot);
	sd_bus_message_unref(q->message);
	g_free(q->action_id);
	g_free(q);
}

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
	struct anser_polkit_query *q = userdata;
	const sd_bus_error *e = sd_bus_message_get_error(reply);
	enum anser_polkit_result result = ANSER_POLKIT_DENIED;
	const char *detail = NULL;
	int authorized = 0, challenge = 0, r;

	if (e) {
		/* no polkitd (ServiceUnknown), a timeout, an error: deny */
		log_warning("polkit check of %s failed, denying: %s", q->action_id,
			    e->message ? e->message : e->name);
		detail = e->message ? e->message : e->name;
	} else if ((r = sd_bus_message_enter_container(reply, 'r', "bba{ss}")) < 0 ||
		   (r = sd_bus_message_read(reply, "bb", &authorized, &challenge)) < 0) {
		log_warning_errno(r, "polkit's answer for %s is not (bba{ss}), denying: %m",
				  q->action_id);
		detail = "malformed answer from polkitd";
	} else if (authorized) {
		result = ANSER_POLKIT_ALLOWED;
	} else if (challenge) {
		result = ANSER_POLKIT_CHALLENGE;
	}
	q->cb(q->message, result, detail, q->userdata);
	query_free(q);
	return 0;
}

struct anser_polkit *anser_polkit_new(void)
{
	return g_new0(struct anser_polkit, 1);
}

void anser_polkit_free(struct anser_polkit *p)
{
	g_free(p);
}

int anser_polkit_check_async(struct anser_polkit *p, sd_bus_message *m, const char *action_id,
			     anser_polkit_cb cb, void *userdata, struct anser_polkit_query **ret)
{
	__attribute__((cleanup(sd_bus_message_unrefp))) sd_bus_message *call = NULL;
	const char *sender = m ? sd_bus_message_get_sender(m) : NULL;
	sd_bus *bus = m ? sd_bus_message_get_bus(m) : NULL;
	struct anser_polkit_query *q;
	int r;

	if (!p || !m || !action_id || !cb)
		return -EINVAL;
	/* A peer-to-peer connection has no bus name polkit could look up. */
	if (!sender || !bus)
		return -EACCES;
	bool interactive = sd_bus_message_get_allow_interactive_authorization(m) > 0;

	r = sd_bus_message_new_method_call(
		bus, &call, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
		"org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
	if (r >= 0) /* subject: the caller's unique name; no details; flags; no cancellation id */
		r = sd_bus_message_append(call, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name",
					  "s", sender, action_id, 0, interactive ? 1u : 0u, "");
	if (r < 0)
		return r;
	q = g_new0(struct anser_polkit_query, 1);
	q->message = sd_bus_message_ref(m);
	q->action_id = g_strdup(action_id);
	q->cb = cb;
	q->userdata = userdata;
	r = sd_bus_call_async(bus, &q->slot, call, on_reply, q,
			      interactive ? INTERACTIVE_CHECK_TIMEOUT_USEC : CHECK_TIMEOUT_USEC);
	if (r < 0) {
		query_free(q);
		return r;
	}
	if (ret)
		*ret = q;
	return 0;
}

void anser_polkit_query_cancel(struct anser_polkit_query *q)
{
	if (q)
		query_free(q); /* unref'ing the slot cancels the call */
}
