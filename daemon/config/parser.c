// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Syntax of the dae config language -> struct anser_config, names still
 * unresolved (resolve.c does that once every section has been read, so
 * sections may come in any order).
 *
 * The grammar has a fixed shape (section { [group {] statement... [}] }),
 * so the parser is a set of loops, not a recursion: no input can make it
 * deep. After an error it skips to the next line (keeping parentheses and
 * braces balanced) and goes on, so one run reports many problems; each
 * statement loop either consumes a token or stops, so it always ends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../../bpf/anser_abi.h"

#include "../geodata/geodata.h"
#include "config-private.h"

#define ERR(p, ...)  cfg_diag(&(p)->sink, false, __VA_ARGS__)
#define WARN(p, ...) cfg_diag(&(p)->sink, true, __VA_ARGS__)

static const char *const section_names[SEC_N] = { "global", "node", "group", "routing" };

static const struct cfg_token *peek(struct cfg_parser *p, unsigned k)
{
	return cfg_peek(&p->lx, k);
}

static enum cfg_tok_type peek_type(struct cfg_parser *p)
{
	return peek(p, 0)->type;
}

static void next(struct cfg_parser *p)
{
	cfg_next(&p->lx);
}

static bool stop(struct cfg_parser *p)
{
	return p->sink.full || peek_type(p) == TOK_EOF;
}

/* Describes the current token for "found ..." in messages. Caller frees. */
static char *found(struct cfg_parser *p)
{
	const struct cfg_token *t = peek(p, 0);

	if (t->type == TOK_IDENT || t->type == TOK_STRING) {
		char *q = cfg_quote(t->text, t->len);
		char *s = cfg_asprintf("'%s'", q);
		free(q);
		return s;
	}
	return cfg_strdup(cfg_tok_name(t->type));
}

/* "expected X, found Y (hint)" at the current token; silent on a token
 * the lexer already reported. */
static int expected(struct cfg_parser *p, const char *what, const char *hint)
{
	const struct cfg_token *t = peek(p, 0);

	if (t->type != TOK_ERROR) {
		char *f = found(p);
		ERR(p, t->pos, "expected %s, found %s%s%s%s", what, f, hint ? " (" : "",
		    hint ? hint : "", hint ? ")" : "");
		free(f);
	}
	return -EINVAL;
}

/* Skips a balanced { ... } starting at the current '{'. */
static void skip_block(struct cfg_parser *p)
{
	unsigned depth = 0;

	do {
		enum cfg_tok_type t = peek_type(p);
		if (t == TOK_EOF)
			return;
		if (t == TOK_LBRACE)
			depth++;
		else if (t == TOK_RBRACE)
			depth--;
		next(p);
	} while (depth > 0);
}

/* After an error in a statement that began at token number `start`: skip
 * to the next line at the same nesting, or to the closing '}'. */
static void sync_stmt(struct cfg_parser *p, size_t start)
{
	unsigned depth = p->paren_depth;

	p->paren_depth = 0;
	if (p->lx.consumed == start && peek_type(p) != TOK_RBRACE)
		next(p);
	for (;;) {
		const struct cfg_token *t = peek(p, 0);
		if (t->type == TOK_EOF || t->type == TOK_RBRACE)
			return;
		if (t->bol && depth == 0)
			return;
		if (t->type == TOK_LBRACE) {
			skip_block(p);
			continue;
		}
		if (t->type == TOK_LPAREN)
			depth++;
		else if (t->type == TOK_RPAREN && depth > 0)
			depth--;
		next(p);
	}
}

/* A word like "fallback:direct" holds a key and its value. A link
 * ("socks5://...") is not split. */
static const char *compact_colon(const struct cfg_token *t)
{
	if (t->type != TOK_IDENT)
		return NULL;
	const char *c = strchr(t->text, ':');
	if (!c || c == t->text || strncmp(c, "://", 3) == 0)
		return NULL;
	return c;
}

struct key {
	char *name;
	struct cfg_pos pos;
	char *inline_val; /* from "key:value" */
	struct cfg_pos val_pos;
};

static void key_clear(struct key *k)
{
	free(k->name);
	free(k->inline_val);
	*k = (struct key){ 0 };
}

/* Is the current token the start of "key: ..."? */
static bool at_key(struct cfg_parser *p)
{
	const struct cfg_token *t = peek(p, 0);

	return t->type == TOK_IDENT && (compact_colon(t) || peek(p, 1)->type == TOK_COLON);
}

static void read_key(struct cfg_parser *p, struct key *k)
{
	const struct cfg_token *t = peek(p, 0);
	const char *c = compact_colon(t);

	k->pos = t->pos;
	if (c) {
		size_t klen = (size_t)(c - t->text);
		k->name = cfg_strndup(t->text, klen);
		k->inline_val = cfg_strdup(c + 1);
		k->val_pos = (struct cfg_pos){ t->pos.line, t->pos.col + (unsigned)klen + 1,
					       t->pos.file };
		next(p);
	} else {
		k->name = cfg_take(&p->lx);
		next(p); /* ':' */
	}
}

/* The value of "key: value": one word or string, on the key's line.
 */
static int read_value(struct cfg_parser *p, struct key *k, char **val, struct cfg_pos *pos)
{
	const struct cfg_token *t = peek(p, 0);

	if (k->inline_val) {
		*val = k->inline_val;
		k->inline_val = NULL;
		*pos = k->val_pos;
		return 0;
	}
	if ((t->type != TOK_IDENT && t->type != TOK_STRING) || t->bol) {
		if (t->type == TOK_ERROR)
			return -EINVAL;
		char *q = cfg_quote(k->name, strlen(k->name));
		if (t->bol || t->type == TOK_EOF || t->type == TOK_RBRACE)
			ERR(p, k->pos,
			    "'%s:' has no value (write it after the ':' on the same line)", q);
		else
			expected(p, "a value", "quote values that contain special characters");
		free(q);
		return -EINVAL;
	}
	*pos = t->pos;
	if (t->type == TOK_STRING)
		pos->col++; /* point into the string, past the quote */
	*val = cfg_take(&p->lx);
	return 0;
}

static bool name_ok(struct cfg_parser *p, const char *what, const char *name, struct cfg_pos pos)
{
	size_t len = strlen(name);

	if (len == 0) {
		ERR(p, pos, "empty %s name (give it a name)", what);
		return false;
	}
	if (len > CFG_MAX_NAME) {
		char *q = cfg_quote(name, len);
		ERR(p, pos, "%s name '%s' is too long (%zu bytes; at most %u)", what, q, len,
		    CFG_MAX_NAME);
		free(q);
		return false;
	}
	return true;
}

/* "routing {" at the start of a line inside another section: that section
 * lacks its '}'. Stopping there keeps one missing brace one error. */
static bool at_section_start(struct cfg_parser *p)
{
	const struct cfg_token *t = peek(p, 0);

	if (!t->bol || t->type != TOK_IDENT || peek(p, 1)->type != TOK_LBRACE)
		return false;
	for (size_t i = 0; i < SEC_N; i++)
		if (strcmp(t->text, section_names[i]) == 0)
			return true;
	return false;
}

/* ---------------------------------------------------------------- global */

static const char *const log_levels[] = { "error", "warn", "warning", "info", "debug", "trace" };

/* dae's global options (the table in docs/configuration.md). */
enum gtype {
	GT_STRING,
	GT_LIST, /* comma-separated strings */
	GT_UINT,
	GT_PORT, /* 0..65535 */
	GT_BOOL,
	GT_DURATION,
	GT_LOG_LEVEL,
};

enum gstatus {
	GS_USED,       /* anserd acts on it */
	GS_NOT_NEEDED, /* anser works without it: say why */
	GS_NOT_YET,    /* a later version will act on it */
};

struct global_opt {
	const char *name;
	enum gtype type;
	const char *dflt; /* dae's default, as dae writes it */
	enum gstatus status;
	const char *why; /* GS_NOT_NEEDED: why anser does not need it */
};

#include "global-options.h"

static const char *const gtype_hint[] = {
	[GT_STRING] = "a string",
	[GT_LIST] = "a list like 'a, b'",
	[GT_UINT] = "a whole number",
	[GT_PORT] = "a port, 0..65535",
	[GT_BOOL] = "true or false",
	[GT_DURATION] = "a duration like 30s, 500ms or 1m30s",
	[GT_LOG_LEVEL] = "error, warn, info, debug or trace",
};

/* dae's per-group overrides of the global health check options. */
static const struct global_opt group_opts[] = {
	{ "filter", GT_STRING, "", GS_USED, NULL },
	{ "policy", GT_STRING, "", GS_USED, NULL },
	{ "tcp_check_url", GT_LIST, "", GS_NOT_YET, NULL },
	{ "tcp_check_http_method", GT_STRING, "", GS_NOT_YET, NULL },
	{ "udp_check_dns", GT_LIST, "", GS_NOT_YET, NULL },
	{ "check_interval", GT_DURATION, "", GS_NOT_YET, NULL },
	{ "check_tolerance", GT_DURATION, "", GS_NOT_YET, NULL },
};

static const struct global_opt *find_opt(const struct global_opt *opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

/* Whether val has the option's type; *why for a bad duration. */
static bool global_value_ok(const struct global_opt *o, const char *val, bool list,
			    const char **why)
{
	uint64_t u;
	int64_t ns;
	bool b;

	*why = NULL;
	if (list && o->type != GT_LIST && o->type != GT_STRING)
		return false;
	switch (o->type) {
	case GT_STRING:
	case GT_LIST:
		return true;
	case GT_UINT:
		return cfg_parse_uint(val, UINT32_MAX, &u) == 0;
	case GT_PORT:
		return cfg_parse_uint(val, 65535, &u) == 0;
	case GT_BOOL:
		return cfg_parse_bool(val, &b) == 0;
	case GT_DURATION:
		return cfg_parse_duration(val, &ns, why) == 0 && ns >= 0;
	case GT_LOG_LEVEL:
		for (size_t i = 0; i < sizeof(log_levels) / sizeof(*log_levels); i++)
			if (strcmp(val, log_levels[i]) == 0)
				return true;
		return false;
	}
	return false;
}

/* Checks an option of a section ("global", "group") against the section's
 * table: unknown keys and values of the wrong type are errors, options
 * anser does not act on are warnings. Returns the option when anser acts
 * on it and the value is good, else NULL. */
static const struct global_opt *check_option(struct cfg_parser *p, const char *section,
					     const struct global_opt *opts, size_t n,
					     const char *key, struct cfg_pos kpos, const char *val,
					     struct cfg_pos vpos, bool list)
{
	const struct global_opt *o = find_opt(opts, n, key);
	const char *why;
	char *q;

	if (!o) {
		const char *names[sizeof(global_opts) / sizeof(*global_opts)];
		for (size_t i = 0; i < n && i < sizeof(names) / sizeof(*names); i++)
			names[i] = opts[i].name;
		const char *sug = cfg_suggest(
			key, names,
			n < sizeof(names) / sizeof(*names) ? n : sizeof(names) / sizeof(*names));
		q = cfg_quote(key, strlen(key));
		if (sug)
			ERR(p, kpos, "unknown %s option '%s' (did you mean '%s'?)", section, q,
			    sug);
		else
			ERR(p, kpos,
			    "unknown %s option '%s' (dae has no such option; see "
			    "docs/configuration.md for the list)",
			    section, q);
		free(q);
		return NULL;
	}
	if (!global_value_ok(o, val, list, &why)) {
		q = cfg_quote(val, strlen(val));
		if (why)
			ERR(p, vpos, "invalid %s '%s': %s (expected %s)", o->name, q, why,
			    gtype_hint[o->type]);
		else
			ERR(p, vpos, "invalid %s '%s' (expected %s)", o->name, q,
			    gtype_hint[o->type]);
		free(q);
		return NULL;
	}
	switch (o->status) {
	case GS_USED:
		return o;
	case GS_NOT_NEEDED:
		WARN(p, kpos, "%s option '%s' is not needed by anser (%s), ignored", section,
		     o->name, o->why);
		return NULL;
	case GS_NOT_YET:
		WARN(p, kpos, "%s option '%s' is not supported yet, ignored", section, o->name);
		return NULL;
	}
	return NULL;
}

/* "auto", "eth0", "wl*": interface names (IFNAMSIZ) or fnmatch globs. */
static void decode_interfaces(struct cfg_parser *p, const char *val, struct cfg_pos vpos,
			      char ***out)
{
	char **v = g_strsplit(val, ",", -1);
	GPtrArray *names = g_ptr_array_new();

	for (size_t i = 0; v[i]; i++) {
		const char *name = g_strstrip(v[i]);
		if (!*name || strlen(name) >= IF_NAMESIZE || strpbrk(name, "/ \t")) {
			char *q = cfg_quote(name, strlen(name));
			ERR(p, vpos,
			    "invalid interface '%s' (expected 'auto', an interface name of at "
			    "most %d characters, or a glob like 'wl*')",
			    q, IF_NAMESIZE - 1);
			free(q);
			continue;
		}
		g_ptr_array_add(names, g_strdup(name));
	}
	g_strfreev(v);
	g_ptr_array_add(names, NULL);
	g_strfreev(*out);
	*out = (char **)g_ptr_array_free(names, FALSE);
}

/* val as one of choices[n]: its index, or -1 with an error that names a
 * close one or all of them (`expected`). */
static int decode_choice(struct cfg_parser *p, struct cfg_pos vpos, const char *option,
			 const char *val, const char *const *choices, size_t n,
			 const char *expected)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(val, choices[i]) == 0)
			return (int)i;
	char *q = cfg_quote(val, strlen(val));
	const char *sug = cfg_suggest(val, choices, n);
	if (sug)
		ERR(p, vpos, "invalid %s '%s' (did you mean '%s'?)", option, q, sug);
	else
		ERR(p, vpos, "invalid %s '%s' (expected %s)", option, q, expected);
	free(q);
	return -1;
}

