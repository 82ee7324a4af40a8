// SPDX-License-Identifier: GPL-2.0-or-later
/* Share links of every scheme and subscription bodies (SIP008, base64,
 * plain lists): what they decode to, and what bad ones are told. */
#include <glib.h>
#include <string.h>

#include "daemon/config/config.h"

static struct anser_node parse_ok(const char *link)
{
	struct anser_diags d = { 0 };
	struct anser_node n;
	int r = anser_node_from_link(link, &n, &d);
	if (r < 0) {
		g_autofree char *txt = anser_diags_format(&d);
		g_test_message("link %s: %s", link, txt);
	}
	g_assert_cmpint(r, ==, 0);
	anser_diags_clear(&d);
	return n;
}

static char *b64(const char *s)
{
	return g_base64_encode((const guchar *)s, strlen(s));
}

/* URL-safe, unpadded, as SIP002 writes it. */
static char *b64url(const char *s)
{
	char *e = b64(s);
	for (char *c = e; *c; c++)
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
	char *eq = strchr(e, '=');
	if (eq)
		*eq = '\0';
	return e;
}

static void test_plain(void)
{
	struct anser_node n = parse_ok("socks5://u:p%40ss@10.0.0.2:1080#my%20socks");
	g_assert_cmpint(n.proto, ==, ANSER_NODE_SOCKS5);
	g_assert_cmpstr(n.name, ==, "my socks");
	g_assert_cmpstr(n.user, ==, "u");
	g_assert_cmpstr(n.pass, ==, "p@ss");
	g_assert_cmpstr(anser_node_proto_name(&n), ==, "socks5");
	anser_node_clear(&n);

	n = parse_ok("http://alice:secret@[fd00::2]:8080/");
	g_assert_cmpint(n.proto, ==, ANSER_NODE_HTTP);
	g_assert_false(n.tls);
	g_assert_cmpstr(n.host, ==, "fd00::2");
	g_assert_cmpuint(n.port, ==, 8080);
	g_assert_cmpstr(n.name, ==, "[fd00::2]:8080");
	g_assert_cmpstr(n.user, ==, "alice");
	anser_node_clear(&n);

	n = parse_ok("https://10.0.0.2:8443?sni=prx.test&allowInsecure=1");
	g_assert_true(n.tls);
	g_assert_true(n.allow_insecure);
	g_assert_cmpstr(n.sni, ==, "prx.test");
	anser_node_clear(&n);

	n = parse_ok("HTTPS://proxy.example.com:443");
	g_assert_cmpint(n.proto, ==, ANSER_NODE_HTTP);
	g_assert_true(n.tls);
	g_assert_null(n.user);
	g_assert_cmpstr(anser_node_proto_name(&n), ==, "https");
	anser_node_clear(&n);
}

static void test_ss(void)
{
	g_autofree char *ui = b64url("aes-128-gcm:pass/word?");
	g_autofree char *l1 = g_strdup_printf("ss://%s@10.0.0.2:8388/?#ss%%201", ui);
	struct anser_node n = parse_ok(l1);
	g_assert_cmpint(n.proto, ==, ANSER_NODE_SS);
	g_assert_cmpint(n.cipher, ==, ANSER_CIPHER_AES_128_GCM);
	g_assert_cmpstr(n.pass, ==, "pass/word?");
	g_assert_cmpstr(n.name, ==, "ss 1");
	g_assert_cmpuint(n.port, ==, 8388);
	anser_node_clear(&n);

	/* standard base64 with padding works too */
	g_autofree char *ui2 = b64("aes-256-gcm:pw1");
	g_autofree char *l2 = g_strdup_printf("ss://%s@h.example:1", ui2);
	n = parse_ok(l2);
	g_assert_cmpint(n.cipher, ==, ANSER_CIPHER_AES_256_GCM);
	g_assert_cmpstr(n.pass, ==, "pw1");
	anser_node_clear(&n);

	/* %-encoded user info (SIP002 for 2022 keys) */
	n = parse_ok("ss://chacha20-ietf-poly1305:p%3Aw@[fd00::3]:8388");
	g_assert_cmpint(n.cipher, ==, ANSER_CIPHER_CHACHA20_POLY1305);
	g_assert_cmpstr(n.pass, ==, "p:w");
	anser_node_clear(&n);

	n = parse_ok("ss://2022-blake3-aes-128-gcm:AAECAwQFBgcICQoLDA0ODw%3D%3D@1.2.3.4:9");
	g_assert_cmpint(n.cipher, ==, ANSER_CIPHER_2022_AES_128_GCM);
	g_assert_cmpstr(n.pass, ==, "AAECAwQFBgcICQoLDA0ODw==");
	anser_node_clear(&n);

	/* legacy: everything in base64, the password holding '@' */
	g_autofree char *legacy = b64("aes-256-gcm:p@ss@10.1.2.3:8389");
	g_autofree char *l3 = g_strdup_printf("ss://%s#old", legacy);
	n = parse_ok(l3);
	g_assert_cmpint(n.cipher, ==, ANSER_CIPHER_AES_256_GCM);
	g_assert_cmpstr(n.pass, ==, "p@ss");
	g_assert_cmpstr(n.host, ==, "10.1.2.3");
	g_assert_cmpuint(n.port, ==, 8389);
	g_assert_cmpstr(n.name, ==, "old");
	anser_node_clear(&n);
}

