/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * domain: which domain() patterns a name matches, fast -- for DNS answers
 * and sniffed names, where every lookup is on a user's critical path.
 *
 * Suffix and full patterns live in one hash table keyed by the name's
 * labels: a name's suffixes at each dot are hashed in one right-to-left
 * pass, so "a.b.example.com" costs one pass and five probes however many
 * patterns there are. Keywords run through one Aho-Corasick automaton;
 * regexes are compiled once (GRegex: Perl syntax, as in dae's Go regexp
 * for the patterns people write).
 *
 * Each pattern carries an id (the domain() condition it belongs to); a
 * lookup ORs the ids of every matching pattern into a bitset. A built set
 * is immutable and may be read from any number of threads.
 */
#ifndef ANSER_DOMAIN_H
#define ANSER_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

#include "../geodata/geodata.h"

#define ANSER_DOMAIN_MAX_NAME 253

struct anser_domain_builder;
struct anser_domain_set;

struct anser_domain_builder *anser_domain_builder_new(void);
/* 0, or -EINVAL with *why (static) for a pattern that can never match
 * or does not compile. Values are lowercased; a leading "." or trailing
 * "." of suffix and full patterns is dropped. */
int anser_domain_builder_add(struct anser_domain_builder *b, enum anser_domain_kind kind,
			     const char *value, size_t len, uint32_t id, const char **why);
/* Frees the builder. NULL on OOM. */
struct anser_domain_set *anser_domain_builder_finish(struct anser_domain_builder *b);
void anser_domain_builder_free(struct anser_domain_builder *b);
void anser_domain_set_free(struct anser_domain_set *s);

/* ORs into bits (`words` 64-bit words; ids beyond are ignored) the id of
 * every pattern `name` matches (case-insensitive; a trailing dot is
 * ignored). Returns how many patterns matched. */
size_t anser_domain_set_match(const struct anser_domain_set *s, const char *name, size_t len,
			      uint64_t *bits, size_t words);
/* Patterns held, by kind (for reports and benchmarks). */
size_t anser_domain_set_count(const struct anser_domain_set *s, enum anser_domain_kind kind);
/* Bytes of memory the set holds. */
size_t anser_domain_set_bytes(const struct anser_domain_set *s);

#endif