static void decode_global(struct cfg_parser *p, const char *key, struct cfg_pos kpos,
			  const char *val, struct cfg_pos vpos, bool list)
{
	const struct global_opt *o =
		check_option(p, "global", global_opts, sizeof(global_opts) / sizeof(*global_opts),
			     key, kpos, val, vpos, list);

	if (o && strcmp(o->name, "log_level") == 0) {
		free(p->cfg->log_level);
		p->cfg->log_level = cfg_strdup(val);
	}
	if (o && strcmp(o->name, "wan_interface") == 0)
		decode_interfaces(p, val, vpos, &p->cfg->wan_interfaces);
	if (o && strcmp(o->name, "lan_interface") == 0)
		decode_interfaces(p, val, vpos, &p->cfg->lan_interfaces);
	if (o && strcmp(o->name, "auto_config_kernel_parameter") == 0)
		(void)cfg_parse_bool(val, &p->cfg->auto_config_kernel_parameter); /* checked */
	if (o && strcmp(o->name, "dial_mode") == 0) {
		static const char *const modes[] = { "ip", "domain", "domain+", "domain++" };
		int i = decode_choice(p, vpos, o->name, val, modes, 4,
				      "ip, domain, domain+ or domain++");
		if (i >= 0)
			p->cfg->dial_mode = (enum anser_dial_mode)i;
	}
	if (o && strcmp(o->name, "fail_mode") == 0) {
		static const char *const modes[] = { "open", "closed" };
		int i = decode_choice(p, vpos, o->name, val, modes, 2, "open or closed");
		if (i >= 0)
			p->cfg->fail_closed = i == 1;
	}
	if (o && strcmp(o->name, "sniffing_timeout") == 0) {
		int64_t ns;
		const char *why = NULL;
		if (cfg_parse_duration(val, &ns, &why) < 0 || ns > 10000000000LL) {
			char *q = cfg_quote(val, strlen(val));
			ERR(p, vpos, "invalid sniffing_timeout '%s' (%s)", q,
			    why ? why : "at most 10s; 0 turns sniffing off");
			free(q);
		} else {
			p->cfg->sniffing_timeout_ns = ns;
		}
	}
	const char *why = NULL;
	if (o && cfg_decode_check(&p->cfg->check, o->name, val, &why) == -EINVAL) {
		char *q = cfg_quote(val, strlen(val));
		ERR(p, vpos, "invalid %s '%s' (%s)", o->name, q, why);
		free(q);
	}
}

/* A value, or "a, b, c" kept as "a,b,c" (*list set). */
static int read_list_value(struct cfg_parser *p, struct key *k, char **val, struct cfg_pos *vpos,
			   bool *list)
{
	*list = false;
	if (read_value(p, k, val, vpos) < 0)
		return -EINVAL;
	while (peek_type(p) == TOK_COMMA && !peek(p, 0)->bol) {
		next(p);
		const struct cfg_token *t = peek(p, 0);
		if (t->type != TOK_IDENT && t->type != TOK_STRING)
			return expected(p, "a value after ','", NULL);
		char *more = cfg_take(&p->lx);
		char *joined = cfg_asprintf("%s,%s", *val, more);
		free(more);
		free(*val);
		*val = joined;
		*list = true;
	}
	return 0;
}

static int parse_global_stmt(struct cfg_parser *p)
{
	struct anser_config *c = p->cfg;
	struct key k = { 0 };
	char *val = NULL;
	struct cfg_pos vpos;
	int r = -EINVAL;

	if (!at_key(p))
		return expected(p, "'key: value'", "for example 'log_level: info'");
	read_key(p, &k);
	for (size_t i = 0; i < c->n_globals; i++) {
		if (strcmp(c->globals[i].key, k.name) == 0) {
			char *q = cfg_quote(k.name, strlen(k.name));
			char *w = cfg_where(p, k.pos.file,
					    (struct cfg_pos){ c->globals[i].line, c->globals[i].col,
							      c->globals[i].file });
			ERR(p, k.pos, "global option '%s' given twice (first at %s; keep one)", q,
			    w);
			free(w);
			free(q);
			goto out;
		}
	}
	bool list;
	if (read_list_value(p, &k, &val, &vpos, &list) < 0)
		goto out;
	decode_global(p, k.name, k.pos, val, vpos, list);
	cfg_reserve(&c->globals, &p->cap_globals, c->n_globals, sizeof(*c->globals));
	c->globals[c->n_globals++] = (struct anser_kv){ .key = k.name,
							.value = val,
							.file = k.pos.file,
							.line = k.pos.line,
							.col = k.pos.col };
	k.name = NULL;
	val = NULL;
	r = 0;
out:
	free(val);
	key_clear(&k);
	return r;
}

/* ------------------------------------------------------------------ node */

static int parse_node_stmt(struct cfg_parser *p)
{
	const struct cfg_token *t = peek(p, 0);
	struct anser_node n = { .file = t->pos.file, .line = t->pos.line, .col = t->pos.col };
	struct cfg_pos lpos = t->pos;
	struct key k = { 0 };
	int r = -EINVAL;

	if (t->type == TOK_STRING && peek(p, 1)->type == TOK_COLON) {
		/* 'my node': 'socks5://...' */
		k.pos = t->pos;
		k.name = cfg_take(&p->lx);
		next(p);
	} else if (t->type == TOK_STRING || (t->type == TOK_IDENT && !at_key(p))) {
		/* a link alone */
		if (t->type == TOK_IDENT && !strstr(t->text, "://"))
			return expected(p, "'name: link' or a quoted link",
					"for example my_node: 'socks5://10.0.0.2:1080'");
		if (t->type == TOK_STRING)
			lpos.col++;
		n.link = cfg_take(&p->lx);
	} else if (t->type == TOK_IDENT) {
		read_key(p, &k);
	} else {
		return expected(p, "'name: link' or a quoted link",
				"for example my_node: 'socks5://10.0.0.2:1080'");
	}
	if (k.name) {
		if (!name_ok(p, "node", k.name, k.pos))
			goto out;
		if (read_value(p, &k, &n.link, &lpos) < 0)
			goto out;
		n.name = k.name;
		k.name = NULL;
	}
	if (p->cfg->n_nodes >= CFG_MAX_NODES) {
		ERR(p, (struct cfg_pos){ n.line, n.col, n.file }, "too many nodes (at most %u)",
		    CFG_MAX_NODES);
		goto out;
	}
	if (cfg_parse_link(&p->sink, lpos, n.link, &n) < 0) {
		/* keep a named node so groups naming it do not cascade */
		if (!n.name)
			goto out;
		free(n.host);
		n.host = NULL;
	} else if (!n.name) {
		n.name = strchr(n.host, ':') ? cfg_asprintf("[%s]:%u", n.host, n.port)
					     : cfg_asprintf("%s:%u", n.host, n.port);
	}
	cfg_reserve(&p->cfg->nodes, &p->cap_nodes, p->cfg->n_nodes, sizeof(*p->cfg->nodes));
	p->cfg->nodes[p->cfg->n_nodes++] = n;
	n = (struct anser_node){ 0 };
	r = 0;
out:
	anser_node_clear(&n);
	key_clear(&k);
	return r;
}

/* ------------------------------------------------------------- functions */

struct arg {
	char *key; /* "geoip" in dip(geoip: cn); NULL mostly */
	char *val;
	struct cfg_pos pos;
};

struct call {
	bool negate;
	char *name;
	struct cfg_pos pos;
	struct arg *args;
	size_t n_args, cap_args;
};

static void call_clear(struct call *c)
{
	free(c->name);
	for (size_t i = 0; i < c->n_args; i++) {
		free(c->args[i].key);
		free(c->args[i].val);
	}
	free(c->args);
	*c = (struct call){ 0 };
}

/* ['!'] name '(' arg {',' arg} ')' where arg is word, string or key: value.
 * `inline_name` is a function name that came glued to a key
 * ("filter:name(a)"). */
static int parse_call(struct cfg_parser *p, struct call *c, char *inline_name,
		      struct cfg_pos inline_pos)
{
	if (inline_name) {
		c->name = inline_name;
		c->pos = inline_pos;
	} else {
		if (peek_type(p) == TOK_NOT) {
			c->negate = true;
			next(p);
		}
		if (peek_type(p) != TOK_IDENT)
			return expected(p, c->negate ? "a function after '!'" : "a function",
					"for example pname(curl)");
		c->pos = peek(p, 0)->pos;
		c->name = cfg_take(&p->lx);
	}
	if (peek_type(p) != TOK_LPAREN) {
		char *q = cfg_quote(c->name, strlen(c->name));
		char *what = cfg_asprintf("'(' after '%s'", q);
		expected(p, what, "functions take arguments in parentheses, like dport(443)");
		free(what);
		free(q);
		return -EINVAL;
	}
	next(p);
	p->paren_depth++;
	for (;;) {
		const struct cfg_token *t = peek(p, 0);
		if (t->type == TOK_RPAREN && c->n_args == 0)
			break;
		if (t->type != TOK_IDENT && t->type != TOK_STRING) {
			const char *hint = NULL;
			if (t->type == TOK_RPAREN)
				hint = "remove the trailing ','";
			return expected(p, "an argument", hint);
		}
		cfg_reserve(&c->args, &c->cap_args, c->n_args, sizeof(*c->args));
		struct arg *a = &c->args[c->n_args++];
		a->pos = t->pos;
		if (t->type == TOK_STRING)
			a->pos.col++;
		bool keyed = t->type == TOK_IDENT && peek(p, 1)->type == TOK_COLON;
		a->val = cfg_take(&p->lx);
		if (keyed) {
			next(p); /* ':' */
			t = peek(p, 0);
			if (t->type != TOK_IDENT && t->type != TOK_STRING)
				return expected(p, "a value after ':'", NULL);
			a->key = a->val;
			a->val = cfg_take(&p->lx);
		}
		if (peek_type(p) == TOK_COMMA) {
			next(p);
			continue;
		}
		if (peek_type(p) != TOK_RPAREN)
			return expected(p, "',' or ')'", NULL);
		break;
	}
	next(p); /* ')' */
	p->paren_depth--;
	return 0;
}

