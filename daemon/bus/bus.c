// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * org.anser.Anser1 on sd-bus. Every method is authorized by polkit first,
 * asynchronously: the handler only starts the check and returns; the reply
 * is sent from the polkit callback on the GLib main loop.
 */
#include "bus.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <systemd/sd-id128.h>

#include "anser-build.h"
#include "bus-errors.h"
#include "polkit.h"
#include "../util/log.h"
#include "../util/sd-event-glib.h"

#define _cleanup_(f) __attribute__((cleanup(f)))

struct anser_bus {
	sd_bus *bus;
	sd_bus_slot *filter; /* Properties.Set of Enabled, authorized first */
	sd_event *event;
	GSource *source;
	const struct anser_bus_ops *ops;
	void *ud;
	struct anser_polkit *polkit;
	GPtrArray *pending; /* struct pending_call *, waiting for polkit */
};

typedef int (*authorized_method_t)(struct anser_bus *b, sd_bus_message *m, sd_bus_error *error);

struct method_auth {
	const char *member;
	const char *action_id;
	authorized_method_t run;
};

struct pending_call {
	struct anser_bus *bus;
	const struct method_auth *method;
	struct anser_polkit_query *query;
};

static void freep(void *p)
{
	free(*(void **)p);
}

static int method_reload(struct anser_bus *b, sd_bus_message *m, sd_bus_error *error)
{
	_cleanup_(freep) char *message = NULL;
	int r;

	r = b->ops->reload(b->ud, &message);
	if (r < 0) {
		if (!message)
			return sd_bus_error_setf(error, ANSER_BUS_ERROR_RELOAD_FAILED,
						 "Reload failed: %s", strerror(-r));
		return sd_bus_error_setf(error, ANSER_BUS_ERROR_RELOAD_FAILED, "%s", message);
	}
	log_info("Configuration reloaded on request of %s", sd_bus_message_get_sender(m));
	return sd_bus_reply_method_return(m, NULL);
}

/* Names and counters come from the kernel and config: make them valid UTF-8
 * (sd-bus refuses anything else) and bounded by their fixed-size field. */
/* s if it is valid UTF-8 ending within its field, else a valid copy in
 * *tmp (freed by the caller). */
static const char *valid_str(const char *s, size_t size, char **tmp)
{
	size_t n = strnlen(s, size);

	if (n < size && g_utf8_validate_len(s, n, NULL))
		return s;
	g_autofree char *bounded = g_strndup(s, size);
	*tmp = g_utf8_make_valid(bounded, -1);
	return *tmp;
}

/* A {sv} entry KEY holding the strings of v (an "as"), made valid UTF-8. */
static int append_strv(sd_bus_message *reply, const char *key, const char *const *v, size_t n)
{
	g_auto(GStrv) valid = g_new0(char *, n + 1);
	int r;

	for (size_t i = 0; i < n; i++)
		valid[i] = g_utf8_make_valid(v[i], -1);
	r = sd_bus_message_open_container(reply, 'e', "sv");
	if (r >= 0)
		r = sd_bus_message_append(reply, "s", key);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'v', "as");
	if (r >= 0)
		r = sd_bus_message_append_strv(reply, valid);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r;
}

static int append_str(sd_bus_message *reply, const char *key, const char *s, size_t size)
{
	g_autofree char *tmp = NULL;

	return sd_bus_message_append(reply, "{sv}", key, "s", valid_str(s, size, &tmp));
}

/* The {sv} entries one at a time, not through sd_bus_message_append()'s
 * format: 10,000 connections of 11 entries make the parsing count. */
static int append_entry(sd_bus_message *reply, const char *key, char type, const void *value)
{
	const char sig[2] = { type, 0 };
	int r = sd_bus_message_open_container(reply, 'e', "sv");
	if (r >= 0)
		r = sd_bus_message_append_basic(reply, 's', key);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'v', sig);
	if (r >= 0)
		r = sd_bus_message_append_basic(reply, type, value);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r;
}

struct listing {
	sd_bus_message *reply;
	size_t n;
};

static int append_connection(void *ud, const struct anser_conn_info *c)
{
	struct listing *l = ud;
	sd_bus_message *reply = l->reply;
	char src[64], dst[64];
	g_autofree char *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL, *t5 = NULL, *t6 = NULL;
	const struct {
		const char *key;
		char type;
		const void *value;
	} e[] = {
		{ "Pid", 'u', &c->pid },
		{ "ProcessName", 's', valid_str(c->pname, sizeof(c->pname), &t1) },
		{ "Protocol", 's', valid_str(c->proto, sizeof(c->proto), &t2) },
		{ "Source", 's', anser_sockaddr_str(&c->src, src, sizeof(src)) },
		{ "Destination", 's', anser_sockaddr_str(&c->dst, dst, sizeof(dst)) },
		{ "Outbound", 's', valid_str(c->outbound, sizeof(c->outbound), &t3) },
		{ "Node", 's', valid_str(c->node, sizeof(c->node), &t4) },
		{ "Rule", 's', valid_str(c->rule, sizeof(c->rule), &t5) },
		{ "Domain", 's', valid_str(c->domain, sizeof(c->domain), &t6) },
		{ "BytesUp", 't', &c->bytes_up },
		{ "BytesDown", 't', &c->bytes_down },
		{ "Cookie", 't', &c->cookie },
	};
	int r = sd_bus_message_open_container(reply, 'a', "{sv}");

	for (size_t i = 0; r >= 0 && i < G_N_ELEMENTS(e); i++)
		r = append_entry(reply, e[i].key, e[i].type, e[i].value);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	l->n++;
	return r;
}

