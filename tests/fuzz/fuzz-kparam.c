// SPDX-License-Identifier: GPL-2.0-or-later
/* The record of changed kernel parameters (<state dir>/kernel-parameters)
 * that a killed anserd leaves for the next: read against a sysctl tree of
 * its own holding one parameter, then put back. Whatever the record says,
 * nothing outside that tree is touched, the one parameter ends as a
 * record line said or as it was, and the record is gone afterwards
 * unless a value could not be written (then it is kept for a later try). */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/netmon/kparam.h"
#include "daemon/util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *root, *state, *param;

static void cleanup(void)
{
	char *v4 = g_path_get_dirname(param), *net = g_path_get_dirname(v4);
	g_unlink(param);
	g_unlink(state);
	g_rmdir(v4);
	g_rmdir(net);
	g_rmdir(root);
	g_free(v4);
	g_free(net);
}

static void setup(void)
{
	anser_log_set_level(ANSER_LOG_ERROR);
	root = g_dir_make_tmp("anser-fuzz-kparam-XXXXXX", NULL);
	if (!root)
		abort();
	state = g_build_filename(root, "record", NULL);
	char *dir = g_build_filename(root, "net", "ipv4", NULL);
	if (g_mkdir_with_parents(dir, 0700) < 0)
		abort();
	param = g_build_filename(dir, "ip_forward", NULL);
	g_free(dir);
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct anser_kparams *k;

	if (!root)
		setup();
	if (!g_file_set_contents(param, "5\n", -1, NULL) ||
	    !g_file_set_contents(state, (const char *)data, (gssize)size, NULL))
		abort();
	if (anser_kparams_new(root, state, &k) < 0)
		abort();
	size_t n = anser_kparams_changed(k);
	anser_kparams_restore(k);
	/* only net/ipv4/ip_forward can be written: other records are gone
	 * (skipped) or directories (kept, in the record, for a later try) */
	bool left = anser_kparams_changed(k) != 0;
	if (left != g_file_test(state, G_FILE_TEST_EXISTS))
		abort();
	if (left)
		g_unlink(state);
	char *v = NULL;
	if (!g_file_get_contents(param, &v, NULL, NULL))
		abort();
	/* as it was, or a value some record line gave (plain, one line) */
	if (strcmp(v, "5\n") != 0 && (n == 0 || strchr(v, ' ') || strlen(v) < 2))
		abort();
	g_free(v);
	anser_kparams_free(k);
	/* no file but ours appeared at the top */
	GDir *d = g_dir_open(root, 0, NULL);
	const char *name;
	while (d && (name = g_dir_read_name(d)))
		if (strcmp(name, "net") != 0)
			abort();
	if (d)
		g_dir_close(d);
	return 0;
}
