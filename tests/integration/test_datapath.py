#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""End-to-end: anserd's cgroup hooks, relay and SOCKS5 outbound against real
microsocks and dante in network namespaces. One meson test per case."""
import json
import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import H4, H6, P4, P6, S4, S6, WEB, expect, seen_as  # noqa: E402

CONFIG = """# integration test config
global {
    log_level: debug
}
node {
    socks: '%(link)s'
}
group {
    proxy {
        policy: fixed(0)
    }
}
routing {
    %(rules)s
    fallback: direct
}
"""


def config(env, rules="pname(appA) -> proxy", link="socks5://10.77.0.2:1080", name="config.dae"):
    return env.write_config(CONFIG % {"rules": rules, "link": link}, name)


def base(env, proxy="microsocks", rules="pname(appA) -> proxy", link=None, bus=False):
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    if proxy == "microsocks":
        env.start_microsocks()
        link = link or "socks5://10.77.0.2:1080"
    elif proxy == "dante":
        env.start_dante()
        link = link or "socks5://10.77.0.2:1081"
    if bus:
        env.start_bus()
        env.start_polkitd()
    cfg = config(env, rules=rules, link=link)
    env.start_anserd(cfg)
    return cfg


def check_split(env, server, proxy_addr, host_addr):
    a = env.app("appA", "tcp", server, WEB)
    b = env.app("appB", "tcp", server, WEB)
    expect(a.returncode == 0, "appA failed: " + a.stdout)
    expect(b.returncode == 0, "appB failed: " + b.stdout)
    expect(seen_as(a.stdout) == proxy_addr,
           "appA should reach the server through the proxy (%s), server saw %s"
           % (proxy_addr, seen_as(a.stdout)))
    expect(seen_as(b.stdout) == host_addr,
           "appB should go direct (%s), server saw %s" % (host_addr, seen_as(b.stdout)))
    # The app must not notice the redirection: getpeername() shows the server.
    peer = [l for l in a.stdout.splitlines() if l.startswith("peer=")]
    expect(peer and server in peer[0], "appA getpeername() shows %s" % peer)
    # anserd found appA's flow by its source (the sockops program filed
    # it there), not with a sock_diag query for its cookie.
    expect(any("sock_ops" in l for l in env.cgroup_attached()),
           "the sockops program should be attached: %s" % env.cgroup_attached())
    expect("by sock_diag" not in env.log("anserd"),
           "the flow was found by sock_diag, not by its source:\n" + env.log("anserd"))


def t_tcp_v4(env):
    base(env)
    check_split(env, S4, P4, H4)


def t_tcp_v6(env):
    base(env)
    check_split(env, S6, P6, H6)


def t_tcp_src_unaccepted(env):
    """A steered connect() that never completes leaves nothing behind in
    tcp_src: with the SYNs to anserd's listener dropped (nft, in the test's
    namespace), the app's flow is filed under its source while it waits,
    and goes when the app gives up (killed: its socket closes in SYN_SENT).
    Steering works as before once the SYNs pass again, and the entry of a
    connection anserd accepted is gone too."""
    base(env)
    pid = env.anserd.pid
    expect(harness.map_entries(pid, "tcp_src") == 0, "tcp_src is empty at the start")
    nft = env.nsexec("h") + ["nft"]
    harness.run(nft + ["add table ip anser_test"])
    harness.run(nft + ["add chain ip anser_test out { type filter hook output priority 0 ; }"])
    harness.run(nft + ["add rule ip anser_test out ip daddr 127.0.0.1 tcp flags syn drop"])
    app = env.app("appA", "tcp", S4, WEB, background=True)
    try:
        env.wait_for("appA's flow filed under its source",
                     lambda: harness.map_entries(pid, "tcp_src") == 1)
    finally:
        os.killpg(app.pid, signal.SIGKILL)
        app.wait()
    env.wait_for("tcp_src emptied after appA's SYN_SENT socket closed",
                 lambda: harness.map_entries(pid, "tcp_src") == 0)
    harness.run(nft + ["delete table ip anser_test"])
    check_split(env, S4, P4, H4)
    expect(harness.map_entries(pid, "tcp_src") == 0, "tcp_src empty after an accepted flow")


def t_tcp_auth(env):
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    env.start_microsocks(user="alice", password="s3cr%t")
    env.start_anserd(config(env, link="socks5://alice:s3cr%25t@10.77.0.2:1080"))
    check_split(env, S4, P4, H4)


def t_tcp_dante(env):
    base(env, proxy="dante")
    check_split(env, S4, P4, H4)
    check_split(env, S6, P6, H6)


def t_pname_long(env):
    """argv[0] basenames longer than the kernel's 15-byte comm match exactly,
    and a longer name that only shares the first 15 bytes does not."""
    base(env, rules="pname(myVeryLongApplicationName) -> proxy")
    a = env.app("myVeryLongApplicationName", "tcp", S4, WEB)
    b = env.app("myVeryLongApplicationNameTwo", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "long name should be proxied: " + a.stdout)
    expect(seen_as(b.stdout) == H4, "different long name goes direct: " + b.stdout)


def t_app_cgroup(env):
    """app(ID) matches the desktop application id in the flow's cgroup path
    (GNOME, flatpak and escaped names; cgroups made before and after anserd
    loaded the rules, and below an app's scope); cgroup(PATH) matches a
    subtree; '!' and '&&' combine them with pname()."""
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    env.start_microsocks()
    rel = "/" + os.path.basename(env.cg)
    scope = env.sub_cgroup("app-gnome-org.test.Browser-42.scope")
    escaped = env.sub_cgroup("app-gnome-org.test.My\\x2dApp-3.scope")
    other = env.sub_cgroup("app-gnome-org.test.Other-5.scope")
    work = env.sub_cgroup("work")
    rules = "\n    ".join([
        "app(org.test.Browser, org.test.My-App) -> proxy",
        "cgroup('%s/work') && !pname(appD) -> proxy" % rel,
        "!app(org.test.Other) && pname(appX) -> block",
    ])
    env.start_bus()
    env.start_polkitd()
    env.start_anserd(config(env, rules=rules))

    def via(name, cg):
        r = env.app(name, "tcp", S4, WEB, cgroup=cg)
        return seen_as(r.stdout), r

    for name, cg, want, why in [
        ("appB", scope, P4, "the Browser's GNOME scope"),
        ("appB", escaped, P4, "an id with an escaped '-'"),
        ("appB", other, H4, "another application"),
        ("appB", env.cg, H4, "no application"),
        ("appB", work, P4, "cgroup(work)"),
        ("appD", work, H4, "cgroup(work) but pname(appD)"),
        ("appB", env.sub_cgroup("work", "deep"), P4, "below cgroup(work), made later"),
        ("appB", env.sub_cgroup("app-gnome-org.test.Browser-42.scope", "tab"), P4,
         "below the Browser's scope, made later"),
    ]:
        got, r = via(name, cg)
        expect(got == want, "%s in %s (%s): server saw %s, want %s\n%s"
               % (name, cg, why, got, want, r.stdout))
    # !app(Other) && pname(appX): blocked outside Other, not inside it
    got, r = via("appX", env.cg)
    expect(r.returncode != 0 and got is None, "appX outside Other is blocked: " + r.stdout)
    got, r = via("appX", other)
    expect(got == H4, "appX inside Other goes direct: " + r.stdout)

    # A scope made now: the kernel reports it and anserd files its rules.
    late = env.sub_cgroup("app-flatpak-org.test.Browser-77.scope")
    env.wait_for("anserd to file the new scope",
                 lambda: "org.test.Browser-77.scope" in env.log("anserd"))
    got, r = via("appB", late)
    expect(got == P4, "a flatpak scope made after loading: server saw %s\n%s" % (got, r.stdout))

    # explain: app:ID, and a PID (its name and cgroup)
    dest = "%s:%d" % (S4, WEB)
    for app, want in [("app:org.test.Browser", "proxy"), ("app:org.test.My-App", "proxy"),
                      ("app:org.test.Other", "direct"), ("appB", "direct"), ("appX", "block")]:
        out = env.anserctl("explain", app, dest).stdout
        expect(out.startswith("%s -> %s tcp: %s\n" % (app, dest, want)), out)
    sleeper = env.app("appX", "30", binary="/bin/sleep", cgroup=late, background=True)
    try:
        env.wait_for("the sleeper in its scope", lambda: str(sleeper.pid) in open(
            os.path.join(late, "cgroup.procs")).read())
        out = env.anserctl("explain", str(sleeper.pid), dest).stdout
        expect(": proxy\n" in out and "app(org.test.Browser" in out, out)
        r = env.anserctl("explain", "999999999", dest, check=False)
        expect(r.returncode != 0 and "no process" in r.stdout, r.stdout)
    finally:
        sleeper.kill()
        sleeper.wait()


def t_functions(env):
    """Each routing function the kernel can see decides real flows (TCP and
    UDP, v4 and v6), with '!', '&&', must_* and the first-match order; sip()
    describes forwarded traffic and never holds for the machine's own; and
    `anserctl explain` names the outbound each flow really took."""
    rules = "\n    ".join([
        "dport(8081) && l4proto(tcp) -> proxy",
        "dip(10.77.0.3/32) && ipversion(4) && pname(appD) -> proxy",
        "dip(fd77::3) && !pname(appE) && !pname(appB) -> proxy",
        "pname(appM) -> must_proxy",
        "pname(appN) -> direct(must)",
        "sip(0.0.0.0/0, ::/0) -> block",
        "l4proto(udp) && pname(appU) -> proxy",
        "pname(appB) && dport(8080) -> block",
    ])
    base(env, proxy="dante", rules=rules, bus=True)
    env.spawn("web2", env.nsexec("s") + [harness.PY, harness.SERVER, "8081"])
    env.wait_for("second web server", lambda: "ready" in env.log("web2"))

    table = [  # app, proto, server, port, outbound, seen as (None: blocked)
        ("appX", "tcp", S4, 8081, "proxy", P4),    # dport && l4proto
        ("appX", "udp", S4, 8081, "direct", H4),   # ... not for UDP
        ("appX", "tcp", S4, 8080, "direct", H4),   # sip() does not hold
        ("appD", "tcp", S4, 8080, "proxy", P4),    # dip && ipversion && pname
        ("appD", "tcp", S6, 8080, "proxy", P6),    # v6: the next rule
        ("appE", "tcp", S6, 8080, "direct", H6),   # !pname
        ("appM", "tcp", S4, 8080, "proxy", P4),    # must_proxy routes as proxy
        ("appN", "tcp", S4, 8080, "direct", H4),   # direct(must)
        ("appU", "udp", S4, 8080, "proxy", P4),    # l4proto(udp), through dante's UDP
        ("appU", "tcp", S4, 8080, "direct", H4),
        ("appB", "tcp", S4, 8080, "block", None),  # pname && dport -> block
        ("appB", "tcp", S4, 8081, "proxy", P4),    # first match wins: rule 1
        ("appB", "udp", S4, 8080, "block", None),
    ]
    for app, proto, server, port, outbound, want in table:
        mode = "tcp" if proto == "tcp" else "udp"
        args = [mode, server, port] + (["x"] if mode == "udp" else [])
        r = env.app(app, *args)
        if proto == "tcp":
            got = seen_as(r.stdout)
        else:
            m = re.search(r"reply=ECHO (\S+) x", r.stdout)
            got = m.group(1) if m else None
        what = "%s %s %s:%d" % (app, proto, server, port)
        if want is None:
            expect(r.returncode == 2 and "Operation not permitted" in r.stdout,
                   "%s should be blocked: %s" % (what, r.stdout))
        else:
            expect(got == want, "%s: the server saw %s, want %s (%s)\n%s"
                   % (what, got, want, outbound, r.stdout))
        dest = ("[%s]:%d" if ":" in server else "%s:%d") % (server, port)
        out = env.anserctl("explain", app, dest, proto).stdout
        expect(out.startswith("%s -> %s %s: %s\n" % (app, dest, proto, outbound)),
               "explain %s: %s" % (what, out))


def pb_varint(v):
    out = b""
    while True:
        c, v = v & 0x7F, v >> 7
        if v:
            out += bytes([c | 0x80])
        else:
            return out + bytes([c])


def pb_field(num, data):
    return pb_varint(num << 3 | 2) + pb_varint(len(data)) + data


def geosite(tags):
    """geosite.dat bytes: {tag: [(type, value)]} (0 keyword 1 regex 2 suffix 3 full)."""
    out = b""
    for tag, domains in tags.items():
        e = pb_field(1, tag.encode())
        for t, v in domains:
            e += pb_field(2, (pb_varint(1 << 3) + pb_varint(t) if t else b"") +
                          pb_field(2, v.encode()))
        out += pb_field(1, e)
    return out


def geoip(tags):
    """geoip.dat bytes: {tag: [(address bytes, prefix)]}."""
    out = b""
    for tag, cidrs in tags.items():
        e = pb_field(1, tag.encode())
        for ip, prefix in cidrs:
            e += pb_field(2, pb_field(1, ip) + pb_varint(2 << 3) + pb_varint(prefix))
        out += pb_field(1, e)
    return out


DAE_CONFIG = """# A dae config that uses every section, option and function.
global {
    tproxy_port: 12345
    tproxy_port_protect: true
    so_mark_from_dae: 0
    log_level: info
    pprof_port: 0
    lan_interface: docker0
    wan_interface: auto
    auto_config_kernel_parameter: true
    auto_config_firewall_rule: false
    disable_waiting_network: false
    enable_local_tcp_fast_redirect: false
    tcp_check_url: 'http://cp.cloudflare.com,1.1.1.1,2606:4700:4700::1111'
    tcp_check_http_method: HEAD
    udp_check_dns: 'dns.google:53,8.8.8.8,2001:4860:4860::8888'
    check_interval: 30s
    check_tolerance: 50ms
    allow_insecure: false
    dial_mode: domain
    sniffing_timeout: 100ms
    tls_implementation: tls
    utls_imitate: chrome_auto
    mptcp: false
    fallback_resolver: '8.8.8.8:53'
    bandwidth_max_tx: '200 mbps'
    bandwidth_max_rx: '1 gbps'
    dns_performance_level: balanced
}
include {
    conf.d/*.dae
}
subscription {
    my_sub: 'https://www.example.com/subscription/link'
    'file://local_sub.txt'
}
node {
    socks: 'socks5://10.77.0.2:1081'
    spare: 'socks5://10.77.0.9:1080'
}
/* multi-line
   comment */
dns {
    ipversion_prefer: 4
    fixed_domain_ttl {
        ddns.example.org: 10
    }
    upstream {
        googledns: 'tcp+udp://dns.google:53'
        alidns: 'udp://dns.alidns.com:53'
    }
    routing {
        request {
            qname(geosite:category-ads) -> reject
            qname(geosite:cn, suffix: example.cn) -> alidns
            qtype(aaaa, https) -> googledns
            fallback: alidns
        }
        response {
            upstream(googledns) -> accept
            ip(geoip:private) && !qname(geosite:cn) -> googledns
            fallback: accept
        }
    }
}
group {
    proxy {
        filter: name(socks) [add_latency: -10ms]
        filter: subtag(my_sub) && !name(keyword: 'ExpireAt:')
        policy: fixed(0)
    }
    spare_group {
        filter: name(regex: '^spa', spare)
        policy: min_moving_avg
        tcp_check_url: 'http://cp.cloudflare.com'
        check_interval: 10s
    }
}
routing {
    pname(NetworkManager, systemd-resolved) -> must_direct
    dip(224.0.0.0/3, 'ff00::/8') -> direct
    l4proto(udp) && dport(443) -> block
    dip(geoip:private) && !dip(10.77.0.0/24, fd77::/64) -> direct
    domain(geosite:category-ads) -> block
    domain(suffix: example.org, full: www.example.net, keyword: tracker, regex: '\\.goo.*\\.com$') -> proxy
    sip(192.168.50.0/24) && sport(1000-2000) -> spare_group
    mac('02:42:ac:11:00:02') -> direct
    dscp(46) -> direct
    ipversion(6) && pname(appV6) -> block
    app(org.example.Browser) -> proxy
    cgroup(/system.slice) -> direct
    pname(appR) -> must_rules
    pname(appR) -> direct(mark: 0x800)
    dip(geoip:cn) -> direct
    pname(appP) -> proxy(mark: 0x1)
    fallback: proxy
}
"""

INCLUDED = """# conf.d/extra.dae
routing {
    pname(appI) && dport(8080) -> block
}
"""


def t_dae_config(env):
    """A dae config using every section, option and routing function
    validates (warnings for what anser does not act on yet, no errors),
    anserd runs it, and `explain` names the expected outbound for a table
    of flows -- and real flows take that outbound."""
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    env.start_dante()
    env.start_bus()
    env.start_polkitd()
    cfg = env.write_config(DAE_CONFIG, "dae.dae")
    d = os.path.dirname(cfg)
    os.makedirs(os.path.join(d, "conf.d"), exist_ok=True)
    inc = os.path.join(d, "conf.d", "extra.dae")
    with open(inc, "w") as f:
        f.write(INCLUDED)
    os.chmod(inc, 0o600)
    with open(os.path.join(d, "geosite.dat"), "wb") as f:
        f.write(geosite({"CN": [(2, "example.cn"), (3, "www.baidu.com")],
                         "CATEGORY-ADS": [(0, "adserver"), (2, "ads.example")]}))
    with open(os.path.join(d, "geoip.dat"), "wb") as f:
        f.write(geoip({"CN": [(bytes([10, 77, 0, 3]), 32), (bytes([1, 2, 0, 0]), 16)]}))

    r = harness.run([harness.ANSERD, "--validate", "-c", cfg], check=False)
    out = r.stdout
    expect(r.returncode == 0 and "0 errors" in out, "the dae config should validate:\n" + out)
    for what in ["subscriptions are read and checked",
                 "sip() looks at forwarded traffic", "global option 'mptcp'"]:
        expect(what in out, "validate should warn about %r:\n%s" % (what, out))
    expect("global option 'dial_mode'" not in out, "dial_mode is used now:\n" + out)
    expect("domain() never holds" not in out, "the dns section has upstreams:\n" + out)
    expect("OK (2 files, 2 nodes, 2 groups, 16 rules)" in out, out)

    env.start_anserd(cfg)
    table = [  # app, destination, protocol, outbound, rule text shown
        ("NetworkManager", "%s:8080" % S4, "tcp", "direct", "-> direct(must)"),
        ("appX", "224.0.0.251:5353", "udp", "direct", "never steered"),
        ("appX", "%s:443" % S4, "udp", "block", "l4proto(udp) && dport(443) -> block"),
        ("appX", "192.168.1.1:80", "tcp", "direct", "dip('geoip:private')"),
        ("appV6", "[%s]:8080" % S6, "tcp", "block", "ipversion(6) && pname(appV6)"),
        ("appR", "%s:8080" % S4, "tcp", "direct", "direct(mark: 0x800)"),
        # the included file's rules come after the entry file's
        ("appI", "%s:8080" % S4, "tcp", "direct", "dip('geoip:cn') -> direct"),
        ("appI", "[%s]:8080" % S6, "tcp", "block", "pname(appI) && dport(8080) -> block"),
        ("appX", "%s:8080" % S4, "tcp", "direct", "dip('geoip:cn') -> direct"),
        ("appP", "%s:8080" % S4, "tcp", "direct", "dip('geoip:cn') -> direct"),
        ("appP", "[%s]:8080" % S6, "tcp", "proxy", "pname(appP) -> proxy(mark: 0x1)"),
        ("appX", "1.2.3.4:443", "tcp", "direct", "dip('geoip:cn')"),
        ("appX", "[%s]:8080" % S6, "tcp", "proxy", "fallback: proxy"),
        ("app:org.example.Browser", "9.9.9.9:443", "tcp", "proxy", "app(org.example.Browser)"),
    ]
    for app, dest, proto, outbound, text in table:
        o = env.anserctl("explain", app, dest, proto).stdout
        expect(o.startswith("%s -> %s %s: %s\n" % (app, dest, proto, outbound)) and text in o,
               "explain %s %s %s: want %s by '%s':\n%s" % (app, dest, proto, outbound, text, o))
    inc_out = env.anserctl("explain", "appI", "[%s]:8080" % S6).stdout
    expect("at %s:3:" % inc in inc_out, "the rule's own file is shown: " + inc_out)
    # real flows agree
    for app, server, want in [("appX", S4, H4), ("appX", S6, P6), ("appP", S6, P6),
                              ("appV6", S6, None), ("appI", S6, None), ("appR", S4, H4)]:
        r = env.app(app, "tcp", server, WEB)
        if want is None:
            expect(r.returncode == 2, "%s to %s should be blocked: %s" % (app, server, r.stdout))
        else:
            expect(seen_as(r.stdout) == want, "%s to %s: server saw %s, want %s"
                   % (app, server, seen_as(r.stdout), want))


def t_app_routes(env):
    """SetAppRoute / ClearAppRoute through anserctl and busctl: the route
    goes before the config's rules, changes real routing for new flows at
    once, is listed in AppRoutes (with PropertiesChanged), is kept in the
    state directory across a restart, and bad selectors or outbounds are
    refused with InvalidArgument."""
    cfg = base(env, rules="pname(appA) -> block", bus=True)
    r = env.app("appA", "tcp", S4, WEB)
    expect(r.returncode == 2, "the config blocks appA: " + r.stdout)

    mon = env.spawn("monitor", ["busctl", "--address=" + env.bus, "monitor",
                                "--match=type='signal',member='PropertiesChanged'"])
    time.sleep(0.3)
    out = env.anserctl("route", "pname(appA)", "proxy").stdout
    expect("pname(appA) -> proxy" in out, out)
    r = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(r.stdout) == P4, "routed appA goes through the proxy: " + r.stdout)
    # a bare name without a desktop file is a process name
    env.anserctl("route", "appB", "block")
    b = env.app("appB", "tcp", S4, WEB)
    expect(b.returncode == 2, "appB is blocked by its route: " + b.stdout)
    prop = env.busctl("get-property", "org.anser.Anser1", "/org/anser/Anser1",
                      "org.anser.Anser1.Manager", "AppRoutes").stdout
    expect('a{ss} 2 "pname(appA)" "proxy" "pname(appB)" "block"' in prop, prop)
    env.wait_for("PropertiesChanged for AppRoutes", lambda: "AppRoutes" in env.log("monitor"))
    js = env.anserctl("--json", "routes").stdout
    expect(json.loads(js) == [{"selector": "pname(appA)", "outbound": "proxy"},
                              {"selector": "pname(appB)", "outbound": "block"}], js)
    ex = env.anserctl("explain", "appA", "%s:%d" % (S4, WEB)).stdout
    expect(": proxy\n" in ex and "app-routes:1:" in ex, "explain names the route: " + ex)

    # refused: not a selector, unknown outbound, no such route
    for args, what in [(("route", "dip(10.0.0.0/8)", "proxy"), "not a selector"),
                       (("route", "pname(appA)", "nosuch"), "no outbound 'nosuch'"),
                       (("unroute", "pname(appZ)"), "no route for pname(appZ)")]:
        r = env.anserctl(*args, check=False)
        expect(r.returncode != 0 and what in r.stdout, "%s: %s" % (args, r.stdout))
    r = env.busctl("call", "org.anser.Anser1", "/org/anser/Anser1",
                   "org.anser.Anser1.Manager", "SetAppRoute", "ss", "pname(a,b)", "proxy",
                   check=False)
    expect(r.returncode != 0 and "one value" in r.stdout,
           "busctl SetAppRoute with a bad selector: %s" % r.stdout)

    # kept across a restart
    state = os.path.join(env.tmp, "state", "app-routes")
    with open(state) as f:
        text = f.read()
    expect("pname(appA) -> proxy" in text and "pname(appB) -> block" in text, text)
    env.stop_anserd()
    env.start_anserd(cfg)
    r = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(r.stdout) == P4, "after a restart the route holds: " + r.stdout)
    # cleared: the config's rule decides again
    env.anserctl("unroute", "pname(appA)")
    r = env.app("appA", "tcp", S4, WEB)
    expect(r.returncode == 2, "without its route appA is blocked again: " + r.stdout)
    with open(state) as f:
        expect("appA" not in f.read(), "the route is gone from the state file")


def t_service(env):
    """Enabled (a writable property, authorized by polkit before it is set:
    root may, nobody may not), State follows it and real flows go direct
    while suspended; Generation and ConfigFiles; Validate on good and bad
    text, through busctl and anserctl."""
    cfg = base(env, bus=True)
    mgr = ["org.anser.Anser1", "/org/anser/Anser1", "org.anser.Anser1.Manager"]

    def prop(name):
        return env.busctl("get-property", *mgr, name).stdout.strip()

    expect(prop("Enabled") == "b true", prop("Enabled"))
    expect(prop("Generation") == "t 1", prop("Generation"))
    expect(prop("ConfigFiles") == 'as 1 "%s"' % cfg, prop("ConfigFiles"))
    mon = env.spawn("monitor", ["busctl", "--address=" + env.bus, "monitor",
                                "--match=type='signal',member='PropertiesChanged'"])
    time.sleep(0.3)
    # nobody reaches the property (bus policy) but polkit says no
    r = harness.run(["runuser", "-u", "nobody", "--", "busctl", "--address=" + env.bus,
                     "set-property", *mgr, "Enabled", "b", "false"], check=False)
    expect(r.returncode != 0, "nobody must not suspend: " + r.stdout)
    expect(prop("Enabled") == "b true", "a denied Set changes nothing: " + prop("Enabled"))
    env.busctl("set-property", *mgr, "Enabled", "b", "false")
    expect(prop("Enabled") == "b false" and prop("State") == 's "suspended"',
           prop("Enabled") + prop("State"))
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == H4, "suspended: appA goes direct: " + a.stdout)
    env.wait_for("PropertiesChanged for Enabled",
                 lambda: "Enabled" in env.log("monitor") and "suspended" in env.log("monitor"))
    st = env.anserctl("status").stdout
    expect("State: suspended" in st and "Enabled: no" in st, st)
    # in Chinese, with the build tree's catalogue
    zh = harness.run([harness.ANSERCTL, "--address=" + env.bus, "status"],
                     env=dict(os.environ, LC_ALL="C.UTF-8", LANGUAGE="zh_CN",
                              ANSER_LOCALEDIR=os.path.join(harness.BUILD, "po"))).stdout
    expect("状态：suspended" in zh and "已启用：否" in zh, "LANGUAGE=zh_CN status: " + zh)
    env.anserctl("enable")
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "enabled again: appA is proxied: " + a.stdout)
    expect(prop("State") == 's "running"', prop("State"))
    env.anserctl("disable")
    expect(prop("Enabled") == "b false", prop("Enabled"))
    env.anserctl("enable")

    env.anserctl("reload")
    expect(prop("Generation") == "t 2", "a reload makes generation 2: " + prop("Generation"))
    env.wait_for("Generation changed", lambda: "Generation" in env.log("monitor"))

    # Validate: good text, bad text with positions, a limit the kernel has
    r = env.busctl("call", *mgr, "Validate", "s", "routing { fallback: direct }")
    expect(r.stdout.strip() == "ba(suus) true 0", r.stdout)
    r = env.busctl("call", *mgr, "Validate", "s", "routing {\n pname(a) -> nosuch\n}\n")
    expect(r.stdout.startswith("ba(suus) false") and '"<text>" 2 14' in r.stdout
           and "unknown outbound" in r.stdout, r.stdout)
    bad = os.path.join(env.tmp, "bad.dae")
    with open(bad, "w") as f:
        f.write("routing {\n dport(0) -> direct\n fallback: direct\n}\n")
    r = env.anserctl("validate", bad, check=False)
    expect(r.returncode != 0 and "%s:2:8: error: invalid port '0'" % bad in r.stdout
           and "rejected" in r.stdout, r.stdout)
    r = env.anserctl("validate", cfg)
    expect(r.stdout.strip().endswith(": OK"), r.stdout)


def t_busctl_script(env):
    """Only busctl: State, Enabled, SetAppRoute/ClearAppRoute, ActiveApps and
    ListConnections (tests/integration/busctl-script.sh), while appA holds
    a connection; and ActiveApps is announced (PropertiesChanged) when an
    app starts and when it stops."""
    base(env, rules="pname(appX) -> block", bus=True)
    mon = env.spawn("monitor", ["busctl", "--address=" + env.bus, "monitor",
                                "--match=type='signal',member='PropertiesChanged'"])
    ctl_mon = env.spawn("anserctl-monitor", [harness.ANSERCTL, "--address=" + env.bus,
                                             "monitor"])
    env.wait_for("anserctl monitor", lambda: "Watching" in env.log("anserctl-monitor"))
    held = env.app("appA", "tcp", S4, WEB, 3000, background=True)
    env.wait_for("ActiveApps announced", lambda: "ActiveApps" in env.log("monitor"))
    seen_start = env.log("monitor").count("ActiveApps")
    r = harness.run(["sh", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "busctl-script.sh"), env.bus], check=False)
    out = r.stdout
    expect(r.returncode == 0, "the script ran: " + out)
    sections = dict(part.split("\n", 1) for part in out.split("== ")[1:])
    expect(sections["state"].strip() == 's "running"', out)
    expect('s "suspended"' in sections["suspend"], out)
    expect('s "running"' in sections["resume"], out)
    expect('a{ss} 1 "pname(appA)" "proxy"' in sections["route"], out)
    apps = json.loads(sections["apps"])["data"]
    a = [x for x in apps if x["ProcessName"]["data"] == "appA"]
    expect(a and a[0]["Connections"]["data"] == 1 and a[0]["Outbound"]["data"] == "direct",
           "ActiveApps has appA's connection (opened before the route): %s" % apps)
    conns = json.loads(sections["connections"])["data"][0]
    expect(any(c["ProcessName"]["data"] == "appA" for c in conns), "connections: %s" % conns)
    expect("a{ss} 0" in sections["unroute"], out)
    apps = env.anserctl("apps").stdout
    expect("APPLICATION" in apps and "appA" in apps and "direct" in apps, apps)
    mlog = env.log("anserctl-monitor")
    expect("State: suspended" in mlog and "Enabled: no" in mlog and "ActiveApps changed" in mlog
           and "AppRoutes changed" in mlog, "anserctl monitor: " + mlog)
    held.communicate(timeout=20)
    # the app stopped: announced again (at most a second later)
    env.wait_for("ActiveApps announced after the app stopped",
                 lambda: env.log("monitor").count("ActiveApps") > seen_start, timeout=5)


def t_groups_nodes(env):
    """Groups and ListNodes show groups and nodes, never a password;
    SelectNode switches which node a group's new connections use (root
    may, nobody may not); anserctl groups/nodes/select."""
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    env.start_microsocks(user="alice", password="s3cr%t")
    env.start_bus()
    env.start_polkitd()
    text = CONFIG.replace("    socks: '%(link)s'\n",
                          "    good: 'socks5://alice:s3cr%%25t@10.77.0.2:1080'\n"
                          "    dead: 'socks5://10.77.0.9:1080'\n")
    text = text.replace("    log_level: debug\n", "    log_level: debug\n"
                        "    tcp_check_url: 'http://10.77.0.3:8080/'\n")
    cfg = env.write_config(text % {"rules": "pname(appA) -> proxy"})
    env.start_anserd(cfg)
    mgr = ["org.anser.Anser1", "/org/anser/Anser1", "org.anser.Anser1.Manager"]
    nodes = env.busctl("--json=short", "call", *mgr, "ListNodes").stdout
    expect("s3cr" not in nodes and "alice" not in nodes, "no credentials: " + nodes)
    data = json.loads(nodes)["data"][0]
    by = {n["Name"]["data"]: n for n in data}
    expect(by["good"]["Address"]["data"] == "10.77.0.2:1080"
           and by["good"]["Authenticated"]["data"] is True
           and by["good"]["Groups"]["data"] == ["proxy"]
           and by["good"]["Protocol"]["data"] == "socks5", nodes)
    groups = env.busctl("get-property", *mgr, "Groups").stdout
    expect('"Name" s "proxy" "Policy" s "fixed" "SelectedNode" s "good"' in groups, groups)
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "through the good node: " + a.stdout)

    r = harness.run(["runuser", "-u", "nobody", "--", "busctl", "--address=" + env.bus, "call",
                     *mgr, "SelectNode", "ss", "proxy", "dead"], check=False)
    expect(r.returncode != 0, "nobody must not select nodes: " + r.stdout)
    env.anserctl("select", "proxy", "dead")
    expect('"SelectedNode" s "dead"' in env.busctl("get-property", *mgr, "Groups").stdout,
           "Groups shows the selection")
    a = env.app("appA", "tcp", S4, WEB, timeout=60)
    expect(a.returncode != 0 and seen_as(a.stdout) is None,
           "through the dead node appA cannot connect: " + a.stdout)
    env.anserctl("select", "proxy", "good")
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "back on the good node: " + a.stdout)
    for args, what in [(("select", "proxy", "nosuch"), "has no node 'nosuch'"),
                       (("select", "nogroup", "good"), "no group 'nogroup'")]:
        r = env.anserctl(*args, check=False)
        expect(r.returncode != 0 and what in r.stdout, r.stdout)
    out = env.anserctl("groups").stdout
    expect("GROUP" in out and "proxy" in out and "good, dead" in out, out)
    out = env.anserctl("nodes").stdout
    expect("10.77.0.9:1080" in out and "s3cr" not in out, out)
    # --json for scripts
    st = json.loads(env.anserctl("--json", "status").stdout)
    expect(st["State"] == "running" and st["Enabled"] is True and st["Generation"] >= 1, st)
    gr = json.loads(env.anserctl("--json", "groups").stdout)
    expect(gr == [{"Name": "proxy", "Policy": "fixed", "SelectedNode": "good",
                   "Nodes": ["good", "dead"]}], gr)
    nd = json.loads(env.anserctl("--json", "nodes").stdout)
    expect([n["Name"] for n in nd] == ["good", "dead"], nd)
    # health: checked through each node, the dead one's tcp4 check fails
    out = env.anserctl("test-nodes").stdout
    expect("checks done" in out, out)
    nd = json.loads(env.anserctl("--json", "nodes").stdout)
    expect(nd[0]["Checked"] and "tcp4" in nd[0]["Latency"] and "tcp4" not in nd[0]["Dead"], nd)
    expect(nd[1]["Checked"] and "tcp4" in nd[1]["Dead"] and nd[1]["Latency"] == {}, nd)
    expect(isinstance(json.loads(env.anserctl("--json", "apps").stdout), list), "apps json")


def t_notify(env):
    """sd_notify: READY=1 only once the bus name is owned and rules are in;
    RELOADING=1 then READY=1 around a reload; STOPPING=1 on the way out."""
    import socket
    env.setup_net()
    env.setup_cgroup()
    env.start_bus()
    env.start_polkitd()
    path = os.path.join(env.tmp, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    cfg = config(env)
    env.start_anserd(cfg, environ=dict(os.environ, NOTIFY_SOCKET=path))

    def expect_msg(what):
        msg = sock.recv(4096).decode()
        expect(what in msg, "want %s, got %r" % (what, msg))
        return msg

    msg = expect_msg("READY=1")
    expect("STATUS=Running, generation 1" in msg, msg)
    names = env.busctl("list", "--no-pager").stdout
    expect("org.anser.Anser1" in names, "the name is owned when READY=1 arrives")
    env.anserd.send_signal(signal.SIGHUP)
    expect_msg("RELOADING=1")
    expect("generation 2" in expect_msg("READY=1"), "ready again after the reload")
    env.anserd.send_signal(signal.SIGTERM)
    expect_msg("STOPPING=1")
    env.anserd.wait(30)
    sock.close()


def t_authorization(env):
    """Every method, and setting Enabled, as root (allowed) and as nobody
    (refused by polkit: no active session), against the project's bus
    policy and polkit actions; ActiveApps shows nobody no other user's
    processes."""
    base(env, bus=True)
    mgr = ["org.anser.Anser1", "/org/anser/Anser1", "org.anser.Anser1.Manager"]
    calls = [
        ("Reload", []),
        ("ListConnections", []),
        ("ListNodes", []),
        ("Explain", ["sss", "appA", "%s:%d" % (S4, WEB), "tcp"]),
        ("Validate", ["s", "routing { fallback: direct }"]),
        ("SetAppRoute", ["ss", "pname(appQ)", "direct"]),
        ("ClearAppRoute", ["s", "pname(appQ)"]),
        ("SelectNode", ["ss", "proxy", "socks"]),
    ]
    held = env.app("appA", "tcp", S4, WEB, 3000, background=True)
    time.sleep(1.0)
    for method, args in calls:
        r = harness.run(["runuser", "-u", "nobody", "--", "busctl", "--address=" + env.bus,
                         "call", *mgr, method, *args], check=False)
        expect(r.returncode != 0 and ("Not authorized" in r.stdout
                                      or "nteractive" in r.stdout
                                      or "Authentication is required" in r.stdout),
               "nobody: %s should be refused: %s" % (method, r.stdout))
        r = env.busctl("call", *mgr, method, *args, check=False)
        expect(r.returncode == 0, "root: %s should be allowed: %s" % (method, r.stdout))
    r = harness.run(["runuser", "-u", "nobody", "--", "busctl", "--address=" + env.bus,
                     "set-property", *mgr, "Enabled", "b", "true"], check=False)
    expect(r.returncode != 0, "nobody: setting Enabled should be refused: " + r.stdout)
    env.busctl("set-property", *mgr, "Enabled", "b", "true")
    # properties are readable by everyone; ActiveApps only with one's own apps
    for p in ("Version", "State", "Enabled", "Generation", "ConfigFiles", "AppRoutes",
              "Groups"):
        r = harness.run(["runuser", "-u", "nobody", "--", "busctl", "--address=" + env.bus,
                         "get-property", *mgr, p], check=False)
        expect(r.returncode == 0, "nobody may read %s: %s" % (p, r.stdout))
    r = harness.run(["runuser", "-u", "nobody", "--", "busctl", "--address=" + env.bus,
                     "get-property", *mgr, "ActiveApps"], check=False)
    expect(r.stdout.strip() == "aa{sv} 0", "nobody sees no one else's apps: " + r.stdout)
    root_view = env.busctl("get-property", *mgr, "ActiveApps").stdout
    expect("appA" in root_view, "root sees appA: " + root_view)
    held.communicate(timeout=20)


def t_activation(env):
    """D-Bus activation: the first call to org.anser.Anser1 makes the bus
    start anserd from the activation file (the one meson builds, with only
    its Exec= line pointed at this build and the test's namespace)."""
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    env.start_microsocks()
    env.start_bus()
    env.start_polkitd()
    cfg = config(env)
    with open(os.path.join(harness.BUILD, "dbus", "org.anser.Anser1.service")) as f:
        text = f.read()
    log = os.path.join(env.tmp, "anserd.log")
    exec_line = "Exec=/bin/sh -c 'exec %s >%s 2>&1'" % (" ".join(
        env.nsexec("h") + [harness.ANSERD, "--config", cfg, "--cgroup", env.cg,
                           "--state-dir", os.path.join(env.tmp, "state"),
                           "--bpf-dir", os.path.join(env.tmp, "bpf"),
                           "--bus-address=" + env.bus, "--log-level", "debug"]), log)
    text = re.sub(r"(?m)^Exec=.*$", exec_line, text)
    expect("Name=org.anser.Anser1" in text and "SystemdService=anserd.service" in text, text)
    with open(os.path.join(env.tmp, "services", "org.anser.Anser1.service"), "w") as f:
        f.write(text)
    env.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
               "org.freedesktop.DBus", "ReloadConfig")
    names = env.busctl("list", "--no-pager").stdout
    expect("org.anser.Anser1" in names and "activatable" in names.split(
        "org.anser.Anser1")[1].split("\n")[0], "listed as activatable: " + names)
    # the first call starts it
    st = env.anserctl("status").stdout
    expect("State: running" in st, "activated anserd answers: " + st)
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "the activated anserd routes: " + a.stdout)
    pids = harness.run(["pgrep", "-f", "anserd --config " + cfg], check=False).stdout.split()
    for pid in pids:
        os.kill(int(pid), signal.SIGTERM)