static int method_list_connections(struct anser_bus *b, sd_bus_message *m, sd_bus_error *error)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	int64_t t0 = g_get_monotonic_time();
	struct listing l = { 0 };
	int r;

	r = sd_bus_message_new_method_return(m, &reply);
	if (r < 0)
		return r;
	r = sd_bus_message_open_container(reply, 'a', "a{sv}");
	if (r < 0)
		return r;
	/* entries go into the reply as the kernel lists them */
	l.reply = reply;
	r = b->ops->list_connections(b->ud, append_connection, &l);
	if (r < 0)
		return sd_bus_error_set_errnof(error, r, "Failed to list connections: %m");
	r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	r = sd_bus_send(NULL, reply, NULL);
	log_debug("ListConnections: %zu connections in %.1f ms", l.n,
		  (double)(g_get_monotonic_time() - t0) / 1000);
	return r;
}

void anser_explanation_clear(struct anser_explanation *e)
{
	free(e->outbound);
	free(e->rule);
	free(e->file);
	*e = (struct anser_explanation){ 0 };
}

static void explanation_clearp(struct anser_explanation *e)
{
	anser_explanation_clear(e);
}

static int method_explain(struct anser_bus *b, sd_bus_message *m, sd_bus_error *error)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_(explanation_clearp) struct anser_explanation e = { 0 };
	_cleanup_(freep) char *message = NULL;
	const char *process, *destination, *protocol;
	int r;

	r = sd_bus_message_read(m, "sss", &process, &destination, &protocol);
	if (r < 0)
		return r;
	if (!b->ops->explain)
		return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED,
					"Explain is not available");
	r = b->ops->explain(b->ud, process, destination, protocol, &e, &message);
	if (r < 0)
		return sd_bus_error_set(error, ANSER_BUS_ERROR_INVALID_ARGUMENT,
					message ? message : "cannot explain this flow");
	r = sd_bus_message_new_method_return(m, &reply);
	if (r < 0)
		return r;
	r = sd_bus_message_append(reply, "a{sv}", 7, "Outbound", "s", e.outbound, "Rule", "s",
				  e.rule, "RuleIndex", "i", e.index, "File", "s",
				  e.file ? e.file : "", "Line", "u", e.line, "Column", "u", e.col,
				  "Port", "q", e.port);
	if (r < 0)
		return r;
	return sd_bus_send(NULL, reply, NULL);
}

/* An operation's failure as a D-Bus error: -EINVAL is the caller's
 * (InvalidArgument), -ENOENT names `enoent`, the rest keep their errno.
 * message (from the operation) or `what` says why. */
static int op_error(sd_bus_error *error, int r, const char *message, const char *enoent,
		    const char *what)
{
	if (r == -EINVAL || r == -ENOENT)
		return sd_bus_error_set(error,
					r == -ENOENT ? enoent : ANSER_BUS_ERROR_INVALID_ARGUMENT,
					message ? message : what);
	return sd_bus_error_set_errnof(error, r, "%s", message ? message : what);
}

static int method_set_app_route(struct anser_bus *b, sd_bus_message *m, sd_bus_error *error)
{
	_cleanup_(freep) char *message = NULL;
	const char *selector, *outbound;
	int r;

	r = sd_bus_message_read(m, "ss", &selector, &outbound);
	if (r < 0)
		return r;
	r = b->ops->set_app_route(b->ud, selector, outbound, &message);
	if (r < 0)
		return op_error(error, r, message, ANSER_BUS_ERROR_INVALID_ARGUMENT,
				"cannot set the route");
	log_info("Route %s -> %s set by %s", selector, outbound, sd_bus_message_get_sender(m));
	return sd_bus_reply_method_return(m, NULL);
}

static int method_clear_app_route(struct anser_bus *b, sd_bus_message *m, sd_bus_error *error)
{
	_cleanup_(freep) char *message = NULL;
	const char *selector;
	int r;

	r = sd_bus_message_read(m, "s", &selector);
	if (r < 0)
		return r;
	r = b->ops->clear_app_route(b->ud, selector, &message);
	if (r < 0)
		return op_error(error, r, message, ANSER_BUS_ERROR_NO_SUCH_ROUTE,
				"cannot clear the route");
	log_info("Route for %s cleared by %s", selector, sd_bus_message_get_sender(m));
	return sd_bus_reply_method_return(m, NULL);
}

static int method_validate(struct anser_bus *b, sd_bus_message *m, sd_bus_error *error)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_(freep) char *compile_error = NULL;
	struct anser_diags d = { 0 };
	const char *text;
	int r;

	r = sd_bus_message_read(m, "s", &text);
	if (r < 0)
		return r;
	r = b->ops->validate(b->ud, text, &d, &compile_error);
	if (r < 0) {
		anser_diags_clear(&d);
		return sd_bus_error_set_errnof(error, r, "Cannot validate: %m");
	}
	bool ok = anser_diags_errors(&d) == 0 && !compile_error;
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "b", ok);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(suus)");
	for (size_t i = 0; r >= 0 && i < d.n; i++) {
		g_autofree char *msg = g_strdup_printf(
			"%s: %s", d.v[i].warning ? "warning" : "error", d.v[i].message);
		g_autofree char *vmsg = g_utf8_make_valid(msg, -1);
		g_autofree char *vfile = g_utf8_make_valid(d.v[i].file, -1);
		r = sd_bus_message_append(reply, "(suus)", vfile, d.v[i].line, d.v[i].col, vmsg);
	}
	if (r >= 0 && compile_error) {
		g_autofree char *v = g_utf8_make_valid(compile_error, -1);
		r = sd_bus_message_append(reply, "(suus)", "<text>", 0, 0, v);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	anser_diags_clear(&d);
	if (r < 0)
		return r;
	return sd_bus_send(NULL, reply, NULL);
}

