// SPDX-License-Identifier: GPL-2.0-or-later
#include "fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <glib.h>

#include "../util/log.h"
#include "anser-build.h"

#define MAX_BODY (8u * 1024 * 1024)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct buf {
	GByteArray *a;
	bool too_big;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	if (b->a->len + size * n > MAX_BODY) {
		b->too_big = true;
		return 0;
	}
	g_byte_array_append(b->a, (const guint8 *)p, (guint)(size * n));
	return size * n;
}

static int http_get(const char *url, char **body, size_t *len, char **why)
{
	pthread_once(&curl_once, curl_init);
	CURL *h = curl_easy_init();
	char err[CURL_ERROR_SIZE] = "";
	if (!h)
		return -ENOMEM;
	struct buf b = { g_byte_array_new(), false };
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 15L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "anser/" ANSER_VERSION);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	const char *ca = getenv("SSL_CERT_FILE");
	if (ca && *ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		*why = g_strdup(b.too_big ? "the body is over 8 MiB"
				: err[0]  ? err
					  : curl_easy_strerror(rc));
		g_byte_array_free(b.a, true);
		return -EIO;
	}
	*len = b.a->len;
	g_byte_array_append(b.a, (const guint8 *)"", 1);
	*body = (char *)g_byte_array_free(b.a, false);
	return 0;
}

static int read_file(const char *path, char **body, size_t *len, char **why)
{
	GError *e = NULL;
	gsize n;
	gchar *data;
	struct stat st;
	if (stat(path, &st) == 0 && st.st_size > (off_t)MAX_BODY) {
		*why = g_strdup_printf("%s is over 8 MiB", path);
		return -EFBIG;
	}
	if (!g_file_get_contents(path, &data, &n, &e)) {
		*why = g_strdup(e->message);
		g_error_free(e);
		return -ENOENT;
	}
	*body = data;
	*len = n;
	return 0;
}

/* persist.d/<tag>.sub, or a name made from the URL for untagged ones. */
static char *copy_path(const char *dir, const struct anser_subscription *s)
{
	if (s->tag)
		return g_strdup_printf("%s/%s.sub", dir, s->tag);
	g_autofree char *h = g_compute_checksum_for_string(G_CHECKSUM_SHA256, s->url, -1);
	h[16] = '\0';
	return g_strdup_printf("%s/url-%s.sub", dir, h);
}

static void keep_copy(const char *dir, const struct anser_subscription *s, const char *body,
		      size_t len)
{
	if (!dir)
		return;
	if (g_mkdir_with_parents(dir, 0700) < 0) {
		log_warning_errno(errno, "Cannot keep a copy of subscription %s in %s: %m",
				  s->tag ? s->tag : s->url, dir);
		return;
	}
	g_autofree char *path = copy_path(dir, s);
	g_autofree char *tmp = g_strdup_printf("%s.XXXXXX", path);
	int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	bool ok = write(fd, body, len) == (ssize_t)len && fsync(fd) == 0;
	close(fd);
	if (!ok || rename(tmp, path) < 0) {
		log_warning_errno(errno, "Cannot keep a copy of subscription %s: %m",
				  s->tag ? s->tag : s->url);
		unlink(tmp);
	}
}

static int fetch(void *ud, const struct anser_subscription *s, const char *config_dir, char **body,
		 size_t *len, char **why)
{
	const char *dir = ud;
	const char *url = s->url;
	const char *name = s->tag ? s->tag : s->url;

	if (g_str_has_prefix(url, "file://")) {
		const char *p = url + 7;
		g_autofree char *path = p[0] == '/' || !config_dir
						? g_strdup(p)
						: g_build_filename(config_dir, p, NULL);
		return read_file(path, body, len, why);
	}
	/* http(s)-file:// is fetched like http(s)://; every network body is kept */
	g_autofree char *real =
		g_str_has_prefix(url, "https-file://")	? g_strconcat("https://", url + 13, NULL)
		: g_str_has_prefix(url, "http-file://") ? g_strconcat("http://", url + 12, NULL)
							: g_strdup(url);
	char *err = NULL;
	int r = http_get(real, body, len, &err);
	if (r == 0) {
		log_info("Subscription %s: fetched %zu bytes", name, *len);
		keep_copy(dir, s, *body, *len);
		return 0;
	}
	g_autofree char *copy = dir ? copy_path(dir, s) : NULL;
	struct stat st;
	char *ignored = NULL;
	if (copy && stat(copy, &st) == 0 && read_file(copy, body, len, &ignored) == 0) {
		char when[64];
		struct tm tm;
		localtime_r(&st.st_mtime, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
		log_warning("Subscription %s: fetch failed (%s); using the copy kept on %s", name,
			    err, when);
		g_free(err);
		return 0;
	}
	g_free(ignored);
	*why = g_strdup_printf("fetch failed (%s) and no copy was kept", err);
	g_free(err);
	return r;
}

void anser_fetcher_init(struct anser_fetcher *f, const char *persist_dir)
{
	f->fetch = fetch;
	f->ud = (void *)persist_dir;
}
