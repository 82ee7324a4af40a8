// SPDX-License-Identifier: GPL-2.0-or-later
/* Data sets in rules: domain(geosite:cn), dip(geoip:private),
 * domain(ext:my.dat:tag) -- found, read once per parse, and expanded into
 * the condition's own list. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../geodata/geodata.h"
#include "config-private.h"

#define ERR(p, ...)   cfg_diag(&(p)->sink, false, __VA_ARGS__)
#define WARN(p, ...)  cfg_diag(&(p)->sink, true, __VA_ARGS__)

#define MAX_DATA_FILE (512u * 1024 * 1024)

void cfg_blobs_free(struct cfg_parser *p)
{
	for (size_t i = 0; i < p->n_blobs; i++) {
		free(p->blobs[i].path);
		free(p->blobs[i].data);
	}
	free(p->blobs);
	p->blobs = NULL;
	p->n_blobs = 0;
}

static const struct cfg_blob *blob(struct cfg_parser *p, const char *path, int *err)
{
	struct stat st;
	uint8_t *data;
	size_t n = 0;

	for (size_t i = 0; i < p->n_blobs; i++)
		if (strcmp(p->blobs[i].path, path) == 0)
			return &p->blobs[i];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		*err = errno;
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_DATA_FILE) {
		*err = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		close(fd);
		return NULL;
	}
	data = cfg_malloc0((size_t)st.st_size + 1);
	while (n < (size_t)st.st_size) {
		ssize_t k = read(fd, data + n, (size_t)st.st_size - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			*err = k < 0 ? errno : EIO;
			close(fd);
			free(data);
			return NULL;
		}
		n += (size_t)k;
	}
	close(fd);
	p->blobs = cfg_realloc_array(p->blobs, p->n_blobs + 1, sizeof(*p->blobs));
	p->blobs[p->n_blobs] = (struct cfg_blob){ cfg_strdup(path), data, n };
	return &p->blobs[p->n_blobs++];
}

struct sink {
	struct cfg_parser *p;
	struct anser_cond *cond;
	size_t *cap;
	bool over;
};

static int add_domain(void *ud, enum anser_domain_kind kind, const char *value, size_t len)
{
	struct sink *s = ud;
	if (s->p->set_items >= CFG_MAX_SET_ITEMS) {
		s->over = true;
		return 1;
	}
	s->p->set_items++;
	cfg_reserve(&s->cond->domains, s->cap, s->cond->n_domains, sizeof(*s->cond->domains));
	s->cond->domains[s->cond->n_domains++] =
		(struct anser_domain_pat){ (uint8_t)kind, cfg_strndup(value, len) };
	return 0;
}

static int add_cidr(void *ud, const uint8_t addr[16], unsigned prefix)
{
	struct sink *s = ud;
	if (s->p->set_items >= CFG_MAX_SET_ITEMS) {
		s->over = true;
		return 1;
	}
	s->p->set_items++;
	cfg_reserve(&s->cond->cidrs, s->cap, s->cond->n_cidrs, sizeof(*s->cond->cidrs));
	struct anser_cidr *c = &s->cond->cidrs[s->cond->n_cidrs++];
	memcpy(c->addr, addr, 16);
	c->prefix = (uint8_t)prefix;
	return 0;
}

struct tags {
	const char **v;
	size_t n;
	char *store[64];
};

static int collect_tag(void *ud, const char *tag, size_t n)
{
	struct tags *t = ud;
	if (t->n >= 64)
		return 1;
	char *s = cfg_strndup(tag, n);
	for (char *c = s; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c + 32);
	t->store[t->n] = s;
	t->v[t->n] = s;
	t->n++;
	return 0;
}

int cfg_expand_set(struct cfg_parser *p, struct cfg_pos pos, const char *set,
		   struct anser_cond *cond, size_t *cap)
{
	bool dom = cond->type == ANSER_COND_DOMAIN || cond->type == ANSER_COND_QNAME;
	const char *file = NULL, *rest;
	char *ext_file = NULL, *tag = NULL, *path = NULL, *searched = NULL;
	char *q = cfg_quote(set, strlen(set));
	const char *attr = NULL;
	bool negate = false, ext = false;
	struct sink s = { p, cond, cap, false };
	long r = -EINVAL;

	if (dom && strncmp(set, "geosite:", 8) == 0) {
		file = "geosite.dat";
		rest = set + 8;
	} else if (!dom && strncmp(set, "geoip:", 6) == 0) { /* dip() and sip() */
		file = "geoip.dat";
		rest = set + 6;
	} else if (strncmp(set, "ext:", 4) == 0) {
		const char *colon = strrchr(set + 4, ':');
		if (!colon || colon == set + 4 || !colon[1]) {
			ERR(p, pos, "'%s' is not ext:FILE:TAG (e.g. ext:%s.dat:cn)", q,
			    dom ? "geosite" : "geoip");
			goto out;
		}
		ext = true;
		ext_file = cfg_strndup(set + 4, (size_t)(colon - set - 4));
		file = ext_file;
		rest = colon + 1;
	} else {
		ERR(p, pos, "unknown data set '%s' (%s)", q,
		    dom ? "geosite:TAG or ext:FILE:TAG" : "geoip:TAG or ext:FILE:TAG");
		goto out;
	}
	tag = cfg_strdup(rest);
	char *at = strchr(tag, '@');
	if (at) {
		if (!dom) {
			ERR(p, pos, "'%s': addresses have no attributes (drop the '@...')", q);
			goto out;
		}
		*at = '\0';
		attr = at + 1;
		if (*attr == '!') {
			negate = true;
			attr++;
		}
		if (!*attr) {
			ERR(p, pos, "'%s' has an empty attribute after '@'", q);
			goto out;
		}
	}
	if (!*tag) {
		ERR(p, pos, "'%s' names no tag", q);
		goto out;
	}
	if (!ext && strcasecmp(tag, "private") == 0 && !attr) {
		r = dom ? anser_geosite_builtin(tag, add_domain, &s)
			: anser_geoip_builtin(tag, add_cidr, &s);
		goto done;
	}
	path = anser_geodata_find(file, p->config_dir, &searched);
	if (!path && file[0] == '/') {
		int e = access(file, R_OK) < 0 ? errno : ENOENT;
		ERR(p, pos, "'%s': cannot read %s: %s", q, file, strerror(e));
		goto out;
	}
	if (!path) {
		ERR(p, pos,
		    "'%s' needs %s, which is not in %s (get %s from %s and put it in "
		    "/usr/share/anser)",
		    q, file, searched ? searched : "any data directory", ext ? "the file" : file,
		    ext	  ? "wherever it came from"
		    : dom ? "https://github.com/v2fly/domain-list-community/releases"
			  : "https://github.com/v2fly/geoip/releases");
		goto out;
	}
	struct stat st;
	if (dom && ext && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		char why[512];
		r = anser_dlc_read(path, tag, attr, negate, add_domain, &s, why, sizeof(why));
		if (r < 0 && r != -ENOENT && !s.over) {
			ERR(p, pos, "'%s': cannot read list '%s' in %s: %s", q, tag, path,
			    why[0] ? why : strerror((int)-r));
			goto out;
		}
		if (r == -ENOENT) {
			ERR(p, pos, "'%s': %s has no list '%s'", q, path, tag);
			goto out;
		}
		goto done;
	}
	int err = 0;
	const struct cfg_blob *b = blob(p, path, &err);
	if (!b) {
		ERR(p, pos, "'%s': cannot read %s: %s", q, path, strerror(err));
		goto out;
	}
	const char *why = NULL;
	r = dom ? anser_geosite_read(b->data, b->len, tag, attr, negate, add_domain, &s, &why)
		: anser_geoip_read(b->data, b->len, tag, add_cidr, &s, &why);
	if (r == -ENOENT) {
		const char *v[64];
		struct tags t = { v, 0, { 0 } };
		anser_geodata_tags(b->data, b->len, collect_tag, &t);
		char *lt = cfg_strdup(tag);
		for (char *c = lt; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c + 32);
		const char *sug = cfg_suggest(lt, t.v, t.n);
		if (sug)
			ERR(p, pos, "%s has no tag '%s' (did you mean '%s'?)", path, tag, sug);
		else
			ERR(p, pos, "%s has no tag '%s'", path, tag);
		free(lt);
		for (size_t i = 0; i < t.n; i++)
			free(t.store[i]);
		goto out;
	}
	if (r < 0 && !s.over) {
		ERR(p, pos, "'%s': %s is not a valid %s file: %s", q, path,
		    dom ? "geosite" : "geoip", why ? why : strerror((int)-r));
		goto out;
	}
done:
	if (s.over) {
		ERR(p, pos, "too many domains and addresses from data sets (at most %u in all)",
		    CFG_MAX_SET_ITEMS);
		r = -E2BIG;
		goto out;
	}
	if (r == 0)
		WARN(p, pos, "'%s' is empty: the condition %s", q,
		     cond->negate ? "always holds" : "matches nothing from it");
	cond->sets = cfg_realloc_array(cond->sets, cond->n_sets + 1, sizeof(*cond->sets));
	cond->sets[cond->n_sets++] = cfg_strdup(set);
	r = 0;
out:
	free(q);
	free(tag);
	free(ext_file);
	free(path);
	free(searched);
	return (int)(r < 0 ? r : 0);
}