/* Properties.Set of Enabled, after polkit said yes: the value is read
 * from the original message. */
static int method_set_enabled(struct anser_bus *b, sd_bus_message *m, sd_bus_error *error)
{
	const char *iface, *prop;
	int enabled, r;

	r = sd_bus_message_rewind(m, true);
	if (r >= 0)
		r = sd_bus_message_read(m, "ss", &iface, &prop);
	if (r >= 0)
		r = sd_bus_message_read(m, "v", "b", &enabled);
	if (r < 0)
		return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "Enabled is a boolean");
	r = b->ops->set_enabled(b->ud, enabled);
	if (r < 0)
		return sd_bus_error_set_errnof(error, r, "Cannot change Enabled: %m");
	log_info("%s by %s", enabled ? "Enabled" : "Suspended", sd_bus_message_get_sender(m));
	anser_bus_property_changed(b, "Enabled");
	return sd_bus_reply_method_return(m, NULL);
}

static const char *policy_name(const struct anser_group *g)
{
	switch (g->policy) {
	case ANSER_POLICY_FIXED:
		return "fixed";
	case ANSER_POLICY_RANDOM:
		return "random";
	case ANSER_POLICY_MIN:
		return "min";
	case ANSER_POLICY_MIN_AVG10:
		return "min_avg10";
	case ANSER_POLICY_MIN_MOVING_AVG:
		return "min_moving_avg";
	case ANSER_POLICY_MIN_LAST_LATENCY:
		return "min_last_latency";
	}
	return "";
}

/* Alive (b: a type passed or none was checked), Checked (b), Dead (as:
 * types whose last check failed), Latency (a{st}: the last good check, us,
 * by type). */
static int append_health(sd_bus_message *reply, const struct anser_health *h, size_t node)
{
	const char *dead[ANSER_NT_N];
	size_t n_dead = 0;
	bool checked = false, passed = false;
	struct anser_node_stat st[ANSER_NT_N];

	for (int t = 0; t < ANSER_NT_N; t++) {
		anser_health_stat(h, node, (enum anser_nettype)t, &st[t]);
		checked |= st[t].alive >= 0;
		passed |= st[t].alive == 1;
		if (st[t].alive == 0)
			dead[n_dead++] = anser_nettype_name((enum anser_nettype)t);
	}
	int r = sd_bus_message_append(reply, "{sv}{sv}", "Alive", "b", passed || !checked,
				      "Checked", "b", checked);
	if (r >= 0)
		r = append_strv(reply, "Dead", dead, n_dead);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'e', "sv");
	if (r >= 0)
		r = sd_bus_message_append(reply, "s", "Latency");
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'v', "a{st}");
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "{st}");
	for (int t = 0; r >= 0 && t < ANSER_NT_N; t++)
		if (st[t].alive == 1 && st[t].last != ANSER_LATENCY_UNKNOWN)
			r = sd_bus_message_append(reply, "{st}",
						  anser_nettype_name((enum anser_nettype)t),
						  (uint64_t)(st[t].last / 1000));
	for (int k = 0; r >= 0 && k < 3; k++)
		r = sd_bus_message_close_container(reply);
	return r;
}

/* ListNodes: what a node is, never its credentials or link. */
static int method_list_nodes(struct anser_bus *b, sd_bus_message *m, sd_bus_error *error)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	const struct anser_config *c = b->ops->get_config ? b->ops->get_config(b->ud) : NULL;
	const struct anser_health *health = b->ops->get_health ? b->ops->get_health(b->ud) : NULL;
	int r = sd_bus_message_new_method_return(m, &reply);

	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "a{sv}");
	for (size_t i = 0; c && r >= 0 && i < c->n_nodes; i++) {
		const struct anser_node *n = &c->nodes[i];
		g_autofree char *addr = strchr(n->host, ':')
						? g_strdup_printf("[%s]:%u", n->host, n->port)
						: g_strdup_printf("%s:%u", n->host, n->port);
		r = sd_bus_message_open_container(reply, 'a', "{sv}");
		if (r >= 0)
			r = append_str(reply, "Name", n->name, 256);
		if (r >= 0)
			r = append_str(reply, "Protocol", anser_node_proto_name(n), 16);
		if (r >= 0)
			r = append_str(reply, "Address", addr, 300);
		if (r >= 0)
			r = sd_bus_message_append(reply, "{sv}", "Authenticated", "b",
						  n->user != NULL);
		g_autoptr(GPtrArray) groups = g_ptr_array_new();
		for (size_t gi = 0; gi < c->n_groups; gi++)
			for (size_t k = 0; k < c->groups[gi].n_nodes; k++)
				if (c->groups[gi].nodes[k] == i)
					g_ptr_array_add(groups, c->groups[gi].name);
		if (r >= 0)
			r = append_strv(reply, "Groups", (const char *const *)groups->pdata,
					groups->len);
		if (r >= 0)
			r = append_health(reply, health, i);
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	return sd_bus_send(NULL, reply, NULL);
}

