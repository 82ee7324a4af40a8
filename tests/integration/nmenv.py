#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A real NetworkManager for the integration tests: two WAN links in the
test host's namespace h, managed by NetworkManager 1.42 running in h against
the harness's private system bus, as the project's testing notes describe
(TESTING.md, "Real NetworkManager").

Topology (every name carries the harness's per-run id):

    ns h                                   ns r (router, ip_forward on)
      wan0 10.78.0.1/24 fd78::1/64  <-veth->  up0 10.78.0.254/24 fd78::254/64
      wan1 10.79.0.1/24 fd79::1/64  <-veth->  up1 10.79.0.254/24 fd79::254/64
                                              lo  10.80.0.1/32  fd80::1/128
                                                  (the "server", reachable
                                                   from h over either link)

The links in h start DOWN and without addresses; NetworkManager brings them
up from two static keyfile profiles, "wan0" (route metric 100) and "wan1"
(route metric 200), so that wan0 is PrimaryConnection while it is up.

NetworkManager runs in a private mount namespace of its own in which:
  - /sys is a read-only sysfs of ns h: NM then does without udev and manages
    the veth devices itself;
  - /run is a private tmpfs with a per-test directory bind-mounted on
    /run/NetworkManager, and a per-test directory is bind-mounted on
    /var/lib/NetworkManager. Both outlive NM (they live in the test's temp
    directory), so an NM restarted in the same test finds its device state
    again and re-assumes its connections (with a fresh tmpfs it would only see
    "external" connections and PrimaryConnection would stay "/");
  - the system's own profile directory is hidden behind an empty one.
(The notes bind-mount straight over /run/NetworkManager; that directory does
not exist on a host where NM has never run, and creating it would change the
host, hence the private /run.) Nothing is mounted in the host's mount namespace, so nothing is left behind
when NM exits, however it exits.

Use from a test:

    env.start_bus()
    net = NMNet(env)
    net.setup()
    net.start_nm()
    ...  net.nmcli("con", "down", "wan0"); net.primary() -> "wan1"

Run this file as root for a self-check (python3 tests/integration/nmenv.py).
"""
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Skip, expect, run  # noqa: E402

NM_BIN = "/usr/sbin/NetworkManager"
NM_NAME = "org.freedesktop.NetworkManager"
NM_PATH = "/org/freedesktop/NetworkManager"
DISPATCHER_NAME = "org.freedesktop.nm_dispatcher"
DISPATCHER_CANDIDATES = ("/usr/lib/NetworkManager/nm-dispatcher",
                         "/usr/libexec/nm-dispatcher",
                         "/usr/lib/nm-dispatcher")

# (iface in h, iface in r, IPv4 /24 prefix, IPv6 /64 prefix, route metric)
LINKS = (("wan0", "up0", "10.78.0", "fd78:", 100),
         ("wan1", "up1", "10.79.0", "fd79:", 200))
SERVER4 = "10.80.0.1"
SERVER6 = "fd80::1"

NM_CONF = """\
[main]
plugins=keyfile
auth-polkit=false
dhcp=internal
dns=none
rc-manager=unmanaged
hostname-mode=none
no-auto-default=*

[keyfile]
path=%(profiles)s
unmanaged-devices=%(unmanaged)s

[connectivity]
enabled=false

[logging]
level=%(level)s
"""

PROFILE = """\
[connection]
id=%(id)s
uuid=%(uuid)s
type=ethernet
interface-name=%(iface)s
autoconnect=true

[ethernet]

[ipv4]
method=manual
address1=%(p4)s.1/24
gateway=%(p4)s.254
route-metric=%(metric)d
may-fail=false

[ipv6]
method=manual
address1=%(p6)s:1/64
gateway=%(p6)s:254
route-metric=%(metric)d
addr-gen-mode=eui64
may-fail=false
"""


def _mkdir(path, mode=0o755):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    return path


def _bus_env(env):
    return dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.bus)


def _on_bus(env, name):
    """Whether NAME is owned on the test bus."""
    r = run(["busctl", "--address=" + env.bus, "list", "--no-pager", "--no-legend",
             "--acquired"], check=False)
    return any(line.split()[:1] == [name] for line in r.stdout.splitlines())


class NMNet:
    """Two WAN links for namespace h of an harness Env, managed by a real
    NetworkManager running in h against env.bus."""

    def __init__(self, env, managed=("wan0", "wan1"), log_level="INFO"):
        """MANAGED: the only interfaces NM may touch in h (the harness's e0,
        lo and anything a test adds stay unmanaged); LOG_LEVEL: NM's."""
        self.env = env
        self.h = env.ns("h")
        self.r = env.ns("r")
        self.managed = tuple(managed)
        self.log_level = log_level
        self.dir = os.path.join(env.tmp, "nm")
        self.conf = os.path.join(self.dir, "NetworkManager.conf")
        self.profiles = os.path.join(self.dir, "profiles")   # keyfile path, mode 700
        self.rundir = os.path.join(self.dir, "run")          # -> /run/NetworkManager
        self.libdir = os.path.join(self.dir, "lib")          # -> /var/lib/NetworkManager
        self.empty = os.path.join(self.dir, "empty")         # hides system dirs
        self.uuids = {}                                       # profile id -> uuid
        self.proc = None                                      # the running NM (Popen)
        self.starts = 0
        self.start_seconds = []                               # duration of each start_nm

    # -- topology ----------------------------------------------------------
    def setup(self):
        """Namespace r (the router), two veth pairs h:wanN <-> r:upN, the
        router's addresses and its server address. The wan links stay down."""
        env = self.env
        if self.h not in env.netns:            # no env.setup_net(): make h alone
            run(["ip", "netns", "add", self.h])
            env.netns.append(self.h)
            run(["ip", "-n", self.h, "link", "set", "lo", "up"])
        run(["ip", "netns", "add", self.r])
        env.netns.append(self.r)               # registered at once: Env.close deletes it
        run(["ip", "-n", self.r, "link", "set", "lo", "up"])
        # No IPv6 DAD on either side (addresses usable at once, so NM's
        # activation is not held up by tentative addresses); r forwards.
        for ns, keys in ((self.h, ()),
                         (self.r, ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"))):
            run(["nsenter", "--net=/run/netns/" + ns, "sysctl", "-qw",
                 "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]
                + list(keys))
        for wan, up, p4, p6, _ in LINKS:
            run(["ip", "-n", self.h, "link", "add", wan, "type", "veth", "peer", "name", up,
                 "netns", self.r])
            run(["ip", "-n", self.r, "addr", "add", p4 + ".254/24", "dev", up])
            run(["ip", "-n", self.r, "addr", "add", p6 + ":254/64", "dev", up, "nodad"])
            run(["ip", "-n", self.r, "link", "set", up, "up"])
        run(["ip", "-n", self.r, "addr", "add", SERVER4 + "/32", "dev", "lo"])
        run(["ip", "-n", self.r, "addr", "add", SERVER6 + "/128", "dev", "lo"])

    # -- NetworkManager ----------------------------------------------------
    def _write_config(self):
        """NM's config and the two profiles, once per test: a restarted NM
        finds whatever the test changed through nmcli."""
        if os.path.exists(self.conf):
            return
        for d in (self.dir, self.rundir, self.empty, os.path.join(self.dir, "conf.d"),
                  os.path.join(self.dir, "sysconf.d")):
            _mkdir(d)
        _mkdir(self.libdir, 0o700)
        _mkdir(self.profiles, 0o700)
        unmanaged = ";".join("except:interface-name:" + i for i in self.managed)
        with open(self.conf, "w") as f:
            f.write(NM_CONF % {"profiles": self.profiles, "unmanaged": unmanaged,
                               "level": self.log_level})
        for wan, _, p4, p6, metric in LINKS:
            self.uuids[wan] = str(uuid.uuid4())
            path = os.path.join(self.profiles, wan + ".nmconnection")
            # keyfiles must be root's and not readable by others, or NM skips them
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(PROFILE % {"id": wan, "uuid": self.uuids[wan], "iface": wan,
                                   "p4": p4, "p6": p6, "metric": metric})

    def start_nm(self, timeout=30):
        """Start NM in ns h and wait until wan0 and wan1 are activated and
        PrimaryConnection is wan0. Can be called again after stop_nm()."""
        env = self.env
        if not env.bus:
            raise RuntimeError("NMNet.start_nm needs env.start_bus() first")
        if not os.path.exists(NM_BIN):
            raise Skip("NetworkManager not installed")
        if self.proc and self.proc.poll() is None:
            raise RuntimeError("NetworkManager is already running")
        self._write_config()
        q = shlex.quote
        mounts = [
            # ip netns exec gave us a fresh sysfs of ns h: make it read-only
            # so NM manages devices without udev.
            "mount -o remount,ro /sys",
            # A private /run (the host may have no /run/NetworkManager to
            # mount over, and must not get one) with NM's run dir in it.
            "mount -t tmpfs -o mode=0755 anser-nm-run /run",
            "mkdir /run/NetworkManager",
            "mount --bind %s /run/NetworkManager" % q(self.rundir),
            "mount --bind %s /var/lib/NetworkManager" % q(self.libdir),
        ]
        # Profiles the system ships stay out of the test.
        if os.path.isdir("/usr/lib/NetworkManager/system-connections"):
            mounts.append("mount --bind %s /usr/lib/NetworkManager/system-connections"
                          % q(self.empty))
        nm = [NM_BIN, "--debug",  # foreground, log to stderr (the log file)
              "--config=" + self.conf,
              "--config-dir=" + os.path.join(self.dir, "conf.d"),
              "--system-config-dir=" + os.path.join(self.dir, "sysconf.d"),
              "--intern-config=" + os.path.join(self.libdir, "NetworkManager-intern.conf"),
              "--state-file=" + os.path.join(self.libdir, "NetworkManager.state"),
              "--pid-file=" + os.path.join(self.rundir, "NetworkManager.pid")]
        script = " && ".join(mounts + ["exec " + " ".join(q(a) for a in nm)])
        # ip netns exec, unshare (no --fork) and sh's exec all run in place:
        # the Popen's pid is NM's own, and its session leader.
        self.starts += 1
        self.log_name = "nm" if self.starts == 1 else "nm-%d" % self.starts
        t0 = time.monotonic()
        self.proc = env.spawn(self.log_name,
                              ["ip", "netns", "exec", self.h,
                               "unshare", "-m", "--propagation", "private",
                               "sh", "-c", script], env=_bus_env(env))

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("NetworkManager exited with %s:\n%s"
                                     % (self.proc.returncode, env.log(self.log_name)[-4000:]))
            return self.active() == {"wan0": "activated", "wan1": "activated"} \
                and self.primary() == "wan0"
        env.wait_for("NetworkManager to activate wan0 and wan1", ready, timeout=timeout)
        self.start_seconds.append(time.monotonic() - t0)
        return self.proc

    def stop_nm(self, kill=False, timeout=15):
        """Stop NM with SIGTERM (or SIGKILL) and wait until it is gone and its
        name has left the bus. Returns its exit status (0 after SIGTERM, -9).

        Either way the kernel state NM made stays as it was: addresses, routes
        (v4 and v6) and the links' up state are identical before and after
        (NM 1.42 does not deconfigure devices when it quits), so
        default_route_ifaces() is unchanged and only primary() goes to "".
        The next start_nm() re-assumes both connections from the device state
        kept in the per-test /run/NetworkManager (after SIGKILL too)."""
        p = self.proc
        if not p or p.poll() is not None:
            return p.returncode if p else None
        p.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("NetworkManager ignored SIGTERM for %ds" % timeout)
        self.env.wait_for("NetworkManager to leave the bus",
                          lambda: not _on_bus(self.env, NM_NAME))
        return p.returncode

    # -- queries -----------------------------------------------------------
    def nmcli(self, *args, check=False, timeout=60):
        """nmcli ARGS in ns h on the test bus (output: stdout and stderr merged)."""
        r = subprocess.run(self.env.nsexec("h") + ["nmcli"] + [str(a) for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=_bus_env(self.env), timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("nmcli %s failed (%d): %s"
                                 % (" ".join(map(str, args)), r.returncode, r.stdout))
        return r

    def _get(self, path, iface, prop):
        """A D-Bus property of NM's (None if it cannot be read)."""
        r = subprocess.run(["busctl", "--address=" + self.env.bus, "--json=short",
                            "get-property", NM_NAME, path, iface, prop],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           timeout=10)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)["data"]

    def primary(self):
        """The id of NM's PrimaryConnection ("" if none or NM is not there)."""
        path = self._get(NM_PATH, NM_NAME, "PrimaryConnection")
        if not path or path == "/":
            return ""
        # the active connection may vanish between the two reads
        return self._get(path, NM_NAME + ".Connection.Active", "Id") or ""

    def active(self):
        """{profile id: state} of NM's active connections ({} if NM is not there)."""
        r = self.nmcli("-t", "-f", "NAME,STATE", "connection", "show", "--active")
        if r.returncode != 0:
            return {}
        out = {}
        for line in r.stdout.splitlines():
            name, _, state = line.rpartition(":")
            if name:
                out[name] = state
        return out

    def default_route_ifaces(self):
        """Interfaces in h carrying a default route (IPv4 or IPv6, main table)."""
        ifaces = set()
        for fam in ("-4", "-6"):
            r = run(["ip", "-j", fam, "-n", self.h, "route", "show", "default"])
            ifaces.update(rt["dev"] for rt in json.loads(r.stdout or "[]") if "dev" in rt)
        return ifaces

    def reachable(self, addr, port=9, timeout=2):
        """Whether ADDR answers from h: a TCP connect to a closed port that is
        refused (a RST came back) proves the path both ways; no ping needed."""
        code = ("import socket,sys\n"
                "s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n"
                "s.settimeout(%d)\n"
                "try:\n    s.connect((sys.argv[1], %d))\n"
                "except ConnectionRefusedError:\n    pass\n" % (timeout, port))
        r = run(self.env.nsexec("h") + [harness.PY, "-c", code, addr], check=False)
        return r.returncode == 0

    def addresses(self, iface):
        """Global addresses on IFACE in h, as "addr/prefix" strings."""
        r = run(["ip", "-j", "-n", self.h, "addr", "show", "dev", iface, "scope", "global"])
        # (ip -j lists the addresses the filter drops as empty objects)
        return {"%s/%d" % (a["local"], a["prefixlen"])
                for link in json.loads(r.stdout or "[]") for a in link.get("addr_info", [])
                if "local" in a}


# -- nm-dispatcher -----------------------------------------------------------
def write_dispatcher_script(path, text):
    """A dispatcher script nm-dispatcher accepts: root's, mode 755 (it skips
    scripts that are group/world-writable, setuid, or not executable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chown(path, 0, 0)
    os.chmod(path, 0o755)
    return path


def start_dispatcher(env, script_dir, timeout=10, system_bus=False):
    """nm-dispatcher --persist in ns h on env.bus, in a private mount namespace
    where SCRIPT_DIR is /etc/NetworkManager/dispatcher.d (and the scripts the
    system ships in /usr/lib/NetworkManager/dispatcher.d are hidden). Scripts
    for pre-up/pre-down go in SCRIPT_DIR/pre-up.d and pre-down.d; see
    write_dispatcher_script() for what a script must look like. The scripts
    run in ns h (with the host's /sys). Returns its Popen once it owns its bus
    name; the harness stops it.

    NM 1.42 calls the dispatcher for every action whatever its own view of
    the script directories, and carries on (logging "ServiceUnknown") when no
    dispatcher is on the bus, so this may be started before or after NM.

    SYSTEM_BUS: the test bus is also at the system bus's standard socket
    (/run/dbus/system_bus_socket, on a private tmpfs in that mount
    namespace), for scripts that use `busctl --system`: nm-dispatcher
    hands its scripts an environment of its own making, without
    DBUS_SYSTEM_BUS_ADDRESS."""
    exe = next((p for p in DISPATCHER_CANDIDATES if os.path.exists(p)), None)
    if exe is None:
        raise Skip("nm-dispatcher not installed")
    if not os.path.isdir("/etc/NetworkManager/dispatcher.d"):
        raise Skip("no /etc/NetworkManager/dispatcher.d to mount over")
    q = shlex.quote
    empty = _mkdir(os.path.join(env.tmp, "nm-dispatcher-empty"))
    mounts = ["mount --bind %s /etc/NetworkManager/dispatcher.d" % q(script_dir)]
    if os.path.isdir("/usr/lib/NetworkManager/dispatcher.d"):
        mounts.append("mount --bind %s /usr/lib/NetworkManager/dispatcher.d" % q(empty))
    if system_bus:
        if not os.path.isdir("/run/dbus"):
            raise Skip("no /run/dbus to mount over")
        sock = env.bus.split("=", 1)[1]
        mounts += ["mount -t tmpfs -o mode=755 tmpfs /run/dbus",
                   "touch /run/dbus/system_bus_socket",
                   "mount --bind %s /run/dbus/system_bus_socket" % q(sock)]
    script = " && ".join(mounts + ["exec %s --persist --debug" % q(exe)])
    p = env.spawn("nm-dispatcher", env.nsexec("h") + ["unshare", "-m", "--propagation",
                                                      "private", "sh", "-c", script],
                  env=_bus_env(env))

    def ready():
        if p.poll() is not None:
            raise AssertionError("nm-dispatcher exited with %s:\n%s"
                                 % (p.returncode, env.log("nm-dispatcher")))
        return _on_bus(env, DISPATCHER_NAME)
    env.wait_for("nm-dispatcher on the bus", ready, timeout=timeout)
    return p


# -- self-check --------------------------------------------------------------
def _wait(what, fn, timeout=10.0):
    """Poll FN without sleeping; (value, seconds) once it is true."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = fn()
        if v:
            return v, time.monotonic() - t0
    raise AssertionError("timed out waiting for " + what)


def _leftovers(env):
    """What of this run is still on the host: namespaces, NM or dispatcher
    processes, mounts (none of these may remain after env.close())."""
    left = []
    ns = run(["ip", "netns", "list"], check=False).stdout
    left += ["netns " + line for line in ns.splitlines() if env.id in line]
    # every process the run spawned (NM's exec'd in place, so these are NM's
    # and nm-dispatcher's own pids) is gone
    for name, p, _ in env.procs:
        try:
            with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            left.append("process %d (%s): %s" % (p.pid, name, cmd))
        except OSError:
            pass
    with open("/proc/self/mounts") as f:
        left += ["mount " + line.strip() for line in f
                 if "NetworkManager" in line or env.tmp in line or "anser-nm-run" in line]
    return left


def _failover(env, net):
    """`nmcli con down wan0` (in the background) -> primary() == "wan1",
    then wan0 back up. (ms to the switch, ms until nmcli returned)."""
    t0 = time.monotonic()
    down = subprocess.Popen(env.nsexec("h") + ["nmcli", "con", "down", "wan0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_bus_env(env))
    done = []

    def switched():
        if not done and down.poll() is not None:
            done.append(time.monotonic() - t0)
        return net.primary() == "wan1"
    _wait("primary wan1", switched)
    switch = time.monotonic() - t0
    out, _ = down.communicate(timeout=30)
    if not done:
        done.append(time.monotonic() - t0)
    expect(down.returncode == 0, "nmcli con down wan0: " + out)
    expect(net.default_route_ifaces() == {"wan1"}, "wan0 kept a default route")
    net.nmcli("con", "up", "wan0", check=True)
    _wait("primary wan0 again", lambda: net.primary() == "wan0")
    return switch * 1000, done[0] * 1000


def _report(what, samples, poll_ms):
    sw = sorted(s for s, _ in samples)
    nm = sorted(n for _, n in samples)
    print("%s: median %.0f ms, max %.0f ms over %d runs (nmcli returned: median %.0f ms; "
          "one primary() poll takes ~%.0f ms)"
          % (what, sw[len(sw) // 2], sw[-1], len(sw), nm[len(nm) // 2], poll_ms))


def _kernel_state(net):
    """Routes (v4, v6), addresses and link states in h, as ip prints them."""
    return [run(["ip", "-n", net.h] + a).stdout
            for a in (["-4", "route"], ["-6", "route"], ["-br", "addr"], ["-br", "link"])]


def selfcheck(env):
    """Everything above once, with timings printed; then env.close() and a
    check that no namespace, process or mount of the run is left."""
    env.start_bus()
    net = NMNet(env)
    net.setup()
    expect(net.default_route_ifaces() == set(), "default routes before NM")
    net.start_nm()
    print("start_nm: %.2f s" % net.start_seconds[-1])
    print("primary:", net.primary())
    expect(net.primary() == "wan0", "primary is not wan0")
    # NM reports "activated" with both families configured (may-fail=false)
    routes, dt = _wait("both default routes",
                       lambda: net.default_route_ifaces() == {"wan0", "wan1"} and
                       net.default_route_ifaces())
    print("default routes:", sorted(routes), "(%.3f s after activation)" % dt)
    for server in (SERVER4, SERVER6):
        expect(net.reachable(server), "server %s unreachable from h" % server)
    print("server reachable over v4 and v6")
    t0 = time.monotonic()
    for _ in range(10):
        net.primary()
    poll_ms = (time.monotonic() - t0) * 100   # the resolution of the measurements below

    # Failover: primary moves to wan1 when wan0 goes down (a few samples).
    _report("con down wan0 -> primary wan1", [_failover(env, net) for _ in range(5)], poll_ms)

    # Restart with SIGTERM, then with SIGKILL: NM leaves its state in the kernel.
    for kill in (False, True):
        how = "SIGKILL" if kill else "SIGTERM"
        before = _kernel_state(net)
        rc = net.stop_nm(kill=kill)
        kept = _kernel_state(net) == before
        print("stop_nm(%s): exit %s; routes, addresses and links unchanged: %s; "
              "default routes now: %s" % (how, rc, kept, sorted(net.default_route_ifaces())))
        expect(kept, "kernel state changed when NM stopped")
        expect(net.primary() == "", "PrimaryConnection readable with NM stopped")
        net.start_nm()
        print("start_nm again after %s: %.2f s, primary: %s"
              % (how, net.start_seconds[-1], net.primary()))
        expect(net.primary() == "wan0", "primary not wan0 after restart")
        expect(net.default_route_ifaces() == {"wan0", "wan1"}, "routes after restart")
    _report("same after two restarts", [_failover(env, net) for _ in range(3)], poll_ms)

    # nm-dispatcher runs our script (in ns h) on con down / con up.
    scripts = os.path.join(env.tmp, "dispatcher.d")
    _mkdir(scripts)
    out = os.path.join(env.tmp, "dispatched")
    write_dispatcher_script(os.path.join(scripts, "50-record"),
                            '#!/bin/sh\necho "$* id=$CONNECTION_ID" >> %s\n' % shlex.quote(out))
    start_dispatcher(env, scripts)

    def lines():
        if not os.path.exists(out):
            return []
        with open(out) as f:
            return f.read().splitlines()
    net.nmcli("con", "down", "wan0", check=True)
    _wait("dispatcher 'wan0 down'", lambda: "wan0 down id=wan0" in lines())
    net.nmcli("con", "up", "wan0", check=True)
    _wait("dispatcher 'wan0 up'", lambda: "wan0 up id=wan0" in lines())
    print("dispatcher ran:", lines())
    _report("same with nm-dispatcher running", [_failover(env, net) for _ in range(5)],
            poll_ms)

    # Teardown and proof that nothing is left.
    env.close()
    left = _leftovers(env)
    print("leftovers:", left or "none")
    expect(not left, "left behind: %s" % left)


if __name__ == "__main__":
    if len(sys.argv) == 1:
        sys.argv.append("selfcheck")
    harness.main({"selfcheck": selfcheck})
