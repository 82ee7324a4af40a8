/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef ANSER_ALLOC_H
#define ANSER_ALLOC_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A struct whose big buffers sit at its end, from member `first_unzeroed`
 * on, and are only read after being written: zero the part before them
 * only. Relay sessions and streams are made per connection, and a calloc()
 * of every buffer cost a few tens of microseconds each. NULL on ENOMEM. */
#define ANSER_ALLOC_HEAD(type, first_unzeroed)                                                     \
	({                                                                                         \
		type *p_ = malloc(sizeof(type));                                                   \
		if (p_)                                                                            \
			memset(p_, 0, offsetof(type, first_unzeroed));                             \
		p_;                                                                                \
	})

#endif
