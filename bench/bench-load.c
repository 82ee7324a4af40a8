// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Loading big rule sets, and looking names up in them.
 *
 * Writes a geosite.dat with 100,000 domains (tags cn 60,000, gfw 35,000,
 * ads 5,000: suffix, full, keyword and regex entries, as real lists mix
 * them) and a geoip.dat with 20,000 CIDRs, and a config that routes by
 * them. Then, in a fresh process (exec'd, so nothing of the generator
 * counts), reads and checks the config, expands the sets and compiles the
 * kernel's tables and the domain matcher, and reports the time and the
 * process's peak RSS; as root it also writes the tables into the kernel's
 * maps (BPF, not attached anywhere) and times that. Last, it times name
 * lookups: half hit a list (a random subdomain of a listed name), half
 * miss; the median over batches of 64 lookups, per lookup.
 *
 * Usage: bench-load [DOMAINS [CIDRS]]     (defaults 100000 20000)
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/config/config.h"
#include "daemon/datapath/datapath.h"
#include "daemon/routing/domain.h"
#include "daemon/routing/routing.h"
#include "tests/geowriter.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long status_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long v = -1;
	size_t n = strlen(field);

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static const char *const tlds[] = { "com", "net", "org", "cn", "io", "co.uk", "com.cn", "de" };

static char *random_name(GRand *r)
{
	GString *s = g_string_new(NULL);
	int labels = g_rand_int_range(r, 1, 3);
	for (int l = 0; l < labels; l++) {
		int len = g_rand_int_range(r, 3, 12);
		for (int i = 0; i < len; i++)
			g_string_append_c(s, (char)('a' + g_rand_int_range(r, 0, 26)));
		g_string_append_c(s, '.');
	}
	g_string_append(s, tlds[g_rand_int_range(r, 0, G_N_ELEMENTS(tlds))]);
	return g_string_free(s, FALSE);
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	g_autofree char *p = g_build_filename(dir, name, NULL);
	GError *e = NULL;
	if (!g_file_set_contents(p, data, (gssize)len, &e)) {
		fprintf(stderr, "cannot write %s: %s\n", p, e->message);
		exit(1);
	}
	chmod(p, 0600);
}

/* The data files and config; the names listed go to names.txt (for the
 * lookups). */