def t_hash(env):
    base(env)
    size = 8 * 1024 * 1024
    a = env.app("appA", "tcpget", S4, WEB, "/bytes/%d" % size, timeout=60)
    b = env.app("appB", "tcpget", S4, WEB, "/bytes/%d" % size, timeout=60)
    expect(a.returncode == 0 and b.returncode == 0, a.stdout + b.stdout)
    expect("len=%d " % size in a.stdout, "short transfer via proxy: " + a.stdout)
    expect(a.stdout.split()[-1] == b.stdout.split()[-1],
           "hash via proxy %s != direct %s" % (a.stdout, b.stdout))


def t_block(env):
    base(env, rules="pname(appA) && dport(8080) -> block\n    dip(10.77.0.3/32, fd77::3) && "
                    "pname(appB) && l4proto(udp) -> block")
    a = env.app("appA", "tcp", S4, WEB)
    expect(a.returncode == 2 and "error=Operation not permitted" in a.stdout,
           "blocked connect should fail with EPERM: " + a.stdout)
    a6 = env.app("appA", "tcp", S6, WEB)
    expect(a6.returncode == 2, "blocked v6 connect should fail: " + a6.stdout)
    b = env.app("appB", "tcp", S4, WEB)
    expect(seen_as(b.stdout) == H4, "appB TCP is not blocked: " + b.stdout)
    u = env.app("appB", "udp", S4, WEB, "x")
    expect(u.returncode == 2 and "error=Operation not permitted" in u.stdout,
           "blocked datagram should fail: " + u.stdout)