struct test_call {
	sd_bus_message *m;
	char *group;
};

static void test_nodes_done(void *ud, unsigned n)
{
	struct test_call *t = ud;
	int r = sd_bus_reply_method_return(t->m, "u", n);
	if (r < 0)
		log_debug_errno(r, "Failed to answer TestNodes, ignoring: %m");
	log_info("Health checks asked for by %s done (%u checks)",
		 sd_bus_message_get_sender(t->m) ?: "?", n);
	sd_bus_message_unref(t->m);
	g_free(t->group);
	g_free(t);
}

/* TestNodes: answered when the round of checks ends. */
static int method_test_nodes(struct anser_bus *b, sd_bus_message *m, sd_bus_error *error)
{
	const char *group;
	int r = sd_bus_message_read(m, "s", &group);
	if (r < 0)
		return r;
	if (!b->ops->test_nodes)
		return -EOPNOTSUPP;
	struct test_call *t = g_new0(struct test_call, 1);
	t->m = sd_bus_message_ref(m);
	t->group = g_strdup(group);
	r = b->ops->test_nodes(b->ud, group, test_nodes_done, t);
	if (r < 0) {
		sd_bus_message_unref(t->m);
		g_free(t->group);
		g_free(t);
		return sd_bus_error_setf(error, ANSER_BUS_ERROR_INVALID_ARGUMENT, "no group '%s'",
					 group);
	}
	return 1;
}

static int method_select_node(struct anser_bus *b, sd_bus_message *m, sd_bus_error *error)
{
	_cleanup_(freep) char *message = NULL;
	const char *group, *node;
	int r;

	r = sd_bus_message_read(m, "ss", &group, &node);
	if (r < 0)
		return r;
	r = b->ops->select_node(b->ud, group, node, &message);
	if (r < 0)
		return op_error(error, r, message, ANSER_BUS_ERROR_INVALID_ARGUMENT,
				"cannot select the node");
	log_info("Group %s uses node %s, on request of %s", group, node,
		 sd_bus_message_get_sender(m));
	return sd_bus_reply_method_return(m, NULL);
}

/* Resync: read the network again (NetworkManager's dispatcher calls it on
 * every change). It changes nothing a caller chooses and repeated calls
 * fold into one read, so it needs no authorization. */
static int method_resync(struct anser_bus *b, sd_bus_message *m, sd_bus_error *error)
{
	b->ops->resync(b->ud);
	log_debug("Network read again on request of %s", sd_bus_message_get_sender(m));
	return sd_bus_reply_method_return(m, NULL);
}

/* Deny by default: a method missing from this table is refused, whatever the
 * vtable says. Every entry needs its action in polkit/org.anser.policy.in,
 * but for the one with none (NULL), which asks nobody. */
static const struct method_auth method_auth_table[] = {
	{ "Reload", "org.anser.manage", method_reload },
	{ "ListConnections", "org.anser.view-connections", method_list_connections },
	{ "Explain", "org.anser.view-connections", method_explain },
	{ "SetAppRoute", "org.anser.route-app", method_set_app_route },
	{ "ClearAppRoute", "org.anser.route-app", method_clear_app_route },
	{ "Validate", "org.anser.view-connections", method_validate },
	{ "ListNodes", "org.anser.view-connections", method_list_nodes },
	{ "SelectNode", "org.anser.manage", method_select_node },
	{ "TestNodes", "org.anser.manage", method_test_nodes },
	{ "Resync", NULL, method_resync },
	/* org.freedesktop.DBus.Properties.Set of Enabled (see on_message) */
	{ "Set", "org.anser.manage", method_set_enabled },
};

static const struct method_auth *method_auth_lookup(const char *member)
{
	for (size_t i = 0; i < G_N_ELEMENTS(method_auth_table); i++)
		if (member && strcmp(method_auth_table[i].member, member) == 0)
			return &method_auth_table[i];
	return NULL;
}

static void on_polkit_result(sd_bus_message *m, enum anser_polkit_result result, const char *detail,
			     void *userdata)
{
	struct pending_call *call = userdata;
	struct anser_bus *b = call->bus;
	const struct method_auth *method = call->method;
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	int r;

	g_ptr_array_remove_fast(b->pending, call);
	g_free(call);

	switch (result) {
	case ANSER_POLKIT_ALLOWED:
		r = method->run(b, m, &error);
		if (r < 0)
			r = sd_bus_reply_method_errno(m, r, &error);
		break;
	case ANSER_POLKIT_CHALLENGE:
		r = sd_bus_reply_method_errorf(m, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
					       "Authentication is required for %s",
					       method->action_id);
		break;
	case ANSER_POLKIT_DENIED:
	default:
		log_debug("Denied %s to %s (%s)", method->member, sd_bus_message_get_sender(m),
			  detail ? detail : "not authorized");
		r = sd_bus_reply_method_errorf(m, ANSER_BUS_ERROR_NOT_AUTHORIZED,
					       "Not authorized to perform %s (polkit action %s)",
					       method->member, method->action_id);
		break;
	}
	if (r < 0)
		log_warning_errno(r, "Failed to reply to %s, ignoring: %m", method->member);
}

