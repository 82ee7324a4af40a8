// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Subscription bodies: SIP008 JSON ({"version": 1, "servers": [...]}),
 * base64 of a link list, or a plain link list (one per line). Every link
 * goes through the same parser as a link written in the config.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "config-private.h"

#define SUB_MAX_BODY  (8u * 1024 * 1024)
#define SUB_MAX_NODES CFG_MAX_NODES

struct sub_out {
	struct anser_node *nodes;
	size_t n, cap;
	size_t bad;
	struct anser_diags *diags;
};

static void sub_diag(struct sub_out *o, unsigned line, char *msg)
{
	struct anser_diags *d = o->diags;

	if (d->n >= CFG_MAX_DIAGS) {
		free(msg);
		return;
	}
	d->v = cfg_realloc_array(d->v, d->n + 1, sizeof(*d->v));
	d->v[d->n++] = (struct anser_diag){
		.file = cfg_strdup("subscription"), .line = line, .col = 1, .message = msg
	};
}

/* Parses one link; a bad one is reported at `line` and skipped. */
static void add_link(struct sub_out *o, const char *link, unsigned line)
{
	struct anser_diags d = { 0 };
	struct anser_node n;

	if (o->n >= SUB_MAX_NODES) {
		o->bad++;
		return;
	}
	if (anser_node_from_link(link, &n, &d) < 0) {
		o->bad++;
		/* the first problem of each bad link, re-homed to its line */
		for (size_t i = 0; i < d.n; i++) {
			if (d.v[i].warning)
				continue;
			sub_diag(o, line, d.v[i].message);
			d.v[i].message = NULL;
			break;
		}
		anser_diags_clear(&d);
		return;
	}
	anser_diags_clear(&d);
	cfg_reserve(&o->nodes, &o->cap, o->n, sizeof(*o->nodes));
	o->nodes[o->n++] = n;
}

static const char *member_str(JsonObject *obj, const char *key)
{
	JsonNode *m = json_object_get_member(obj, key);
	if (!m || !JSON_NODE_HOLDS_VALUE(m) || json_node_get_value_type(m) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(m);
}

static int64_t member_int(JsonObject *obj, const char *key)
{
	JsonNode *m = json_object_get_member(obj, key);
	if (!m || !JSON_NODE_HOLDS_VALUE(m))
		return -1;
	if (json_node_get_value_type(m) == G_TYPE_INT64)
		return json_node_get_int(m);
	if (json_node_get_value_type(m) == G_TYPE_STRING) {
		uint64_t v;
		if (cfg_parse_uint(json_node_get_string(m), 65535, &v) == 0)
			return (int64_t)v;
	}
	return -1;
}

/* SIP008: each server becomes an ss:// link. */
static int parse_sip008(struct sub_out *o, JsonObject *root)
{
	JsonNode *sv = json_object_get_member(root, "servers");
	if (!sv || !JSON_NODE_HOLDS_ARRAY(sv))
		return -EINVAL;
	JsonArray *a = json_node_get_array(sv);
	for (guint i = 0; i < json_array_get_length(a); i++) {
		JsonNode *e = json_array_get_element(a, i);
		const char *server = NULL, *method = NULL, *password = NULL;
		JsonObject *obj = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
		int64_t port = obj ? member_int(obj, "server_port") : -1;
		if (obj) {
			server = member_str(obj, "server");
			method = member_str(obj, "method");
			password = member_str(obj, "password");
		}
		if (!server || !method || !password || port < 0) {
			o->bad++;
			sub_diag(o, i + 1,
				 cfg_asprintf(
					 "SIP008 server %u lacks server, server_port, method or "
					 "password",
					 i + 1));
			continue;
		}
		GString *l = g_string_new("ss://");
		g_string_append_uri_escaped(l, method, NULL, false);
		g_string_append_c(l, ':');
		g_string_append_uri_escaped(l, password, NULL, false);
		g_string_append_c(l, '@');
		if (strchr(server, ':'))
			g_string_append_printf(l, "[%s]", server);
		else
			g_string_append_uri_escaped(l, server, NULL, false);
		g_string_append_printf(l, ":%lld", (long long)port);
		const char *plugin = member_str(obj, "plugin");
		if (plugin && *plugin) {
			const char *po = member_str(obj, "plugin_opts");
			g_autofree char *pv = g_strdup_printf("%s%s%s", plugin,
							      po && *po ? ";" : "", po ? po : "");
			g_string_append(l, "/?plugin=");
			g_string_append_uri_escaped(l, pv, NULL, false);
		}
		const char *remarks = member_str(obj, "remarks");
		if (remarks && *remarks) {
			g_string_append_c(l, '#');
			g_string_append_uri_escaped(l, remarks, NULL, false);
		}
		add_link(o, l->str, i + 1);
		g_string_free(l, true);
	}
	return 0;
}

/* One link per line; blank lines and '#' comments skipped. */
static void parse_lines(struct sub_out *o, const char *text, size_t len)
{
	size_t i = 0;
	unsigned line = 0;

	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - text) : len;
		size_t b = i;
		line++;
		while (b < e && g_ascii_isspace(text[b]))
			b++;
		size_t t = e;
		while (t > b && g_ascii_isspace(text[t - 1]))
			t--;
		if (t > b && text[b] != '#') {
			char *link = cfg_strndup(text + b, t - b);
			add_link(o, link, line);
			free(link);
		}
		i = e + 1;
	}
}

static bool has_scheme_line(const char *text, size_t len)
{
	const char *sep = g_strstr_len(text, (gssize)(len < 64 ? len : 64), "://");
	return sep != NULL;
}

int anser_subscription_parse(const char *body, size_t len, struct anser_node **nodes,
			     size_t *n_nodes, size_t *n_bad, struct anser_diags *diags)
{
	struct sub_out o = { .diags = diags };
	int r = 0;

	*nodes = NULL;
	*n_nodes = 0;
	*n_bad = 0;
	if (len > SUB_MAX_BODY)
		return -EFBIG;
	if (memchr(body, '\0', len))
		return -EINVAL;
	size_t b = 0;
	while (b < len && g_ascii_isspace(body[b]))
		b++;
	if (b < len && body[b] == '{') {
		g_autoptr(JsonParser) jp = json_parser_new_immutable();
		if (!json_parser_load_from_data(jp, body + b, (gssize)(len - b), NULL) ||
		    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(jp)))
			return -EINVAL;
		r = parse_sip008(&o, json_node_get_object(json_parser_get_root(jp)));
	} else if (has_scheme_line(body + b, len - b)) {
		parse_lines(&o, body + b, len - b);
	} else {
		size_t dl;
		uint8_t *d = cfg_base64_decode(body + b, len - b, &dl);
		if (!d || memchr(d, '\0', dl)) {
			free(d);
			return -EINVAL;
		}
		parse_lines(&o, (const char *)d, dl);
		free(d);
	}
	*n_bad = o.bad;
	if (r < 0 || o.n == 0) {
		for (size_t i = 0; i < o.n; i++)
			anser_node_clear(&o.nodes[i]);
		free(o.nodes);
		return r < 0 ? r : -ENOENT;
	}
	*nodes = o.nodes;
	*n_nodes = o.n;
	return 0;
}
