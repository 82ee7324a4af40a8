/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The DNS service: the dns section's `bind` listeners answer queries on a
 * thread of their own. A query is checked (message.h), answered from the
 * cache (cache.h) or routed (router.h) to an upstream; queries for one
 * name and type share one upstream query; answers are cached; when an
 * upstream does not answer (two tries, 2 s each) the asker gets a stale
 * answer if optimistic_cache allows one, else SERVFAIL -- never silence.
 * The cache survives reloads.
 *
 * Not yet (issue 6): upstreams over HTTPS,
 * upstreams given by name, taking over apps' queries.
 */
#ifndef ANSER_DNS_SERVICE_H
#define ANSER_DNS_SERVICE_H

#include <stdint.h>

#include "../config/config.h"

struct anser_dns_service;

/* Listeners, upstreams and rules of cfg's dns section, applied at once
 * (the first call starts the thread). A config without `bind` stops the
 * listeners. 0, or -errno with *why (malloc'd): the running setup is
 * kept. */
int anser_dns_service_apply(struct anser_dns_service **s, const struct anser_config *cfg,
			    char **why);
void anser_dns_service_free(struct anser_dns_service *s);

#endif