static int method_authorize_then_run(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct anser_bus *b = userdata;
	const struct method_auth *method = method_auth_lookup(sd_bus_message_get_member(m));
	struct pending_call *call;
	int r;

	if (!method)
		return sd_bus_error_setf(error, ANSER_BUS_ERROR_NOT_AUTHORIZED,
					 "Method %s has no polkit action, denied",
					 sd_bus_message_get_member(m));
	if (!method->action_id)
		return method->run(b, m, error);

	call = g_new0(struct pending_call, 1);
	call->bus = b;
	call->method = method;
	r = anser_polkit_check_async(b->polkit, m, method->action_id, on_polkit_result, call,
				     &call->query);
	if (r < 0) {
		g_free(call);
		return sd_bus_error_setf(error, ANSER_BUS_ERROR_NOT_AUTHORIZED,
					 "Not authorized to perform %s (no bus name to check)",
					 method->member);
	}
	g_ptr_array_add(b->pending, call);
	return 1; /* the reply is sent by on_polkit_result() */
}

/* sd-bus answers Properties.Set as soon as a property's setter returns,
 * so a setter cannot wait for polkit. Sets of Enabled are taken here,
 * before sd-bus dispatches them, and answered from the polkit callback. */
static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	const char *iface = NULL, *prop = NULL;

	if (!sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Properties", "Set") ||
	    !sd_bus_message_has_signature(m, "ssv") ||
	    strcmp(sd_bus_message_get_path(m) ?: "", ANSER_BUS_PATH) != 0)
		return 0;
	if (sd_bus_message_read(m, "ss", &iface, &prop) < 0 || sd_bus_message_rewind(m, true) < 0)
		return 0;
	if (strcmp(iface, ANSER_BUS_INTERFACE) != 0 || strcmp(prop, "Enabled") != 0)
		return 0;
	return method_authorize_then_run(m, userdata, error) < 0 ? 0 : 1;
}

static int property_get_enabled(sd_bus *bus, const char *path, const char *interface,
				const char *property, sd_bus_message *reply, void *userdata,
				sd_bus_error *error)
{
	struct anser_bus *b = userdata;
	return sd_bus_message_append(reply, "b",
				     b->ops->get_enabled ? b->ops->get_enabled(b->ud) : true);
}

/* Never reached: on_message() takes every Set of Enabled first. */
static int property_set_enabled(sd_bus *bus, const char *path, const char *interface,
				const char *property, sd_bus_message *value, void *userdata,
				sd_bus_error *error)
{
	return sd_bus_error_set(error, ANSER_BUS_ERROR_NOT_AUTHORIZED, "Not authorized");
}

static int property_get_generation(sd_bus *bus, const char *path, const char *interface,
				   const char *property, sd_bus_message *reply, void *userdata,
				   sd_bus_error *error)
{
	struct anser_bus *b = userdata;
	return sd_bus_message_append(reply, "t",
				     b->ops->get_generation ? b->ops->get_generation(b->ud) : 0);
}

static int property_get_config_files(sd_bus *bus, const char *path, const char *interface,
				     const char *property, sd_bus_message *reply, void *userdata,
				     sd_bus_error *error)
{
	struct anser_bus *b = userdata;
	size_t n = 0;
	char *const *v = b->ops->get_config_files ? b->ops->get_config_files(b->ud, &n) : NULL;
	int r = sd_bus_message_open_container(reply, 'a', "s");

	for (size_t i = 0; r >= 0 && i < n; i++) {
		g_autofree char *f = g_utf8_make_valid(v[i], -1);
		r = sd_bus_message_append(reply, "s", f);
	}
	if (r < 0)
		return r;
	return sd_bus_message_close_container(reply);
}

void anser_app_infos_free(struct anser_app_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].app_id);
		free(v[i].pname);
		free(v[i].outbound);
		free(v[i].rule);
	}
	free(v);
}

static int property_get_active_apps(sd_bus *bus, const char *path, const char *interface,
				    const char *property, sd_bus_message *reply, void *userdata,
				    sd_bus_error *error)
{
	struct anser_bus *b = userdata;
	struct anser_app_info *v = NULL;
	size_t n = 0;
	/* A getter cannot wait for polkit: callers other than root see
	 * their own processes only (other users' need view-connections,
	 * through ListConnections). */
	_cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
	sd_bus_message *m = sd_bus_get_current_message(bus);
	uid_t uid = 0;
	long only = -1;
	if (!m ||
	    sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds) < 0 ||
	    sd_bus_creds_get_euid(creds, &uid) < 0)
		only = (long)UINT32_MAX; /* unknown caller: nothing */
	else if (uid != 0)
		only = (long)uid;
	int r = b->ops->get_active_apps ? b->ops->get_active_apps(b->ud, only, &v, &n) : 0;

	if (r < 0)
		return sd_bus_error_set_errnof(error, r, "Cannot list the applications: %m");
	r = sd_bus_message_open_container(reply, 'a', "a{sv}");
	for (size_t i = 0; r >= 0 && i < n; i++) {
		r = sd_bus_message_open_container(reply, 'a', "{sv}");
		if (r >= 0)
			r = append_str(reply, "ApplicationId", v[i].app_id, 256);
		if (r >= 0)
			r = append_str(reply, "ProcessName", v[i].pname, 64);
		if (r >= 0)
			r = append_str(reply, "Outbound", v[i].outbound, 64);
		if (r >= 0)
			r = append_str(reply, "Rule", v[i].rule, 32);
		if (r >= 0)
			r = sd_bus_message_append(reply, "{sv}{sv}{sv}", "Connections", "u",
						  v[i].connections, "BytesUp", "t", v[i].bytes_up,
						  "BytesDown", "t", v[i].bytes_down);
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
	}
	anser_app_infos_free(v, n);
	if (r < 0)
		return r;
	return sd_bus_message_close_container(reply);
}