def t_other_netns(env):
    """Apps of the cgroup in another network namespace are neither steered
    (anserd's listeners are not there) nor blocked: they go direct."""
    base(env, rules="pname(appA) -> proxy\n    pname(appC) -> block")
    for name in ("appA", "appC"):
        t = env.app(name, "tcp", S4, WEB, role="s")
        expect(t.returncode == 0 and seen_as(t.stdout) == S4,
               "%s in another netns should go direct: %s" % (name, t.stdout))
        u = env.app(name, "udp", S4, WEB, "x", role="s")
        expect(u.returncode == 0 and "reply=ECHO %s x" % S4 in u.stdout,
               "%s's UDP in another netns should go direct: %s" % (name, u.stdout))
    # In anserd's namespace the same rules apply.
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "appA in anserd's netns goes via the proxy: " + a.stdout)
    c = env.app("appC", "tcp", S4, WEB)
    expect(c.returncode == 2, "appC in anserd's netns is blocked: " + c.stdout)


def check_udp(env, server, proxy_addr, connected=False):
    mode = "udpc" if connected else "udp"
    a = env.app("appA", mode, server, WEB, "hello")
    expect(a.returncode == 0, "appA UDP got no reply: " + a.stdout)
    expect("reply=ECHO %s hello" % proxy_addr in a.stdout,
           "appA UDP should reach the server via the proxy (%s): %s" % (proxy_addr, a.stdout))
    # recvmsg() must show the server as the source, not anserd's loopback.
    expect("from=%s" % (server if ":" not in server else "[%s]" % server) in a.stdout,
           "reply source should be the server: " + a.stdout)


