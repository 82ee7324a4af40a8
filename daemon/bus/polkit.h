/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Asynchronous polkit checks for sd-bus method calls: polkitd's
 * CheckAuthorization, called on the connection the checked message came
 * in on and answered from the main loop. The subject is the caller's
 * unique bus name; interactive authorization is allowed only if the
 * message says so. Any failure to reach polkitd is a denial.
 */
#ifndef ANSER_BUS_POLKIT_H
#define ANSER_BUS_POLKIT_H

#include <systemd/sd-bus.h>

enum anser_polkit_result {
	ANSER_POLKIT_ALLOWED,
	ANSER_POLKIT_DENIED,	/* also: polkitd absent or failing */
	ANSER_POLKIT_CHALLENGE, /* authentication needed, caller did not allow interaction */
};

struct anser_polkit;
struct anser_polkit_query;

/* The checker (no state of its own today: every check is one call). */
struct anser_polkit *anser_polkit_new(void);
/* Cancel every query of p first. */
void anser_polkit_free(struct anser_polkit *p);

/* Called once from the main loop with the message that was checked (still
 * referenced by the query until the callback returns); detail is a
 * human-readable reason for a denial (may be NULL). */
typedef void (*anser_polkit_cb)(sd_bus_message *m, enum anser_polkit_result result,
				const char *detail, void *userdata);

/* Starts a check of action_id for the sender of m. Never blocks; -EACCES if
 * m has no sender (a peer-to-peer connection). */
int anser_polkit_check_async(struct anser_polkit *p, sd_bus_message *m, const char *action_id,
			     anser_polkit_cb cb, void *userdata, struct anser_polkit_query **ret);

/* The callback will not be called; the call to polkitd is cancelled and
 * the query freed now. */
void anser_polkit_query_cancel(struct anser_polkit_query *q);

#endif
