// SPDX-License-Identifier: GPL-2.0-or-later
/* Group policies over recorded health: fixed, random among live nodes,
 * the latency policies with add_latency and check_tolerance, dead groups,
 * and measurements carried over to the next config. */
#include <glib.h>
#include <string.h>

#include "daemon/outbound/health.h"

#define MS 1000000LL

static struct anser_config *config_with_group(enum anser_policy policy, unsigned fixed,
					      size_t n_nodes)
{
	struct anser_config *c = g_new0(struct anser_config, 1);
	c->n_nodes = n_nodes;
	c->nodes = g_new0(struct anser_node, n_nodes);
	for (size_t i = 0; i < n_nodes; i++) {
		c->nodes[i].name = g_strdup_printf("n%zu", i);
		c->nodes[i].link = g_strdup_printf("socks5://10.0.0.%zu:1080", i + 1);
	}
	c->n_groups = 1;
	c->groups = g_new0(struct anser_group, 1);
	c->groups[0].name = g_strdup("g");
	c->groups[0].policy = policy;
	c->groups[0].fixed_index = fixed;
	c->groups[0].n_nodes = n_nodes;
	c->groups[0].nodes = g_new0(size_t, n_nodes);
	c->groups[0].add_latency = g_new0(int64_t, n_nodes);
	/* Group order differs from config order, to check the indirection. */
	for (size_t i = 0; i < n_nodes; i++)
		c->groups[0].nodes[i] = n_nodes - 1 - i;
	return c;
}

static void config_free(struct anser_config *c)
{
	for (size_t i = 0; i < c->n_nodes; i++) {
		g_free(c->nodes[i].name);
		g_free(c->nodes[i].link);
	}
	g_free(c->groups[0].name);
	g_free(c->groups[0].nodes);
	g_free(c->groups[0].add_latency);
	g_free(c->groups);
	g_free(c->nodes);
	g_free(c);
}

static void test_fixed(void)
{
	struct anser_config *c = config_with_group(ANSER_POLICY_FIXED, 1, 3);
	struct anser_health *h = anser_health_new(c, NULL);
	/* fixed(1) is the group's second node, config node 1 */
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP4), ==, 1);
	/* it stays fixed even when its checks fail (dae's meaning) */
	anser_health_record(h, 1, ANSER_NT_TCP4, -1);
	anser_health_update(h);
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP4), ==, 1);
	g_assert_cmpint(anser_group_pick(h, 1, ANSER_NT_TCP4), ==, -1);
	g_assert_cmpint(anser_group_pick(NULL, 0, ANSER_NT_TCP4), ==, -1);
	anser_health_unref(h);
	c->groups[0].fixed_index = 3;
	h = anser_health_new(c, NULL);
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP4), ==, -1);
	anser_health_unref(h);
	config_free(c);
}

static void test_random(void)
{
	struct anser_config *c = config_with_group(ANSER_POLICY_RANDOM, 0, 4);
	struct anser_health *h = anser_health_new(c, NULL);
	unsigned hits[4] = { 0 };
	for (int i = 0; i < 40000; i++) {
		int n = anser_group_pick(h, 0, ANSER_NT_UDP6);
		g_assert_cmpint(n, >=, 0);
		g_assert_cmpint(n, <, 4);
		hits[n]++;
	}
	/* Uniform: each node within 10% of its share. */
	for (int i = 0; i < 4; i++)
		g_assert_cmpuint(hits[i], >, 9000);
	/* a dead node is never picked; others stay uniform */
	anser_health_record(h, 2, ANSER_NT_UDP6, -1);
	memset(hits, 0, sizeof(hits));
	for (int i = 0; i < 30000; i++)
		hits[anser_group_pick(h, 0, ANSER_NT_UDP6)]++;
	g_assert_cmpuint(hits[2], ==, 0);
	for (int i = 0; i < 4; i++)
		if (i != 2)
			g_assert_cmpuint(hits[i], >, 9000);
	/* only for that network type */
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP4), >=, 0);
	for (size_t i = 0; i < 4; i++)
		anser_health_record(h, i, ANSER_NT_UDP6, -1);
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_UDP6), ==, -1);
	anser_health_unref(h);
	config_free(c);
}