static int property_get_groups(sd_bus *bus, const char *path, const char *interface,
			       const char *property, sd_bus_message *reply, void *userdata,
			       sd_bus_error *error)
{
	struct anser_bus *b = userdata;
	const struct anser_config *c = b->ops->get_config ? b->ops->get_config(b->ud) : NULL;
	const struct anser_health *health = b->ops->get_health ? b->ops->get_health(b->ud) : NULL;
	int r = sd_bus_message_open_container(reply, 'a', "a{sv}");

	for (size_t gi = 0; c && r >= 0 && gi < c->n_groups; gi++) {
		const struct anser_group *g = &c->groups[gi];
		/* fixed: its node; latency policies: the node chosen for tcp4
		 * now; random: none */
		int cur = anser_health_current(health, gi, ANSER_NT_TCP4);
		const char *sel = g->policy == ANSER_POLICY_FIXED && g->fixed_index < g->n_nodes
					  ? c->nodes[g->nodes[g->fixed_index]].name
				  : cur >= 0 && (size_t)cur < c->n_nodes ? c->nodes[cur].name
									 : "";
		r = sd_bus_message_open_container(reply, 'a', "{sv}");
		if (r >= 0)
			r = append_str(reply, "Name", g->name, 256);
		if (r >= 0)
			r = append_str(reply, "Policy", policy_name(g), 32);
		if (r >= 0)
			r = append_str(reply, "SelectedNode", sel, 256);
		g_autofree const char **nodes = g_new0(const char *, g->n_nodes + 1);
		for (size_t k = 0; k < g->n_nodes; k++)
			nodes[k] = c->nodes[g->nodes[k]].name;
		if (r >= 0)
			r = append_strv(reply, "Nodes", nodes, g->n_nodes);
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
	}
	if (r < 0)
		return r;
	return sd_bus_message_close_container(reply);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface,
				const char *property, sd_bus_message *reply, void *userdata,
				sd_bus_error *error)
{
	return sd_bus_message_append(reply, "s", ANSER_VERSION);
}

static int property_get_state(sd_bus *bus, const char *path, const char *interface,
			      const char *property, sd_bus_message *reply, void *userdata,
			      sd_bus_error *error)
{
	struct anser_bus *b = userdata;
	const char *state = b->ops && b->ops->get_state ? b->ops->get_state(b->ud) : NULL;

	return sd_bus_message_append(reply, "s", state ? state : "unknown");
}

static int property_get_app_routes(sd_bus *bus, const char *path, const char *interface,
				   const char *property, sd_bus_message *reply, void *userdata,
				   sd_bus_error *error)
{
	struct anser_bus *b = userdata;
	size_t n = 0;
	const struct anser_app_route *v =
		b->ops && b->ops->get_app_routes ? b->ops->get_app_routes(b->ud, &n) : NULL;
	int r = sd_bus_message_open_container(reply, 'a', "{ss}");

	for (size_t i = 0; r >= 0 && i < n; i++) {
		g_autofree char *sel = g_utf8_make_valid(v[i].selector, -1);
		r = sd_bus_message_append(reply, "{ss}", sel, v[i].outbound);
	}
	if (r < 0)
		return r;
	return sd_bus_message_close_container(reply);
}

static const struct anser_netstate *netstate(struct anser_bus *b)
{
	return b->ops->get_netstate ? b->ops->get_netstate(b->ud) : NULL;
}

static int property_get_interfaces(sd_bus *bus, const char *path, const char *interface,
				   const char *property, sd_bus_message *reply, void *userdata,
				   sd_bus_error *error)
{
	const struct anser_netstate *st = netstate(userdata);
	int r = sd_bus_message_open_container(reply, 'a', "(ss)");

	for (size_t i = 0; r >= 0 && st && i < st->n_ifs; i++) {
		g_autofree char *tmp = NULL;
		r = sd_bus_message_append(reply, "(ss)",
					  valid_str(st->ifs[i].name, sizeof(st->ifs[i].name), &tmp),
					  anser_if_role_name(st->ifs[i].role));
	}
	if (r < 0)
		return r;
	return sd_bus_message_close_container(reply);
}

static int property_get_primary(sd_bus *bus, const char *path, const char *interface,
				const char *property, sd_bus_message *reply, void *userdata,
				sd_bus_error *error)
{
	const struct anser_netstate *st = netstate(userdata);
	g_autofree char *id = g_utf8_make_valid(st && st->primary.id ? st->primary.id : "", -1);

	return sd_bus_message_append(reply, "s", id);
}

