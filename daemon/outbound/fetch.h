/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fetching subscriptions for the config parser (struct anser_fetcher):
 *   file://PATH              read (relative to the config's directory)
 *   http(s)://URL            fetched with libcurl (15 s, 8 MiB, redirects)
 *   http(s)-file://URL       the same; named as dae names "keep a copy"
 * Every body fetched from the network is kept in persist.d/ under the
 * state directory (mode 0600: it holds passwords), and when a later fetch
 * fails that copy is used, with a warning saying how old it is.
 * libcurl with GnuTLS: the system trust store, or $SSL_CERT_FILE.
 */
#ifndef ANSER_FETCH_H
#define ANSER_FETCH_H

#include "../config/config.h"

/* persist_dir is kept (not copied). */
void anser_fetcher_init(struct anser_fetcher *f, const char *persist_dir);

#endif