def t_udp_v4(env):
    base(env, proxy="dante")
    check_udp(env, S4, P4)
    check_udp(env, S4, P4, connected=True)
    b = env.app("appB", "udp", S4, WEB, "hi")
    expect("reply=ECHO %s hi" % H4 in b.stdout, "appB UDP should go direct: " + b.stdout)


def t_udp_v6(env):
    base(env, proxy="dante")
    check_udp(env, S6, P6)
    check_udp(env, S6, P6, connected=True)
    b = env.app("appB", "udp", S6, WEB, "hi")
    expect("reply=ECHO %s hi" % H6 in b.stdout, "appB UDP should go direct: " + b.stdout)


def t_kill9(env):
    base(env)
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "appA should be proxied first: " + a.stdout)
    expect(env.cgroup_attached(), "programs should be attached while anserd runs")
    ours = env.prog_ids_of(env.anserd.pid)
    expect(len(ours) >= 9, "anserd should hold its programs: %s" % ours)
    os.kill(env.anserd.pid, signal.SIGKILL)
    env.anserd.wait()
    env.wait_for("links to go away", lambda: not env.cgroup_attached(), timeout=10)
    left = env.cgroup_attached()
    expect(not left, "programs still attached after kill -9: %s" % left)
    # Not just detached from the cgroup: no program of ours is left in the
    # kernel at all (this covers the tcx link on lo, which bpftool 7.1
    # cannot list).
    env.wait_for("programs to be freed", lambda: not env.prog_ids_exist(ours), timeout=10)
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == H4, "after kill -9 appA must go direct: " + a.stdout)
    u = env.app("appA", "udp", S4, WEB, "x")
    expect("reply=ECHO %s x" % H4 in u.stdout, "after kill -9 UDP must go direct: " + u.stdout)


