/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internals of the config module, shared by its files only:
 * memory helpers that abort on OOM (a config is small; losing the daemon
 * half-way through building one is not worth an error path per field),
 * diagnostics, the lexer, the socks5 link decoder and the parser state.
 */
#ifndef ANSER_CONFIG_PRIVATE_H
#define ANSER_CONFIG_PRIVATE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define CFG_MAX_FILE_SIZE   (16u * 1024 * 1024)
#define CFG_MAX_RULES	    65000 /* as written; the kernel holds 1023 after merging */
#define CFG_MAX_CONDS	    262144
#define CFG_MAX_NODES	    4096
#define CFG_MAX_NAME	    63	/* node, group and process names, bytes */
#define CFG_MAX_DIAGS	    100 /* then "too many errors" and stop */
#define CFG_MAX_EXCERPT	    300 /* bytes of a source line quoted under a diagnostic */
#define CFG_MAX_FILTERS	    64	/* filter: lines per group */
#define CFG_MAX_APP_ID	    255
#define CFG_MAX_CGROUP_PATH 4095

void *cfg_malloc0(size_t n);
void *cfg_realloc_array(void *p, size_t n, size_t elem);
char *cfg_strdup(const char *s);
char *cfg_strndup(const char *s, size_t n);
char *cfg_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Grows *v so that it holds at least n + 1 elements of size elem. */
void cfg_reserve(void *v, size_t *cap, size_t n, size_t elem);
/* The text, made safe to print: control and non-ASCII bytes as \xNN,
 * cut to a readable length. Caller frees. */
char *cfg_quote(const char *s, size_t len);
unsigned cfg_edit_distance(const char *a, const char *b);
/* Best of `cands` within edit distance 2 of s, or NULL. */
const char *cfg_suggest(const char *s, const char *const *cands, size_t n);

/* ---- option values, decoded like dae (Go) does (values.c) ---- */
/* Go's time.ParseDuration: "300ms", "1.5h", "2h45m", "0". 0 and *ns, or -1
 * and *why ("missing unit (ns, us, ms, s, m, h)", ...). */
int cfg_parse_duration(const char *s, int64_t *ns, const char **why);
/* Go's strconv.ParseBool: 1 t T true TRUE True, 0 f F false FALSE False. */
int cfg_parse_bool(const char *s, bool *out);
/* A DNS query type by name (case-insensitive) or number; -1 if neither. */
int cfg_qtype(const char *s);
const char *cfg_qtype_name(unsigned t); /* NULL for types without a name here */
/* Decimal digits only, at most max. */
int cfg_parse_uint(const char *s, uint64_t max, uint64_t *out);

struct cfg_pos {
	unsigned line, col;
	unsigned file; /* index into the sink's files (0: the entry file) */
};

/* ---- diagnostics ---- */
/* A file of the config: the entry file, then included files in the
 * order they were read. */
struct cfg_file {
	char *name; /* as diagnostics name it */
	char *real; /* realpath, to catch repeats and loops; NULL for text */
	char *text; /* for the lines diagnostics quote */
	size_t len;
	unsigned parent; /* the file that included it (0 for the entry) */
};

struct cfg_diag_sink {
	struct anser_diags *d;
	/* diagnostics name files[pos.file]; without files, `file` and `src` */
	struct cfg_file *files;
	size_t n_files;
	const char *file;
	const char *src;
	size_t len;
	size_t n_errors;
	bool full; /* CFG_MAX_DIAGS reached: stop parsing */
};

