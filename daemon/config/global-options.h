/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Every option of dae's `global` section, with dae's default and what
 * anserd does with it. Included once, by parser.c. docs/configuration.md
 * has the same table for users; tests/cli/global-options.py checks that
 * the two agree.
 */
#ifndef ANSER_GLOBAL_OPTIONS_H
#define ANSER_GLOBAL_OPTIONS_H

#define NOT_NEEDED(why) GS_NOT_NEEDED, why
#define NOT_YET		GS_NOT_YET, NULL
#define USED		GS_USED, NULL

static const struct global_opt global_opts[] = {
	{ "log_level", GT_LOG_LEVEL, "info", USED },
	{ "tproxy_port", GT_PORT, "12345",
	  NOT_NEEDED("its listeners take free loopback ports, and the hooks steer flows to "
		     "them") },
	{ "tproxy_port_protect", GT_BOOL, "true",
	  NOT_NEEDED("its listeners are bound to loopback only") },
	{ "so_mark_from_dae", GT_UINT, "0",
	  NOT_NEEDED("its hooks know anserd's own sockets by process, not by mark") },
	{ "pprof_port", GT_PORT, "0", NOT_NEEDED("it is not a Go program; use perf") },
	{ "lan_interface", GT_LIST, "", USED },
	{ "wan_interface", GT_LIST, "", USED },
	{ "auto_config_kernel_parameter", GT_BOOL, "false", USED },
	{ "auto_config_firewall_rule", GT_BOOL, "false",
	  NOT_NEEDED("it adds no firewall rules (deprecated in dae too)") },
	{ "disable_waiting_network", GT_BOOL, "false",
	  NOT_NEEDED("it starts without waiting for the network") },
	{ "enable_local_tcp_fast_redirect", GT_BOOL, "false",
	  NOT_NEEDED("local apps' connections are steered at connect() already") },
	{ "tcp_check_url", GT_LIST, "http://cp.cloudflare.com,1.1.1.1,2606:4700:4700::1111", USED },
	{ "tcp_check_http_method", GT_STRING, "HEAD", USED },
	{ "udp_check_dns", GT_LIST, "dns.google:53,8.8.8.8,2001:4860:4860::8888", USED },
	{ "check_interval", GT_DURATION, "30s", USED },
	{ "check_tolerance", GT_DURATION, "0", USED },
	{ "allow_insecure", GT_BOOL, "false", NOT_YET },
	{ "dial_mode", GT_STRING, "domain", USED },
	{ "sniffing_timeout", GT_DURATION, "100ms", USED },
	{ "tls_implementation", GT_STRING, "tls", NOT_YET },
	{ "utls_imitate", GT_STRING, "chrome_auto", NOT_YET },
	{ "mptcp", GT_BOOL, "false", NOT_YET },
	{ "fallback_resolver", GT_STRING, "8.8.8.8:53", NOT_YET },
	{ "bandwidth_max_tx", GT_STRING, "0", NOT_YET },
	{ "bandwidth_max_rx", GT_STRING, "0", NOT_YET },
	{ "dns_performance_level", GT_STRING, "balanced", NOT_YET },
	/* anser's own: what happens to the flows anserd steers if it dies */
	{ "fail_mode", GT_STRING, "open", USED },
};

#undef NOT_NEEDED
#undef NOT_YET
#undef USED

#endif
