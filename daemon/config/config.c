// SPDX-License-Identifier: GPL-2.0-or-later
/* Entry points of the config module. */
#include <errno.h>
#include <fcntl.h>
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

int anser_config_parse_string(const char *name, const char *text, size_t len,
			      struct anser_config **out, struct anser_diags *diags)
{
	struct anser_diags scratch = { 0 };
	struct anser_diags *d = diags ? diags : &scratch;
	size_t first = d->n;
	struct cfg_parser p = {
		.sink = { .d = d,
			  .file = name ? name : "<input>",
			  .src = text,
			  .len = text && len <= CFG_MAX_FILE_SIZE ? len : 0 },
	};
	int r = 0;

	*out = NULL;
	p.cfg = cfg_malloc0(sizeof(*p.cfg));
	p.cfg->source = cfg_strdup(p.sink.file);
	if (len > CFG_MAX_FILE_SIZE) {
		cfg_diag(&p.sink, false, (struct cfg_pos){ 0 },
			 "the config is larger than 16 MiB (%zu bytes)", len);
	} else {
		cfg_lexer_init(&p.lx, text ? text : "", text ? len : 0, &p.sink);
		cfg_parse(&p);
		cfg_resolve(&p);
	}
	cfg_parser_free(&p);

	/* source order; "too many problems" stays last */
	cfg_diags_sort(d, first);
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

	if (p.sink.n_errors > 0) {
		anser_config_free(p.cfg);
		r = -EINVAL;
	} else {
		*out = p.cfg;
	}
	anser_diags_clear(&scratch);
	return r;
}

static int io_error(struct anser_diags *d, const char *path, int err)
{
	struct cfg_diag_sink s = { .d = d, .file = path };

	cfg_diag(&s, false, (struct cfg_pos){ 0 }, "cannot read %s: %s", path, strerror(err));
	return -err;
}

int anser_config_parse_file(const char *path, struct anser_config **out, struct anser_diags *diags)
{
	struct anser_diags scratch = { 0 };
	struct anser_diags *d = diags ? diags : &scratch;
	char *buf = NULL;
	size_t n = 0, cap = 0;
	struct stat st;
	int r, fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = io_error(d, path, errno);
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		r = io_error(d, path, errno);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		r = io_error(d, path, EISDIR);
		goto out;
	}
	/* Like dae: a config holds proxy passwords and decides where all
	 * traffic goes, so nobody but its owner (and the group, reading) may
	 * touch it. Only regular files have a meaningful mode here. */
	if (S_ISREG(st.st_mode) && (st.st_mode & (S_IWGRP | S_IRWXO))) {
		struct cfg_diag_sink s = { .d = d, .file = path };
		cfg_diag(&s, false, (struct cfg_pos){ 0 },
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
			buf = cfg_realloc_array(buf, cap, 1);
		}
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = io_error(d, path, errno);
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > CFG_MAX_FILE_SIZE) {
			struct cfg_diag_sink s = { .d = d, .file = path };
			cfg_diag(&s, false, (struct cfg_pos){ 0 },
				 "cannot read %s: larger than 16 MiB (a config is much smaller)",
				 path);
			r = -EFBIG;
			goto out;
		}
	}
	r = anser_config_parse_string(path, buf, n, out, d);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	anser_diags_clear(&scratch);
	return r;
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
