// SPDX-License-Identifier: GPL-2.0-or-later
/* Rules back to text, in the config language: what `anserctl explain`
 * shows, and what the parser reads back to the same rule. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-private.h"
#include "bpf/anser_abi.h"

/* A word the lexer reads as one bare word; anything else is quoted. */
static void put_name(FILE *f, const char *s)
{
	bool bare = *s != '\0';

	for (const char *c = s; *c && bare; c++)
		bare = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		       (*c >= '0' && *c <= '9') || *c == '_' || *c == '.';
	if (bare) {
		fputs(s, f);
		return;
	}
	fputc('\'', f);
	for (const char *c = s; *c; c++) {
		if (*c == '\'' || *c == '\\')
			fputc('\\', f);
		fputc(*c, f);
	}
	fputc('\'', f);
}

static void put_cidr(FILE *f, const struct anser_cidr *c)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char buf[INET6_ADDRSTRLEN];

	if (c->prefix >= 96 && memcmp(c->addr, mapped, sizeof(mapped)) == 0) {
		inet_ntop(AF_INET, c->addr + 12, buf, sizeof(buf));
		if (c->prefix == 128)
			fprintf(f, "%s", buf);
		else
			fprintf(f, "%s/%u", buf, c->prefix - 96);
		return;
	}
	inet_ntop(AF_INET6, c->addr, buf, sizeof(buf));
	if (c->prefix == 128)
		fprintf(f, "%s", buf);
	else
		fprintf(f, "%s/%u", buf, c->prefix);
}

static void put_cond(FILE *f, const struct anser_cond *c)
{
	const char *sep = "";

	if (c->negate)
		fputc('!', f);
	switch (c->type) {
	case ANSER_COND_PNAME:
	case ANSER_COND_APP:
	case ANSER_COND_CGROUP:
		fputs(c->type == ANSER_COND_PNAME ? "pname("
		      : c->type == ANSER_COND_APP ? "app("
						  : "cgroup(",
		      f);
		for (size_t i = 0; i < c->n_names; i++, sep = ", ") {
			fputs(sep, f);
			put_name(f, c->names[i]);
		}
		break;
	case ANSER_COND_IP:
	case ANSER_COND_SIP:
	case ANSER_COND_DIP:
		fputs(c->type == ANSER_COND_DIP	  ? "dip("
		      : c->type == ANSER_COND_SIP ? "sip("
						  : "ip(",
		      f);
		for (size_t i = 0; i < c->n_written && i < c->n_cidrs; i++, sep = ", ") {
			fputs(sep, f);
			put_cidr(f, &c->cidrs[i]);
		}
		for (size_t i = 0; i < c->n_sets; i++, sep = ", ") {
			fputs(sep, f);
			put_name(f, c->sets[i]);
		}
		break;
	case ANSER_COND_MAC:
		fputs("mac(", f);
		for (size_t i = 0; i < c->n_macs; i++, sep = ", ") {
			const uint8_t *m = c->macs[i];
			fprintf(f, "%s'%02x:%02x:%02x:%02x:%02x:%02x'", sep, m[0], m[1], m[2], m[3],
				m[4], m[5]);
		}
		break;
	case ANSER_COND_DSCP:
		fputs("dscp(", f);
		for (unsigned v = 0; v < 64; v++)
			if ((c->dscp >> v) & 1) {
				fprintf(f, "%s%u", sep, v);
				sep = ", ";
			}
		break;
	case ANSER_COND_NETWORK:
		fputs("network(", f);
		for (size_t i = 0; i < c->n_nets; i++, sep = ", ") {
			fprintf(f, "%s%s: ", sep, anser_net_key_name(c->nets[i].key));
			put_name(f, c->nets[i].value);
		}
		break;
	case ANSER_COND_UPSTREAM:
		fputs("upstream(", f);
		for (size_t i = 0; i < c->n_names; i++, sep = ", ") {
			fputs(sep, f);
			put_name(f, c->names[i]);
		}
		break;
	case ANSER_COND_QTYPE:
		fputs("qtype(", f);
		for (size_t i = 0; i < c->n_ports; i++, sep = ", ") {
			const char *n = cfg_qtype_name(c->ports[i].lo);
			if (n)
				fprintf(f, "%s%s", sep, n);
			else
				fprintf(f, "%s%u", sep, c->ports[i].lo);
		}
		break;
	case ANSER_COND_QNAME:
	case ANSER_COND_DOMAIN: {
		static const char *const keys[] = { "", "full: ", "keyword: ", "regex: " };
		fputs(c->type == ANSER_COND_DOMAIN ? "domain(" : "qname(", f);
		for (size_t i = 0; i < c->n_written && i < c->n_domains; i++, sep = ", ") {
			const struct anser_domain_pat *d = &c->domains[i];
			fprintf(f, "%s%s", sep, d->kind < 4 ? keys[d->kind] : "");
			put_name(f, d->value);
		}
		for (size_t i = 0; i < c->n_sets; i++, sep = ", ") {
			fputs(sep, f);
			put_name(f, c->sets[i]);
		}
		break;
	}
	case ANSER_COND_SPORT:
	case ANSER_COND_DPORT:
		fputs(c->type == ANSER_COND_DPORT ? "dport(" : "sport(", f);
		for (size_t i = 0; i < c->n_ports; i++, sep = ", ") {
			if (c->ports[i].lo == c->ports[i].hi)
				fprintf(f, "%s%u", sep, c->ports[i].lo);
			else
				fprintf(f, "%s%u-%u", sep, c->ports[i].lo, c->ports[i].hi);
		}
		break;
	case ANSER_COND_L4PROTO:
		fputs("l4proto(", f);
		if (c->mask & ANSER_L4_TCP) {
			fputs("tcp", f);
			sep = ", ";
		}
		if (c->mask & ANSER_L4_UDP)
			fprintf(f, "%sudp", sep);
		break;
	case ANSER_COND_IPVERSION:
		fputs("ipversion(", f);
		if (c->mask & ANSER_IPV_4) {
			fputs("4", f);
			sep = ", ";
		}
		if (c->mask & ANSER_IPV_6)
			fprintf(f, "%s6", sep);
		break;
	}
	fputc(')', f);
}

static void put_outbound(FILE *f, const char *name, bool must, uint32_t mark)
{
	put_name(f, name);
	if (must && mark)
		fprintf(f, "(must, mark: 0x%x)", mark);
	else if (must)
		fputs("(must)", f);
	else if (mark)
		fprintf(f, "(mark: 0x%x)", mark);
}

char *anser_fallback_format(const struct anser_config *c)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return NULL;
	const char *out = anser_config_outbound_name(c, c->fallback);
	fputs("fallback: ", f);
	put_outbound(f, out ? out : "?", c->fallback_must, c->fallback_mark);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *anser_rule_format(const struct anser_config *c, size_t i)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f;

	if (!c || i >= c->n_rules)
		return NULL;
	f = open_memstream(&buf, &size);
	if (!f)
		return NULL;
	const struct anser_rule *r = &c->rules[i];
	for (size_t k = 0; k < r->n_conds; k++) {
		if (k)
			fputs(" && ", f);
		put_cond(f, &r->conds[k]);
	}
	fputs(" -> ", f);
	const char *out = anser_config_outbound_name(c, r->outbound);
	put_outbound(f, out ? out : r->outbound_name, r->must, r->mark);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
