/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * routing: a validated config -> an immutable, refcounted generation, and
 * the compiler from a config's rules to the kernel's matcher layout
 * (bpf/anser_abi.h). Workers hold a reference to the generation a flow was
 * decided in, so a reload never pulls a group out from under a relay.
 */
#ifndef ANSER_ROUTING_H
#define ANSER_ROUTING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../../bpf/anser_abi.h"
#include "../config/config.h"

struct anser_gen {
	atomic_uint refs;
	uint64_t number;	  /* 1, 2, ... ; exported as Generation */
	unsigned slot;		  /* 0/1: map slot in the kernel */
	struct anser_config *cfg; /* owned */
};

/* Takes ownership of cfg. */
struct anser_gen *anser_gen_new(struct anser_config *cfg, uint64_t number, unsigned slot);
struct anser_gen *anser_gen_ref(struct anser_gen *g);
void anser_gen_unref(struct anser_gen *g);

struct anser_lpm_entry {
	struct anser_lpm_key key;
	struct anser_bits bits;
};

struct anser_compiled {
	struct anser_matcher *matchers;
	size_t n_matchers;
	uint32_t lookups; /* ANSER_LOOKUP_* */
	/* match_lpm entries, each with the bits of every prefix containing it */
	struct anser_lpm_entry *lpm;
	size_t n_lpm;
	struct anser_pname_key *pnames;
	size_t n_pnames;
};

/* Set ids and LPM keys carry the slot in their top bit so two generations
 * never share map entries. Returns -E2BIG when the rules do not fit the
 * maps (ANSER_MAX_MATCHERS conditions, ANSER_*_BITS per set kind). */
int anser_routing_compile(const struct anser_config *cfg, unsigned slot,
			  struct anser_compiled *out);
void anser_compiled_clear(struct anser_compiled *c);

/* Split [lo, hi] into port prefixes; calls emit(port, bits) for each. */
void anser_port_range_prefixes(uint16_t lo, uint16_t hi,
			       void (*emit)(uint16_t port, unsigned bits, void *ud), void *ud);

#endif
