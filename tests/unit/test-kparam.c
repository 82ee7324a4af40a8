// SPDX-License-Identifier: GPL-2.0-or-later
/* auto_config_kernel_parameter on a sysctl tree of the test's own (a
 * temporary directory laid out like /proc/sys): what is set, the record
 * kept before each change, what is put back, a record left by a killed
 * anserd, parameters that are missing or cannot be written, and hostile
 * records. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/netmon/kparam.h"

struct tree {
	char *root, *state;
};

static void put(const struct tree *t, const char *path, const char *value)
{
	char *full = g_build_filename(t->root, path, NULL);
	char *dir = g_path_get_dirname(full);
	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	char *text = g_strdup_printf("%s\n", value);
	g_assert_true(g_file_set_contents(full, text, -1, NULL));
	g_free(text);
	g_free(dir);
	g_free(full);
}

static char *get(const struct tree *t, const char *path)
{
	char *full = g_build_filename(t->root, path, NULL);
	char *text = NULL;
	if (!g_file_get_contents(full, &text, NULL, NULL))
		text = g_strdup("<none>");
	g_free(full);
	return g_strstrip(text);
}

#define assert_value(t, path, want)                                                                \
	do {                                                                                       \
		char *_v = get(t, path);                                                           \
		g_assert_cmpstr(_v, ==, want);                                                     \
		g_free(_v);                                                                        \
	} while (0)

static struct tree make_tree(void)
{
	struct tree t;
	t.root = g_dir_make_tmp("anser-kparam-XXXXXX", NULL);
	g_assert_nonnull(t.root);
	t.state = g_build_filename(t.root, "state-kernel-parameters", NULL);
	put(&t, "net/ipv4/ip_forward", "0");
	put(&t, "net/ipv6/conf/all/forwarding", "0");
	put(&t, "net/ipv4/conf/all/send_redirects", "1");
	put(&t, "net/ipv4/conf/lan0/send_redirects", "1");
	put(&t, "net/ipv4/conf/lan1/send_redirects", "0"); /* already as wanted */
	put(&t, "net/ipv6/conf/wan0/accept_ra", "1");
	put(&t, "net/ipv6/conf/wan1/accept_ra", "0"); /* the user's choice: left */
	return t;
}

static void rm_tree(struct tree *t)
{
	char *argv[] = { "rm", "-rf", t->root, NULL };
	g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
				   NULL, NULL));
	g_free(t->root);
	g_free(t->state);
}

static const char *const LAN[] = { "lan0", "lan1", "gone0" };
static const char *const WAN[] = { "wan0", "wan1" };

static void test_apply_restore(void)
{
	struct tree t = make_tree();
	struct anser_kparams *k;

	g_assert_cmpint(anser_kparams_new(t.root, t.state, &k), ==, 0);
	g_assert_cmpuint(anser_kparams_changed(k), ==, 0);
	anser_kparams_apply(k, LAN, 3, WAN, 2);
	assert_value(&t, "net/ipv4/ip_forward", "1");
	assert_value(&t, "net/ipv6/conf/all/forwarding", "1");
	assert_value(&t, "net/ipv4/conf/all/send_redirects", "0");
	assert_value(&t, "net/ipv4/conf/lan0/send_redirects", "0");
	assert_value(&t, "net/ipv4/conf/lan1/send_redirects", "0");
	assert_value(&t, "net/ipv6/conf/wan0/accept_ra", "2");
	assert_value(&t, "net/ipv6/conf/wan1/accept_ra", "0");
	/* lan1 was right already, gone0 has no directory: 5 changed */
	g_assert_cmpuint(anser_kparams_changed(k), ==, 5);
	char *rec = NULL;
	g_assert_true(g_file_get_contents(t.state, &rec, NULL, NULL));
	g_assert_nonnull(strstr(rec, "net/ipv4/ip_forward 0\n"));
	g_assert_nonnull(strstr(rec, "net/ipv4/conf/lan0/send_redirects 1\n"));
	g_assert_nonnull(strstr(rec, "net/ipv6/conf/wan0/accept_ra 1\n"));
	g_assert_null(strstr(rec, "lan1"));
	g_free(rec);

	/* again (an interface came): nothing twice, a new one added */
	put(&t, "net/ipv4/conf/lan2/send_redirects", "1");
	const char *const more[] = { "lan0", "lan2" };
	anser_kparams_apply(k, more, 2, WAN, 2);
	g_assert_cmpuint(anser_kparams_changed(k), ==, 6);
	assert_value(&t, "net/ipv4/conf/lan2/send_redirects", "0");

	/* lan2 leaves before the exit: skipped, the rest put back */
	char *dir = g_build_filename(t.root, "net/ipv4/conf/lan2", NULL);
	char *file = g_build_filename(dir, "send_redirects", NULL);
	g_assert_cmpint(g_unlink(file), ==, 0);
	g_assert_cmpint(g_rmdir(dir), ==, 0);
	g_free(file);
	g_free(dir);
	anser_kparams_restore(k);
	g_assert_cmpuint(anser_kparams_changed(k), ==, 0);
	assert_value(&t, "net/ipv4/ip_forward", "0");
	assert_value(&t, "net/ipv6/conf/all/forwarding", "0");
	assert_value(&t, "net/ipv4/conf/all/send_redirects", "1");
	assert_value(&t, "net/ipv4/conf/lan0/send_redirects", "1");
	assert_value(&t, "net/ipv4/conf/lan1/send_redirects", "0");
	assert_value(&t, "net/ipv6/conf/wan0/accept_ra", "1");
	g_assert_false(g_file_test(t.state, G_FILE_TEST_EXISTS));
	anser_kparams_free(k);
	rm_tree(&t);
}