static void generate(const char *dir, unsigned n_domains, unsigned n_cidrs)
{
	GRand *r = g_rand_new_with_seed(42);
	struct geowriter w;
	GString *names = g_string_new(NULL);
	const struct {
		const char *tag;
		double share;
	} tags[] = { { "cn", 0.60 }, { "gfw", 0.35 }, { "ads", 0.05 } };

	geo_begin(&w);
	for (size_t t = 0; t < G_N_ELEMENTS(tags); t++) {
		geo_entry(&w, tags[t].tag);
		unsigned n = (unsigned)(n_domains * tags[t].share);
		for (unsigned i = 0; i < n; i++) {
			g_autofree char *name = random_name(r);
			unsigned kind = 2; /* suffix */
			int x = g_rand_int_range(r, 0, 1000);
			if (x < 150)
				kind = 3; /* full */
			else if (x < 152)
				kind = 0; /* keyword */
			if (i < 10 && t == 2) {
				g_autofree char *re = g_strdup_printf("^ad[0-9]+\\.%s$", name);
				geo_domain(&w, 1, re, NULL);
				continue;
			}
			if (kind == 0) {
				name[g_rand_int_range(r, 4, 7)] = 0; /* a short keyword */
				geo_domain(&w, 0, name, NULL);
				continue;
			}
			geo_domain(&w, kind, name, NULL);
			g_string_append_printf(names, "%s\n", name);
		}
	}
	GByteArray *site = geo_end(&w);
	write_file(dir, "geosite.dat", site->data, site->len);
	g_byte_array_unref(site);

	geo_begin(&w);
	geo_entry(&w, "cn");
	for (unsigned i = 0; i < n_cidrs; i++) {
		if (i % 10 == 9) {
			uint8_t a6[16] = { 0x24, 0x0e };
			a6[2] = (uint8_t)g_rand_int_range(r, 0, 256);
			a6[3] = (uint8_t)g_rand_int_range(r, 0, 256);
			geo_cidr(&w, a6, 16, g_rand_int_range(r, 24, 33));
		} else {
			uint32_t a = g_rand_int(r);
			uint8_t a4[4] = { a >> 24, a >> 16, a >> 8, a };
			geo_cidr(&w, a4, 4, g_rand_int_range(r, 12, 25));
		}
	}
	GByteArray *ip = geo_end(&w);
	write_file(dir, "geoip.dat", ip->data, ip->len);
	g_byte_array_unref(ip);

	const char *config = "node { n: 'socks5://10.0.0.1:1080' }\n"
			     "group { proxy { policy: fixed(0) } }\n"
			     "routing {\n"
			     "    domain(geosite:ads) -> block\n"
			     "    domain(geosite:gfw) -> proxy\n"
			     "    domain(geosite:cn) -> direct\n"
			     "    dip(geoip:private) -> direct\n"
			     "    dip(geoip:cn) -> direct\n"
			     "    pname(curl, wget) && dport(80, 443) -> proxy\n"
			     "    fallback: proxy\n"
			     "}\n";
	write_file(dir, "config.dae", config, strlen(config));
	write_file(dir, "names.txt", names->str, names->len);
	g_string_free(names, TRUE);
	g_rand_free(r);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The child: load, report, look up. */
static int load(const char *dir)
{
	g_autofree char *path = g_build_filename(dir, "config.dae", NULL);
	struct anser_config *cfg = NULL;
	struct anser_diags d = { 0 };
	struct anser_compiled c;
	long rss0 = status_kib("VmRSS");

	double t0 = now_ms();
	if (anser_config_parse_file(path, &cfg, &d) < 0) {
		char *m = anser_diags_format(&d);
		fprintf(stderr, "%s", m);
		return 1;
	}
	double t1 = now_ms();
	int r = anser_routing_compile(cfg, NULL, 1, &c);
	double t2 = now_ms();
	if (r < 0) {
		fprintf(stderr, "compile: %s (%s)\n", strerror(-r), c.limit ? c.limit : "");
		return 1;
	}
	const struct anser_domain_set *set = anser_domain_rules_set(c.dom);
	size_t n_dom = 0;
	for (int k = 0; k < 4; k++)
		n_dom += anser_domain_set_count(set, (enum anser_domain_kind)k);
	size_t n_cidr = 0;
	for (size_t i = 0; i < cfg->n_rules; i++)
		for (size_t k = 0; k < cfg->rules[i].n_conds; k++)
			n_cidr += cfg->rules[i].conds[k].n_cidrs;
	printf("loaded %zu domains (%zu suffix, %zu full, %zu keyword, %zu regex) and %zu CIDRs "
	       "(%zu LPM entries)\n",
	       n_dom, anser_domain_set_count(set, ANSER_DOMAIN_SUFFIX),
	       anser_domain_set_count(set, ANSER_DOMAIN_FULL),
	       anser_domain_set_count(set, ANSER_DOMAIN_KEYWORD),
	       anser_domain_set_count(set, ANSER_DOMAIN_REGEX), n_cidr, c.n_lpm);
	printf("  read + check + expand sets: %8.1f ms\n", t1 - t0);
	printf("  compile tables + matcher:   %8.1f ms\n", t2 - t1);
	printf("  total:                      %8.1f ms\n", t2 - t0);
	printf("  peak RSS: %.1f MiB (%.1f MiB before loading); matcher %.1f MiB\n",
	       status_kib("VmHWM") / 1024.0, rss0 / 1024.0,
	       anser_domain_set_bytes(set) / 1048576.0);
	if (geteuid() == 0) {
		struct anser_datapath *dp;
		struct anser_compiled copy;
		if (anser_datapath_new(NULL, 0, &dp) == 0) {
			/* compile again for the kernel: load takes the tables */
			anser_routing_compile(cfg, NULL, 1, &copy);
			double k0 = now_ms();
			int lr = anser_datapath_load_compiled(dp, &copy, 1);
			double k1 = now_ms();
			printf("  into the kernel's maps:     %8.1f ms%s (%zu LPM entries)\n",
			       k1 - k0, lr < 0 ? " (FAILED)" : "", c.n_lpm);
			anser_datapath_free(dp);
		}
	}

	/* lookups */
	g_autofree char *names_path = g_build_filename(dir, "names.txt", NULL);
	g_autofree char *text = NULL;
	g_file_get_contents(names_path, &text, NULL, NULL);
	char **listed = g_strsplit(text, "\n", -1);
	guint n_listed = g_strv_length(listed) - 1;
	GRand *rnd = g_rand_new_with_seed(7);
	enum { BATCH = 64, BATCHES = 20000 };
	char **q = g_new0(char *, BATCH * 64);
	for (int i = 0; i < BATCH * 64; i++) {
		if (i % 2 == 0)
			q[i] = g_strdup_printf("www%u.%s", g_rand_int_range(rnd, 0, 99),
					       listed[g_rand_int_range(rnd, 0, (gint32)n_listed)]);
		else
			q[i] = random_name(rnd);
	}
	double *per = g_new(double, BATCHES), *per_rules = g_new(double, BATCHES);
	uint64_t bits[1];
	size_t hits = 0;
	for (int b = 0; b < BATCHES; b++) {
		char **batch = q + (size_t)(b % 64) * BATCH;
		struct timespec s, e;
		clock_gettime(CLOCK_MONOTONIC, &s);
		for (int i = 0; i < BATCH; i++) {
			bits[0] = 0;
			hits += anser_domain_set_match(set, batch[i], strlen(batch[i]), bits, 1) >
				0;
		}
		clock_gettime(CLOCK_MONOTONIC, &e);
		per[b] = ((e.tv_sec - s.tv_sec) * 1e9 + (e.tv_nsec - s.tv_nsec)) / BATCH;
		struct anser_rules m;
		clock_gettime(CLOCK_MONOTONIC, &s);
		for (int i = 0; i < BATCH; i++)
			anser_domain_rules_eval(c.dom, batch[i], &m);
		clock_gettime(CLOCK_MONOTONIC, &e);
		per_rules[b] = ((e.tv_sec - s.tv_sec) * 1e9 + (e.tv_nsec - s.tv_nsec)) / BATCH;
	}
	qsort(per, BATCHES, sizeof(*per), cmp_double);
	qsort(per_rules, BATCHES, sizeof(*per_rules), cmp_double);
	printf("lookup of a name (half listed, half not; %u batches of %d):\n", BATCHES, BATCH);
	printf("  patterns matched:  median %6.0f ns, p99 %6.0f ns per name (%.0f%% hit)\n",
	       per[BATCHES / 2], per[BATCHES * 99 / 100], 100.0 * hits / (BATCHES * BATCH));
	printf("  rules it leaves:   median %6.0f ns, p99 %6.0f ns per name\n",
	       per_rules[BATCHES / 2], per_rules[BATCHES * 99 / 100]);
	for (int i = 0; i < BATCH * 64; i++)
		g_free(q[i]);
	g_free(q);
	g_free(per);
	g_free(per_rules);
	g_strfreev(listed);
	g_rand_free(rnd);
	anser_compiled_clear(&c);
	anser_config_free(cfg);
	anser_diags_clear(&d);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--load") == 0)
		return load(argv[2]);
	unsigned n_domains = argc > 1 ? (unsigned)atoi(argv[1]) : 100000;
	unsigned n_cidrs = argc > 2 ? (unsigned)atoi(argv[2]) : 20000;
	g_autofree char *dir = g_dir_make_tmp("anser-bench-load-XXXXXX", NULL);

	printf("generating %u domains and %u CIDRs in %s\n", n_domains, n_cidrs, dir);
	generate(dir, n_domains, n_cidrs);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", argv[0], "--load", dir, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
