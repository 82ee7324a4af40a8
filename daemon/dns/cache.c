// SPDX-License-Identifier: GPL-2.0-or-later
/* The DNS answer cache: a hash of whole responses plus an LRU list. */
#include "cache.h"

#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <string.h>

/* Bigger answers are passed through, not kept: 10,000 entries stay
 * within 160 MiB however large the upstream's answers are. */
#define MAX_KEPT  16384
#define MAX_TTLS  512
#define KEY_EXTRA 4 /* qtype, qclass after the name */

struct entry {
	GList lru; /* data: the entry itself */
	uint8_t key[ANSER_DNS_MAX_NAME + KEY_EXTRA];
	size_t key_len;
	int64_t stored_ms, expires_ms;
	uint32_t lifetime;
	uint16_t n_ttls;
	uint16_t *ttl_offs;
	uint32_t *ttls; /* as received */
	size_t len;
	uint8_t *msg;
};

struct anser_dns_cache {
	pthread_mutex_t lock;
	GHashTable *by_key; /* GBytes-like key (struct entry's) -> entry */
	GQueue lru;	    /* most recent first */
	size_t max;
	uint64_t evictions;
};

static guint key_hash(gconstpointer k)
{
	const struct entry *e = k;
	guint h = 2166136261u;
	for (size_t i = 0; i < e->key_len; i++)
		h = (h ^ e->key[i]) * 16777619u;
	return h;
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
	const struct entry *x = a, *y = b;
	return x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0;
}

/* The lookup key: the name in lower case, then type and class. */
static size_t make_key(uint8_t *key, const uint8_t *qname, size_t qlen, uint16_t qtype,
		       uint16_t qclass)
{
	for (size_t i = 0; i < qlen; i++)
		key[i] = (uint8_t)(qname[i] >= 'A' && qname[i] <= 'Z' ? qname[i] - 'A' + 'a'
								      : qname[i]);
	key[qlen] = (uint8_t)(qtype >> 8);
	key[qlen + 1] = (uint8_t)qtype;
	key[qlen + 2] = (uint8_t)(qclass >> 8);
	key[qlen + 3] = (uint8_t)qclass;
	return qlen + KEY_EXTRA;
}

static void entry_free(struct entry *e)
{
	g_free(e->ttl_offs);
	g_free(e->ttls);
	g_free(e->msg);
	g_free(e);
}

struct anser_dns_cache *anser_dns_cache_new(size_t max_entries)
{
	struct anser_dns_cache *c = g_new0(struct anser_dns_cache, 1);

	pthread_mutex_init(&c->lock, NULL);
	c->by_key = g_hash_table_new(key_hash, key_equal);
	g_queue_init(&c->lru);
	c->max = max_entries ? max_entries : 1;
	return c;
}

static void drop(struct anser_dns_cache *c, struct entry *e)
{
	g_hash_table_remove(c->by_key, e);
	g_queue_unlink(&c->lru, &e->lru);
	entry_free(e);
}

void anser_dns_cache_clear(struct anser_dns_cache *c)
{
	pthread_mutex_lock(&c->lock);
	while (c->lru.head)
		drop(c, c->lru.head->data);
	pthread_mutex_unlock(&c->lock);
}

void anser_dns_cache_free(struct anser_dns_cache *c)
{
	if (!c)
		return;
	anser_dns_cache_clear(c);
	g_hash_table_unref(c->by_key);
	pthread_mutex_destroy(&c->lock);
	g_free(c);
}

int64_t anser_dns_cache_lifetime(const struct anser_dns_response *r, int64_t fixed_ttl)
{
	if (r->tc)
		return -1; /* the whole answer comes over TCP */
	if (r->rcode == ANSER_DNS_NXDOMAIN)
		return r->negative_ttl;
	if (r->rcode != ANSER_DNS_NOERROR)
		return -1;
	if (r->answers == 0) /* NODATA */
		return r->negative_ttl;
	return fixed_ttl >= 0 ? fixed_ttl : (int64_t)r->min_ttl;
}

