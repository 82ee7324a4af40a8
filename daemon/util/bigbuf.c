// SPDX-License-Identifier: GPL-2.0-or-later
#include "bigbuf.h"

#include <stdatomic.h>
#include <sys/mman.h>

static _Atomic size_t used;

void *anser_bigbuf_get(size_t n)
{
	size_t before = atomic_fetch_add_explicit(&used, n, memory_order_relaxed);
	if (before + n > ANSER_BIGBUF_BUDGET) {
		atomic_fetch_sub_explicit(&used, n, memory_order_relaxed);
		return NULL;
	}
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		atomic_fetch_sub_explicit(&used, n, memory_order_relaxed);
		return NULL;
	}
	return p;
}

void anser_bigbuf_put(void *p, size_t n)
{
	if (!p)
		return;
	munmap(p, n);
	atomic_fetch_sub_explicit(&used, n, memory_order_relaxed);
}

size_t anser_bigbuf_used(void)
{
	return atomic_load_explicit(&used, memory_order_relaxed);
}
