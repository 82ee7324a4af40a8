// SPDX-License-Identifier: GPL-2.0-or-later
/* auto_config_kernel_parameter: set the gateway's sysctls, keep a record
 * of what they were, put them back. */
#include "kparam.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../util/log.h"

#define VALUE_MAX 64

struct entry {
	char *path; /* under root: "net/ipv4/ip_forward" */
	char *old;
};

struct anser_kparams {
	char *root, *state;
	GArray *v;	    /* struct entry, oldest first */
	GHashTable *warned; /* paths that could not be set (said once) */
};

/* "net/ipv4/conf/lan0/send_redirects" as sysctl(8) writes it. */
static char *dotted(const char *path)
{
	char *s = g_strdup(path);
	for (char *c = s; *c; c++)
		if (*c == '/')
			*c = '.';
	return s;
}

/* Paths a record may name: relative, under net/, no "..", plain bytes. */
static bool path_ok(const char *p)
{
	if (strncmp(p, "net/", 4) != 0 || strstr(p, "..") || strstr(p, "//"))
		return false;
	for (const char *c = p; *c; c++)
		if (!g_ascii_isalnum(*c) && !strchr("/._-@:", *c))
			return false;
	return true;
}

static bool value_ok(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n >= VALUE_MAX)
		return false;
	for (const char *c = v; *c; c++)
		if (!g_ascii_isprint(*c) || *c == ' ')
			return false;
	return true;
}

static int read_value(struct anser_kparams *k, const char *path, char *buf, size_t len)
{
	char *full = g_build_filename(k->root, path, NULL);
	int fd = open(full, O_RDONLY | O_CLOEXEC);
	g_free(full);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, len - 1);
	int r = n < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return r;
	buf[n] = '\0';
	g_strstrip(buf);
	return value_ok(buf) ? 0 : -EINVAL;
}