def t_builtin_default(env):
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    cmd = env.nsexec("h") + [harness.ANSERD, "--cgroup", env.cg, "--no-bus",
                             "--state-dir", os.path.join(env.tmp, "state"),
                             "--bpf-dir", os.path.join(env.tmp, "bpf")]
    env.anserd = env.spawn("anserd", cmd)
    env.wait_for("anserd running", env._anserd_ready)
    expect("built-in default" in env.log("anserd"), "should say it runs on the default")
    for name in ("appA", "appB"):
        r = env.app(name, "tcp", S4, WEB)
        expect(seen_as(r.stdout) == H4, "%s should go direct: %s" % (name, r.stdout))


def t_list(env):
    base(env, bus=True)
    held_a = env.app("appA", "tcp", S4, WEB, 4000, background=True)
    held_b = env.app("appB", "tcp", S4, WEB, 4000, background=True)
    held_c = env.app("appC", "tcp", S6, WEB, 4000, background=True)
    time.sleep(1.0)
    r = env.anserctl("connections", "--json")
    rows = json.loads(r.stdout)
    byname = {}
    for row in rows:
        byname.setdefault(row["process"], []).append(row)
    expect("appA" in byname and "appB" in byname and "appC" in byname,
           "the three apps listed: %s" % rows)
    # IPv4 and IPv6 TCP come from one kernel dump: each keeps its family.
    c = byname["appC"][0]
    expect(c["destination"] == "[%s]:%d" % (S6, WEB) and c["source"].startswith("[%s]:" % H6),
           "appC row (IPv6): %s" % c)
    a = byname["appA"][0]
    b = byname["appB"][0]
    expect(a["outbound"] == "proxy" and a["destination"] == "%s:%d" % (S4, WEB),
           "appA row: %s" % a)
    expect(b["outbound"] == "direct" and b["destination"] == "%s:%d" % (S4, WEB),
           "appB row: %s" % b)
    expect(a["protocol"] == "tcp" and a["pid"] == held_a.pid, "appA pid/proto: %s" % a)
    out_a, _ = held_a.communicate(timeout=20)
    out_b, _ = held_b.communicate(timeout=20)
    out_c, _ = held_c.communicate(timeout=20)
    expect(seen_as(out_a) == P4 and seen_as(out_b) == H4 and seen_as(out_c) == H6,
           out_a + out_b + out_c)
    # Byte counters move for the proxied flow after traffic.
    table = env.anserctl("connections").stdout
    expect("PROCESS" in table, "table header: " + table)