/* -------------------------------------------------------------- group */

static const struct {
	const char *name;
	enum anser_policy policy;
} latency_policies[] = {
	{ "min", ANSER_POLICY_MIN },
	{ "min_avg10", ANSER_POLICY_MIN_AVG10 },
	{ "min_moving_avg", ANSER_POLICY_MIN_MOVING_AVG },
	{ "min_last_latency", ANSER_POLICY_MIN_LAST_LATENCY },
};

/* GLib's "Error while compiling regular expression RE at char N: WHY" as
 * "at char N: WHY", printable ASCII only (the pattern is quoted apart). */
static char *regex_why(const GError *err)
{
	const char *m = strstr(err->message, "at char ");
	char *s = cfg_strdup(m ? m : err->message);

	for (char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	return s;
}

void cfg_filter_clear(struct cfg_filter *f)
{
	for (size_t i = 0; i < f->n_calls; i++) {
		for (size_t j = 0; j < f->calls[i].n; j++) {
			free(f->calls[i].args[j].val);
			if (f->calls[i].args[j].re)
				g_regex_unref(f->calls[i].args[j].re);
		}
		free(f->calls[i].args);
	}
	free(f->calls);
	*f = (struct cfg_filter){ 0 };
}

/* name(...) or subtag(...) of a filter: plain names, keyword: and regex:. */
static int filter_call(struct cfg_parser *p, struct call *c, struct cfg_fcall *out)
{
	bool subtag = strcmp(c->name, "subtag") == 0;
	int r = 0;

	*out = (struct cfg_fcall){ .negate = c->negate, .subtag = subtag };
	if (!subtag && strcmp(c->name, "name") != 0) {
		char *q = cfg_quote(c->name, strlen(c->name));
		ERR(p, c->pos, "unknown filter '%s()' (name(...) or subtag(...))", q);
		free(q);
		return -EINVAL;
	}
	if (c->n_args == 0) {
		ERR(p, c->pos, "%s() needs at least one %s (or remove the filter)", c->name,
		    subtag ? "subscription tag" : "node name");
		return -EINVAL;
	}
	out->args = cfg_malloc0(c->n_args * sizeof(*out->args));
	for (size_t i = 0; i < c->n_args; i++) {
		struct arg *a = &c->args[i];
		struct cfg_farg *f = &out->args[out->n];
		uint8_t kind = CFG_FARG_NAME;
		if (a->key && strcmp(a->key, "keyword") == 0) {
			kind = CFG_FARG_KEYWORD;
		} else if (a->key && strcmp(a->key, "regex") == 0) {
			kind = CFG_FARG_REGEX;
		} else if (a->key) {
			char *qk = cfg_quote(a->key, strlen(a->key));
			ERR(p, a->pos, "unknown key '%s' in %s() (keyword: or regex:)", qk,
			    c->name);
			free(qk);
			r = -EINVAL;
			continue;
		}
		f->kind = kind;
		f->pos = a->pos;
		if (kind == CFG_FARG_REGEX) {
			GError *err = NULL;
			/* RAW: names are bytes; a pattern that is not UTF-8 must not
			 * reach PCRE2 in UTF mode */
			f->re = g_regex_new(a->val, G_REGEX_RAW, 0, &err);
			if (!f->re) {
				char *q = cfg_quote(a->val, strlen(a->val));
				char *why = regex_why(err);
				ERR(p, a->pos, "invalid regular expression '%s': %s", q, why);
				free(why);
				g_error_free(err);
				free(q);
				r = -EINVAL;
				continue;
			}
		}
		f->val = a->val;
		a->val = NULL;
		out->n++;
	}
	return r;
}

/* filter: CALL [&& CALL ...] [ '[' add_latency: DURATION ']' ] */
static int parse_filter(struct cfg_parser *p, struct cfg_group_ast *g, struct key *k)
{
	struct cfg_filter f = { .pos = k->pos };
	char *inline_name = k->inline_val;
	int r = -EINVAL;

	k->inline_val = NULL;
	for (;;) {
		struct call c = { 0 };
		int cr = parse_call(p, &c, inline_name, k->val_pos);
		inline_name = NULL;
		if (cr < 0) {
			call_clear(&c);
			goto out;
		}
		if (!f.n_calls)
			f.pos = c.pos;
		f.calls = cfg_realloc_array(f.calls, f.n_calls + 1, sizeof(*f.calls));
		cr = filter_call(p, &c, &f.calls[f.n_calls]);
		f.n_calls++;
		call_clear(&c);
		if (cr < 0)
			goto out;
		if (peek_type(p) != TOK_AND || peek(p, 0)->bol)
			break;
		next(p);
	}
	if (peek_type(p) == TOK_LBRACKET && !peek(p, 0)->bol) {
		next(p);
		struct key ak = { 0 };
		char *val = NULL;
		struct cfg_pos vpos;
		if (!at_key(p)) {
			expected(p, "'add_latency: DURATION'", "for example [add_latency: -500ms]");
			goto out;
		}
		read_key(p, &ak);
		if (strcmp(ak.name, "add_latency") != 0) {
			char *q = cfg_quote(ak.name, strlen(ak.name));
			ERR(p, ak.pos,
			    "unknown filter annotation '%s' (the one there is: add_latency)", q);
			free(q);
			key_clear(&ak);
			goto out;
		}
		if (read_value(p, &ak, &val, &vpos) < 0) {
			key_clear(&ak);
			goto out;
		}
		const char *why = NULL;
		if (cfg_parse_duration(val, &f.add_latency_ns, &why) < 0) {
			char *q = cfg_quote(val, strlen(val));
			ERR(p, vpos, "invalid duration '%s' in add_latency: %s (e.g. -500ms, 1s)",
			    q, why ? why : "bad value");
			free(q);
			free(val);
			key_clear(&ak);
			goto out;
		}
		free(val);
		key_clear(&ak);
		if (peek_type(p) != TOK_RBRACKET) {
			expected(p, "']'", "an annotation is [add_latency: DURATION]");
			goto out;
		}
		next(p);
	}
	if (g->n_filters >= CFG_MAX_FILTERS) {
		if (g->too_many_filters++ == 0)
			ERR(p, f.pos,
			    "too many 'filter:' lines in one group (at most %u; list names in one "
			    "name())",
			    CFG_MAX_FILTERS);
		goto out;
	}
	cfg_reserve(&g->filters, &g->cap_filters, g->n_filters, sizeof(*g->filters));
	g->filters[g->n_filters++] = f;
	f = (struct cfg_filter){ 0 };
	r = 0;
out:
	cfg_filter_clear(&f);
	return r;
}

static int parse_policy(struct cfg_parser *p, struct anser_group *g, struct cfg_group_ast *ga,
			struct key *k)
{
	char *val = NULL;
	struct cfg_pos pos;
	int r = -EINVAL;

	if (ga->has_policy) {
		ERR(p, k->pos, "group '%s' has two 'policy:' lines (keep one)", g->name);
		return -EINVAL;
	}
	/* seen, even if its value is bad: no "has no policy" on top */
	ga->has_policy = true;
	if (read_value(p, k, &val, &pos) < 0)
		return -EINVAL;
	if (strcmp(val, "random") == 0) {
		g->policy = ANSER_POLICY_RANDOM;
	} else if (strcmp(val, "fixed") == 0) {
		const struct cfg_token *t;
		if (peek_type(p) != TOK_LPAREN) {
			expected(p, "'(' after 'fixed'",
				 "write fixed(0) for the group's first node");
			goto out;
		}
		next(p);
		p->paren_depth++;
		t = peek(p, 0);
		unsigned long v = 0;
		bool ok = t->type == TOK_IDENT && t->len > 0 && t->len <= 5;
		for (size_t i = 0; ok && i < t->len; i++) {
			ok = t->text[i] >= '0' && t->text[i] <= '9';
			v = v * 10 + (unsigned long)(t->text[i] - '0');
		}
		if (!ok) {
			expected(p, "a node index", "fixed(n) picks the group's n-th node, from 0");
			goto out;
		}
		ga->fixed_pos = t->pos;
		g->fixed_index = (unsigned)v;
		next(p);
		if (peek_type(p) != TOK_RPAREN) {
			expected(p, "')'", "fixed() takes one index");
			goto out;
		}
		next(p);
		p->paren_depth--;
		g->policy = ANSER_POLICY_FIXED;
	} else {
		char *q = cfg_quote(val, strlen(val));
		size_t i;
		for (i = 0; i < sizeof(latency_policies) / sizeof(*latency_policies); i++)
			if (strcmp(val, latency_policies[i].name) == 0)
				break;
		if (i < sizeof(latency_policies) / sizeof(*latency_policies)) {
			g->policy = latency_policies[i].policy;
			free(q);
		} else {
			ERR(p, pos,
			    "unknown policy '%s' (random, fixed(n), min, min_avg10, "
			    "min_moving_avg, min_last_latency)",
			    q);
			free(q);
			goto out;
		}
	}
	r = 0;
out:
	free(val);
	return r;
}

static int parse_group_stmt(struct cfg_parser *p, size_t gi)
{
	struct key k = { 0 };
	int r = -EINVAL;

	if (!at_key(p))
		return expected(p, "'filter:' or 'policy:'", "for example 'policy: random'");
	read_key(p, &k);
	struct anser_group *g = &p->cfg->groups[gi];
	struct cfg_group_ast *ga = &p->gast[gi];
	if (strcmp(k.name, "filter") == 0) {
		r = parse_filter(p, ga, &k);
	} else if (strcmp(k.name, "policy") == 0) {
		r = parse_policy(p, g, ga, &k);
	} else if (strcmp(k.name, "when_dead") == 0) {
		/* our extension: what new flows do when no node is alive */
		char *val = NULL;
		struct cfg_pos vpos;
		if (read_value(p, &k, &val, &vpos) == 0) {
			if (strcmp(val, "fail") == 0 || strcmp(val, "direct") == 0) {
				g->dead_direct = val[0] == 'd';
				r = 0;
			} else {
				char *q = cfg_quote(val, strlen(val));
				ERR(p, vpos, "invalid when_dead '%s' (fail or direct)", q);
				free(q);
			}
		}
		free(val);
	} else {
		/* the health check overrides: checked, then ignored for now */
		char *val = NULL;
		struct cfg_pos vpos;
		bool list;
		if (read_list_value(p, &k, &val, &vpos, &list) == 0) {
			size_t before = p->sink.n_errors;
			check_option(p, "group", group_opts,
				     sizeof(group_opts) / sizeof(*group_opts), k.name, k.pos, val,
				     vpos, list);
			if (p->sink.n_errors == before)
				r = 0;
		}
		free(val);
	}
	key_clear(&k);
	return r;
}

static void parse_group_section(struct cfg_parser *p)
{
	struct anser_config *c = p->cfg;

	while (!stop(p) && peek_type(p) != TOK_RBRACE && !at_section_start(p)) {
		size_t start = p->lx.consumed;
		const struct cfg_token *t = peek(p, 0);
		struct cfg_pos pos = t->pos;

		if (t->type != TOK_IDENT || peek(p, 1)->type != TOK_LBRACE) {
			expected(p, "a group: 'name {'", "for example 'proxy { policy: random }'");
			sync_stmt(p, start);
			continue;
		}
		char *name = cfg_take(&p->lx);
		next(p); /* '{' */
		bool ok = name_ok(p, "group", name, pos);
		char *q = cfg_quote(name, strlen(name));
		if (ok && (strcmp(name, "direct") == 0 || strcmp(name, "block") == 0 ||
			   strncmp(name, "must_", 5) == 0)) {
			ERR(p, pos,
			    "'%s' cannot name a group (direct, block and must_* are outbounds "
			    "already)",
			    q);
			ok = false;
		}
		for (size_t i = 0; ok && i < c->n_groups; i++) {
			if (strcmp(c->groups[i].name, name) == 0) {
				char *w = cfg_where(p, pos.file,
						    (struct cfg_pos){ c->groups[i].line,
								      c->groups[i].col,
								      c->groups[i].file });
				ERR(p, pos, "group '%s' given twice (first at %s; merge them)", q,
				    w);
				free(w);
				ok = false;
			}
		}
		if (ok && c->n_groups >= ANSER_OUT_MAX - ANSER_OUT_FIRST_GROUP) {
			ERR(p, pos, "too many groups (at most %u)",
			    ANSER_OUT_MAX - ANSER_OUT_FIRST_GROUP);
			ok = false;
		}
		free(q);
		if (!ok) {
			free(name);
			/* still read it, for its own errors, into a scratch slot */
			name = NULL;
		}
		size_t old_cap = p->cap_groups;
		cfg_reserve(&c->groups, &p->cap_groups, c->n_groups, sizeof(*c->groups));
		if (p->cap_groups != old_cap) {
			p->gast = cfg_realloc_array(p->gast, p->cap_groups, sizeof(*p->gast));
			memset(p->gast + old_cap, 0, (p->cap_groups - old_cap) * sizeof(*p->gast));
		}
		size_t gi = c->n_groups;
		c->groups[gi] = (struct anser_group){
			.name = name ? name : cfg_strdup(""),
			.file = pos.file,
			.line = pos.line,
			.col = pos.col,
		};

		while (!stop(p) && peek_type(p) != TOK_RBRACE) {
			size_t s = p->lx.consumed;
			if (parse_group_stmt(p, gi) < 0)
				sync_stmt(p, s);
		}
		if (peek_type(p) != TOK_RBRACE) {
			if (!p->sink.full)
				ERR(p, pos, "group is not closed (add '}')");
		} else {
			next(p);
		}
		if (name && !p->gast[gi].has_policy) {
			char *qn = cfg_quote(name, strlen(name));
			ERR(p, pos,
			    "group '%s' has no 'policy:' line (add 'policy: random' or 'policy: "
			    "fixed(0)')",
			    qn);
			free(qn);
		}
		if (name) {
			c->n_groups++;
		} else {
			/* drop the scratch slot */
			struct cfg_group_ast *ga = &p->gast[gi];
			for (size_t i = 0; i < ga->n_filters; i++)
				cfg_filter_clear(&ga->filters[i]);
			free(ga->filters);
			*ga = (struct cfg_group_ast){ 0 };
			free(c->groups[gi].name);
			c->groups[gi] = (struct anser_group){ 0 };
		}
	}
}

/* ------------------------------------------------------------- routing */

/* In the order of enum anser_cond_type. */
enum fn_kind {
	FN_PNAME,
	FN_DIP,
	FN_DPORT,
	FN_L4PROTO,
	FN_IPVERSION,
	FN_APP,
	FN_CGROUP,
	FN_DOMAIN,
	FN_SIP,
	FN_SPORT,
	FN_MAC,
	FN_DSCP,
	FN_NETWORK,
	FN_QNAME,
	FN_QTYPE,
	FN_IP,
	FN_UPSTREAM,
	FN_N
};
static const char *const fn_names[FN_N] = {
	"pname", "dip", "dport", "l4proto", "ipversion", "app",	  "cgroup", "domain",	"sip",
	"sport", "mac", "dscp",	 "network", "qname",	 "qtype", "ip",	    "upstream",
};
#define FN_SUPPORTED                                                                               \
	"pname, app, cgroup, domain, dip, dport, l4proto, ipversion, sip, sport, mac, dscp, "      \
	"network"

static const char *const net_keys[ANSER_NET_N] = {
	"id", "uuid", "type", "ssid", "iface", "metered"
};

const char *anser_net_key_name(enum anser_net_key k)
{
	return (unsigned)k < ANSER_NET_N ? net_keys[k] : "?";
}

/* network(key: value): the key one of net_keys, the value a glob (yes or
 * no for metered). */
static int network_arg(struct cfg_parser *p, struct arg *a, struct anser_cond *cond, size_t *cap,
		       const char *q)
{
	size_t k;

	if (!a->key) {
		ERR(p, a->pos,
		    "network('%s') needs a key: network(id: ...), network(ssid: ...), "
		    "network(type: wifi|ethernet|vpn|gsm|...), network(uuid: ...), "
		    "network(iface: ...) or network(metered: yes|no)",
		    q);
		return -EINVAL;
	}
	for (k = 0; k < ANSER_NET_N; k++)
		if (strcmp(a->key, net_keys[k]) == 0)
			break;
	if (k == ANSER_NET_N) {
		char *qk = cfg_quote(a->key, strlen(a->key));
		const char *sug = cfg_suggest(a->key, net_keys, ANSER_NET_N);
		if (sug)
			ERR(p, a->pos, "unknown key '%s' in network() (did you mean '%s'?)", qk,
			    sug);
		else
			ERR(p, a->pos,
			    "unknown key '%s' in network() (id, uuid, type, ssid, iface, "
			    "metered)",
			    qk);
		free(qk);
		return -EINVAL;
	}
	char *v = a->val;
	if (k == ANSER_NET_METERED) {
		bool m = strcmp(a->val, "yes") == 0;
		if (!m && strcmp(a->val, "no") != 0 && cfg_parse_bool(a->val, &m) < 0) {
			ERR(p, a->pos, "network(metered: '%s'): write yes or no", q);
			return -EINVAL;
		}
		v = cfg_strdup(m ? "yes" : "no");
	} else if (!*a->val) {
		ERR(p, a->pos, "network(%s: '') is empty (an empty %s is never matched)",
		    net_keys[k], net_keys[k]);
		return -EINVAL;
	} else {
		a->val = NULL;
	}
	cfg_reserve(&cond->nets, cap, cond->n_nets, sizeof(*cond->nets));
	cond->nets[cond->n_nets++] = (struct anser_net_match){ (enum anser_net_key)k, v };
	return 0;
}
static const char *const fn_dae_only[] = { "uid", "tag" };

/* "02:42:ac:11:00:02": six two-digit hex bytes separated by ':'. */
static bool parse_mac(const char *s, uint8_t out[6])
{
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 6; i++) {
		int h = g_ascii_xdigit_value(s[i * 3]), l = g_ascii_xdigit_value(s[i * 3 + 1]);
		if (h < 0 || l < 0 || (i < 5 && s[i * 3 + 2] != ':'))
			return false;
		out[i] = (uint8_t)(h << 4 | l);
	}
	return true;
}

