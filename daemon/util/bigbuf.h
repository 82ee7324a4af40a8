/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef ANSER_BIGBUF_H
#define ANSER_BIGBUF_H

#include <stddef.h>

/* Bigger buffers for bulk flows, out of one budget for the process.
 *
 * A relay session starts with small buffers of its own; a flow that keeps
 * filling them (a download, an upload) moves to a big one, so it is read
 * and written in fewer, larger system calls -- and the kernel sends fewer
 * window updates to the app. At most ANSER_BIGBUF_BUDGET bytes are out at
 * once: past that, flows keep their small buffers (slower, never
 * failing). Each buffer is its own mapping, so a flow's end gives the
 * memory back to the system. */
#define ANSER_BIGBUF_BUDGET (64u << 20)

/* n bytes, not zeroed; NULL when the budget is spent or there is no
 * memory. */
void *anser_bigbuf_get(size_t n);
/* Gives back what anser_bigbuf_get(n) returned (NULL is ignored). */
void anser_bigbuf_put(void *p, size_t n);
/* Bytes out now (for tests and logs). */
size_t anser_bigbuf_used(void);

#endif
