// SPDX-License-Identifier: GPL-2.0-or-later
/* Entry points of the config module. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../bpf/anser_abi.h"
#include "config-private.h"

const char anser_config_builtin[] = "# anserd's built-in config: everything goes direct.\n"
				    "global {\n"
				    "\tlog_level: info\n"
				    "}\n"
				    "routing {\n"
				    "\tfallback: direct\n"
				    "}\n";

/* Reads a config file (at most CFG_MAX_FILE_SIZE bytes) into *buf. On
 * failure -errno and *why, a message naming the file. */
static int slurp(const char *path, char **buf, size_t *len, char **why)
{
	size_t n = 0, cap = 0;
	struct stat st;
	char *b = NULL;
	int r = 0, fd;

	*buf = NULL;
	*why = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		goto out;
	}
	/* Like dae: a config holds proxy passwords and decides where all
	 * traffic goes, so nobody but its owner (and the group, reading) may
	 * touch it. Only regular files have a meaningful mode here. */
	if (S_ISREG(st.st_mode) && (st.st_mode & (S_IWGRP | S_IRWXO))) {
		*why = cfg_asprintf(
			"refusing %s: it is %s (mode %04o); a config holds proxy passwords and "
			"decides where traffic goes: run 'chmod 600 %s' (or 640 to let its group "
			"read it)",
			path, (st.st_mode & S_IRWXO) ? "accessible by others" : "group-writable",
			(unsigned)(st.st_mode & 07777), path);
		r = -EPERM;
		goto out;
	}
	/* read at most one byte more than allowed: files that lie about their
	 * size (procfs, pipes) are handled the same way */
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64 * 1024;
			if (cap > CFG_MAX_FILE_SIZE + 1)
				cap = CFG_MAX_FILE_SIZE + 1;
			b = cfg_realloc_array(b, cap, 1);
		}
		ssize_t k = read(fd, b + n, cap - n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > CFG_MAX_FILE_SIZE) {
			*why = cfg_asprintf("cannot read %s: larger than 16 MiB (a config is much "
					    "smaller)",
					    path);
			r = -EFBIG;
			goto out;
		}
	}
	*buf = b;
	*len = n;
	b = NULL;
out:
	if (r < 0 && !*why)
		*why = cfg_asprintf("cannot read %s: %s", path, strerror(-r));
	if (fd >= 0)
		close(fd);
	free(b);
	return r;
}

static unsigned add_file(struct cfg_parser *p, char *name, char *real, char *text, size_t len,
			 unsigned parent)
{
	struct cfg_diag_sink *s = &p->sink;

	s->files = cfg_realloc_array(s->files, s->n_files + 1, sizeof(*s->files));
	s->files[s->n_files] = (struct cfg_file){ name, real, text, len, parent };
	return (unsigned)s->n_files++;
}

static void parse_one(struct cfg_parser *p, unsigned fi);

