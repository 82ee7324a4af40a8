/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One live connection as reported by ListConnections / anserctl. */
#ifndef ANSER_CONNINFO_H
#define ANSER_CONNINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct anser_conn_info {
	uint64_t cookie; /* the app socket's cookie (0 if unknown) */
	uint32_t pid;
	char pname[64];
	char proto[4];		     /* "tcp" / "udp" */
	struct sockaddr_storage src; /* the app's side */
	struct sockaddr_storage dst; /* the original destination */
	char outbound[64];	     /* "direct", "block" or group name */
	char node[64];		     /* node used, "" for direct */
	char rule[32];		     /* "rule 3", "fallback", "builtin" */
	/* the name the flow is for, "" if none is known: sniffed from its
	 * first bytes (proxied flows), else the newest name anser's DNS
	 * answered with its destination */
	char domain[254];
	uint64_t bytes_up, bytes_down;
	/* Filled by the datapath for the daemon to resolve names: */
	int outbound_id;   /* ANSER_OUT_* or group id */
	unsigned gen_slot; /* rule slot the decision was made in */
	bool proxied;	   /* steered to anserd's listener */
};

struct anser_conn_list {
	struct anser_conn_info *v;
	size_t n, cap;
};

/* Returns a zeroed slot appended to the list, NULL on OOM. */
struct anser_conn_info *anser_conn_list_add(struct anser_conn_list *l);
void anser_conn_list_clear(struct anser_conn_list *l);
/* A second source's entries (the proxy's sessions) by socket cookie, for a
 * listing to take their outbound, node and byte counts as its own entries
 * come, and then to add those it did not have. Borrows l (not to change
 * while the index lives). */
struct anser_conn_index;
struct anser_conn_index *anser_conn_index_new(const struct anser_conn_list *l);
/* Outbound, node and bytes of l's entry with c's cookie into c, which
 * uses that entry up; false if there is none. */
bool anser_conn_index_fill(struct anser_conn_index *x, struct anser_conn_info *c);
/* l's entries no fill() used, one a call from *pos (start at 0); NULL at
 * the end. */
const struct anser_conn_info *anser_conn_index_next_unused(struct anser_conn_index *x, size_t *pos);
void anser_conn_index_free(struct anser_conn_index *x);

/* 127.0.0.0/8 or ::1 (or v4-mapped loopback). */
bool anser_sockaddr_is_loopback(const struct sockaddr *sa);

/* "1.2.3.4:80" / "[::1]:80" into buf (>= 64 bytes). */
const char *anser_sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