struct set_ref {
	char *set; /* "geosite:cn", "ext:file.dat:tag", ... */
	struct cfg_pos pos;
};

static const struct {
	const char *key;
	int kind; /* enum anser_domain_kind, or -1: a data set */
} domain_keys[] = {
	{ "suffix", ANSER_DOMAIN_SUFFIX },
	{ "full", ANSER_DOMAIN_FULL },
	{ "keyword", ANSER_DOMAIN_KEYWORD },
	{ "regex", ANSER_DOMAIN_REGEX },
	{ "geosite", -1 },
	{ "ext", -1 },
};

/* One argument of domain(): NAME, suffix:|full:|keyword:|regex: NAME,
 * geosite:TAG[@ATTR] or ext:FILE:TAG (keyed or glued to the key). */
static int domain_arg(struct cfg_parser *p, struct arg *a, struct anser_cond *cond,
		      struct set_ref **sets, size_t *n_sets)
{
	const char *key = a->key, *val = a->val;
	char *q = cfg_quote(a->val, strlen(a->val));
	int kind = ANSER_DOMAIN_SUFFIX, r = -EINVAL;
	size_t k;

	if (!key) {
		const char *colon = strchr(val, ':');
		for (k = 0; colon && k < sizeof(domain_keys) / sizeof(*domain_keys); k++)
			if ((size_t)(colon - val) == strlen(domain_keys[k].key) &&
			    strncmp(val, domain_keys[k].key, (size_t)(colon - val)) == 0)
				break;
		if (colon && k < sizeof(domain_keys) / sizeof(*domain_keys)) {
			kind = domain_keys[k].kind;
			val = colon + 1;
		}
	} else {
		for (k = 0; k < sizeof(domain_keys) / sizeof(*domain_keys); k++)
			if (strcmp(key, domain_keys[k].key) == 0)
				break;
		if (k == sizeof(domain_keys) / sizeof(*domain_keys)) {
			char *qk = cfg_quote(key, strlen(key));
			ERR(p, a->pos,
			    "unknown domain() key '%s' (suffix, full, keyword, regex, geosite, "
			    "ext)",
			    qk);
			free(qk);
			goto out;
		}
		kind = domain_keys[k].kind;
	}
	if (kind < 0) {
		char *set = key ? cfg_asprintf("%s:%s", key, val) : cfg_strdup(a->val);
		*sets = cfg_realloc_array(*sets, *n_sets + 1, sizeof(**sets));
		(*sets)[(*n_sets)++] = (struct set_ref){ set, a->pos };
		r = 0;
		goto out;
	}
	size_t len = strlen(val);
	bool ok = len > 0 && len <= 253;
	for (size_t i = 0; ok && i < len && kind != ANSER_DOMAIN_REGEX; i++)
		ok = (unsigned char)val[i] > 0x20 && val[i] != 0x7f;
	if (!ok) {
		ERR(p, a->pos, "invalid domain '%s' in domain() (1..253 bytes, no blanks)", q);
		goto out;
	}
	if (kind == ANSER_DOMAIN_REGEX) {
		GError *err = NULL;
		GRegex *re = g_regex_new(val, G_REGEX_CASELESS | G_REGEX_RAW, 0, &err);
		if (!re) {
			char *why = regex_why(err);
			ERR(p, a->pos, "invalid regular expression '%s': %s", q, why);
			free(why);
			g_error_free(err);
			goto out;
		}
		g_regex_unref(re);
	}
	size_t cap = cond->n_domains; /* grow one at a time: few are written out */
	cfg_reserve(&cond->domains, &cap, cond->n_domains, sizeof(*cond->domains));
	cond->domains[cond->n_domains++] =
		(struct anser_domain_pat){ (uint8_t)kind, cfg_strdup(val) };
	r = 0;
out:
	free(q);
	return r;
}

/* app(ID): a desktop application id (the .desktop file's name without
 * ".desktop", e.g. org.mozilla.firefox). Returns the id to keep, or NULL. */