/* A killed anserd leaves its record and the changed values: the next one
 * puts back the values from before the first, not what it finds. */
static void test_left_record(void)
{
	struct tree t = make_tree();
	struct anser_kparams *k;

	g_assert_cmpint(anser_kparams_new(t.root, t.state, &k), ==, 0);
	anser_kparams_apply(k, LAN, 1, WAN, 1);
	anser_kparams_free(k); /* no restore: as if killed */
	assert_value(&t, "net/ipv4/ip_forward", "1");
	g_assert_true(g_file_test(t.state, G_FILE_TEST_EXISTS));

	g_assert_cmpint(anser_kparams_new(t.root, t.state, &k), ==, 0);
	g_assert_cmpuint(anser_kparams_changed(k), ==, 5);
	anser_kparams_apply(k, LAN, 1, WAN, 1); /* already recorded: the old values stay */
	g_assert_cmpuint(anser_kparams_changed(k), ==, 5);
	anser_kparams_restore(k);
	assert_value(&t, "net/ipv4/ip_forward", "0");
	assert_value(&t, "net/ipv4/conf/lan0/send_redirects", "1");
	assert_value(&t, "net/ipv6/conf/wan0/accept_ra", "1");
	g_assert_false(g_file_test(t.state, G_FILE_TEST_EXISTS));
	anser_kparams_free(k);
	rm_tree(&t);
}

/* A parameter that cannot be written is not recorded (nothing to put
 * back); one that cannot be put back stays in the record. */
static void test_unwritable(void)
{
	/* root writes through any mode bits: a directory in place of a file
	 * makes its read and write fail instead */
	struct tree t = make_tree();
	struct anser_kparams *k;
	char *full = g_build_filename(t.root, "net/ipv4/ip_forward", NULL);
	g_assert_cmpint(g_unlink(full), ==, 0);
	g_assert_cmpint(g_mkdir(full, 0755), ==, 0);

	g_assert_cmpint(anser_kparams_new(t.root, t.state, &k), ==, 0);
	anser_kparams_apply(k, NULL, 0, NULL, 0);
	/* ip_forward unreadable: skipped; the other two set */
	g_assert_cmpuint(anser_kparams_changed(k), ==, 2);
	assert_value(&t, "net/ipv6/conf/all/forwarding", "1");
	/* forwarding cannot be put back now: it stays recorded */
	char *fw = g_build_filename(t.root, "net/ipv6/conf/all/forwarding", NULL);
	g_assert_cmpint(g_unlink(fw), ==, 0);
	g_assert_cmpint(g_mkdir(fw, 0755), ==, 0);
	anser_kparams_restore(k);
	g_assert_cmpuint(anser_kparams_changed(k), ==, 1);
	assert_value(&t, "net/ipv4/conf/all/send_redirects", "1");
	char *rec = NULL;
	g_assert_true(g_file_get_contents(t.state, &rec, NULL, NULL));
	g_assert_nonnull(strstr(rec, "net/ipv6/conf/all/forwarding 0\n"));
	g_free(rec);
	anser_kparams_free(k);
	g_free(fw);
	g_free(full);
	rm_tree(&t);
}

/* Records that name what is not a network parameter, or values that are
 * not plain, are refused line by line: nothing outside net/ is written. */
static void test_hostile_record(void)
{
	struct tree t = make_tree();
	struct anser_kparams *k;
	put(&t, "kernel/secret", "a");
	const char *text = "# comment\n"
			   "kernel/secret b\n"
			   "net/../kernel/secret c\n"
			   "/net/ipv4/ip_forward 1\n"
			   "net/ipv4/ip_forward\n"
			   "net/ipv4/conf/all/send_redirects 1 2\n"
			   "net/ipv4/conf/lan0/send_redirects 7\n"
			   "net/ipv4/conf/lan0/send_redirects 8\n"
			   "\n";
	g_assert_true(g_file_set_contents(t.state, text, -1, NULL));
	g_assert_cmpint(anser_kparams_new(t.root, t.state, &k), ==, 0);
	/* only the first lan0 line is a record */
	g_assert_cmpuint(anser_kparams_changed(k), ==, 1);
	anser_kparams_restore(k);
	assert_value(&t, "kernel/secret", "a");
	assert_value(&t, "net/ipv4/ip_forward", "0");
	assert_value(&t, "net/ipv4/conf/lan0/send_redirects", "7");
	anser_kparams_free(k);
	rm_tree(&t);
}

/* Interface names that would leave the interface's directory are skipped. */
static void test_bad_ifnames(void)
{
	struct tree t = make_tree();
	struct anser_kparams *k;
	g_assert_cmpint(anser_kparams_new(t.root, t.state, &k), ==, 0);
	const char *const bad[] = { "..", ".", "a/b", "", "waytoolonginterfacename" };
	put(&t, "net/ipv4/conf/send_redirects", "1");
	anser_kparams_apply(k, bad, 5, bad, 5);
	g_assert_cmpuint(anser_kparams_changed(k), ==, 3); /* the three global ones */
	assert_value(&t, "net/ipv4/conf/send_redirects", "1");
	anser_kparams_restore(k);
	anser_kparams_free(k);
	rm_tree(&t);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/kparam/apply-restore", test_apply_restore);
	g_test_add_func("/kparam/left-record", test_left_record);
	g_test_add_func("/kparam/unwritable", test_unwritable);
	g_test_add_func("/kparam/hostile-record", test_hostile_record);
	g_test_add_func("/kparam/bad-ifnames", test_bad_ifnames);
	return g_test_run();
}
