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
/* "1.2.3.4:80" / "[::1]:80" into buf (>= 64 bytes). */
const char *anser_sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