static char *app_id_check(struct cfg_parser *p, struct arg *a, const char *q)
{
	size_t len = strlen(a->val);
	bool ok = len > 0 && len <= CFG_MAX_APP_ID;

	for (size_t i = 0; ok && i < len; i++) {
		char ch = a->val[i];
		ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		     (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
	}
	if (!ok) {
		ERR(p, a->pos,
		    "invalid application id '%s' in app() (the desktop file's name without "
		    "'.desktop', like org.mozilla.firefox: letters, digits, '.', '_' and '-')",
		    q);
		return NULL;
	}
	if (len > 8 && strcmp(a->val + len - 8, ".desktop") == 0) {
		char *bare = cfg_strndup(a->val, len - 8);
		char *qb = cfg_quote(bare, strlen(bare));
		WARN(p, a->pos,
		     "app(%s) never matches: application ids have no '.desktop' (write app(%s))", q,
		     qb);
		free(qb);
		free(bare);
	}
	char *v = a->val;
	a->val = NULL;
	return v;
}

/* cgroup(PATH): a cgroup and everything below it, by its path from the
 * cgroup2 root as /proc/PID/cgroup shows it (/user.slice/...). Returns
 * the normalised path (no trailing '/'), or NULL. */
static char *cgroup_path_check(struct cfg_parser *p, struct arg *a, const char *q)
{
	const char *s = a->val;
	size_t len = strlen(s);

	if (s[0] != '/') {
		ERR(p, a->pos,
		    "cgroup path '%s' must start with '/' (the path from the cgroup2 root, as "
		    "/proc/self/cgroup shows it, like /user.slice)",
		    q);
		return NULL;
	}
	if (len > CFG_MAX_CGROUP_PATH) {
		ERR(p, a->pos, "cgroup path '%s' is too long (at most %u bytes)", q,
		    CFG_MAX_CGROUP_PATH);
		return NULL;
	}
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			ERR(p, a->pos, "cgroup path '%s' contains a control character", q);
			return NULL;
		}
		if (*c != '/')
			continue;
		const char *e = strchrnul(c + 1, '/');
		size_t n = (size_t)(e - c - 1);
		if ((n == 0 && *e) || (n == 1 && c[1] == '.') ||
		    (n == 2 && c[1] == '.' && c[2] == '.')) {
			ERR(p, a->pos,
			    "cgroup path '%s' has an empty, '.' or '..' part (write the path "
			    "as /proc/self/cgroup shows it)",
			    q);
			return NULL;
		}
	}
	while (len > 1 && s[len - 1] == '/')
		len--;
	return cfg_strndup(s, len);
}

static int cond_from_call(struct cfg_parser *p, struct call *c, struct anser_cond *cond)
{
	size_t kind;
	size_t cap = 0;
	int r = 0;
	struct set_ref *sets = NULL;
	size_t n_sets = 0;

	*cond = (struct anser_cond){ 0 };
	for (kind = 0; kind < FN_N; kind++)
		if (strcmp(c->name, fn_names[kind]) == 0)
			break;
	if (kind == FN_N) {
		char *q = cfg_quote(c->name, strlen(c->name));
		bool dae = false;
		for (size_t i = 0; i < sizeof(fn_dae_only) / sizeof(*fn_dae_only); i++)
			dae |= strcmp(c->name, fn_dae_only[i]) == 0;
		const char *sug = cfg_suggest(c->name, fn_names, FN_N);
		if (dae)
			ERR(p, c->pos, "%s() is not supported yet (supported: " FN_SUPPORTED ")",
			    q);
		else if (sug)
			ERR(p, c->pos, "unknown function '%s()' (did you mean '%s()'?)", q, sug);
		else
			ERR(p, c->pos, "unknown function '%s()' (supported: " FN_SUPPORTED ")", q);
		free(q);
		return -EINVAL;
	}
	bool dns_fn = kind == FN_QNAME || kind == FN_QTYPE || kind == FN_IP || kind == FN_UPSTREAM;
	if (p->fn_ctx == CFG_CTX_ROUTING && dns_fn) {
		ERR(p, c->pos,
		    "%s() is a DNS condition: it belongs in dns { routing { request { } response "
		    "{ } } }",
		    fn_names[kind]);
		return -EINVAL;
	}
	if (p->fn_ctx != CFG_CTX_ROUTING && !(kind == FN_QNAME || kind == FN_QTYPE ||
					      (p->fn_ctx == CFG_CTX_DNS_RESPONSE && dns_fn))) {
		ERR(p, c->pos, "%s() is not a DNS %s condition (%s)", fn_names[kind],
		    p->fn_ctx == CFG_CTX_DNS_REQUEST ? "request" : "response",
		    p->fn_ctx == CFG_CTX_DNS_REQUEST ? "request: qname, qtype"
						     : "response: qname, qtype, ip, upstream");
		return -EINVAL;
	}
	*cond = (struct anser_cond){
		.type = (enum anser_cond_type)(ANSER_COND_PNAME + kind),
		.negate = c->negate,
		.line = c->pos.line,
		.col = c->pos.col,
	};
	if (c->n_args == 0) {
		ERR(p, c->pos, "%s() needs at least one argument", fn_names[kind]);
		return -EINVAL;
	}
	for (size_t i = 0; i < c->n_args; i++) {
		struct arg *a = &c->args[i];
		char *q = cfg_quote(a->val, strlen(a->val));
		const char *colon = strchr(a->val, ':');
		if (a->key && kind != FN_DOMAIN && kind != FN_DIP && kind != FN_SIP &&
		    kind != FN_QNAME && kind != FN_IP && kind != FN_NETWORK) {
			char *qk = cfg_quote(a->key, strlen(a->key));
			ERR(p, a->pos, "%s(%s: ...) is not supported yet (list plain values)",
			    fn_names[kind], qk);
			free(qk);
			r = -EINVAL;
			goto next_arg;
		}
		switch (kind) {
		case FN_PNAME: {
			size_t len = strlen(a->val);
			if (len == 0 || len > ANSER_PNAME_LEN - 1) {
				ERR(p, a->pos, "process name '%s' is %s (1..%u bytes)", q,
				    len ? "too long" : "empty", ANSER_PNAME_LEN - 1);
				r = -EINVAL;
			} else if (strchr(a->val, '/')) {
				ERR(p, a->pos,
				    "process name '%s' contains '/' (pname matches the program's "
				    "file name only, e.g. pname(curl))",
				    q);
				r = -EINVAL;
			} else {
				cfg_reserve(&cond->names, &cap, cond->n_names,
					    sizeof(*cond->names));
				cond->names[cond->n_names++] = a->val;
				a->val = NULL;
			}
			break;
		}
		case FN_APP:
		case FN_CGROUP: {
			char *v =
				kind == FN_APP ? app_id_check(p, a, q) : cgroup_path_check(p, a, q);
			if (!v) {
				r = -EINVAL;
				break;
			}
			cfg_reserve(&cond->names, &cap, cond->n_names, sizeof(*cond->names));
			cond->names[cond->n_names++] = v;
			break;
		}
		case FN_UPSTREAM:
			if (name_ok(p, "upstream", a->val, a->pos)) {
				cfg_reserve(&cond->names, &cap, cond->n_names,
					    sizeof(*cond->names));
				cond->names[cond->n_names++] = a->val;
				a->val = NULL;
			} else {
				r = -EINVAL;
			}
			break;
		case FN_QTYPE: {
			int t = cfg_qtype(a->val);
			if (t < 0) {
				ERR(p, a->pos,
				    "unknown query type '%s' in qtype() (a, aaaa, cname, mx, txt, "
				    "https, ... or a number 0..65535)",
				    q);
				r = -EINVAL;
				break;
			}
			cfg_reserve(&cond->ports, &cap, cond->n_ports, sizeof(*cond->ports));
			cond->ports[cond->n_ports++] =
				(struct anser_port_range){ (uint16_t)t, (uint16_t)t };
			break;
		}
		case FN_QNAME:
		case FN_DOMAIN:
			if (domain_arg(p, a, cond, &sets, &n_sets) < 0)
				r = -EINVAL;
			break;
		case FN_MAC: {
			uint8_t m[6];
			if (!parse_mac(a->val, m)) {
				ERR(p, a->pos,
				    "invalid MAC address '%s' in mac() (six hex bytes, like "
				    "02:42:ac:11:00:02)",
				    q);
				r = -EINVAL;
				break;
			}
			cfg_reserve(&cond->macs, &cap, cond->n_macs, sizeof(*cond->macs));
			memcpy(cond->macs[cond->n_macs], m, 6);
			cond->n_macs++;
			break;
		}
		case FN_DSCP: {
			uint64_t v;
			if (cfg_parse_uint(a->val, 63, &v) < 0) {
				ERR(p, a->pos, "invalid DSCP value '%s' in dscp() (0..63)", q);
				r = -EINVAL;
				break;
			}
			cond->dscp |= 1ULL << v;
			break;
		}
		case FN_NETWORK:
			if (network_arg(p, a, cond, &cap, q) < 0)
				r = -EINVAL;
			break;
		case FN_IP:
		case FN_SIP:
		case FN_DIP: {
			struct anser_cidr cidr;
			const char *why;
			if (a->key || (colon && colon != a->val &&
				       strspn(a->val, "abcdefghijklmnopqrstuvwxyz") ==
					       (size_t)(colon - a->val) &&
				       colon - a->val >= 3)) {
				/* geoip:cn and ext:file:tag: data sets, read below */
				char *set = a->key ? cfg_asprintf("%s:%s", a->key, a->val)
						   : cfg_strdup(a->val);
				sets = cfg_realloc_array(sets, n_sets + 1, sizeof(*sets));
				sets[n_sets++] = (struct set_ref){ set, a->pos };
			} else if (cfg_parse_cidr(a->val, &cidr, &why) == 0) {
				cfg_reserve(&cond->cidrs, &cap, cond->n_cidrs,
					    sizeof(*cond->cidrs));
				cond->cidrs[cond->n_cidrs++] = cidr;
			} else {
				ERR(p, a->pos,
				    "invalid address '%s' in %s(): %s (e.g. 10.0.0.0/8, "
				    "192.168.1.1, fd00::/8)",
				    q, fn_names[kind], why);
				r = -EINVAL;
			}
			break;
		}
		case FN_SPORT:
		case FN_DPORT: {
			const char *dash = strchr(a->val, '-');
			size_t llen = dash ? (size_t)(dash - a->val) : strlen(a->val);
			struct anser_port_range pr;
			int r1 = cfg_parse_port(a->val, llen, &pr.lo);
			int r2 = dash ? cfg_parse_port(dash + 1, strlen(dash + 1), &pr.hi) : r1;
			if (!dash)
				pr.hi = pr.lo;
			if (r1 < 0 || r2 < 0) {
				ERR(p, a->pos,
				    "invalid port '%s' in %s() (ports are 1..65535, ranges "
				    "lo-hi like 8000-9000)",
				    q, fn_names[kind]);
				r = -EINVAL;
			} else if (pr.lo > pr.hi) {
				ERR(p, a->pos, "port range '%s' is backwards (write %u-%u)", q,
				    pr.hi, pr.lo);
				r = -EINVAL;
			} else {
				cfg_reserve(&cond->ports, &cap, cond->n_ports,
					    sizeof(*cond->ports));
				cond->ports[cond->n_ports++] = pr;
			}
			break;
		}
		case FN_L4PROTO:
			if (strcmp(a->val, "tcp") == 0) {
				cond->mask |= ANSER_L4_TCP;
			} else if (strcmp(a->val, "udp") == 0) {
				cond->mask |= ANSER_L4_UDP;
			} else {
				ERR(p, a->pos, "unknown protocol '%s' in l4proto() (tcp or udp)",
				    q);
				r = -EINVAL;
			}
			break;
		case FN_IPVERSION:
			if (strcmp(a->val, "4") == 0) {
				cond->mask |= ANSER_IPV_4;
			} else if (strcmp(a->val, "6") == 0) {
				cond->mask |= ANSER_IPV_6;
			} else {
				ERR(p, a->pos, "unknown IP version '%s' in ipversion() (4 or 6)",
				    q);
				r = -EINVAL;
			}
			break;
		}
	next_arg:
		free(q);
	}
	/* what is written out first, then the data sets' entries */
	cond->n_written = (kind == FN_DOMAIN || kind == FN_QNAME) ? cond->n_domains : cond->n_cidrs;
	if ((kind == FN_SIP || kind == FN_SPORT || kind == FN_MAC || kind == FN_DSCP) && r == 0 &&
	    !p->warned_forwarded) {
		p->warned_forwarded = true;
		WARN(p, c->pos,
		     "%s() looks at forwarded traffic (gateway mode, lan_interface): for "
		     "this machine's own connections it does not hold",
		     fn_names[kind]);
	}
	if (kind == FN_DOMAIN || kind == FN_QNAME)
		cap = cond->n_domains; /* domain_arg() grew them one at a time */
	for (size_t i = 0; i < n_sets; i++) {
		if (r == 0 && !p->sink.full &&
		    cfg_expand_set(p, sets[i].pos, sets[i].set, cond, &cap) < 0)
			r = -EINVAL;
		free(sets[i].set);
	}
	free(sets);
	if (kind == FN_DOMAIN && r == 0 && !p->seen_domain) {
		p->seen_domain = true; /* cfg_resolve() looks for the dns section */
		p->domain_pos = c->pos;
	}
	return r;
}

