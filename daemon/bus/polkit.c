// SPDX-License-Identifier: GPL-2.0-or-later
#include "polkit.h"

#include <errno.h>
#include <polkit/polkit.h>

#include "../util/log.h"

struct anser_polkit {
	PolkitAuthority *authority;
};

struct anser_polkit_query {
	struct anser_polkit *owner; /* NULL once cancelled */
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

static void check_with(PolkitAuthority *authority, struct anser_polkit_query *q)
{
	g_autoptr(PolkitSubject) subject = NULL;
	PolkitCheckAuthorizationFlags flags = POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE;

	subject = polkit_system_bus_name_new(sd_bus_message_get_sender(q->message));
	if (sd_bus_message_get_allow_interactive_authorization(q->message) > 0)
		flags |= POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION;

	polkit_authority_check_authorization(authority, subject, q->action_id, NULL, flags,
					     q->cancellable, on_check_done, q);
}

static void on_authority(GObject *source, GAsyncResult *res, gpointer user_data)
{
	struct anser_polkit_query *q = user_data;
	g_autoptr(PolkitAuthority) authority = NULL;
	g_autoptr(GError) error = NULL;

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
	/* polkit keeps only a weak singleton: hold it, or every check would
	 * connect to the bus again. */
	if (!q->owner->authority)
		q->owner->authority = g_object_ref(authority);
	check_with(authority, q);
}

struct anser_polkit *anser_polkit_new(void)
{
	return g_new0(struct anser_polkit, 1);
}

void anser_polkit_free(struct anser_polkit *p)
{
	if (!p)
		return;
	g_clear_object(&p->authority);
	g_free(p);
}

int anser_polkit_check_async(struct anser_polkit *p, sd_bus_message *m, const char *action_id,
			     anser_polkit_cb cb, void *userdata, struct anser_polkit_query **ret)
{
	struct anser_polkit_query *q;

	g_return_val_if_fail(p, -EINVAL);
	g_return_val_if_fail(m, -EINVAL);
	g_return_val_if_fail(action_id, -EINVAL);
	g_return_val_if_fail(cb, -EINVAL);

	/* A peer-to-peer connection has no bus name polkit could look up. */
	if (!sd_bus_message_get_sender(m))
		return -EACCES;

	q = g_new0(struct anser_polkit_query, 1);
	q->owner = p;
	q->message = sd_bus_message_ref(m);
	q->action_id = g_strdup(action_id);
	q->cb = cb;
	q->userdata = userdata;
	q->cancellable = g_cancellable_new();

	if (p->authority)
		check_with(p->authority, q);
	else
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
	q->owner = NULL;
	q->userdata = NULL;
	q->message = sd_bus_message_unref(q->message);
	g_cancellable_cancel(q->cancellable);
}