def t_list_burst(env):
    """A burst of short connections (far more than a CPU's flow log holds)
    neither loses the record of a long-lived flow started before it nor
    overflows the log: anserd keeps pace (its timer, or the kernel's
    wakeup when it lags)."""
    base(env, bus=True)
    env.spawn("sink", env.nsexec("s") + [harness.CLIENT, "tcpsink", "8082"])
    env.wait_port("s", 8082)
    held = env.app("appB", "tcp", S4, WEB, 8000, background=True)
    time.sleep(0.5)
    burst = env.app("appC", "tcpconn", S4, 8082, 30000, timeout=120)
    expect(burst.returncode == 0, "burst: " + burst.stdout)
    rows = json.loads(env.anserctl("connections", "--json").stdout)
    mine = [r for r in rows if r["pid"] == held.pid]
    expect(len(mine) == 1 and mine[0]["outbound"] == "direct",
           "the held flow is listed after the burst: %s" % mine)
    log = env.log("anserd")
    expect("overwritten" not in log, "no flow record lost:\n" + log[-3000:])
    held.communicate(timeout=20)


def t_mark(env):
    """direct(mark: N) gives the app's socket SO_MARK N (for policy routing),
    seen by the kernel's socket list; other direct flows carry no mark."""
    base(env, rules="pname(appB) -> direct(mark: 0x123)\n"
                    "    pname(appE) && dport(%d) -> must_direct(mark: 77)\n"
                    "    pname(appA) -> proxy(mark: 0x55)" % WEB)
    held = [env.app(name, "tcp", S4, WEB, 3000, background=True)
            for name in ("appB", "appC", "appE")]
    via = env.app("appA", "tcp", S4, WEB, 3000, background=True)
    time.sleep(0.8)
    # The relay's connection to the node carries the proxied rule's mark.
    up = harness.run(env.nsexec("h") + ["ss", "-tnieH", "dst", "%s:1080" % P4]).stdout
    expect("fwmark:0x55" in up, "anserd's connection to the node has fwmark 0x55:\n" + up)
    ss = harness.run(env.nsexec("h") + ["ss", "-tnieHp", "dst", S4]).stdout
    marks = {}
    for line in ss.splitlines():
        m = re.search(r'users:\(\("(\w+)"', line)
        if m:
            f = re.search(r"fwmark:(0x[0-9a-f]+)", line)
            marks[m.group(1)] = f.group(1) if f else None
    expect(marks.get("appB") == "0x123", "appB's socket has fwmark 0x123: %s\n%s" % (marks, ss))
    expect(marks.get("appE") == "0x4d", "appE's socket has fwmark 77: %s\n%s" % (marks, ss))
    expect("appC" in marks and marks["appC"] is None, "appC has no mark: %s\n%s" % (marks, ss))
    for p in held:
        out, _ = p.communicate(timeout=20)
        expect(seen_as(out) == H4, "marked flows still go direct: " + out)
    out, _ = via.communicate(timeout=20)
    expect(seen_as(out) == P4, "appA goes via the proxy: " + out)


