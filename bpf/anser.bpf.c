// SPDX-License-Identifier: GPL-2.0-or-later
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("cgroup/connect4")
int anser_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}
