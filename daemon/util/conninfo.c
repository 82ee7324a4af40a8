// SPDX-License-Identifier: GPL-2.0-or-later
#include "conninfo.h"

#include <arpa/inet.h>
#include <glib.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct anser_conn_info *anser_conn_list_add(struct anser_conn_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct anser_conn_info *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return &l->v[l->n++];
}

void anser_conn_list_clear(struct anser_conn_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

struct anser_conn_index {
	const struct anser_conn_list *l;
	GHashTable *at; /* &cookie -> index + 1 */
	bool *used;
};

struct anser_conn_index *anser_conn_index_new(const struct anser_conn_list *l)
{
	struct anser_conn_index *x = g_new0(struct anser_conn_index, 1);

	x->l = l;
	x->at = g_hash_table_new(g_int64_hash, g_int64_equal);
	x->used = g_new0(bool, l->n + 1);
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].cookie)
			g_hash_table_insert(x->at, (gpointer)&l->v[i].cookie,
					    GSIZE_TO_POINTER(i + 1));
	return x;
}

bool anser_conn_index_fill(struct anser_conn_index *x, struct anser_conn_info *c)
{
	size_t i = c->cookie ? GPOINTER_TO_SIZE(g_hash_table_lookup(x->at, &c->cookie)) : 0;

	if (!i || x->used[i - 1])
		return false;
	const struct anser_conn_info *from = &x->l->v[i - 1];
	x->used[i - 1] = true;
	memcpy(c->outbound, from->outbound, sizeof(c->outbound));
	memcpy(c->node, from->node, sizeof(c->node));
	if (from->domain[0])
		memcpy(c->domain, from->domain, sizeof(c->domain));
	c->bytes_up = from->bytes_up;
	c->bytes_down = from->bytes_down;
	return true;
}

const struct anser_conn_info *anser_conn_index_next_unused(struct anser_conn_index *x, size_t *pos)
{
	while (*pos < x->l->n) {
		size_t i = (*pos)++;
		if (!x->used[i])
			return &x->l->v[i];
	}
	return NULL;
}

void anser_conn_index_free(struct anser_conn_index *x)
{
	if (!x)
		return;
	g_hash_table_unref(x->at);
	g_free(x->used);
	g_free(x);
}

/* "a.b.c.d:port" without printf: listings format tens of thousands. */
static char *put_v4(char *o, const uint8_t *a, uint16_t port)
{
	for (int i = 0; i < 4; i++) {
		unsigned v = a[i];
		if (v >= 100)
			*o++ = (char)('0' + v / 100);
		if (v >= 10)
			*o++ = (char)('0' + v / 10 % 10);
		*o++ = (char)('0' + v % 10);
		*o++ = i < 3 ? '.' : ':';
	}
	char digits[5];
	int n = 0;
	do
		digits[n++] = (char)('0' + port % 10);
	while ((port /= 10) && n < 5);
	while (n)
		*o++ = digits[--n];
	*o = '\0';
	return o;
}

bool anser_sockaddr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family != AF_INET6)
		return false;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

const char *anser_sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET && len >= 22) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		put_v4(buf, (const uint8_t *)&s->sin_addr, ntohs(s->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr) && len >= 22) {
			put_v4(buf, &s->sin6_addr.s6_addr[12], ntohs(s->sin6_port));
		} else {
			inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
			snprintf(buf, len, "[%s]:%u", a, ntohs(s->sin6_port));
		}
	} else {
		snprintf(buf, len, "-");
	}
	return buf;
}