static int write_value(struct anser_kparams *k, const char *path, const char *value)
{
	char *full = g_build_filename(k->root, path, NULL);
	int fd = open(full, O_WRONLY | O_CLOEXEC);
	g_free(full);
	if (fd < 0)
		return -errno;
	char line[VALUE_MAX + 1];
	int len = snprintf(line, sizeof(line), "%s\n", value);
	ssize_t n = write(fd, line, (size_t)len);
	int r = n < 0 ? -errno : n != len ? -EIO : 0;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

/* The record as it is now; an empty one is removed. */
static int save(struct anser_kparams *k)
{
	if (k->v->len == 0) {
		if (unlink(k->state) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	GString *s = g_string_new("# anserd: kernel parameters it changed, and their old values\n");
	for (guint i = 0; i < k->v->len; i++) {
		struct entry *e = &g_array_index(k->v, struct entry, i);
		g_string_append_printf(s, "%s %s\n", e->path, e->old);
	}
	GError *err = NULL;
	char *dir = g_path_get_dirname(k->state);
	if (g_mkdir_with_parents(dir, 0755) < 0)
		log_warning_errno(errno, "Cannot make %s: %m", dir);
	g_free(dir);
	/* written to a temporary file and renamed over: never half a record */
	bool ok = g_file_set_contents(k->state, s->str, (gssize)s->len, &err);
	g_string_free(s, TRUE);
	if (!ok) {
		log_error("Cannot write %s: %s", k->state, err->message);
		g_error_free(err);
		return -EIO;
	}
	return 0;
}

static void entry_clear(gpointer p)
{
	struct entry *e = p;
	g_free(e->path);
	g_free(e->old);
}

static ssize_t find(const struct anser_kparams *k, const char *path)
{
	for (guint i = 0; i < k->v->len; i++)
		if (strcmp(g_array_index(k->v, struct entry, i).path, path) == 0)
			return (ssize_t)i;
	return -1;
}

static void load(struct anser_kparams *k)
{
	char *text = NULL;
	GError *err = NULL;

	if (!g_file_get_contents(k->state, &text, NULL, &err)) {
		if (!g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			log_warning("Cannot read %s: %s", k->state, err->message);
		g_error_free(err);
		return;
	}
	char **lines = g_strsplit(text, "\n", -1);
	for (size_t i = 0; lines[i]; i++) {
		char *l = g_strstrip(lines[i]);
		if (!*l || *l == '#')
			continue;
		char *sp = strchr(l, ' ');
		if (sp)
			*sp++ = '\0';
		if (!sp || !path_ok(l) || !value_ok(sp) || find(k, l) >= 0) {
			log_warning("%s:%zu: not a kernel parameter record, ignored", k->state,
				    i + 1);
			continue;
		}
		struct entry e = { g_strdup(l), g_strdup(sp) };
		g_array_append_val(k->v, e);
	}
	g_strfreev(lines);
	g_free(text);
	if (k->v->len)
		log_notice("%u kernel parameters changed by an anserd that did not exit cleanly "
			   "(%s); they will be put back",
			   k->v->len, k->state);
}

int anser_kparams_new(const char *root, const char *state_path, struct anser_kparams **out)
{
	struct anser_kparams *k = g_new0(struct anser_kparams, 1);
	k->root = g_strdup(root);
	k->state = g_strdup(state_path);
	k->v = g_array_new(FALSE, TRUE, sizeof(struct entry));
	g_array_set_clear_func(k->v, entry_clear);
	k->warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	load(k);
	*out = k;
	return 0;
}

/* Make path `want` (only when it is `from`, if given), recording what it
 * was first. */
static void set(struct anser_kparams *k, const char *path, const char *want, const char *from)
{
	char cur[VALUE_MAX];
	int r;

	if (find(k, path) >= 0)
		return; /* ours already: set it is */
	r = read_value(k, path, cur, sizeof(cur));
	if (r == -ENOENT)
		return; /* no such parameter here (no IPv6, the interface left) */
	if (r == 0 && (strcmp(cur, want) == 0 || (from && strcmp(cur, from) != 0)))
		return;
	char *name = dotted(path);
	if (r < 0) {
		if (g_hash_table_add(k->warned, g_strdup(path)))
			log_warning_errno(r, "Cannot read %s: %m", name);
		g_free(name);
		return;
	}
	struct entry e = { g_strdup(path), g_strdup(cur) };
	g_array_append_val(k->v, e);
	/* the record before the change: a crash in between leaves a record of
	 * a value that was not changed, which is harmless to put back */
	if (save(k) < 0) {
		g_array_remove_index(k->v, k->v->len - 1);
		g_free(name);
		return;
	}
	r = write_value(k, path, want);
	if (r < 0) {
		if (g_hash_table_add(k->warned, g_strdup(path)))
			log_warning_errno(r, "Cannot set %s to %s: %m", name, want);
		g_array_remove_index(k->v, k->v->len - 1);
		(void)save(k);
	} else {
		log_info("Set %s = %s (was %s; put back at exit)", name, want, cur);
	}
	g_free(name);
}

static bool ifname_ok(const char *n)
{
	size_t l = strlen(n);
	return l > 0 && l < IF_NAMESIZE && !strchr(n, '/') && strcmp(n, ".") != 0 &&
	       strcmp(n, "..") != 0;
}

void anser_kparams_apply(struct anser_kparams *k, const char *const *lan, size_t n_lan,
			 const char *const *wan, size_t n_wan)
{
	char path[128];

	/* IPv6 forwarding turns router advertisements off where accept_ra is
	 * 1: keep them on the WAN side first. */
	for (size_t i = 0; i < n_wan; i++) {
		if (!ifname_ok(wan[i]))
			continue;
		snprintf(path, sizeof(path), "net/ipv6/conf/%s/accept_ra", wan[i]);
		set(k, path, "2", "1");
	}
	set(k, "net/ipv4/ip_forward", "1", NULL);
	set(k, "net/ipv6/conf/all/forwarding", "1", NULL);
	set(k, "net/ipv4/conf/all/send_redirects", "0", NULL);
	for (size_t i = 0; i < n_lan; i++) {
		if (!ifname_ok(lan[i]))
			continue;
		snprintf(path, sizeof(path), "net/ipv4/conf/%s/send_redirects", lan[i]);
		set(k, path, "0", NULL);
	}
}

void anser_kparams_restore(struct anser_kparams *k)
{
	/* newest first; what cannot be put back now stays in the record for
	 * the next run to try */
	for (guint i = k->v->len; i-- > 0;) {
		struct entry *e = &g_array_index(k->v, struct entry, i);
		char *name = dotted(e->path);
		int r = write_value(k, e->path, e->old);
		if (r == 0)
			log_info("Put back %s = %s", name, e->old);
		else if (r == -ENOENT)
			log_debug("%s is gone (its interface left): nothing to put back", name);
		else
			log_warning_errno(r, "Cannot put back %s = %s: %m", name, e->old);
		g_free(name);
		if (r == 0 || r == -ENOENT)
			g_array_remove_index(k->v, i);
	}
	(void)save(k);
}

size_t anser_kparams_changed(const struct anser_kparams *k)
{
	return k ? k->v->len : 0;
}

void anser_kparams_free(struct anser_kparams *k)
{
	if (!k)
		return;
	g_array_free(k->v, TRUE);
	g_hash_table_unref(k->warned);
	g_free(k->root);
	g_free(k->state);
	g_free(k);
}