static bool has_glob_meta(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* One file an include pattern matched. */
static void include_file(struct cfg_parser *p, unsigned parent, struct cfg_pos pos,
			 const char *path, const char *base_real)
{
	size_t n = strlen(path), nb = strlen(base_real);
	char *q = cfg_quote(path, n);

	if (n < 5 || strcmp(path + n - 4, ".dae") != 0) {
		cfg_diag(&p->sink, false, pos,
			 "'%s' is not a .dae file (include reads only files named *.dae)", q);
		goto out;
	}
	char *real = realpath(path, NULL);
	if (!real) {
		cfg_diag(&p->sink, false, pos, "cannot read %s: %s", q, strerror(errno));
		goto out;
	}
	if (strncmp(real, base_real, nb) != 0 || (nb > 1 && real[nb] != '/')) {
		cfg_diag(&p->sink, false, pos,
			 "'%s' is outside %s (included files must stay under the entry file's "
			 "directory)",
			 q, base_real);
		free(real);
		goto out;
	}
	for (size_t i = 0; i < p->sink.n_files; i++) {
		if (p->sink.files[i].real && strcmp(p->sink.files[i].real, real) == 0) {
			bool loop = false;
			for (unsigned a = parent;; a = p->sink.files[a].parent) {
				loop |= a == i;
				if (a == 0)
					break;
			}
			if (loop) {
				/* the chain from the repeated file down to here */
				char *chain = cfg_strdup(path);
				for (unsigned a = parent;; a = p->sink.files[a].parent) {
					char *c = cfg_asprintf("%s -> %s", p->sink.files[a].name,
							       chain);
					free(chain);
					chain = c;
					if (a == i || a == 0)
						break;
				}
				cfg_diag(&p->sink, false, pos, "circular include: %s", chain);
				free(chain);
			} else {
				cfg_diag(&p->sink, false, pos,
					 "'%s' is read already (included by %s); include each file "
					 "once",
					 q, p->sink.files[p->sink.files[i].parent].name);
			}
			free(real);
			goto out;
		}
	}
	if (p->sink.n_files >= CFG_MAX_FILES) {
		cfg_diag(&p->sink, false, pos, "too many included files (at most %u)",
			 CFG_MAX_FILES - 1);
		free(real);
		goto out;
	}
	char *text, *why;
	size_t len;
	if (slurp(path, &text, &len, &why) < 0) {
		cfg_diag(&p->sink, false, pos, "%s", why);
		free(why);
		free(real);
		goto out;
	}
	parse_one(p, add_file(p, cfg_strdup(path), real, text, len, parent));
out:
	free(q);
}

/* include { PATTERN }: globs relative to the entry file's directory, each
 * match read in name order, depth first. */
static void include_pattern(struct cfg_parser *p, unsigned parent, const struct cfg_include *inc)
{
	char *entry = cfg_strdup(p->sink.files[0].name);
	char *base = cfg_strdup(dirname(entry));
	char *base_real = realpath(base, NULL);
	char *full = inc->pattern[0] == '/' ? cfg_strdup(inc->pattern)
					    : cfg_asprintf("%s/%s", base, inc->pattern);
	char *q = cfg_quote(inc->pattern, strlen(inc->pattern));
	glob_t g = { 0 };
	int r;

	if (!base_real) {
		cfg_diag(&p->sink, false, inc->pos, "cannot resolve %s: %s", base, strerror(errno));
		goto out;
	}
	r = glob(full, 0, NULL, &g);
	if (r == GLOB_NOMATCH) {
		if (has_glob_meta(inc->pattern))
			cfg_diag(&p->sink, true, inc->pos, "include pattern '%s' matches no file",
				 q);
		else
			cfg_diag(&p->sink, false, inc->pos, "cannot read %s: %s", full,
				 strerror(ENOENT));
	} else if (r != 0) {
		cfg_diag(&p->sink, false, inc->pos, "cannot list files for '%s'%s", q,
			 r == GLOB_NOSPACE ? ": out of memory" : "");
	} else {
		for (size_t i = 0; i < g.gl_pathc && !p->sink.full; i++)
			include_file(p, parent, inc->pos, g.gl_pathv[i], base_real);
	}
	globfree(&g);
out:
	free(q);
	free(full);
	free(base_real);
	free(base);
	free(entry);
}

/* Parse file fi, then the files it includes. */
static void parse_one(struct cfg_parser *p, unsigned fi)
{
	const struct cfg_file *f = &p->sink.files[fi];

	memset(p->seen, 0, sizeof(p->seen));
	memset(p->seen_extra, 0, sizeof(p->seen_extra));
	cfg_lexer_init(&p->lx, f->text, f->len, &p->sink, fi);
	cfg_parse(p);
	cfg_lexer_done(&p->lx);

	struct cfg_include *inc = p->includes;
	size_t n = p->n_includes;
	p->includes = NULL;
	p->n_includes = p->cap_includes = 0;
	for (size_t i = 0; i < n; i++) {
		if (!p->sink.full)
			include_pattern(p, fi, &inc[i]);
		free(inc[i].pattern);
	}
	free(inc);
}

/* Takes `text` and `real`. */
static int parse(const char *name, char *real, char *text, size_t len, bool includes,
		 const struct anser_fetcher *fetcher, struct anser_config **out,
		 struct anser_diags *diags)
{
	struct anser_diags scratch = { 0 };
	struct anser_diags *d = diags ? diags : &scratch;
	size_t first = d->n;
	struct cfg_parser p = {
		.sink = { .d = d },
		.includes_ok = includes,
		.fetcher = fetcher,
	};
	int r = 0;

	*out = NULL;
	p.cfg = cfg_malloc0(sizeof(*p.cfg));
	p.cfg->refs = 1;
	cfg_check_defaults(&p.cfg->check);
	p.cfg->dial_mode = ANSER_DIAL_DOMAIN;
	p.cfg->sniffing_timeout_ns = 100000000LL;
	add_file(&p, cfg_strdup(name ? name : "<input>"), real, text, len, 0);
	if (real) {
		char *dir = cfg_strdup(real);
		p.config_dir = cfg_strdup(dirname(dir));
		free(dir);
	}
	p.cfg->source = cfg_strdup(p.sink.files[0].name);
	if (len > CFG_MAX_FILE_SIZE) {
		cfg_diag(&p.sink, false, (struct cfg_pos){ 0 },
			 "the config is larger than 16 MiB (%zu bytes)", len);
	} else {
		parse_one(&p, 0);
		cfg_resolve(&p);
	}
	cfg_parser_free(&p);

	/* source order; "too many problems" stays last */
	cfg_diags_sort(d, first, p.sink.files, p.sink.n_files);
	if (p.sink.full && d->n > first) {
		size_t k;
		for (k = first; k < d->n; k++)
			if (strncmp(d->v[k].message, "too many problems", 17) == 0)
				break;
		if (k < d->n) {
			struct anser_diag last = d->v[k];
			memmove(d->v + k, d->v + k + 1, (d->n - k - 1) * sizeof(*d->v));
			d->v[d->n - 1] = last;
		}
	}

	p.cfg->files = cfg_realloc_array(NULL, p.sink.n_files, sizeof(*p.cfg->files));
	for (size_t i = 0; i < p.sink.n_files; i++) {
		p.cfg->files[p.cfg->n_files++] = p.sink.files[i].name;
		free(p.sink.files[i].real);
		free(p.sink.files[i].text);
	}
	free(p.sink.files);
	if (p.sink.n_errors > 0) {
		anser_config_free(p.cfg);
		r = -EINVAL;
	} else {
		*out = p.cfg;
	}
	anser_diags_clear(&scratch);
	return r;
}

int anser_config_parse_string(const char *name, const char *text, size_t len,
			      struct anser_config **out, struct anser_diags *diags)
{
	char *copy = NULL;

	if (len <= CFG_MAX_FILE_SIZE) {
		copy = cfg_malloc0(len + 1);
		if (text)
			memcpy(copy, text, len);
	}
	return parse(name, NULL, copy, text ? len : 0, false, NULL, out, diags);
}

int anser_config_parse_file_fetch(const char *path, const struct anser_fetcher *f,
				  struct anser_config **out, struct anser_diags *diags)
{
	struct anser_diags scratch = { 0 };
	struct anser_diags *d = diags ? diags : &scratch;
	char *buf, *why;
	size_t n;
	int r;

	*out = NULL;
	r = slurp(path, &buf, &n, &why);
	if (r < 0) {
		struct cfg_diag_sink s = { .d = d, .file = path };
		cfg_diag(&s, false, (struct cfg_pos){ 0 }, "%s", why);
		free(why);
	} else {
		r = parse(path, realpath(path, NULL), buf, n, true, f, out, d);
	}
	anser_diags_clear(&scratch);
	return r;
}

int anser_config_parse_file(const char *path, struct anser_config **out, struct anser_diags *diags)
{
	return anser_config_parse_file_fetch(path, NULL, out, diags);
}

const char *anser_config_outbound_name(const struct anser_config *c, unsigned id)
{
	if (id == ANSER_OUT_DIRECT)
		return "direct";
	if (id == ANSER_OUT_BLOCK)
		return "block";
	if (c && id >= ANSER_OUT_FIRST_GROUP && id - ANSER_OUT_FIRST_GROUP < c->n_groups)
		return c->groups[id - ANSER_OUT_FIRST_GROUP].name;
	return NULL;
}