static void cond_clear(struct anser_cond *c)
{
	for (size_t i = 0; i < c->n_names; i++)
		free(c->names[i]);
	free(c->names);
	for (size_t i = 0; i < c->n_domains; i++)
		free(c->domains[i].value);
	free(c->domains);
	for (size_t i = 0; i < c->n_sets; i++)
		free(c->sets[i]);
	free(c->sets);
	free(c->macs);
	free(c->cidrs);
	free(c->ports);
	for (size_t i = 0; i < c->n_nets; i++)
		free(c->nets[i].value);
	free(c->nets);
}

static void rule_clear(struct anser_rule *r)
{
	for (size_t i = 0; i < r->n_conds; i++)
		cond_clear(&r->conds[i]);
	free(r->conds);
	free(r->outbound_name);
	*r = (struct anser_rule){ 0 };
}

/* direct | block | group, optionally with dae's "(must)" style options. */
/* The options of an outbound, NAME(must, mark: 0x100). */
static int outbound_options(struct cfg_parser *p, const char *name, struct cfg_pos pos, bool *must,
			    uint32_t *mark)
{
	struct call c = { 0 };
	int r = parse_call(p, &c, cfg_strdup(name), pos);

	for (size_t i = 0; r == 0 && i < c.n_args; i++) {
		const struct arg *a = &c.args[i];
		const char *key = a->key, *val = a->val;
		char *q = cfg_quote(val, strlen(val));
		if (!key && strncmp(val, "mark:", 5) == 0) { /* "mark:0x1" glued */
			key = "mark";
			val += 5;
		}
		if (!key && strcmp(val, "must") == 0) {
			*must = true;
		} else if (key && strcmp(key, "mark") == 0) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(val, &end, 0);
			if (!*val || *end || errno || v > UINT32_MAX || *val == '-') {
				ERR(p, a->pos,
				    "invalid mark '%s' (a number up to 0xffffffff, like 0x100)", q);
				r = -EINVAL;
			} else if (strcmp(name, "block") == 0) {
				ERR(p, a->pos, "a mark on 'block' means nothing: nothing is sent");
				r = -EINVAL;
			} else {
				*mark = (uint32_t)v;
			}
		} else {
			ERR(p, a->pos,
			    "unknown outbound option '%s%s%s' (dae's are 'must' and 'mark: N')",
			    key ? key : "", key ? ": " : "", q);
			r = -EINVAL;
		}
		free(q);
	}
	call_clear(&c);
	return r;
}

/* An outbound: NAME, NAME(must, mark: N) or must_NAME (*must set for
 * must; "must_rules" is returned as it is). */
static int parse_outbound(struct cfg_parser *p, char **name, struct cfg_pos *pos, char *inline_val,
			  struct cfg_pos inline_pos, bool *must, uint32_t *mark)
{
	*must = false;
	*mark = 0;
	if (inline_val) {
		*name = inline_val;
		*pos = inline_pos;
	} else {
		const struct cfg_token *t = peek(p, 0);
		if ((t->type != TOK_IDENT && t->type != TOK_STRING) || t->bol)
			return expected(p, "an outbound", "direct, block or a group name");
		*pos = t->pos;
		*name = cfg_take(&p->lx);
	}
	char *q = cfg_quote(*name, strlen(*name));
	int r = 0;
	if (strncmp(*name, "must_", 5) == 0 && strcmp(*name, "must_rules") != 0) {
		memmove(*name, *name + 5, strlen(*name + 5) + 1);
		*must = true;
	}
	if (peek_type(p) == TOK_LPAREN && !peek(p, 0)->bol)
		r = outbound_options(p, *name, *pos, must, mark);
	free(q);
	return r;
}

static int parse_rule(struct cfg_parser *p)
{
	struct anser_config *c = p->cfg;
	struct anser_rule rule = { .file = peek(p, 0)->pos.file,
				   .line = peek(p, 0)->pos.line,
				   .col = peek(p, 0)->pos.col };
	struct cfg_pos out_pos;
	size_t cap = 0;
	int r = -EINVAL;
	bool bad = false;

	for (;;) {
		struct call call = { 0 };
		if (parse_call(p, &call, NULL, (struct cfg_pos){ 0 }) < 0) {
			call_clear(&call);
			goto out;
		}
		cfg_reserve(&rule.conds, &cap, rule.n_conds, sizeof(*rule.conds));
		if (cond_from_call(p, &call, &rule.conds[rule.n_conds]) < 0)
			bad = true;
		rule.n_conds++;
		call_clear(&call);
		if (peek_type(p) == TOK_AND) {
			next(p);
			continue;
		}
		if (peek_type(p) == TOK_ARROW) {
			next(p);
			break;
		}
		expected(p, "'&&' or '->'", "a rule is 'condition && condition -> outbound'");
		goto out;
	}
	if (parse_outbound(p, &rule.outbound_name, &out_pos, NULL, (struct cfg_pos){ 0 },
			   &rule.must, &rule.mark) < 0)
		goto out;
	if (bad)
		goto out;
	if (strcmp(rule.outbound_name, "must_rules") == 0) {
		/* dae: DNS that matches is not taken over, and matching goes on.
		 * anser takes over no DNS yet, so such a rule decides nothing. */
		r = 0;
		goto out;
	}
	if (c->n_rules >= CFG_MAX_RULES || p->n_conds + rule.n_conds > CFG_MAX_CONDS) {
		ERR(p, (struct cfg_pos){ rule.line, rule.col, rule.file },
		    "too many routing rules (at most %u rules and %u conditions as written; "
		    "list values in one condition instead)",
		    CFG_MAX_RULES, CFG_MAX_CONDS);
		p->sink.full = true; /* one report is enough */
		goto out;
	}
	size_t old_cap = p->cap_rules;
	cfg_reserve(&c->rules, &p->cap_rules, c->n_rules, sizeof(*c->rules));
	if (old_cap != p->cap_rules)
		p->out_pos = cfg_realloc_array(p->out_pos, p->cap_rules, sizeof(*p->out_pos));
	p->n_conds += rule.n_conds;
	p->out_pos[c->n_rules] = out_pos;
	c->rules[c->n_rules++] = rule;
	rule = (struct anser_rule){ 0 };
	r = 0;
out:
	rule_clear(&rule);
	return r;
}

static int parse_routing_stmt(struct cfg_parser *p)
{
	struct key k = { 0 };
	int r = -EINVAL;

	if (peek_type(p) == TOK_NOT || (peek_type(p) == TOK_IDENT && !at_key(p)))
		return parse_rule(p);
	if (!at_key(p))
		return expected(p, "a rule or 'fallback:'", "for example 'pname(curl) -> direct'");
	read_key(p, &k);
	char *q = cfg_quote(k.name, strlen(k.name));
	if (strcmp(k.name, "fallback") != 0) {
		ERR(p, k.pos, "unknown routing option '%s' (the only option is 'fallback:')", q);
	} else if (p->has_fallback) {
		char *w = cfg_where(p, k.pos.file, p->fallback_pos);
		ERR(p, k.pos, "'fallback:' given twice (first at %s; keep one)", w);
		free(w);
	} else {
		char *name = NULL;
		struct cfg_pos pos;
		char *iv = k.inline_val;
		k.inline_val = NULL;
		/* seen, even if its value is bad: no "has no fallback" on top */
		p->has_fallback = true;
		p->fallback_pos = k.pos;
		bool must;
		uint32_t mark;
		if (parse_outbound(p, &name, &pos, iv, k.val_pos, &must, &mark) == 0) {
			p->fallback_pos = pos;
			if (strcmp(name, "must_rules") == 0) {
				ERR(p, pos,
				    "'fallback: must_rules' decides nothing (must_rules means: "
				    "keep "
				    "matching); name an outbound");
			} else {
				free(p->cfg->fallback_name);
				p->cfg->fallback_name = name;
				p->cfg->fallback_must = must;
				p->cfg->fallback_mark = mark;
				name = NULL;
				r = 0;
			}
		}
		free(name);
	}
	free(q);
	key_clear(&k);
	return r;
}

/* ------------------------------------------------------------------ dns */

static const struct global_opt dns_opts[] = {
	{ "ipversion_prefer", GT_UINT, "0", GS_USED, NULL },
	{ "bind", GT_LIST, "", GS_USED, NULL },
	{ "optimistic_cache", GT_BOOL, "false", GS_USED, NULL },
	{ "optimistic_cache_ttl", GT_DURATION, "", GS_USED, NULL },
	{ "max_cache_size", GT_UINT, "", GS_USED, NULL },
	{ "virtual_address", GT_LIST, "", GS_USED, NULL },
	/* blocks, for suggestions */
	{ "upstream", GT_STRING, "", GS_USED, NULL },
	{ "routing", GT_STRING, "", GS_USED, NULL },
	{ "fixed_domain_ttl", GT_STRING, "", GS_USED, NULL },
};

/* virtual_address: at most one IPv4 and one IPv6 literal, comma
 * separated, into d (v4 mapped): NULL if so, else what is wrong (g_free
 * it). */
static char *read_virtual_address(const char *list, struct anser_dns *d)
{
	g_auto(GStrv) v = g_strsplit(list, ",", -1);
	int n4 = 0, n6 = 0;

	d->n_virtual = 0;
	for (size_t i = 0; v[i]; i++) {
		const char *a = g_strstrip(v[i]);
		uint8_t buf[16] = { 0 };
		if (inet_pton(AF_INET, a, buf + 12) == 1) {
			buf[10] = buf[11] = 0xff;
			n4++;
		} else if (inet_pton(AF_INET6, a, buf) == 1 && !IN6_IS_ADDR_V4MAPPED(buf)) {
			n6++;
		} else {
			return g_strdup_printf("'%.100s' is not an IPv4 or IPv6 address", a);
		}
		if (n4 > 1 || n6 > 1)
			return g_strdup("one IPv4 and one IPv6 address at most");
		memcpy(d->virtual_addr[d->n_virtual++], buf, 16);
	}
	return NULL;
}

static const char *const upstream_schemes[] = { "udp",	 "tcp", "tcp+udp", "tls",
						"https", "h3",	"http3",   "quic" };

/* KEY: VALUE lines of a block such as upstream { } and fixed_domain_ttl
 * { }, until its '}'. */
static void parse_kv_block(struct cfg_parser *p, struct cfg_pos pos, const char *what,
			   void (*each)(struct cfg_parser *p, char *key, struct cfg_pos kpos,
					char *val, struct cfg_pos vpos))
{
	while (!stop(p) && peek_type(p) != TOK_RBRACE) {
		size_t start = p->lx.consumed;
		struct key k = { 0 };
		char *val = NULL;
		struct cfg_pos vpos;
		if (!at_key(p) && peek_type(p) == TOK_STRING && peek(p, 1)->type == TOK_COLON) {
			/* 'quoted.key': value */
		} else if (!at_key(p)) {
			expected(p, "'name: value'", NULL);
			sync_stmt(p, start);
			continue;
		}
		if (peek_type(p) == TOK_STRING) {
			k.pos = peek(p, 0)->pos;
			k.name = cfg_take(&p->lx);
			next(p); /* ':' */
		} else {
			read_key(p, &k);
		}
		if (read_value(p, &k, &val, &vpos) < 0) {
			key_clear(&k);
			sync_stmt(p, start);
			continue;
		}
		each(p, k.name, k.pos, val, vpos);
		k.name = NULL;
		key_clear(&k);
	}
	if (peek_type(p) == TOK_RBRACE)
		next(p);
	else if (!p->sink.full)
		ERR(p, pos, "'%s' is not closed (add '}')", what);
}

