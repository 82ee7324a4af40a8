#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The Anser demo: two apps fetch the same URL; appA goes through a SOCKS5
node, appB direct. Everything it makes (namespaces, cgroup, bus, servers)
is private to the demo and removed at the end.

  demo.py          run the demo and print what went where
  demo.py --check  the same, and exit 1 unless appA went via the proxy and
                   appB direct (used by the test suite)
"""
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import H4, P4, S4, WEB  # noqa: E402


def say(msg):
    print("==> " + msg, flush=True)


def demo(env, check):
    say("Creating test hosts in network namespaces (app host %s, proxy %s, web server %s)"
        % (H4, P4, S4))
    env.setup_net()
    cg = env.setup_cgroup()
    say("Created cgroup %s for the demo apps" % cg)
    env.start_web()
    say("Started a web server on %s:%d" % (S4, WEB))
    env.start_microsocks()
    say("Started a SOCKS5 server (microsocks) on %s:1080" % P4)
    env.start_bus()
    env.start_polkitd()
    say("Started a private D-Bus system bus and polkitd")
    cfg = os.path.join(env.tmp, "demo.dae")
    shutil.copy(os.path.join(harness.SRC, "data", "demo.dae"), cfg)
    os.chmod(cfg, 0o600)
    env.start_anserd(cfg)
    say("Started anserd with data/demo.dae: pname(appA) -> proxy, fallback: direct")

    url = "http://%s:%d/" % (S4, WEB)
    say("Running appA and appB; both fetch %s and keep the connection open a moment" % url)
    apps = {name: env.app(name, "tcp", S4, WEB, 2500, background=True)
            for name in ("appA", "appB")}
    time.sleep(1.0)
    listing = env.anserctl("connections")
    rows = json.loads(env.anserctl("connections", "--json").stdout)
    print()
    say("anserctl connections (live, while the apps' connections are open):")
    print(listing.stdout)
    seen = {}
    for name, p in apps.items():
        out, _ = p.communicate(timeout=30)
        seen[name] = next((l[7:] for l in out.splitlines() if l.startswith("client=")), "?")

    outbound = {}
    for r in rows:
        if r["process"] in apps and r["destination"] == "%s:%d" % (S4, WEB):
            outbound[r["process"]] = r["outbound"]
    say("What went where:")
    fmt = "  %-6s %-10s %-24s %s"
    print(fmt % ("APP", "OUTBOUND", "SERVER SAW THE CLIENT AS", ""))
    for name in ("appA", "appB"):
        note = "(the proxy)" if seen[name] == P4 else ("(the app host)" if seen[name] == H4
                                                      else "")
        print(fmt % (name, outbound.get(name, "?"), seen[name], note))
    print()
    ok = (outbound.get("appA") == "proxy" and seen["appA"] == P4 and
          outbound.get("appB") == "direct" and seen["appB"] == H4)
    say("Cleaning up: stopping anserd and the servers, removing namespaces and the cgroup")
    if check and not ok:
        raise AssertionError("demo result wrong: outbound=%s seen=%s" % (outbound, seen))
    if not ok:
        say("Unexpected result; see the logs above")


def main():
    check = "--check" in sys.argv[1:]
    env = None
    code = 0
    try:
        env = harness.Env("demo")
        demo(env, check)
    except harness.Skip as e:
        print("demo skipped:", e)
        code = harness.SKIP
    except Exception as e:  # noqa: BLE001
        print("demo failed:", e)
        if env:
            env.dump_logs()
        code = 1
    finally:
        if env:
            env.close()
    if code == 0:
        say("Done; everything the demo made is gone")
    sys.exit(code)


if __name__ == "__main__":
    main()