static void test_vmess(void)
{
	const char *json = "{\"v\":\"2\",\"ps\":\"hk 01\",\"add\":\"vm.example.com\",\"port\":443,"
			   "\"id\":\"b831381d-6324-4d53-ad4f-8cda48b30811\",\"aid\":\"0\","
			   "\"scy\":\"aes-128-gcm\",\"net\":\"ws\",\"type\":\"none\","
			   "\"host\":\"cdn.example.com\",\"path\":\"/ray?ed=2048\",\"tls\":\"tls\","
			   "\"sni\":\"vm.example.com\",\"alpn\":\"http/1.1\"}";
	g_autofree char *enc = b64(json);
	g_autofree char *l1 = g_strdup_printf("vmess://%s", enc);
	struct anser_node n = parse_ok(l1);
	static const uint8_t uuid[16] = { 0xb8, 0x31, 0x38, 0x1d, 0x63, 0x24, 0x4d, 0x53,
					  0xad, 0x4f, 0x8c, 0xda, 0x48, 0xb3, 0x08, 0x11 };
	g_assert_cmpint(n.proto, ==, ANSER_NODE_VMESS);
	g_assert_cmpstr(n.name, ==, "hk 01");
	g_assert_cmpstr(n.host, ==, "vm.example.com");
	g_assert_cmpuint(n.port, ==, 443);
	g_assert_cmpmem(n.uuid, 16, uuid, 16);
	g_assert_cmpint(n.cipher, ==, ANSER_CIPHER_AES_128_GCM);
	g_assert_cmpint(n.net, ==, ANSER_NET_WS);
	g_assert_true(n.tls);
	g_assert_false(n.allow_insecure);
	g_assert_cmpstr(n.ws_host, ==, "cdn.example.com");
	g_assert_cmpstr(n.ws_path, ==, "/ray?ed=2048");
	g_assert_cmpstr(n.sni, ==, "vm.example.com");
	g_assert_cmpstr(n.alpn, ==, "http/1.1");
	anser_node_clear(&n);

	n = parse_ok("vmess://B831381D-6324-4d53-ad4f-8cda48b30811@10.0.0.2:10086"
		     "?type=tcp&encryption=auto#plain");
	g_assert_cmpmem(n.uuid, 16, uuid, 16);
	g_assert_cmpint(n.cipher, ==, ANSER_CIPHER_AUTO);
	g_assert_cmpint(n.net, ==, ANSER_NET_TCP);
	g_assert_false(n.tls);
	g_assert_cmpstr(n.name, ==, "plain");
	anser_node_clear(&n);
}

static void test_vless_trojan(void)
{
	struct anser_node n = parse_ok(
		"vless://b831381d-6324-4d53-ad4f-8cda48b30811@[fd00::2]:443?encryption=none&"
		"security=tls&sni=prx.test&allowInsecure=1&type=ws&path=%2Fws&host=prx.test#v1");
	g_assert_cmpint(n.proto, ==, ANSER_NODE_VLESS);
	g_assert_true(n.tls);
	g_assert_true(n.allow_insecure);
	g_assert_cmpint(n.net, ==, ANSER_NET_WS);
	g_assert_cmpstr(n.ws_path, ==, "/ws");
	g_assert_cmpstr(n.sni, ==, "prx.test");
	anser_node_clear(&n);

	n = parse_ok("trojan://pa%40ss@10.0.0.2:443?peer=prx.test&alpn=h2%2Chttp%2F1.1#tj");
	g_assert_cmpint(n.proto, ==, ANSER_NODE_TROJAN);
	g_assert_true(n.tls);
	g_assert_cmpstr(n.pass, ==, "pa@ss");
	g_assert_cmpstr(n.sni, ==, "prx.test");
	g_assert_cmpstr(n.alpn, ==, "h2,http/1.1");
	g_assert_cmpint(n.net, ==, ANSER_NET_TCP);
	anser_node_clear(&n);

	n = parse_ok("trojan-go://pw@tg.example.com:443/?sni=tg.example.com&type=ws&"
		     "host=tg.example.com&path=%2Fgo#go");
	g_assert_cmpint(n.proto, ==, ANSER_NODE_TROJAN);
	g_assert_cmpint(n.net, ==, ANSER_NET_WS);
	g_assert_cmpstr(n.ws_path, ==, "/go");
	anser_node_clear(&n);
}