def t_explain(env):
    """`anserctl explain` names the rule that decides a flow -- the one the
    kernel applies: checked against real flows for some rows."""
    rules = ("pname(appA) && dport(8080) -> proxy\n"
             "    dip(10.77.0.3/32) && l4proto(udp) -> block\n"
             "    !pname(appB) && ipversion(6) -> proxy\n"
             "    pname(appD) -> must_proxy\n"
             "    pname(appA) -> must_rules")
    cfg = base(env, rules=rules, bus=True)
    lines = open(cfg).read().split("\n")

    def line_of(text):
        return next(i + 1 for i, l in enumerate(lines) if text in l)

    table = [  # app, destination, protocol, outbound, rule number, its text
        ("appA", "%s:%d" % (S4, WEB), "tcp", "proxy", 1,
         "pname(appA) && dport(8080) -> proxy"),
        ("appA", "%s:9090" % S4, "tcp", "direct", None, "fallback: direct"),
        ("appB", "%s:53" % S4, "udp", "block", 2,
         "dip(10.77.0.3) && l4proto(udp) -> block"),
        ("appC", "[%s]:%d" % (S6, WEB), "tcp", "proxy", 3,
         "!pname(appB) && ipversion(6) -> proxy"),
        ("appB", "[%s]:%d" % (S6, WEB), "tcp", "direct", None, "fallback: direct"),
        ("appA", "%s" % S4, "tcp", "direct", None, "fallback: direct"),
        ("appA", "127.0.0.1:%d" % WEB, "tcp", "direct", 0, "never steered"),
        ("appD", "%s:%d" % (S4, WEB), "tcp", "proxy", 4, "pname(appD) -> proxy(must)"),
    ]
    for app, dest, proto, outbound, rule, text in table:
        r = env.anserctl("explain", app, dest, proto)
        out = r.stdout
        expect(r.returncode == 0, "explain %s %s: %s" % (app, dest, out))
        expect(out.startswith("%s -> %s %s: %s\n" % (app, dest, proto, outbound)),
               "explain %s %s %s: %s" % (app, dest, proto, out))
        expect(text in out, "explain %s %s shows '%s': %s" % (app, dest, text, out))
        if rule:
            where = "rule %d at %s:%d:" % (rule, cfg, line_of(rules.split("\n")[rule - 1].strip()))
            expect(where in out, "explain %s %s: want '%s' in %s" % (app, dest, where, out))
        elif rule is None:
            expect("fallback at %s:%d:" % (cfg, line_of("fallback: direct")) in out, out)
        if ":" not in dest.replace("[%s]" % S6, ""):
            expect("no port given" in out, out)
    # What explain says is what happens.
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == P4, "appA via the proxy: " + a.stdout)
    u = env.app("appB", "udp", S4, 53, "x")
    expect(u.returncode == 2, "appB's UDP to 10.77.0.3 is blocked: " + u.stdout)
    c = env.app("appC", "tcp", S6, WEB)
    expect(seen_as(c.stdout) == P6, "appC's IPv6 via the proxy: " + c.stdout)
    b = env.app("appB", "tcp", S6, WEB)
    expect(seen_as(b.stdout) == H6, "appB's IPv6 direct: " + b.stdout)
    d = env.app("appD", "tcp", S4, WEB)
    expect(seen_as(d.stdout) == P4, "appD (must_proxy) via the proxy: " + d.stdout)
    # Bad arguments: a clear message and the usage exit status.
    for args, msg in ((("appA", "example.com:80"), "not an IP address"),
                      (("appA", "10.0.0.1:0"), "not an IP address"),
                      (("appA", "10.0.0.1", "sctp"), "tcp or udp"),
                      (("appA",), "usage")):
        r = env.anserctl("explain", *args, check=False)
        expect(r.returncode == 2 and msg in r.stdout,
               "explain %s: %d %s" % (args, r.returncode, r.stdout))


def t_reload(env):
    cfg = base(env, bus=True)
    held = env.app("appA", "tcp", S4, WEB, 3000, background=True)
    time.sleep(0.8)
    config(env, rules="pname(appB) -> proxy")
    r = env.busctl("call", "org.anser.Anser1", "/org/anser/Anser1",
                   "org.anser.Anser1.Manager", "Reload", check=False)
    expect(r.returncode == 0, "Reload failed: " + r.stdout)
    out, _ = held.communicate(timeout=20)
    expect(seen_as(out) == P4, "the established proxied flow must survive reload: " + out)
    a = env.app("appA", "tcp", S4, WEB)
    b = env.app("appB", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == H4, "after reload appA goes direct: " + a.stdout)
    expect(seen_as(b.stdout) == P4, "after reload appB is proxied: " + b.stdout)
    # A broken config is refused with file:line:col and the old one keeps running.
    config(env, rules="pname(appA) -> nosuchgroup")
    r = env.anserctl("reload", check=False)
    expect(r.returncode != 0, "broken reload should fail")
    expect("config.dae:" in r.stdout and "nosuchgroup" in r.stdout,
           "error should name file:line:col and the bad text: " + r.stdout)
    b = env.app("appB", "tcp", S4, WEB)
    expect(seen_as(b.stdout) == P4, "old config must keep running: " + b.stdout)
    st = env.anserctl("status").stdout
    expect("running" in st, "state after failed reload: " + st)
    # An unprivileged caller reaches the method (bus policy) but polkit says no.
    gens = env.log("anserd").count("active (")
    r = harness.run(["runuser", "-u", "nobody", "--", "busctl", "--address=" + env.bus, "call",
                     "org.anser.Anser1", "/org/anser/Anser1", "org.anser.Anser1.Manager",
                     "Reload"], check=False)
    expect(r.returncode != 0 and ("Authentication is required" in r.stdout or "nteractive" in r.stdout
                                  or "not authorized" in r.stdout.lower()),
           "nobody must not reload: " + r.stdout)
    expect(env.log("anserd").count("active (") == gens, "a denied Reload must not reload")


def t_sighup(env):
    base(env)
    config(env, rules="pname(appB) -> proxy")
    os.kill(env.anserd.pid, signal.SIGHUP)
    env.wait_for("reload", lambda: "generation 2 active" in env.log("anserd"))
    a = env.app("appA", "tcp", S4, WEB)
    b = env.app("appB", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == H4 and seen_as(b.stdout) == P4, a.stdout + b.stdout)


def t_sigterm(env):
    base(env)
    env.anserd.send_signal(signal.SIGTERM)
    rc = env.anserd.wait(10)
    expect(rc == 0, "anserd should exit 0 on SIGTERM, got %d" % rc)
    expect(not env.cgroup_attached(), "nothing attached after exit")
    a = env.app("appA", "tcp", S4, WEB)
    expect(seen_as(a.stdout) == H4, "direct after exit: " + a.stdout)


def t_valgrind(env):
    """The daemon under valgrind through TCP, UDP, listing, reload and exit."""
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    env.start_dante()
    env.start_bus()
    env.start_polkitd()
    vlog = os.path.join(env.tmp, "valgrind.log")
    cfg = config(env, link="socks5://10.77.0.2:1081")
    env.start_anserd(cfg, wrapper=harness.valgrind_wrapper(vlog))
    check_split(env, S4, P4, H4)
    check_udp(env, S4, P4)
    check_udp(env, S6, P6, connected=True)
    env.anserctl("connections")
    # the new parts of the language: app()/cgroup() (and a cgroup made
    # while running), domain() with sets, dns and subscription sections
    scope = env.sub_cgroup("app-gnome-org.test.Browser-1.scope")
    rules = "\n    ".join([
        "app(org.test.Browser) && cgroup('/%s') -> proxy" % os.path.basename(env.cg),
        "domain(geosite:private, keyword: ads, regex: '^x[0-9]+$') -> block",
        "dip(geoip:private) && !dip(10.77.0.0/16, fd77::/16) -> direct",
        "pname(appB) -> proxy",
    ])
    config(env, rules=rules, link="socks5://10.77.0.2:1081")
    with open(cfg, "a") as f:
        f.write("dns {\n upstream { g: 'udp://1.1.1.1:53' }\n routing { request {\n"
                "  qname(a.com) -> g\n } }\n}\nsubscription { 'https://example.com/s' }\n")
    env.anserctl("reload")
    b = env.app("appB", "tcp", S4, WEB)
    expect(seen_as(b.stdout) == P4, "after reload appB is proxied: " + b.stdout)
    late = env.sub_cgroup("app-gnome-org.test.Browser-2.scope")
    env.wait_for("the new scope filed", lambda: "Browser-2.scope" in env.log("anserd"))
    for cg in (scope, late):
        a = env.app("appZ", "tcp", S4, WEB, cgroup=cg)
        expect(seen_as(a.stdout) == P4, "app() in %s: %s" % (cg, a.stdout))
    env.anserctl("explain", "app:org.test.Browser", "%s:%d" % (S4, WEB))
    # the service API: routes, suspension, validation
    env.anserctl("route", "pname(appC)", "block")
    env.anserctl("route", "pname(appC)", "proxy")
    env.anserctl("unroute", "pname(appC)")
    env.anserctl("disable")
    env.anserctl("enable")
    env.anserctl("validate", cfg)
    env.anserctl("routes")
    env.anserctl("status")
    harness.stop_valgrind_anserd(env, vlog)


