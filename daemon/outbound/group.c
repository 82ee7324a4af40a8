// SPDX-License-Identifier: GPL-2.0-or-later
#include "outbound.h"

#include <stdint.h>
#include <sys/random.h>
#include <time.h>

/* Per-thread xorshift64*: picking a node must not take a lock or a
 * syscall on the data path; it only has to be uniform, not secret. */
static uint64_t next_random(void)
{
	static _Thread_local uint64_t state;

	if (state == 0) {
		if (getrandom(&state, sizeof(state), GRND_NONBLOCK) != sizeof(state)) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			state = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
		}
		if (state == 0)
			state = 0x2545f4914f6cdd1dull;
	}
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n): reject the top sliver that would bias the modulo. */
static size_t uniform(size_t n)
{
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t x;
	do {
		x = next_random();
	} while (x >= limit);
	return (size_t)(x % n);
}

int anser_group_pick(const struct anser_config *cfg, size_t group)
{
	if (!cfg || group >= cfg->n_groups)
		return -1;
	const struct anser_group *g = &cfg->groups[group];
	if (g->n_nodes == 0)
		return -1;

	size_t i;
	switch (g->policy) {
	case ANSER_POLICY_FIXED:
		if (g->fixed_index >= g->n_nodes)
			return -1;
		i = g->fixed_index;
		break;
	case ANSER_POLICY_RANDOM:
	case ANSER_POLICY_MIN:
	case ANSER_POLICY_MIN_AVG10:
	case ANSER_POLICY_MIN_MOVING_AVG:
	case ANSER_POLICY_MIN_LAST_LATENCY:
		/* no latencies without health checks yet (warned at load) */
		i = uniform(g->n_nodes);
		break;
	default:
		return -1;
	}
	if (g->nodes[i] >= cfg->n_nodes)
		return -1;
	return (int)g->nodes[i];
}