int anser_dns_cache_put(struct anser_dns_cache *c, const uint8_t *msg, size_t len,
			const struct anser_dns_response *r, int64_t ttl, int64_t now_ms)
{
	uint16_t offs[MAX_TTLS];

	if (ttl < 0 || len > MAX_KEPT || len < ANSER_DNS_HDR)
		return -EINVAL;
	ssize_t n = anser_dns_ttl_offsets(msg, len, offs, MAX_TTLS);
	if (n < 0)
		return -EINVAL;
	struct entry *e = g_new0(struct entry, 1);
	e->lru.data = e;
	e->key_len = make_key(e->key, r->qname, r->qname_len, r->qtype, r->qclass);
	e->stored_ms = now_ms;
	e->lifetime = ttl > UINT32_MAX / 1000 ? UINT32_MAX / 1000 : (uint32_t)ttl;
	e->expires_ms = now_ms + (int64_t)e->lifetime * 1000;
	e->n_ttls = (uint16_t)n;
	e->ttl_offs = g_memdup2(offs, (gsize)n * sizeof(*offs));
	e->ttls = g_new(uint32_t, (gsize)n + 1);
	for (ssize_t i = 0; i < n; i++) {
		const uint8_t *p = msg + offs[i];
		e->ttls[i] =
			(uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		if (e->ttls[i] & 0x80000000u) /* RFC 2181 8 */
			e->ttls[i] = 0;
	}
	e->len = len;
	e->msg = g_memdup2(msg, len);

	pthread_mutex_lock(&c->lock);
	struct entry *old = g_hash_table_lookup(c->by_key, e);
	if (old)
		drop(c, old);
	while (g_hash_table_size(c->by_key) >= c->max && c->lru.tail) {
		drop(c, c->lru.tail->data);
		c->evictions++;
	}
	g_hash_table_add(c->by_key, e);
	g_queue_push_head_link(&c->lru, &e->lru);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

enum anser_dns_hit anser_dns_cache_get(struct anser_dns_cache *c, const struct anser_dns_lookup *l,
				       int64_t now_ms, uint8_t *out, size_t cap, size_t *len)
{
	struct entry probe;
	enum anser_dns_hit hit = ANSER_DNS_MISS;

	if (l->qname_len > ANSER_DNS_MAX_NAME)
		return ANSER_DNS_MISS;
	probe.key_len = make_key(probe.key, l->qname, l->qname_len, l->qtype, l->qclass);
	pthread_mutex_lock(&c->lock);
	struct entry *e = g_hash_table_lookup(c->by_key, &probe);
	if (!e)
		goto out;
	bool fresh = now_ms < e->expires_ms;
	if (!fresh && (l->stale_s <= 0 || now_ms >= e->expires_ms + l->stale_s * 1000)) {
		drop(c, e); /* too old to serve at all */
		goto out;
	}
	if (e->len > cap)
		goto out;
	memcpy(out, e->msg, e->len);
	out[0] = (uint8_t)(l->id >> 8);
	out[1] = (uint8_t)l->id;
	int64_t elapsed = (now_ms - e->stored_ms) / 1000;
	for (uint16_t i = 0; i < e->n_ttls; i++) {
		int64_t t = e->ttls[i] < e->lifetime ? e->ttls[i] : e->lifetime;
		uint32_t v = fresh ? (uint32_t)(t > elapsed ? t - elapsed : 0) : l->stale_ttl;
		uint8_t *p = out + e->ttl_offs[i];
		p[0] = (uint8_t)(v >> 24);
		p[1] = (uint8_t)(v >> 16);
		p[2] = (uint8_t)(v >> 8);
		p[3] = (uint8_t)v;
	}
	*len = e->len;
	hit = fresh ? ANSER_DNS_FRESH : ANSER_DNS_STALE;
	g_queue_unlink(&c->lru, &e->lru);
	g_queue_push_head_link(&c->lru, &e->lru);
out:
	pthread_mutex_unlock(&c->lock);
	return hit;
}

size_t anser_dns_cache_size(struct anser_dns_cache *c)
{
	pthread_mutex_lock(&c->lock);
	size_t n = g_hash_table_size(c->by_key);
	pthread_mutex_unlock(&c->lock);
	return n;
}

uint64_t anser_dns_cache_evictions(struct anser_dns_cache *c)
{
	pthread_mutex_lock(&c->lock);
	uint64_t n = c->evictions;
	pthread_mutex_unlock(&c->lock);
	return n;
}