static void each_upstream(struct cfg_parser *p, char *key, struct cfg_pos kpos, char *val,
			  struct cfg_pos vpos)
{
	struct anser_dns *d = &p->cfg->dns;
	char *q = cfg_quote(val, strlen(val));
	const char *sep = strstr(val, "://");
	bool ok = false;

	for (size_t i = 0; sep && i < sizeof(upstream_schemes) / sizeof(*upstream_schemes); i++)
		ok |= strlen(upstream_schemes[i]) == (size_t)(sep - val) &&
		      strncmp(val, upstream_schemes[i], (size_t)(sep - val)) == 0;
	if (!ok) {
		ERR(p, vpos,
		    "invalid upstream '%s' (udp://, tcp://, tcp+udp://, tls://, https://, h3:// "
		    "or quic:// and a host, like 'tcp+udp://dns.google:53')",
		    q);
	} else if (!sep[3] || sep[3] == '/' || sep[3] == ':') {
		ERR(p, vpos, "upstream '%s' has no host", q);
		ok = false;
	}
	for (size_t i = 0; ok && i < d->n_upstreams; i++)
		if (strcmp(d->upstreams[i].name, key) == 0) {
			char *w = cfg_where(p, kpos.file,
					    (struct cfg_pos){ d->upstreams[i].line,
							      d->upstreams[i].col,
							      d->upstreams[i].file });
			ERR(p, kpos, "upstream '%s' given twice (first at %s)", key, w);
			free(w);
			ok = false;
		}
	if (ok && (strcmp(key, "asis") == 0 || strcmp(key, "reject") == 0 ||
		   strcmp(key, "accept") == 0)) {
		ERR(p, kpos, "'%s' cannot name an upstream (it is a DNS routing action already)",
		    key);
		ok = false;
	}
	if (ok && name_ok(p, "upstream", key, kpos)) {
		d->upstreams =
			cfg_realloc_array(d->upstreams, d->n_upstreams + 1, sizeof(*d->upstreams));
		d->upstreams[d->n_upstreams++] =
			(struct anser_dns_upstream){ key, val, kpos.file, kpos.line, kpos.col };
		key = val = NULL;
	}
	free(q);
	free(key);
	free(val);
}

static void each_fixed_ttl(struct cfg_parser *p, char *key, struct cfg_pos kpos, char *val,
			   struct cfg_pos vpos)
{
	struct anser_dns *d = &p->cfg->dns;
	uint64_t ttl;

	if (cfg_parse_uint(val, UINT32_MAX, &ttl) < 0) {
		char *q = cfg_quote(val, strlen(val));
		ERR(p, vpos, "invalid TTL '%s' (seconds, like 3600)", q);
		free(q);
	} else {
		d->fixed_ttl =
			cfg_realloc_array(d->fixed_ttl, d->n_fixed_ttl + 1, sizeof(*d->fixed_ttl));
		d->fixed_ttl[d->n_fixed_ttl++] =
			(struct anser_kv){ key, val, kpos.file, kpos.line, kpos.col };
		key = val = NULL;
	}
	free(key);
	free(val);
}

/* Rules of dns { routing { request { } response { } } }. */
static void parse_dns_rules(struct cfg_parser *p, struct cfg_pos pos, bool response)
{
	struct anser_dns *d = &p->cfg->dns;

	p->fn_ctx = response ? CFG_CTX_DNS_RESPONSE : CFG_CTX_DNS_REQUEST;
	while (!stop(p) && peek_type(p) != TOK_RBRACE) {
		size_t start = p->lx.consumed;
		if (at_key(p)) {
			struct key k = { 0 };
			char *val = NULL;
			struct cfg_pos vpos;
			read_key(p, &k);
			if (strcmp(k.name, "fallback") != 0) {
				char *q = cfg_quote(k.name, strlen(k.name));
				ERR(p, k.pos, "unknown option '%s' (the only one is 'fallback:')",
				    q);
				free(q);
				key_clear(&k);
				sync_stmt(p, start);
				continue;
			}
			if (read_value(p, &k, &val, &vpos) == 0) {
				char **fb = response ? &d->response_fallback : &d->request_fallback;
				if (*fb) {
					ERR(p, k.pos, "'fallback:' given twice (keep one)");
					free(val);
				} else {
					*fb = val;
					d->fallback_file[response] = vpos.file;
					d->fallback_line[response] = vpos.line;
					d->fallback_col[response] = vpos.col;
				}
			} else {
				sync_stmt(p, start);
			}
			key_clear(&k);
			continue;
		}
		struct anser_dns_rule rule = { .file = peek(p, 0)->pos.file,
					       .line = peek(p, 0)->pos.line,
					       .col = peek(p, 0)->pos.col };
		size_t cap = 0;
		bool bad = false;
		for (;;) {
			struct call call = { 0 };
			if (parse_call(p, &call, NULL, (struct cfg_pos){ 0 }) < 0) {
				call_clear(&call);
				bad = true;
				break;
			}
			cfg_reserve(&rule.conds, &cap, rule.n_conds, sizeof(*rule.conds));
			if (cond_from_call(p, &call, &rule.conds[rule.n_conds]) < 0)
				bad = true;
			rule.n_conds++;
			call_clear(&call);
			if (peek_type(p) == TOK_AND) {
				next(p);
				continue;
			}
			if (peek_type(p) == TOK_ARROW) {
				next(p);
			} else {
				expected(p, "'&&' or '->'", "a rule is 'condition -> upstream'");
				bad = true;
			}
			break;
		}
		const struct cfg_token *t = peek(p, 0);
		if (!bad && (t->type == TOK_IDENT || t->type == TOK_STRING) && !t->bol) {
			rule.afile = t->pos.file;
			rule.aline = t->pos.line;
			rule.acol = t->pos.col;
			rule.action = cfg_take(&p->lx);
		} else if (!bad) {
			expected(p, response ? "an action" : "an upstream",
				 response ? "accept, reject or an upstream's name"
					  : "asis, reject or an upstream's name");
			bad = true;
		}
		if (bad) {
			for (size_t i = 0; i < rule.n_conds; i++)
				cond_clear(&rule.conds[i]);
			free(rule.conds);
			free(rule.action);
			sync_stmt(p, start);
			continue;
		}
		struct anser_dns_rule **list = response ? &d->response : &d->request;
		size_t *n = response ? &d->n_response : &d->n_request;
		*list = cfg_realloc_array(*list, *n + 1, sizeof(**list));
		(*list)[(*n)++] = rule;
	}
	p->fn_ctx = CFG_CTX_ROUTING;
	if (peek_type(p) == TOK_RBRACE)
		next(p);
	else if (!p->sink.full)
		ERR(p, pos, "'%s' is not closed (add '}')", response ? "response" : "request");
}

static void parse_dns_routing(struct cfg_parser *p, struct cfg_pos pos)
{
	while (!stop(p) && peek_type(p) != TOK_RBRACE) {
		const struct cfg_token *t = peek(p, 0);
		struct cfg_pos at = t->pos;
		if (t->type == TOK_IDENT && peek(p, 1)->type == TOK_LBRACE &&
		    (strcmp(t->text, "request") == 0 || strcmp(t->text, "response") == 0)) {
			bool response = strcmp(t->text, "response") == 0;
			next(p);
			next(p);
			parse_dns_rules(p, at, response);
			continue;
		}
		size_t start = p->lx.consumed;
		expected(p, "'request {' or 'response {'", "dns routing has two blocks");
		sync_stmt(p, start);
		if (peek_type(p) == TOK_LBRACE)
			skip_block(p);
	}
	if (peek_type(p) == TOK_RBRACE)
		next(p);
	else if (!p->sink.full)
		ERR(p, pos, "dns 'routing' is not closed (add '}')");
}

static void parse_dns_section(struct cfg_parser *p, struct cfg_pos pos)
{
	struct anser_dns *d = &p->cfg->dns;

	d->present = true;
	/* its own 'routing {' block is not the routing section */
	while (!stop(p) && peek_type(p) != TOK_RBRACE &&
	       !(at_section_start(p) && strcmp(peek(p, 0)->text, "routing") != 0)) {
		const struct cfg_token *t = peek(p, 0);
		size_t start = p->lx.consumed;
		struct cfg_pos at = t->pos;
		if (t->type == TOK_IDENT && peek(p, 1)->type == TOK_LBRACE) {
			char *name = cfg_take(&p->lx);
			next(p); /* '{' */
			if (strcmp(name, "upstream") == 0)
				parse_kv_block(p, at, "upstream", each_upstream);
			else if (strcmp(name, "fixed_domain_ttl") == 0)
				parse_kv_block(p, at, "fixed_domain_ttl", each_fixed_ttl);
			else if (strcmp(name, "routing") == 0)
				parse_dns_routing(p, at);
			else {
				char *q = cfg_quote(name, strlen(name));
				ERR(p, at,
				    "unknown dns block '%s' (upstream, routing, fixed_domain_ttl)",
				    q);
				free(q);
				unsigned depth = 1;
				while (depth > 0 && peek_type(p) != TOK_EOF) {
					if (peek_type(p) == TOK_LBRACE)
						depth++;
					else if (peek_type(p) == TOK_RBRACE)
						depth--;
					next(p);
				}
			}
			free(name);
			continue;
		}
		if (!at_key(p)) {
			expected(p, "'key: value' or a block", "for example 'ipversion_prefer: 4'");
			sync_stmt(p, start);
			continue;
		}
		struct key k = { 0 };
		char *val = NULL;
		struct cfg_pos vpos;
		bool list;
		read_key(p, &k);
		if (read_list_value(p, &k, &val, &vpos, &list) == 0) {
			const struct global_opt *o = check_option(
				p, "dns", dns_opts, sizeof(dns_opts) / sizeof(*dns_opts), k.name,
				k.pos, val, vpos, list);
			g_autofree char *bad = NULL;
			if (o && strcmp(o->name, "ipversion_prefer") == 0 && strcmp(val, "0") &&
			    strcmp(val, "4") && strcmp(val, "6")) {
				ERR(p, vpos, "ipversion_prefer is 0 (none), 4 or 6");
			} else if (o && strcmp(o->name, "virtual_address") == 0 &&
				   (bad = read_virtual_address(val, d))) {
				ERR(p, vpos, "virtual_address: %s", bad);
			} else if (o && o->type == GT_STRING) {
				ERR(p, k.pos, "'%s' is a block: write '%s { ... }'", o->name,
				    o->name);
			} else if (o) {
				d->options = cfg_realloc_array(d->options, d->n_options + 1,
							       sizeof(*d->options));
				d->options[d->n_options++] =
					(struct anser_kv){ k.name, val, k.pos.file, k.pos.line,
							   k.pos.col };
				k.name = NULL;
				val = NULL;
			}
		} else {
			sync_stmt(p, start);
		}
		free(val);
		key_clear(&k);
	}
}