/* Each bad link: the message it gets, and a secret it must not show. */
static const struct {
	const char *link;
	const char *msg;
	const char *secret;
} bad_links[] = {
	{ "ss://YWVzLTI1Ni1jZmI6c2VjcmV0@h:1", "method 'aes-256-cfb' is not supported", "secret" },
	{ "ss://aes-128-gcm:secret@h:1/?plugin=obfs-local%3Bobfs%3Dhttp%3Bobfs-host%3Dx.com",
	  "plugin 'obfs-local' (obfs=http, obfs-host=x.com) is not supported yet", "secret" },
	{ "ss://aes-128-gcm:secret@h:1/?plugin=v2ray-plugin", "no SIP003 plugins", "secret" },
	{ "ss://2022-blake3-aes-256-gcm:AAECAwQFBgcICQoLDA0ODw%3D%3D@h:1",
	  "key is 32 bytes in base64", "AAEC" },
	{ "ss://aes-128-gcm:@h:1", "password must be 1..255 bytes", NULL },
	{ "ss://!!!!@h:1", "neither base64 nor", NULL },
	{ "ss://aes-128-gcm:secret@h", "no port", "secret" },
	{ "vless://not-a-uuid@h:1", "needs a UUID", NULL },
	{ "vless://b831381d-6324-4d53-ad4f-8cda48b30811@h:1?flow=xtls-rprx-vision",
	  "vless flow 'xtls-rprx-vision' is not supported", NULL },
	{ "vless://b831381d-6324-4d53-ad4f-8cda48b30811@h:1?security=reality",
	  "security 'reality' is not supported", NULL },
	{ "vless://b831381d-6324-4d53-ad4f-8cda48b30811@h:1?type=grpc",
	  "transport 'grpc' is not supported", NULL },
	{ "vmess://b831381d-6324-4d53-ad4f-8cda48b30811@h:1?encryption=aes-128-cfb",
	  "vmess security 'aes-128-cfb'", NULL },
	{ "vmess://e30=", "lacks \"add\"", NULL },
	{ "vmess://!!", "neither", NULL },
	{ "trojan://@h:1", "has no password", NULL },
	{ "trojan://secret@h:1?security=none", "trojan runs over TLS", "secret" },
	{ "trojan://secret@h:1/path", "a trojan link has no path", "secret" },
	{ "trojan-go://secret@h:1?encryption=ss%3Baes-128-gcm%3Ax",
	  "trojan-go encryption 'ss;aes-128-gcm:x' is not supported", "secret" },
	{ "trojan://secret@h:1?type=ws&path=nope", "invalid WebSocket path 'nope'", "secret" },
	{ "http://u:secret@h:1?x=1", "options in a http link", "secret" },
	{ "https://u:secret@h:1?type=ws", "option 'type' is not supported", "secret" },
	{ "hysteria2://secret@h:1", "node protocol 'hysteria2' is not supported", "secret" },
	{ "secret@h:1", "not a node link: 'h:1'", "secret" },
};

static void test_bad(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(bad_links); i++) {
		struct anser_diags d = { 0 };
		struct anser_node n;
		if (anser_node_from_link(bad_links[i].link, &n, &d) != -EINVAL)
			g_error("%s: accepted", bad_links[i].link);
		g_autofree char *txt = anser_diags_format(&d);
		if (!strstr(txt, bad_links[i].msg))
			g_error("%s: wanted '%s', got: %s", bad_links[i].link, bad_links[i].msg,
				txt);
		if (bad_links[i].secret && strstr(txt, bad_links[i].secret))
			g_error("%s: diagnostics show the secret: %s", bad_links[i].link, txt);
		g_assert_null(n.host);
		anser_diags_clear(&d);
	}
	/* a v2rayN object with alterId > 0 */
	g_autofree char *enc = b64("{\"add\":\"h\",\"port\":\"1\",\"aid\":64,"
				   "\"id\":\"b831381d-6324-4d53-ad4f-8cda48b30811\"}");
	g_autofree char *l = g_strdup_printf("vmess://%s", enc);
	struct anser_diags d = { 0 };
	struct anser_node n;
	g_assert_cmpint(anser_node_from_link(l, &n, &d), ==, -EINVAL);
	g_autofree char *txt = anser_diags_format(&d);
	g_assert_nonnull(strstr(txt, "alterId 64 (legacy MD5 authentication) is not supported"));
	anser_diags_clear(&d);
}

