// SPDX-License-Identifier: GPL-2.0-or-later
/* The dial modes for QUIC: a proxied UDP flow that starts with a QUIC
 * Initial is held until its ClientHello (which may span several Initial
 * packets) names the server; the name is then used as dial_mode says (the
 * node asked for it; domain++: the flow routed again by it), and kept, so
 * every later datagram of the flow (short-header packets name nothing)
 * goes the same way. Per worker: the listener's SO_REUSEPORT group sends
 * one app socket's datagrams to one worker. */
#include "proxy-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/log.h"
#include "sniff.h"

#define QS_BUCKETS 64 /* = the size of worker.qs_table */
#define QS_HELD	   4  /* Initial datagrams held while the ClientHello is incomplete */
#define QS_MAX	   4096

struct held {
	size_t len;
	uint8_t data[];
};

struct qsniff {
	struct qsniff *next;
	struct wtimer timer; /* while held: the sniffing_timeout */
	uint32_t id;	     /* the flow's id (its mark) */
	struct anser_flow flow;
	int fam;
	struct sockaddr_storage app;
	bool done; /* routed: flow.outbound/rule are the route */
	enum anser_dial_mode mode;
	char name[ANSER_SNIFF_NAME_MAX + 1]; /* asked of the node, "" for the address */
	uint64_t last_ms;		     /* when a datagram last used it */
	struct held *held[QS_HELD];
	size_t n_held;
};

static unsigned qs_bucket(uint32_t id)
{
	return (id * 2654435761u) >> 26; /* 64 buckets */
}

static struct qsniff **qs_slot(struct worker *w, uint32_t id, uint8_t gen)
{
	struct qsniff **pp = &w->qs_table[qs_bucket(id)];
	while (*pp && ((*pp)->id != id || (*pp)->flow.gen != gen))
		pp = &(*pp)->next;
	return pp;
}

static void qs_free(struct worker *w, struct qsniff **pp)
{
	struct qsniff *q = *pp;
	*pp = q->next;
	wtimer_stop(w, &q->timer);
	for (size_t i = 0; i < q->n_held; i++)
		free(q->held[i]);
	free(q);
	w->n_qs--;
}

/* A long-header Initial of QUIC v1 or v2 (RFC 9000 17.2, RFC 9369 3.2). */
static bool quic_initial(const uint8_t *p, size_t n)
{
	if (n < 7 || (p[0] & 0xC0) != 0xC0)
		return false;
	uint32_t v = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
	unsigned type = (p[0] >> 4) & 3;
	return (v == 1 && type == 0) || (v == 0x6b3343cf && type == 1);
}

/* The route is settled (name: the ClientHello's, or NULL): remember it
 * and send what was held. */
static void qs_settle(struct worker *w, struct qsniff *q, const char *name)
{
	wtimer_stop(w, &q->timer);
	q->name[0] = '\0';
	if (name && q->mode == ANSER_DIAL_DOMAIN_PLUS_PLUS)
		(void)proxy_reroute(w->p, &q->flow, name);
	if (name && proxy_name_usable(w->p, q->mode, q->flow.daddr, name))
		snprintf(q->name, sizeof(q->name), "%s", name);
	q->done = true;
	q->last_ms = now_ms();
	for (size_t i = 0; i < q->n_held; i++) {
		udp_forward(w, q->fam, &q->app, &q->flow, q->name[0] ? q->name : NULL,
			    q->held[i]->data, q->held[i]->len);
		free(q->held[i]);
	}
	q->n_held = 0;
}

static void qs_timeout(struct worker *w, struct wtimer *t)
{
	qs_settle(w, container_of(t, struct qsniff, timer), NULL);
}

/* How long to hold flow f for its name (0: not), and the mode. */
static uint64_t hold_ms(struct anser_proxy *p, const struct anser_flow *f,
			enum anser_dial_mode *mode)
{
	struct pgen *g = proxy_gen_get(p, f->gen);

	if (!g)
		return 0;
	*mode = g->gen->cfg->dial_mode;
	uint64_t ms = proxy_sniff_ms(p, g->gen->cfg, f);
	pgen_unref(g);
	return ms;
}

bool udp_sniff(struct worker *w, int fam, const struct sockaddr_storage *app, uint32_t id,
	       struct anser_flow *f, const char **name, const uint8_t *data, size_t len)
{
	struct qsniff **pp = w->n_qs ? qs_slot(w, id, f->gen) : NULL;
	struct qsniff *q = pp ? *pp : NULL;
	enum anser_dial_mode mode = ANSER_DIAL_IP;

	if (q && q->done) {
		f->outbound = q->flow.outbound;
		f->rule = q->flow.rule;
		*name = q->name[0] ? q->name : NULL;
		q->last_ms = now_ms();
		return false;
	}
	if (!q) {
		if (!quic_initial(data, len) || w->n_qs >= QS_MAX)
			return false;
		uint64_t ms = hold_ms(w->p, f, &mode);
		if (!ms)
			return false;
		q = calloc(1, sizeof(*q));
		if (!q)
			return false;
		q->mode = mode;
		q->id = id;
		q->flow = *f;
		q->fam = fam;
		q->app = *app;
		pp = qs_slot(w, id, f->gen);
		q->next = *pp;
		*pp = q;
		w->n_qs++;
		wtimer_start(w, &q->timer, now_ms() + ms, qs_timeout);
	}
	/* Held: this datagram joins the others (a full hold settles it). */
	struct held *h = malloc(sizeof(*h) + len);
	if (h) {
		h->len = len;
		memcpy(h->data, data, len);
		q->held[q->n_held++] = h;
	}
	const uint8_t *pkts[QS_HELD];
	size_t lens[QS_HELD];
	for (size_t i = 0; i < q->n_held; i++) {
		pkts[i] = q->held[i]->data;
		lens[i] = q->held[i]->len;
	}
	char found[ANSER_SNIFF_NAME_MAX + 1];
	enum anser_sniff v = anser_sniff_quic(pkts, lens, q->n_held, found);
	if (v == ANSER_SNIFF_MORE && h && q->n_held < QS_HELD)
		return true;
	qs_settle(w, q, v == ANSER_SNIFF_FOUND ? found : NULL);
	if (!h) /* not held: it goes after the others */
		udp_forward(w, fam, app, &q->flow, q->name[0] ? q->name : NULL, data, len);
	return true;
}

void udp_sniff_sweep(struct worker *w, uint64_t now)
{
	uint64_t idle = (uint64_t)w->p->opts.udp_idle_timeout * 1000;

	for (size_t b = 0; w->n_qs && b < QS_BUCKETS; b++)
		for (struct qsniff **pp = &w->qs_table[b]; *pp;) {
			if ((*pp)->done && now - (*pp)->last_ms > idle)
				qs_free(w, pp);
			else
				pp = &(*pp)->next;
		}
}

void udp_sniff_fini(struct worker *w)
{
	for (size_t b = 0; b < QS_BUCKETS; b++)
		while (w->qs_table[b])
			qs_free(w, &w->qs_table[b]);
}