void cfg_diag(struct cfg_diag_sink *s, bool warning, struct cfg_pos pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Source order: by file (in files' order), line and column. */
void cfg_diags_sort(struct anser_diags *d, size_t from, const struct cfg_file *files,
		    size_t n_files);

/* ---- lexer ---- */
enum cfg_tok_type {
	TOK_EOF = 0,
	TOK_IDENT,  /* bare word: names, numbers, addresses, unquoted links */
	TOK_STRING, /* '..' or ".." */
	TOK_LBRACE,
	TOK_RBRACE,
	TOK_LPAREN,
	TOK_RPAREN,
	TOK_COMMA,
	TOK_COLON,
	TOK_NOT,
	TOK_AND,
	TOK_ARROW,
	TOK_LBRACKET, /* filter annotations: [add_latency: 10ms] */
	TOK_RBRACKET,
	TOK_ERROR, /* already reported by the lexer */
};

struct cfg_token {
	enum cfg_tok_type type;
	char *text; /* IDENT / STRING, NUL-terminated, owned */
	size_t len;
	struct cfg_pos pos;
	bool bol; /* first token on its line */
};

#define CFG_LOOKAHEAD 3

struct cfg_lexer {
	const char *src;
	size_t len, off;
	unsigned line;
	size_t line_start;
	bool at_bol;
	struct cfg_diag_sink *sink;
	unsigned file; /* for token positions */
	struct cfg_token la[CFG_LOOKAHEAD];
	unsigned n_la;
	size_t consumed; /* tokens taken so far, to detect progress */
};

void cfg_lexer_init(struct cfg_lexer *lx, const char *src, size_t len, struct cfg_diag_sink *sink,
		    unsigned file);
void cfg_lexer_done(struct cfg_lexer *lx);
const struct cfg_token *cfg_peek(struct cfg_lexer *lx, unsigned k);
void cfg_next(struct cfg_lexer *lx);
/* Steals the current token's text and advances. */
char *cfg_take(struct cfg_lexer *lx);
const char *cfg_tok_name(enum cfg_tok_type t);

/* ---- node links ---- */
/* Decodes `link` (written at pos) into n->proto/host/port/user/pass, and
 * n->name from the #fragment if n->name is NULL. Errors never quote the
 * user info (it holds the password). Returns 0 or -EINVAL. */
int cfg_parse_link(struct cfg_diag_sink *s, struct cfg_pos pos, const char *link,
		   struct anser_node *n);

/* Base64, standard or URL-safe alphabet, padding optional, whitespace
 * ignored; NULL on anything else. NUL-terminated (not counted). */
uint8_t *cfg_base64_decode(const char *s, size_t len, size_t *out_len);

/* ---- health-check options (check.c) ---- */
/* 0, -EINVAL with *why, or -ENOENT when key is not one of them. */
int cfg_decode_check(struct anser_check *c, const char *key, const char *val, const char **why);
void cfg_check_defaults(struct anser_check *c);

/* ---- addresses ---- */
int cfg_parse_cidr(const char *s, struct anser_cidr *out, const char **why);
int cfg_parse_port(const char *s, size_t len, uint16_t *out);

/* ---- parser ---- */
/* An argument of name() or subtag() in a group filter. */
struct cfg_farg {
	uint8_t kind; /* CFG_FARG_* */
	char *val;
	void *re; /* GRegex for CFG_FARG_REGEX */
	struct cfg_pos pos;
};

enum { CFG_FARG_NAME = 0, CFG_FARG_KEYWORD, CFG_FARG_REGEX };

struct cfg_fcall {
	bool negate, subtag;
	struct cfg_farg *args;
	size_t n;
};

/* One `filter:` line: calls joined by && (all must hold), and its
 * annotation. */
struct cfg_filter {
	struct cfg_fcall *calls;
	size_t n_calls;
	int64_t add_latency_ns;
	struct cfg_pos pos;
};

void cfg_filter_clear(struct cfg_filter *f);

/* What a group says before node names are known. */
struct cfg_group_ast {
	struct cfg_filter *filters;
	size_t n_filters, cap_filters;
	bool has_policy;
	unsigned too_many_filters;
	struct cfg_pos fixed_pos;
};

enum cfg_section {
	SEC_GLOBAL,
	SEC_NODE,
	SEC_GROUP,
	SEC_ROUTING,
	SEC_N,
};

/* An `include` entry: a glob relative to the entry file's directory. */
struct cfg_include {
	char *pattern;
	struct cfg_pos pos;
};

#define CFG_MAX_FILES	  256		     /* the entry file and all it includes */
#define CFG_MAX_SET_ITEMS (4u * 1024 * 1024) /* domains and CIDRs from data sets, in all */

/* A data file read while parsing (geosite.dat, geoip.dat), kept for the
 * other tags of the same file. */
struct cfg_blob {
	char *path;
	uint8_t *data;
	size_t len;
};

struct cfg_parser {
	struct cfg_lexer lx;
	struct cfg_diag_sink sink;
	struct anser_config *cfg;
	size_t cap_globals, cap_nodes, cap_groups, cap_rules;
	struct cfg_group_ast *gast; /* parallel to cfg->groups */
	struct cfg_pos *out_pos;    /* parallel to cfg->rules: where the outbound is */
	bool seen[SEC_N];	    /* in the file being read */
	struct cfg_pos sec_pos[SEC_N];
	bool seen_any[SEC_N];	      /* in any file */
	struct cfg_include *includes; /* of the file being read */
	size_t n_includes, cap_includes;
	bool includes_ok; /* parsing a file: include sections allowed */
	char *config_dir; /* the entry file's directory (data files), or NULL */
	struct cfg_blob *blobs;
	size_t n_blobs;
	size_t set_items; /* domains and CIDRs taken from data sets so far */
	bool seen_domain; /* a domain() condition in the routing, first at domain_pos */
	struct cfg_pos domain_pos;
	bool warned_forwarded;
	bool seen_any_subscription;
	const struct anser_fetcher *fetcher; /* NULL: subscriptions are not fetched */
	bool subscription_failed;	     /* some subscription brought no nodes */
	bool warned_subscription;
	bool seen_extra[2]; /* subscription, dns: in the file being read */
	struct cfg_pos extra_pos[2];
	size_t cap_subscriptions;
	enum { CFG_CTX_ROUTING = 0, CFG_CTX_DNS_REQUEST, CFG_CTX_DNS_RESPONSE } fn_ctx;
	bool has_fallback;
	struct cfg_pos fallback_pos;
	bool any_token;
	size_t n_conds;
	unsigned paren_depth;
};

/* Syntax -> p->cfg plus the side tables above, for the text the lexer
 * holds (one file). */
void cfg_parse(struct cfg_parser *p);
/* "line 3" for a place in file `from`, else "other.dae:3".
 * Caller frees. */
char *cfg_where(const struct cfg_parser *p, unsigned from, struct cfg_pos pos);
/* Data sets (sets.c): append the entries of `set` (as written, e.g.
 * "geosite:cn@ads", "geoip:private", "ext:my.dat:tag") to cond's domains
 * (DOMAIN) or cidrs (DIP). 0, or -errno after a diagnostic at pos. */
int cfg_expand_set(struct cfg_parser *p, struct cfg_pos pos, const char *set,
		   struct anser_cond *cond, size_t *cap);
void cfg_blobs_free(struct cfg_parser *p);

/* Names -> ids, cross-section checks. */
void cfg_resolve(struct cfg_parser *p);
void cfg_parser_free(struct cfg_parser *p);

#endif