static void free_nodes(struct anser_node *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		anser_node_clear(&v[i]);
	free(v);
}

static void test_subscription(void)
{
	struct anser_diags d = { 0 };
	struct anser_node *v;
	size_t n, n_bad;

	const char *sip008 =
		"{\"version\":1,\"servers\":["
		"{\"id\":\"x\",\"remarks\":\"Tokyo "
		"1\",\"server\":\"10.0.0.2\",\"server_port\":8388,"
		"\"password\":\"p@ss:w\",\"method\":\"chacha20-ietf-poly1305\"},"
		"{\"server\":\"fd00::2\",\"server_port\":\"8389\",\"password\":\"x\","
		"\"method\":\"aes-128-gcm\"},"
		"{\"server\":\"h\",\"server_port\":1,\"password\":\"x\",\"method\":\"rc4-md5\"},"
		"{\"server\":\"h\",\"password\":\"x\",\"method\":\"aes-128-gcm\"},"
		"{\"server\":\"h\",\"server_port\":1,\"password\":\"x\",\"method\":\"aes-128-gcm\","
		"\"plugin\":\"obfs-local\",\"plugin_opts\":\"obfs=tls\"}]}";
	g_assert_cmpint(anser_subscription_parse(sip008, strlen(sip008), &v, &n, &n_bad, &d), ==,
			0);
	g_assert_cmpuint(n, ==, 2);
	g_assert_cmpuint(n_bad, ==, 3);
	g_assert_cmpstr(v[0].name, ==, "Tokyo 1");
	g_assert_cmpstr(v[0].pass, ==, "p@ss:w");
	g_assert_cmpint(v[0].cipher, ==, ANSER_CIPHER_CHACHA20_POLY1305);
	g_assert_cmpstr(v[1].host, ==, "fd00::2");
	g_assert_cmpuint(v[1].port, ==, 8389);
	g_autofree char *txt = anser_diags_format(&d);
	g_assert_nonnull(strstr(txt, "subscription:3:1: error: shadowsocks method 'rc4-md5'"));
	g_assert_nonnull(strstr(txt, "subscription:4:1: error: SIP008 server 4 lacks"));
	g_assert_nonnull(strstr(txt, "subscription:5:1: error: shadowsocks plugin 'obfs-local' "
				     "(obfs=tls)"));
	anser_diags_clear(&d);
	free_nodes(v, n);

	/* base64 of a link list with CRLF, a comment and a bad line */
	g_autofree char *ssui = b64url("aes-128-gcm:pw");
	g_autofree char *list = g_strdup_printf(
		"# provider\r\nsocks5://10.0.0.9:1080#s\r\n\r\nss://%s@10.0.0.8:8388#ss\r\n"
		"trojan://pw@10.0.0.7:443?sni=prx.test#t\r\nnonsense\r\n",
		ssui);
	g_autofree char *body = b64(list);
	g_assert_cmpint(anser_subscription_parse(body, strlen(body), &v, &n, &n_bad, &d), ==, 0);
	g_assert_cmpuint(n, ==, 3);
	g_assert_cmpuint(n_bad, ==, 1);
	g_assert_cmpstr(v[0].name, ==, "s");
	g_assert_cmpint(v[1].proto, ==, ANSER_NODE_SS);
	g_assert_cmpint(v[2].proto, ==, ANSER_NODE_TROJAN);
	g_autofree char *txt2 = anser_diags_format(&d);
	g_assert_nonnull(strstr(txt2, "subscription:6:1: error: not a node link"));
	anser_diags_clear(&d);
	free_nodes(v, n);

	/* the same list unencoded */
	g_assert_cmpint(anser_subscription_parse(list, strlen(list), &v, &n, &n_bad, &d), ==, 0);
	g_assert_cmpuint(n, ==, 3);
	anser_diags_clear(&d);
	free_nodes(v, n);

	/* not a subscription at all, or nothing usable */
	static const char *const junk[] = { "", "<html>hi</html>", "{\"servers\":3}", "{]",
					    "bm9uc2Vuc2U=" /* "nonsense" */ };
	for (size_t i = 0; i < G_N_ELEMENTS(junk); i++) {
		int r = anser_subscription_parse(junk[i], strlen(junk[i]), &v, &n, &n_bad, &d);
		g_assert_cmpint(r, <, 0);
		g_assert_null(v);
		g_assert_cmpuint(n, ==, 0);
		anser_diags_clear(&d);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/link/plain", test_plain);
	g_test_add_func("/link/ss", test_ss);
	g_test_add_func("/link/vmess", test_vmess);
	g_test_add_func("/link/vless-trojan", test_vless_trojan);
	g_test_add_func("/link/bad", test_bad);
	g_test_add_func("/link/subscription", test_subscription);
	return g_test_run();
}
