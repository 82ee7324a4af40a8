// SPDX-License-Identifier: GPL-2.0-or-later
#include "polkit.h"

#include <errno.h>
#include <polkit/polkit.h>

#include "../util/log.h"

struct anser_polkit_query {
	sd_bus_message *message;
	char *action_id;
	anser_polkit_cb cb; /* NULL once cancelled */
	void *userdata;
	GCancellable *cancellable;
};

static void query_free(struct anser_polkit_query *q)
{
	sd_bus_message_unref(q->message);
	g_free(q->action_id);
	g_clear_object(&q->cancellable);
	g_free(q);
}

/* Reports the result (unless cancelled) and frees the query: every path of
 * the asynchronous chain ends here exactly once. */
static void query_complete(struct anser_polkit_query *q, enum anser_polkit_result result,
			   const char *detail)
{
	if (q->cb)
		q->cb(q->message, result, detail, q->userdata);
	query_free(q);
}

static void on_check_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	struct anser_polkit_query *q = user_data;
	g_autoptr(PolkitAuthorizationResult) result = NULL;
	g_autoptr(GError) error = NULL;

	result = polkit_authority_check_authorization_finish(POLKIT_AUTHORITY(source), res, &error);
	if (!result) {
		if (q->cb)
			log_warning("polkit check of %s failed, denying: %s", q->action_id,
				    error->message);
		query_complete(q, ANSER_POLKIT_DENIED, error->message);
	} else if (polkit_authorization_result_get_is_authorized(result)) {
		query_complete(q, ANSER_POLKIT_ALLOWED, NULL);
	} else if (polkit_authorization_result_get_is_challenge(result)) {
		query_complete(q, ANSER_POLKIT_CHALLENGE, NULL);
	} else {
		query_complete(q, ANSER_POLKIT_DENIED, NULL);
	}
}

static void on_authority(GObject *source, GAsyncResult *res, gpointer user_data)
{
	struct anser_polkit_query *q = user_data;
	g_autoptr(PolkitAuthority) authority = NULL;
	g_autoptr(PolkitSubject) subject = NULL;
	g_autoptr(GError) error = NULL;
	PolkitCheckAuthorizationFlags flags = POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE;

	authority = polkit_authority_get_finish(res, &error);
	if (!authority) {
		if (q->cb)
			log_warning("polkit is not available, denying %s: %s", q->action_id,
				    error->message);
		query_complete(q, ANSER_POLKIT_DENIED, error->message);
		return;
	}
	if (!q->cb) {
		query_free(q);
		return;
	}

	subject = polkit_system_bus_name_new(sd_bus_message_get_sender(q->message));
	if (sd_bus_message_get_allow_interactive_authorization(q->message) > 0)
		flags |= POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION;

	polkit_authority_check_authorization(authority, subject, q->action_id, NULL, flags,
					     q->cancellable, on_check_done, q);
}

int anser_polkit_check_async(sd_bus_message *m, const char *action_id, anser_polkit_cb cb,
			     void *userdata, struct anser_polkit_query **ret)
{
	struct anser_polkit_query *q;

	g_return_val_if_fail(m, -EINVAL);
	g_return_val_if_fail(action_id, -EINVAL);
	g_return_val_if_fail(cb, -EINVAL);

	/* A peer-to-peer connection has no bus name polkit could look up. */
	if (!sd_bus_message_get_sender(m))
		return -EACCES;

	q = g_new0(struct anser_polkit_query, 1);
	q->message = sd_bus_message_ref(m);
	q->action_id = g_strdup(action_id);
	q->cb = cb;
	q->userdata = userdata;
	q->cancellable = g_cancellable_new();

	/* The authority is a process-wide singleton: after the first call this
	 * completes from the main loop without talking to the bus. */
	polkit_authority_get_async(q->cancellable, on_authority, q);

	if (ret)
		*ret = q;
	return 0;
}

void anser_polkit_query_cancel(struct anser_polkit_query *q)
{
	if (!q)
		return;
	q->cb = NULL;
	q->userdata = NULL;
	q->message = sd_bus_message_unref(q->message);
	g_cancellable_cancel(q->cancellable);
}
