/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * auto_config_kernel_parameter: the sysctls a gateway needs, set while
 * anserd runs and put back as they were when it stops.
 *
 * Set: net.ipv4.ip_forward and net.ipv6.conf.all.forwarding to 1;
 * net.ipv4.conf.all.send_redirects and .<lan>.send_redirects of each LAN
 * interface to 0 (the kernel sends a redirect when either says so, and a
 * redirect would tell LAN clients to bypass the gateway); accept_ra of
 * each WAN interface from 1 to 2 (with forwarding on, 1 means "ignore
 * router advertisements", and the machine's own IPv6 default route would
 * age out).
 *
 * Every value changed is written to a state file before it is changed
 * (path and old value), so an anserd that was killed leaves a record: the
 * next one reads it, keeps those old values as the ones to put back, and
 * puts them back at its exit (or at once, when its config no longer asks
 * for the parameters).
 */
#ifndef ANSER_KPARAM_H
#define ANSER_KPARAM_H

#include <stddef.h>

struct anser_kparams;

/* root: the sysctl tree ("/proc/sys"; a test gives a directory of its
 * own). state_path: the record (its directory must exist). A record left
 * by an earlier run is read here. */
int anser_kparams_new(const char *root, const char *state_path, struct anser_kparams **out);

/* Set what a gateway with these interfaces needs (names, n of each). Safe
 * to call again as interfaces come and go: what is set already is left.
 * A parameter that cannot be set is logged, once, and skipped. */
void anser_kparams_apply(struct anser_kparams *k, const char *const *lan, size_t n_lan,
			 const char *const *wan, size_t n_wan);

/* Put back every value changed, newest first, and remove the record. A
 * parameter that is gone (its interface left) is skipped. */
void anser_kparams_restore(struct anser_kparams *k);

/* How many values are changed now (and would be put back). */
size_t anser_kparams_changed(const struct anser_kparams *k);

/* Frees; changes nothing (restore first to put the values back). */
void anser_kparams_free(struct anser_kparams *k);

#endif