static int property_get_network(sd_bus *bus, const char *path, const char *interface,
				const char *property, sd_bus_message *reply, void *userdata,
				sd_bus_error *error)
{
	const struct anser_netstate *st = netstate(userdata);
	const struct anser_network *p = st ? &st->primary : NULL;
	g_autofree char *id = NULL, *uuid = NULL, *type = NULL, *ssid = NULL, *iface = NULL;

	if (!p)
		return sd_bus_message_append(reply, "a{sv}", 1, "NetworkManager", "b", 0);
	id = g_utf8_make_valid(p->id ? p->id : "", -1);
	uuid = g_utf8_make_valid(p->uuid ? p->uuid : "", -1);
	type = g_utf8_make_valid(p->type ? p->type : "", -1);
	ssid = g_utf8_make_valid(p->ssid ? p->ssid : "", -1);
	iface = g_utf8_make_valid(p->iface ? p->iface : "", -1);
	return sd_bus_message_append(reply, "a{sv}", 7, "Id", "s", id, "Uuid", "s", uuid, "Type",
				     "s", type, "Ssid", "s", ssid, "Interface", "s", iface,
				     "Metered", "b", (int)p->metered, "NetworkManager", "b",
				     (int)st->nm_running);
}

static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("AppRoutes", "a{ss}", property_get_app_routes, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_WRITABLE_PROPERTY("Enabled", "b", property_get_enabled, property_set_enabled, 0,
				 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE | SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_PROPERTY("Groups", "aa{sv}", property_get_groups, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("ActiveApps", "aa{sv}", property_get_active_apps, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
	SD_BUS_PROPERTY("Generation", "t", property_get_generation, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("ConfigFiles", "as", property_get_config_files, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Interfaces", "a(ss)", property_get_interfaces, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("PrimaryConnection", "s", property_get_primary, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Network", "a{sv}", property_get_network, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
				method_authorize_then_run, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ListConnections", SD_BUS_NO_ARGS,
				SD_BUS_RESULT("aa{sv}", connections), method_authorize_then_run,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("Explain",
				SD_BUS_ARGS("s", process, "s", destination, "s", protocol),
				SD_BUS_RESULT("a{sv}", explanation), method_authorize_then_run,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("SetAppRoute", SD_BUS_ARGS("s", selector, "s", outbound),
				SD_BUS_NO_RESULT, method_authorize_then_run,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ClearAppRoute", SD_BUS_ARGS("s", selector), SD_BUS_NO_RESULT,
				method_authorize_then_run, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ListNodes", SD_BUS_NO_ARGS, SD_BUS_RESULT("aa{sv}", nodes),
				method_authorize_then_run, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("SelectNode", SD_BUS_ARGS("s", group, "s", node), SD_BUS_NO_RESULT,
				method_authorize_then_run, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("TestNodes", SD_BUS_ARGS("s", group), SD_BUS_RESULT("u", checks),
				method_authorize_then_run, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("Validate", SD_BUS_ARGS("s", text),
				SD_BUS_RESULT("b", ok, "a(suus)", diagnostics),
				method_authorize_then_run, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("Resync", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
				method_authorize_then_run, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

static int bus_connect(const char *address, sd_bus **ret)
{
	_cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
	int r;

	if (!address)
		return sd_bus_open_system(ret);

	r = sd_bus_new(&bus);
	if (r < 0)
		return r;
	r = sd_bus_set_address(bus, address);
	if (r < 0)
		return r;
	r = sd_bus_set_bus_client(bus, 1);
	if (r < 0)
		return r;
	r = sd_bus_start(bus);
	if (r < 0)
		return r;
	*ret = bus;
	bus = NULL;
	return 0;
}

static void anser_bus_freep(struct anser_bus **b)
{
	anser_bus_free(*b);
}

int anser_bus_new(const char *address, const struct anser_bus_ops *ops, void *ud,
		  struct anser_bus **out)
{
	_cleanup_(anser_bus_freep) struct anser_bus *b = NULL;
	int r;

	if (!ops || !ops->get_state || !ops->reload || !ops->list_connections || !out)
		return -EINVAL;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->ops = ops;
	b->ud = ud;
	b->pending = g_ptr_array_new();
	b->polkit = anser_polkit_new();

	r = anser_bus_errors_register();
	if (r < 0)
		return log_error_errno(r, "Failed to register D-Bus error names: %m");
	r = sd_event_new(&b->event);
	if (r < 0)
		return log_error_errno(r, "Failed to allocate event loop: %m");
	r = bus_connect(address, &b->bus);
	if (r < 0)
		return log_error_errno(r, "Failed to connect to %s: %m",
				       address ? address : "the system bus");
	(void)sd_bus_set_description(b->bus, "anserd");

	r = sd_bus_add_filter(b->bus, &b->filter, on_message, b);
	if (r < 0)
		return log_error_errno(r, "Failed to add a message filter: %m");
	r = sd_bus_add_object_vtable(b->bus, NULL, ANSER_BUS_PATH, ANSER_BUS_INTERFACE,
				     manager_vtable, b);
	if (r < 0)
		return log_error_errno(r, "Failed to register %s: %m", ANSER_BUS_PATH);

	/* Objects first, then the name: calls may arrive as soon as we own it. */
	r = sd_bus_request_name(b->bus, ANSER_BUS_NAME, 0);
	if (r == -EEXIST)
		return log_error_errno(r,
				       "Failed to acquire %s: the name is already owned "
				       "(is another anserd running?)",
				       ANSER_BUS_NAME);
	if (r < 0)
		return log_error_errno(r, "Failed to acquire %s: %m", ANSER_BUS_NAME);

	r = sd_bus_attach_event(b->bus, b->event, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0)
		return log_error_errno(r, "Failed to attach bus to event loop: %m");
	b->source = anser_sd_event_attach_glib(b->event, g_main_context_get_thread_default());

	*out = b;
	b = NULL;
	return 0;
}

void anser_bus_state_changed(struct anser_bus *b)
{
	int r;

	if (!b || !b->bus)
		return;
	r = sd_bus_emit_properties_changed(b->bus, ANSER_BUS_PATH, ANSER_BUS_INTERFACE, "State",
					   NULL);
	if (r < 0)
		log_warning_errno(r, "Failed to emit PropertiesChanged for State, ignoring: %m");
}

void anser_bus_property_changed(struct anser_bus *b, const char *property)
{
	int r;

	if (!b || !b->bus)
		return;
	r = sd_bus_emit_properties_changed(b->bus, ANSER_BUS_PATH, ANSER_BUS_INTERFACE, property,
					   NULL);
	if (r < 0)
		log_warning_errno(r, "Failed to emit PropertiesChanged for %s, ignoring: %m",
				  property);
}

void anser_bus_properties_changed(struct anser_bus *b, char **properties)
{
	int r;

	if (!b || !b->bus)
		return;
	r = sd_bus_emit_properties_changed_strv(b->bus, ANSER_BUS_PATH, ANSER_BUS_INTERFACE,
						properties);
	if (r < 0)
		log_warning_errno(r, "Failed to emit PropertiesChanged, ignoring: %m");
}

void anser_bus_free(struct anser_bus *b)
{
	if (!b)
		return;

	/* Checks still in flight: forget their messages (callers get no reply,
	 * the bus goes away) and let polkit finish on its own. */
	if (b->pending) {
		for (guint i = 0; i < b->pending->len; i++) {
			struct pending_call *call = g_ptr_array_index(b->pending, i);

			anser_polkit_query_cancel(call->query);
			g_free(call);
		}
		g_ptr_array_unref(b->pending);
	}
	anser_polkit_free(b->polkit);
	sd_bus_slot_unref(b->filter);
	if (b->source) {
		g_source_destroy(b->source);
		g_source_unref(b->source);
	}
	sd_bus_flush_close_unref(b->bus);
	sd_event_unref(b->event);
	free(b);
}

/* Introspection, generated from manager_vtable on a private peer-to-peer
 * connection so that the XML is exactly what sd-bus serves. */

struct introspect_result {
	char *xml;
	int r;
};

static int on_introspect_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct introspect_result *res = userdata;
	const sd_bus_error *e = sd_bus_message_get_error(m);
	const char *xml;
	int r;

	if (e)
		r = -sd_bus_error_get_errno(e);
	else
		r = sd_bus_message_read(m, "s", &xml);
	if (r >= 0) {
		res->xml = strdup(xml);
		r = res->xml ? 0 : -ENOMEM;
	}
	res->r = r;
	return sd_event_exit(sd_bus_get_event(sd_bus_message_get_bus(m)), 0);
}

static int bus_new_peer(int fd, bool server, sd_event *e, sd_bus **ret)
{
	_cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
	sd_id128_t id;
	int r;

	r = sd_bus_new(&bus);
	if (r < 0) {
		close(fd);
		return r;
	}
	r = sd_bus_set_fd(bus, fd, fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (server) {
		r = sd_id128_randomize(&id);
		if (r < 0)
			return r;
		r = sd_bus_set_server(bus, 1, id);
		if (r < 0)
			return r;
	}
	r = sd_bus_attach_event(bus, e, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0)
		return r;
	r = sd_bus_start(bus);
	if (r < 0)
		return r;
	*ret = bus;
	bus = NULL;
	return 0;
}

int anser_bus_introspect(FILE *f)
{
	_cleanup_(sd_event_unrefp) sd_event *e = NULL;
	_cleanup_(sd_bus_close_unrefp) sd_bus *server = NULL;
	_cleanup_(sd_bus_close_unrefp) sd_bus *client = NULL;
	_cleanup_(freep) char *xml = NULL;
	struct anser_bus dummy = { 0 };
	struct introspect_result res = { .r = -ETIMEDOUT };
	const char *begin, *end;
	int fds[2], r;

	r = sd_event_new(&e);
	if (r < 0)
		return r;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0)
		return -errno;
	r = bus_new_peer(fds[0], true, e, &server);
	if (r < 0) {
		close(fds[1]);
		return r;
	}
	r = bus_new_peer(fds[1], false, e, &client);
	if (r < 0)
		return r;
	r = sd_bus_add_object_vtable(server, NULL, ANSER_BUS_PATH, ANSER_BUS_INTERFACE,
				     manager_vtable, &dummy);
	if (r < 0)
		return r;
	r = sd_bus_call_method_async(client, NULL, NULL, ANSER_BUS_PATH,
				     "org.freedesktop.DBus.Introspectable", "Introspect",
				     on_introspect_reply, &res, NULL);
	if (r < 0)
		return r;
	r = sd_event_loop(e);
	if (r < 0)
		return r;
	xml = res.xml;
	if (res.r < 0)
		return res.r;

	begin = strstr(xml, " <interface name=\"" ANSER_BUS_INTERFACE "\">");
	end = begin ? strstr(begin, "</interface>\n") : NULL;
	if (!end)
		return -EBADMSG;
	end += strlen("</interface>\n");

	fputs("<!-- SPDX-License-Identifier: GPL-2.0-or-later -->\n"
	      "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n"
	      "\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n"
	      "<!-- Generated from the sd-bus vtable (daemon/bus/bus.c); test-bus checks it. -->\n"
	      "<node>\n",
	      f);
	fwrite(begin, 1, end - begin, f);
	fputs("</node>\n", f);
	return ferror(f) ? -EIO : 0;
}
