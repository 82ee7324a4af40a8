// SPDX-License-Identifier: GPL-2.0-or-later
/* BLAKE3 against Debian's b3sum (the BLAKE3 team's own tool): hash,
 * keyed hash and key derivation, for inputs around every block, chunk and
 * tree boundary, output lengths below, at and beyond one block, and input
 * fed in odd pieces. Skips when b3sum is not installed. */
#include <glib.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#include "daemon/outbound/blake3.h"

static const size_t lengths[] = { 0,	1,    63,   64,	  65,	127,  128,  1023,  1024,  1025,
				  2047, 2048, 2049, 3072, 3073, 4096, 8191, 31744, 65536, 102401 };

enum mode { HASH, KEYED, DERIVE };

static const char *CONTEXT = "shadowsocks 2022 session subkey";

static char *b3sum(const char *file, enum mode m, const uint8_t key[32], size_t out_len)
{
	g_autofree char *len = g_strdup_printf("%zu", out_len);
	const char *argv[10] = { "b3sum", "--no-names", "--length", len };
	int n = 4, status = 0;
	char *out = NULL;
	g_autoptr(GError) err = NULL;

	if (m == DERIVE) {
		argv[n++] = "--derive-key";
		argv[n++] = CONTEXT;
	} else if (m == KEYED) {
		argv[n++] = "--keyed";
	}
	argv[n++] = file;
	argv[n] = NULL;
	g_autoptr(GSubprocess) p = g_subprocess_newv(
		argv, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &err);
	g_assert_no_error(err);
	g_autoptr(GBytes) in = g_bytes_new(key, m == KEYED ? 32 : 0);
	g_autoptr(GBytes) o = NULL;
	g_subprocess_communicate(p, in, NULL, &o, NULL, &err);
	g_assert_no_error(err);
	status = g_subprocess_get_exit_status(p);
	g_assert_cmpint(status, ==, 0);
	out = g_strndup(g_bytes_get_data(o, NULL), g_bytes_get_size(o));
	g_strchomp(out);
	return out;
}

static char *ours(const uint8_t *data, size_t n, enum mode m, const uint8_t key[32], size_t out_len,
		  size_t piece)
{
	struct anser_blake3 h;
	g_autofree uint8_t *out = g_malloc(out_len);
	GString *hex = g_string_new(NULL);

	if (m == HASH)
		anser_blake3_init(&h);
	else if (m == KEYED)
		anser_blake3_init_keyed(&h, key);
	else
		anser_blake3_init_derive(&h, CONTEXT);
	for (size_t off = 0; off < n; off += piece)
		anser_blake3_update(&h, data + off, MIN(piece, n - off));
	anser_blake3_final(&h, out, out_len);
	for (size_t i = 0; i < out_len; i++)
		g_string_append_printf(hex, "%02x", out[i]);
	return g_string_free(hex, FALSE);
}

static void test_vs_b3sum(void)
{
	g_autofree char *exe = g_find_program_in_path("b3sum");
	if (!exe) {
		g_test_skip("b3sum is not installed");
		return;
	}
	g_autoptr(GError) err = NULL;
	g_autofree char *dir = g_dir_make_tmp("anser-blake3-XXXXXX", &err);
	g_assert_no_error(err);
	g_autofree char *file = g_build_filename(dir, "in", NULL);
	uint8_t key[32];
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0xA0 + i);
	size_t max = lengths[G_N_ELEMENTS(lengths) - 1];
	g_autofree uint8_t *data = g_malloc(max);
	for (size_t i = 0; i < max; i++)
		data[i] = (uint8_t)(i % 251); /* the official vectors' pattern */

	unsigned checked = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(lengths); i++) {
		size_t n = lengths[i];
		g_assert_true(g_file_set_contents(file, (const char *)data, (gssize)n, NULL));
		for (enum mode m = HASH; m <= DERIVE; m++) {
			static const size_t outs[] = { 16, 32, 64, 131 };
			for (size_t k = 0; k < G_N_ELEMENTS(outs); k++) {
				g_autofree char *want = b3sum(file, m, key, outs[k]);
				/* whole, and in pieces that straddle blocks */
				g_autofree char *a = ours(data, n, m, key, outs[k], n ? n : 1);
				g_autofree char *b = ours(data, n, m, key, outs[k], 7);
				if (strcmp(a, want) != 0 || strcmp(b, want) != 0)
					g_error("mode %d, %zu bytes, %zu out: b3sum %s, ours %s / "
						"%s",
						m, n, outs[k], want, a, b);
				checked++;
			}
		}
	}
	g_test_message("%u outputs agree with b3sum", checked);
	g_unlink(file);
	g_rmdir(dir);
}

/* Two known answers, so the test means something where b3sum is absent:
 * the spec's hash of "" and of "abc". */
static void test_known(void)
{
	g_autofree char *e = ours((const uint8_t *)"", 0, HASH, NULL, 32, 1);
	g_autofree char *abc = ours((const uint8_t *)"abc", 3, HASH, NULL, 32, 1);
	g_assert_cmpstr(e, ==, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
	g_assert_cmpstr(abc, ==,
			"6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/blake3/known", test_known);
	g_test_add_func("/blake3/vs-b3sum", test_vs_b3sum);
	return g_test_run();
}