def t_fd_hygiene(env):
    """anserd never closes a descriptor it does not hold: a second close()
    of a number another thread has been given meanwhile closes that
    thread's socket (a health check that failed while dialling once did,
    and now and then a proxied connection stalled). Under strace, every
    close() that fails with EBADF is such a bug. Failing checks (the
    default check URL is unreachable here), proxied and direct TCP and UDP,
    a listing, a reload and the exit."""
    strace = shutil.which("strace")
    if not strace:
        raise harness.Skip("strace not installed")
    env.setup_net()
    env.setup_cgroup()
    env.start_web()
    env.start_dante()
    env.start_bus()
    env.start_polkitd()
    cfg = env.write_config(CONFIG.replace("log_level: debug", "log_level: debug\n"
                                          "    check_interval: 1s") % {
        "rules": "pname(appA) -> proxy", "link": "socks5://10.77.0.2:1081"})
    slog = os.path.join(env.tmp, "strace.log")
    env.start_anserd(cfg, wrapper=[strace, "-f", "-qq", "-e", "trace=close",
                                   "-e", "status=failed", "-o", slog])
    deadline = time.time() + 20
    while env.log("anserd").count("check failed") < 6 and time.time() < deadline:
        check_split(env, S4, P4, H4)
        check_udp(env, S4, P4)
    env.anserctl("connections")
    env.anserctl("reload")
    check_split(env, S4, P4, H4)
    # SIGTERM to anserd itself (strace forwards no signal); strace ends with it
    for pid in env.live_anserds():
        os.kill(pid, signal.SIGTERM)
    env.anserd.wait(20)
    env.anserd = None
    log = env.log("anserd")
    expect("Exiting on signal" in log, "anserd exited on SIGTERM: " + log[-1000:])
    expect(log.count("check failed") >= 6,
           "the failing checks ran (%d): %s" % (log.count("check failed"), log[-2000:]))
    with open(slog) as f:
        bad = [l for l in f if "EBADF" in l]
    expect(not bad, "close() of a descriptor anserd did not hold: %s" % "".join(bad[:10]))


SQUAT = """import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    print("got a connection", flush=True)
    c.close()
"""


def t_fail_closed(env):
    """fail_mode: closed. anserd killed with SIGKILL leaves its steering
    programs pinned: the proxied app's TCP and UDP are refused (never sent
    direct), the direct app's flows go on; a process that takes the dead
    listener's port gets nothing (the programs steer only to a socket of
    anserd's). The next anserd removes those pins and steers; a clean exit
    unpins them (everything direct). fail_mode: open pins nothing."""
    bpf = os.path.join(env.tmp, "bpf")
    os.makedirs(bpf)
    harness.run(["mount", "-t", "bpf", "bpf", bpf])  # a bpf filesystem of the test's own
    try:
        env.setup_net()
        env.setup_cgroup()
        env.start_web()
        env.start_dante()
        link = "socks5://10.77.0.2:1081"
        closed = CONFIG.replace("log_level: debug", "log_level: debug\n    fail_mode: closed")
        cfg = env.write_config(closed % {"rules": "pname(appA) -> proxy", "link": link})
        env.start_anserd(cfg)
        check_split(env, S4, P4, H4)
        check_udp(env, S4, P4)
        def ours():  # (a bpf filesystem's root also lists progs.debug, maps.debug)
            return sorted(n for n in os.listdir(bpf) if n.startswith("anser_"))
        pins = ours()
        expect("anser_connect4" in pins and "anser_sendmsg6" in pins, "pinned: %s" % pins)
        port = re.search(r"running \(listeners tcp (\d+)/", env.log("anserd")).group(1)
        os.kill(env.anserd.pid, signal.SIGKILL)
        env.anserd.wait(10)
        expect(env.cgroup_attached(), "the programs outlive a killed anserd")
        a = env.app("appA", "tcp", S4, WEB)
        expect(a.returncode == 2 and "error=Operation not permitted" in a.stdout,
               "the proxied app's TCP is refused, not sent direct: " + a.stdout)
        u = env.app("appA", "udp", S4, WEB, "x")
        expect(u.returncode == 2 and "reply=" not in u.stdout,
               "the proxied app's UDP is refused: " + u.stdout)
        b = env.app("appB", "tcp", S4, WEB)
        expect(seen_as(b.stdout) == H4, "the direct app goes on: " + b.stdout)
        # a process on the port the dead listener had gets nothing
        squat = os.path.join(env.tmp, "squat.py")
        with open(squat, "w") as f:
            f.write(SQUAT)
        env.spawn("squatter", env.nsexec("h") + [harness.PY, squat, port])
        env.wait_for("the squatter", lambda: "ready" in env.log("squatter"))
        a = env.app("appA", "tcp", S4, WEB)
        expect(a.returncode == 2 and "error=Operation not permitted" in a.stdout,
               "refused with another socket on the old port: " + a.stdout)
        expect("got a connection" not in env.log("squatter"), "the squatter got nothing")

        # the next anserd takes over from the pinned programs
        env.start_anserd(cfg)
        expect("a stopped anserd left pinned" in env.log("anserd"), env.log("anserd")[-2000:])
        check_split(env, S4, P4, H4)
        check_udp(env, S4, P4)
        # a reload to fail_mode open unpins; back to closed pins again
        config(env, link=link)
        os.kill(env.anserd.pid, signal.SIGHUP)
        env.wait_for("unpinned by a reload", lambda: ours() == [])
        env.write_config(closed % {"rules": "pname(appA) -> proxy", "link": link})
        os.kill(env.anserd.pid, signal.SIGHUP)
        env.wait_for("pinned by a reload", lambda: "anser_connect4" in ours())
        # a clean exit unpins: everything direct
        env.stop_anserd()
        expect(ours() == [], "no pins after a clean exit: %s" % ours())
        env.wait_for("the programs gone", lambda: not env.cgroup_attached(), timeout=10)
        a = env.app("appA", "tcp", S4, WEB)
        expect(seen_as(a.stdout) == H4, "after a clean exit appA goes direct: " + a.stdout)

        # fail_mode: open (the default) pins nothing: a kill leaves all direct
        cfg = config(env, link=link)
        env.start_anserd(cfg)
        a = env.app("appA", "tcp", S4, WEB)
        expect(seen_as(a.stdout) == P4, "proxied again: " + a.stdout)
        expect(ours() == [], "open pins nothing: %s" % ours())
        os.kill(env.anserd.pid, signal.SIGKILL)
        env.anserd.wait(10)
        env.wait_for("the programs gone", lambda: not env.cgroup_attached(), timeout=10)
        a = env.app("appA", "tcp", S4, WEB)
        expect(seen_as(a.stdout) == H4, "fail open after a kill: " + a.stdout)
    finally:
        # pins go with the filesystem: nothing of ours stays attached
        harness.run(["umount", "-l", bpf], check=False)


TESTS = {
    "fail_closed": t_fail_closed,
    "fd_hygiene": t_fd_hygiene,
    "valgrind": t_valgrind,
    "tcp_v4": t_tcp_v4,
    "tcp_v6": t_tcp_v6,
    "tcp_auth": t_tcp_auth,
    "tcp_dante": t_tcp_dante,
    "tcp_src_unaccepted": t_tcp_src_unaccepted,
    "hash": t_hash,
    "pname_long": t_pname_long,
    "app_cgroup": t_app_cgroup,
    "functions": t_functions,
    "dae_config": t_dae_config,
    "app_routes": t_app_routes,
    "service": t_service,
    "busctl_script": t_busctl_script,
    "groups_nodes": t_groups_nodes,
    "notify": t_notify,
    "authorization": t_authorization,
    "activation": t_activation,
    "block": t_block,
    "other_netns": t_other_netns,
    "udp_v4": t_udp_v4,
    "udp_v6": t_udp_v6,
    "kill9": t_kill9,
    "builtin_default": t_builtin_default,
    "list": t_list,
    "list_burst": t_list_burst,
    "explain": t_explain,
    "mark": t_mark,
    "reload": t_reload,
    "sighup": t_sighup,
    "sigterm": t_sigterm,
}

if __name__ == "__main__":
    harness.main(TESTS)