static void test_min(void)
{
	struct anser_config *c = config_with_group(ANSER_POLICY_MIN, 0, 3);
	c->check.tolerance_ns = 20 * MS;
	struct anser_health *h = anser_health_new(c, NULL);
	/* nothing measured yet: some node, so traffic flows before the first round */
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP4), >=, 0);
	anser_health_record(h, 0, ANSER_NT_TCP4, 100 * MS);
	anser_health_record(h, 1, ANSER_NT_TCP4, 50 * MS);
	anser_health_record(h, 2, ANSER_NT_TCP4, 80 * MS);
	anser_health_update(h);
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP4), ==, 1);
	/* within the tolerance: stay */
	anser_health_record(h, 1, ANSER_NT_TCP4, 95 * MS);
	anser_health_update(h);
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP4), ==, 1);
	/* beaten by more than the tolerance: move */
	anser_health_record(h, 1, ANSER_NT_TCP4, 120 * MS);
	anser_health_update(h);
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP4), ==, 2);
	g_assert_cmpint(anser_health_current(h, 0, ANSER_NT_TCP4), ==, 2);
	/* the chosen one dies: the best live one takes over at once */
	anser_health_record(h, 2, ANSER_NT_TCP4, -1);
	anser_health_update(h);
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP4), ==, 0);
	/* everyone dead: fail fast */
	anser_health_record(h, 0, ANSER_NT_TCP4, -1);
	anser_health_record(h, 1, ANSER_NT_TCP4, -1);
	anser_health_update(h);
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP4), ==, -1);
	/* one comes back */
	anser_health_record(h, 1, ANSER_NT_TCP4, 30 * MS);
	anser_health_update(h);
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP4), ==, 1);

	struct anser_node_stat st;
	anser_health_stat(h, 1, ANSER_NT_TCP4, &st);
	g_assert_cmpint(st.alive, ==, 1);
	g_assert_cmpint(st.last, ==, 30 * MS);
	g_assert_cmpint(st.avg10, ==, (50 + 95 + 120 + 30) * MS / 4);
	anser_health_stat(h, 2, ANSER_NT_UDP4, &st);
	g_assert_cmpint(st.alive, ==, -1);
	g_assert_cmpint(st.last, ==, ANSER_LATENCY_UNKNOWN);

	/* a new config with the same nodes keeps what was measured */
	struct anser_health *h2 = anser_health_new(c, h);
	g_assert_cmpint(anser_group_pick(h2, 0, ANSER_NT_TCP4), ==, 1);
	anser_health_stat(h2, 2, ANSER_NT_TCP4, &st);
	g_assert_cmpint(st.alive, ==, 0);
	anser_health_unref(h2);
	anser_health_unref(h);
	config_free(c);
}

static void test_add_latency_avg(void)
{
	struct anser_config *c = config_with_group(ANSER_POLICY_MIN_AVG10, 0, 2);
	/* group position 0 is config node 1: make it look 100 ms slower */
	c->groups[0].add_latency[0] = 100 * MS;
	struct anser_health *h = anser_health_new(c, NULL);
	anser_health_record(h, 0, ANSER_NT_TCP6, 60 * MS);
	anser_health_record(h, 1, ANSER_NT_TCP6, 10 * MS);
	anser_health_update(h);
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP6), ==, 0);
	/* avg10: one fast check does not outweigh the history */
	for (int i = 0; i < 9; i++)
		anser_health_record(h, 0, ANSER_NT_TCP6, 60 * MS);
	anser_health_record(h, 0, ANSER_NT_TCP6, 500 * MS);
	anser_health_update(h);
	/* node 0: avg (9 * 60 + 500) / 10 = 104 ms, node 1: 10 + 100 = 110 ms */
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP6), ==, 0);
	anser_health_record(h, 0, ANSER_NT_TCP6, 500 * MS);
	anser_health_update(h);
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_TCP6), ==, 1);
	anser_health_unref(h);
	config_free(c);

	c = config_with_group(ANSER_POLICY_MIN_MOVING_AVG, 0, 2);
	h = anser_health_new(c, NULL);
	anser_health_record(h, 0, ANSER_NT_UDP4, 100 * MS);
	anser_health_record(h, 1, ANSER_NT_UDP4, 40 * MS);
	anser_health_update(h);
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_UDP4), ==, 1);
	anser_health_record(h, 1, ANSER_NT_UDP4, 200 * MS); /* moving avg 120 */
	anser_health_update(h);
	g_assert_cmpint(anser_group_pick(h, 0, ANSER_NT_UDP4), ==, 0);
	struct anser_node_stat st;
	anser_health_stat(h, 1, ANSER_NT_UDP4, &st);
	g_assert_cmpint(st.moving_avg, ==, 120 * MS);
	anser_health_unref(h);
	config_free(c);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/health/fixed", test_fixed);
	g_test_add_func("/health/random", test_random);
	g_test_add_func("/health/min", test_min);
	g_test_add_func("/health/add-latency-avg", test_add_latency_avg);
	return g_test_run();
}