/* subscription { [TAG:] 'URL' ... } */
static void parse_subscription_section(struct cfg_parser *p, struct cfg_pos pos)
{
	struct anser_config *c = p->cfg;

	p->seen_any_subscription = true;
	if (!p->warned_subscription && !p->fetcher) {
		p->warned_subscription = true;
		WARN(p, pos,
		     "subscriptions are read and checked but not fetched here: their nodes are "
		     "not known");
	}
	while (!stop(p) && peek_type(p) != TOK_RBRACE && !at_section_start(p)) {
		size_t start = p->lx.consumed;
		struct key k = { 0 };
		char *url = NULL;
		struct cfg_pos upos;
		const struct cfg_token *t = peek(p, 0);
		if (at_key(p) && !strstr(t->text, "://")) {
			read_key(p, &k);
			if (read_value(p, &k, &url, &upos) < 0) {
				key_clear(&k);
				sync_stmt(p, start);
				continue;
			}
		} else if (t->type == TOK_IDENT || t->type == TOK_STRING) {
			upos = t->pos;
			url = cfg_take(&p->lx);
		} else {
			expected(p, "a subscription link", "for example my_sub: 'https://...'");
			sync_stmt(p, start);
			continue;
		}
		static const char *const schemes[] = { "https://", "http://", "file://",
						       "https-file://", "http-file://" };
		bool ok = false;
		for (size_t i = 0; i < sizeof(schemes) / sizeof(*schemes); i++)
			ok |= strncmp(url, schemes[i], strlen(schemes[i])) == 0 &&
			      url[strlen(schemes[i])];
		if (!ok) {
			char *q = cfg_quote(url, strlen(url));
			ERR(p, upos,
			    "invalid subscription '%s' (https://, http://, file://, https-file:// "
			    "or http-file:// and a location)",
			    q);
			free(q);
			free(url);
		} else {
			cfg_reserve(&c->subscriptions, &p->cap_subscriptions, c->n_subscriptions,
				    sizeof(*c->subscriptions));
			c->subscriptions[c->n_subscriptions++] =
				(struct anser_subscription){ k.name, url, upos.file, upos.line,
							     upos.col };
			k.name = NULL;
		}
		key_clear(&k);
	}
}

/* ------------------------------------------------------------- sections */

char *cfg_where(const struct cfg_parser *p, unsigned from, struct cfg_pos pos)
{
	if (pos.file == from || !p->sink.files || pos.file >= p->sink.n_files)
		return cfg_asprintf("line %u", pos.line);
	return cfg_asprintf("%s:%u", p->sink.files[pos.file].name, pos.line);
}

/* include { pattern ... }: globs, read once this file is done. */
static void parse_include_section(struct cfg_parser *p, struct cfg_pos pos)
{
	bool told = false;

	while (!stop(p) && peek_type(p) != TOK_RBRACE) {
		const struct cfg_token *t = peek(p, 0);
		if (t->type == TOK_COMMA) {
			next(p);
			continue;
		}
		if (t->type != TOK_IDENT && t->type != TOK_STRING) {
			size_t start = p->lx.consumed;
			expected(p, "a file name or pattern", "for example 'config.d/*.dae'");
			sync_stmt(p, start);
			continue;
		}
		struct cfg_pos at = t->pos;
		char *pat = cfg_take(&p->lx);
		if (!p->includes_ok) {
			if (!told)
				ERR(p, at,
				    "'include' works only in config files (patterns are relative "
				    "to "
				    "the file's directory)");
			told = true;
			free(pat);
			continue;
		}
		if (!*pat) {
			ERR(p, at, "empty file name in 'include'");
			free(pat);
			continue;
		}
		cfg_reserve(&p->includes, &p->cap_includes, p->n_includes, sizeof(*p->includes));
		p->includes[p->n_includes++] = (struct cfg_include){ pat, at };
	}
	if (peek_type(p) == TOK_RBRACE)
		next(p);
	else if (!p->sink.full)
		ERR(p, pos, "section 'include' is not closed (add '}')");
}

static void parse_section(struct cfg_parser *p)
{
	struct cfg_pos pos = peek(p, 0)->pos;
	char *name = cfg_take(&p->lx);
	char *q = cfg_quote(name, strlen(name));
	size_t sec;

	next(p); /* '{' */
	for (sec = 0; sec < SEC_N; sec++)
		if (strcmp(name, section_names[sec]) == 0)
			break;
	if (sec == SEC_N && strcmp(name, "include") == 0) {
		parse_include_section(p, pos);
		goto out;
	}
	if (sec == SEC_N && (strcmp(name, "dns") == 0 || strcmp(name, "subscription") == 0)) {
		bool dns = strcmp(name, "dns") == 0;
		if (p->seen_extra[dns]) {
			char *w = cfg_where(p, pos.file, p->extra_pos[dns]);
			ERR(p, pos,
			    "section '%s' given twice in this file (first at %s; merge them)", q,
			    w);
			free(w);
		}
		p->seen_extra[dns] = true;
		p->extra_pos[dns] = pos;
		if (dns)
			parse_dns_section(p, pos);
		else
			parse_subscription_section(p, pos);
		if (peek_type(p) == TOK_RBRACE)
			next(p);
		else if (!p->sink.full)
			ERR(p, pos, "section '%s' is not closed (add '}')", q);
		goto out;
	}
	if (sec == SEC_N) {
		if (strcmp(name, "dns") == 0) {
			WARN(p, pos,
			     "section 'dns' is not supported yet, ignored (DNS goes out "
			     "untouched)");
		} else if (strcmp(name, "subscription") == 0) {
			ERR(p, pos,
			    "section '%s' is not supported yet (list nodes in the 'node' section)",
			    q);
		} else {
			const char *sug = cfg_suggest(name, section_names, SEC_N);
			if (sug)
				ERR(p, pos, "unknown section '%s' (did you mean '%s'?)", q, sug);
			else
				ERR(p, pos,
				    "unknown section '%s' (sections are global, node, group, "
				    "routing)",
				    q);
		}
		/* skip its body: we are inside its '{' */
		unsigned depth = 1;
		while (depth > 0 && peek_type(p) != TOK_EOF) {
			if (peek_type(p) == TOK_LBRACE)
				depth++;
			else if (peek_type(p) == TOK_RBRACE)
				depth--;
			next(p);
		}
		goto out;
	}
	if (p->seen[sec]) {
		ERR(p, pos, "section '%s' given twice (first at line %u; merge them)", q,
		    p->sec_pos[sec].line);
	} else {
		p->seen[sec] = true;
		p->sec_pos[sec] = pos;
	}
	p->seen_any[sec] = true;
	if (sec == SEC_GROUP) {
		parse_group_section(p);
	} else {
		while (!stop(p) && peek_type(p) != TOK_RBRACE && !at_section_start(p)) {
			size_t start = p->lx.consumed;
			int r;
			if (sec == SEC_GLOBAL)
				r = parse_global_stmt(p);
			else if (sec == SEC_NODE)
				r = parse_node_stmt(p);
			else
				r = parse_routing_stmt(p);
			if (r < 0)
				sync_stmt(p, start);
		}
	}
	if (peek_type(p) == TOK_RBRACE)
		next(p);
	else if (peek_type(p) != TOK_EOF)
		ERR(p, pos, "section '%s' is not closed (add '}' before line %u)", q,
		    peek(p, 0)->pos.line);
	else if (!p->sink.full)
		ERR(p, pos, "section '%s' is not closed (add '}')", q);
out:
	free(q);
	free(name);
}

void cfg_parse(struct cfg_parser *p)
{
	while (!stop(p)) {
		const struct cfg_token *t = peek(p, 0);
		p->any_token = true;
		if (t->type == TOK_IDENT && peek(p, 1)->type == TOK_LBRACE) {
			parse_section(p);
			continue;
		}
		if (t->type == TOK_RBRACE) {
			ERR(p, t->pos, "unexpected '}' (no section is open)");
			next(p);
			continue;
		}
		if (t->type == TOK_IDENT) {
			char *q = cfg_quote(t->text, t->len);
			if (compact_colon(t) || peek(p, 1)->type == TOK_COLON)
				ERR(p, t->pos,
				    "'%s' outside of a section (put options in 'global { }')", q);
			else
				ERR(p, t->pos, "expected '{' after section name '%s'", q);
			free(q);
		} else {
			expected(p, "a section name", "global, node, group or routing");
		}
		/* skip to the next line that could start a section */
		next(p);
		while (!stop(p)) {
			t = peek(p, 0);
			if (t->bol && t->type == TOK_IDENT)
				break;
			if (t->type == TOK_LBRACE)
				skip_block(p);
			else
				next(p);
		}
	}
	p->any_token = p->any_token || peek_type(p) != TOK_EOF;
}

/* ---------------------------------------------------------- free / init */

void cfg_parser_free(struct cfg_parser *p)
{
	cfg_lexer_done(&p->lx);
	for (size_t gi = 0; p->gast && gi < p->cap_groups; gi++) {
		struct cfg_group_ast *ga = &p->gast[gi];
		for (size_t i = 0; i < ga->n_filters; i++)
			cfg_filter_clear(&ga->filters[i]);
		free(ga->filters);
	}
	free(p->gast);
	free(p->out_pos);
	p->gast = NULL;
	p->out_pos = NULL;
	cfg_blobs_free(p);
	free(p->config_dir);
	p->config_dir = NULL;
	for (size_t i = 0; i < p->n_includes; i++)
		free(p->includes[i].pattern);
	free(p->includes);
	p->includes = NULL;
	p->n_includes = p->cap_includes = 0;
}

static void dns_rules_clear(struct anser_dns_rule *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < v[i].n_conds; k++)
			cond_clear(&v[i].conds[k]);
		free(v[i].conds);
		free(v[i].action);
	}
	free(v);
}

static void kvs_clear(struct anser_kv *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

static void anser_dns_clear(struct anser_dns *d)
{
	kvs_clear(d->options, d->n_options);
	kvs_clear(d->fixed_ttl, d->n_fixed_ttl);
	for (size_t i = 0; i < d->n_upstreams; i++) {
		free(d->upstreams[i].name);
		free(d->upstreams[i].url);
	}
	free(d->upstreams);
	dns_rules_clear(d->request, d->n_request);
	dns_rules_clear(d->response, d->n_response);
	free(d->request_fallback);
	free(d->response_fallback);
	*d = (struct anser_dns){ 0 };
}

struct anser_config *anser_config_ref(struct anser_config *c)
{
	if (c)
		c->refs++;
	return c;
}

void anser_config_free(struct anser_config *c)
{
	if (!c)
		return;
	if (c->refs > 1) {
		c->refs--;
		return;
	}
	if (c->base) {
		/* only the routes, the arrays and the routes' file name are ours */
		for (size_t i = 0; i < c->n_routes; i++)
			rule_clear(&c->rules[i]);
		free(c->rules);
		if (c->n_files)
			free(c->files[c->n_files - 1]);
		free(c->files);
		if (c->groups != c->base->groups)
			free(c->groups); /* the array only (anser_config_apply_picks) */
		anser_config_free(c->base);
		free(c);
		return;
	}
	free(c->source);
	for (size_t i = 0; i < c->n_files; i++)
		free(c->files[i]);
	free(c->files);
	for (size_t i = 0; i < c->n_globals; i++) {
		free(c->globals[i].key);
		free(c->globals[i].value);
	}
	free(c->globals);
	free(c->log_level);
	g_strfreev(c->wan_interfaces);
	g_strfreev(c->lan_interfaces);
	anser_check_clear(&c->check);
	for (size_t i = 0; i < c->n_nodes; i++)
		anser_node_clear(&c->nodes[i]);
	free(c->nodes);
	for (size_t i = 0; i < c->n_groups; i++) {
		free(c->groups[i].name);
		free(c->groups[i].nodes);
		free(c->groups[i].add_latency);
	}
	free(c->groups);
	for (size_t i = 0; i < c->n_rules; i++)
		rule_clear(&c->rules[i]);
	free(c->rules);
	free(c->fallback_name);
	anser_dns_clear(&c->dns);
	for (size_t i = 0; i < c->n_subscriptions; i++) {
		free(c->subscriptions[i].tag);
		free(c->subscriptions[i].url);
	}
	free(c->subscriptions);
	free(c);
}
