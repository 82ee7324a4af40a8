# SPDX-License-Identifier: GPL-2.0-or-later
"""Test hosts in network namespaces, a test cgroup, a private system bus,
a real polkitd, real proxy servers, and anserd -- and the cleanup of all of
it, even when a test fails or is killed.

Topology (all names carry a per-run id, nothing touches the host's network):

    ns sw: bridge br0
      |-- ns h  10.77.0.1  fd77::1   anserd + the apps (in the test cgroup)
      |-- ns p  10.77.0.2  fd77::2   proxy servers (microsocks, danted)
      `-- ns s  10.77.0.3  fd77::3   test web/UDP echo server
"""
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("ANSER_BUILD_DIR", os.path.join(SRC, "build"))
ANSERD = os.path.join(BUILD, "anserd")
ANSERCTL = os.path.join(BUILD, "cli", "anserctl")
CLIENT = os.path.join(BUILD, "tests", "integration", "anser-testclient")
SERVER = os.path.join(SRC, "tests", "integration", "testserver.py")
PY = "/usr/bin/python3"

H4, P4, S4 = "10.77.0.1", "10.77.0.2", "10.77.0.3"
H6, P6, S6 = "fd77::1", "fd77::2", "fd77::3"
WEB = 8080

SKIP = 77


class Skip(Exception):
    pass


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stdout))
    return r


def expect(cond, msg):
    """A test's check: AssertionError(msg) unless cond."""
    if not cond:
        raise AssertionError(msg)


def seen_as(out):
    """The address the test web server saw, from an app's output."""
    for line in out.splitlines():
        if line.startswith("client="):
            return line[7:]
    return None


def fdinfos(pid):
    """The kernel's fdinfo of each of process pid's fds, as {key: value}
    (fds closed meanwhile left out)."""
    out = []
    d = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                out.append(dict(line.rstrip("\n").split(":\t", 1) for line in f
                                if ":\t" in line))
        except OSError:
            pass
    return out


def map_entries(pid, name):
    """Entries in process pid's BPF map called name (one such map)."""
    mine = {int(i["map_id"]) for i in fdinfos(pid) if "map_id" in i}
    maps = json.loads(run(["bpftool", "-j", "map", "show"]).stdout)
    ids = [m["id"] for m in maps if m.get("name") == name and m["id"] in mine]
    expect(len(ids) == 1, "one %s of pid %d: %s" % (name, pid, ids))
    return len(json.loads(run(["bpftool", "-j", "map", "dump", "id", str(ids[0])]).stdout))


def anserd_is_asan():
    """Whether the anserd under test is an ASan build."""
    with open(ANSERD, "rb") as f:
        return b"__asan_init" in f.read()


def valgrind_wrapper(log):
    """The valgrind command anserd runs under in the valgrind cases (no
    errors, no definite leaks, exit 99 otherwise); Skip where valgrind is
    missing or anserd is an ASan build (valgrind runs on the plain one)."""
    if not shutil.which("valgrind"):
        raise Skip("valgrind not installed")
    if anserd_is_asan():
        raise Skip("anserd is an ASan build; valgrind runs on the plain build")
    return ["valgrind", "--leak-check=full", "--show-leak-kinds=definite",
            "--errors-for-leak-kinds=definite", "--error-exitcode=99",
            "--suppressions=" + os.path.join(SRC, "tests", "valgrind.supp"), "--log-file=" + log]


def stop_valgrind_anserd(env, log):
    """SIGTERM the anserd that runs under valgrind_wrapper(log); fail unless
    it exits 0 with no errors (leaks of kind definite count as errors)."""
    env.anserd.send_signal(signal.SIGTERM)
    rc = env.anserd.wait(60)
    with open(log) as f:
        text = f.read()
    expect(rc == 0, "anserd under valgrind exited %d:\n%s" % (rc, text[-4000:]))
    expect("ERROR SUMMARY: 0 errors" in text, "valgrind found errors:\n" + text[-6000:])


def cpu_seconds(pid):
    """utime + stime of process pid (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    """The resident set of process pid, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cgroup2_mount():
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                return parts[1]
    raise Skip("no cgroup2 mount")


class Env:
    def __init__(self, name):
        if os.geteuid() != 0:
            raise Skip("needs root")
        for exe in (ANSERD, CLIENT):
            if not os.path.exists(exe):
                raise RuntimeError("missing %s (build first)" % exe)
        self.id = "%s%d" % (name[:5], os.getpid() % 100000)
        self.tmp = tempfile.mkdtemp(prefix="anser-%s-" % name)
        os.chmod(self.tmp, 0o755)
        self.procs = []  # (name, Popen, logfile)
        self.netns = []
        self.cg = None
        self.cgs = []
        self.bus = None
        self.anserd = None
        self.bin = os.path.join(self.tmp, "bin")
        os.mkdir(self.bin)
        self._closed = False
        atexit.register(self.close)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        self.close()
        sys.exit(128 + signum)

    # -- network ---------------------------------------------------------
    def ns(self, role):
        return "anser-%s-%s" % (role, self.id)

    def setup_net(self):
        sw = self.ns("sw")
        for role in ("sw", "h", "p", "s"):
            run(["ip", "netns", "add", self.ns(role)])
            self.netns.append(self.ns(role))
            run(["ip", "-n", self.ns(role), "link", "set", "lo", "up"])
        run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", sw, "link", "set", "br0", "up"])
        for n, role in enumerate(("h", "p", "s"), start=1):
            ns = self.ns(role)
            run(["ip", "-n", sw, "link", "add", "v" + role, "type", "veth", "peer", "name", "e0",
                 "netns", ns])
            run(["ip", "-n", sw, "link", "set", "v" + role, "master", "br0", "up"])
            run(["ip", "-n", ns, "addr", "add", "10.77.0.%d/24" % n, "dev", "e0"])
            run(["ip", "-n", ns, "addr", "add", "fd77::%d/64" % n, "dev", "e0", "nodad"])
            run(["ip", "-n", ns, "link", "set", "e0", "up"])

    def nsexec(self, role):
        return ["nsenter", "--net=/run/netns/" + self.ns(role)]

    # -- processes -------------------------------------------------------
    def spawn(self, name, cmd, env=None):
        log = os.path.join(self.tmp, name + ".log")
        f = open(log, "w")
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        f.close()
        self.procs.append((name, p, log))
        return p

    def log(self, name):
        with open(os.path.join(self.tmp, name + ".log"), errors="replace") as f:
            return f.read()

    def wait_for(self, what, fn, timeout=10.0):
        end = time.time() + timeout
        while time.time() < end:
            v = fn()
            if v:
                return v
            time.sleep(0.05)
        raise AssertionError("timed out waiting for " + what)

    def start_web(self):
        self.spawn("web", self.nsexec("s") + [PY, SERVER, str(WEB)])
        self.wait_for("web server", lambda: "ready" in self.log("web"))

    def start_microsocks(self, port=1080, user=None, password=None):
        if not shutil.which("microsocks"):
            raise Skip("microsocks not installed")
        cmd = self.nsexec("p") + ["microsocks", "-i", "::", "-p", str(port)]
        if user:
            cmd += ["-u", user, "-P", password]
        self.spawn("microsocks", cmd)
        self.wait_port("p", port)

    def start_dante(self, port=1081):
        danted = shutil.which("danted") or "/usr/sbin/danted"
        if not os.path.exists(danted):
            raise Skip("dante-server not installed")
        conf = os.path.join(self.tmp, "danted.conf")
        with open(conf, "w") as f:
            f.write("""logoutput: stderr
internal: 10.77.0.2 port = %d
internal: fd77::2 port = %d
external: e0
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }
client pass { from: ::/0 to: ::/0 }
socks pass {
  from: 0.0.0.0/0 to: 0.0.0.0/0
  command: connect udpassociate udpreply
}
socks pass {
  from: 0.0.0.0/0 to: ::/0
  command: connect udpassociate udpreply
}
socks pass {
  from: ::/0 to: ::/0
  command: connect udpassociate udpreply
}
socks pass {
  from: ::/0 to: 0.0.0.0/0
  command: connect udpassociate udpreply
}
""" % (port, port))
        self.spawn("danted", self.nsexec("p") + [danted, "-f", conf, "-p",
                                                  os.path.join(self.tmp, "danted.pid")])
        self.wait_port("p", port)

    def start_ss(self, method, password, port=8388, udp=True, nameserver=None):
        """shadowsocks-libev's ss-server on 10.77.0.2 and fd77::2 (resolving
        names it is asked for at nameserver, when given)."""
        if not shutil.which("ss-server"):
            raise Skip("shadowsocks-libev not installed")
        cmd = self.nsexec("p") + ["ss-server", "-s", P4, "-s", P6, "-p", str(port),
                                  "-k", password, "-m", method, "-t", "30", "-v"]
        if nameserver:
            cmd += ["-d", nameserver]
        if udp:
            cmd.append("-u")
        self.spawn("ss-server-%d" % port, cmd)
        self.wait_port("p", port)

    def start_tinyproxy(self, port=8888, user=None, password=None):
        tp = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
        if not os.path.exists(tp):
            raise Skip("tinyproxy not installed")
        conf = os.path.join(self.tmp, "tinyproxy.conf")
        with open(conf, "w") as f:
            f.write("User nobody\nGroup nogroup\nPort %d\nListen %s\nAllow 10.77.0.0/24\n"
                    "Allow fd77::/64\nLogLevel Info\nMaxClients 200\n" % (port, P4))
            if user:
                f.write("BasicAuth %s %s\n" % (user, password))
        os.chmod(conf, 0o644)
        self.spawn("tinyproxy", self.nsexec("p") + [tp, "-d", "-c", conf])
        self.wait_port("p", port)

    def start_dnsmasq(self, names=(), addresses=None):
        """dnsmasq on the server's v4 address, answering check.test (and
        each of names) with the server's v4 address itself, and each name
        of addresses ({name: address}) with its address."""
        dm = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        if not os.path.exists(dm):
            raise Skip("dnsmasq not installed")
        p = self.spawn("dnsmasq", self.nsexec("s") + [
            dm, "-k", "--conf-file=/dev/null", "--port=53", "--listen-address=" + S4,
            "--bind-interfaces", "--no-resolv", "--no-hosts", "--address=/check.test/" + S4] + [
            "--address=/%s/%s" % (n, S4) for n in names] + [
            "--address=/%s/%s" % kv for kv in (addresses or {}).items()] + [
            "--user=root", "--group=root", "--pid-file=", "--log-facility=-"])
        self.wait_for("dnsmasq", lambda: run(self.nsexec("s") + ["ss", "-Hlun", "sport = :53"],
                                             check=False).stdout.strip() != "")
        return p

    def make_cert(self, name="prx.test"):
        """A self-signed certificate for name, made for this run; (cert, key)."""
        cert = os.path.join(self.tmp, "cert.pem")
        key = os.path.join(self.tmp, "key.pem")
        if not os.path.exists(cert):
            run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=" + name,
                 "-addext", "subjectAltName=DNS:" + name, "-keyout", key, "-out", cert])
            os.chmod(key, 0o644)
        return cert, key

    def start_trojan(self, password, port=443):
        """trojan-gfw's server on 10.77.0.2 with a certificate for prx.test."""
        if not shutil.which("trojan"):
            raise Skip("trojan not installed")
        cert, key = self.make_cert()
        conf = os.path.join(self.tmp, "trojan.json")
        with open(conf, "w") as f:
            json.dump({"run_type": "server", "local_addr": P4, "local_port": port,
                       "remote_addr": "127.0.0.1", "remote_port": 9, "password": [password],
                       "log_level": 1, "ssl": {"cert": cert, "key": key,
                                               "alpn": ["http/1.1"]}}, f)
        self.spawn("trojan", self.nsexec("p") + ["trojan", "-c", conf])
        self.wait_port("p", port)

    def start_v2ray(self, inbound, name="v2ray", hosts=None):
        """v2ray 4.34 with one inbound (TLS settings may name
        @CERT@/@KEY@) and a freedom outbound; checked with -test first.
        hosts: {name: address} v2ray resolves names it is asked for with."""
        if not shutil.which("v2ray"):
            raise Skip("v2ray not installed")
        cert, key = self.make_cert()
        conf = {"log": {"loglevel": "warning"}, "inbounds": [inbound],
                "outbounds": [{"protocol": "freedom"}]}
        if hosts:
            conf["dns"] = {"hosts": hosts}
            conf["outbounds"][0]["settings"] = {"domainStrategy": "UseIP"}
        text = json.dumps(conf)
        text = text.replace("@CERT@", cert).replace("@KEY@", key)
        conf = os.path.join(self.tmp, name + ".json")
        with open(conf, "w") as f:
            f.write(text)
        chk = run(["v2ray", "-test", "-config", conf], check=False)
        if chk.returncode != 0:
            raise AssertionError("v2ray rejects its test config: " + chk.stdout)
        self.spawn(name, self.nsexec("p") + ["v2ray", "-config", conf],
                   env=dict(os.environ, V2RAY_LOCATION_ASSET=self.tmp))
        self.wait_port("p", inbound["port"])

    def wait_port(self, role, port):
        def listening():
            r = run(self.nsexec(role) + ["ss", "-Hltn", "sport = :%d" % port], check=False)
            return r.stdout.strip() != ""
        self.wait_for("port %d in %s" % (port, role), listening)

    # -- cgroup ----------------------------------------------------------
    def sub_cgroup(self, *parts):
        """A cgroup below the test cgroup (made if missing); its path."""
        cg = os.path.join(self.cg, *parts)
        os.makedirs(cg, exist_ok=True)
        made = self.cg
        for p in parts:
            made = os.path.join(made, p)
            if made not in self.cgs:
                self.cgs.append(made)
        return cg

    def setup_cgroup(self, suffix=""):
        """A cgroup of our own under the cgroup2 root; the first one made is
        self.cg, the one anserd attaches to."""
        root = cgroup2_mount()
        cg = os.path.join(root, "anser-test-%s%s" % (self.id, suffix))
        os.mkdir(cg)
        self.cgs.append(cg)
        if not self.cg:
            self.cg = cg
        return cg

    def app(self, name, *args, timeout=30, background=False, binary=CLIENT, cpu=None, role="h",
            cgroup=None):
        """Run BINARY (the test client by default) as NAME inside the test
        cgroup (or CGROUP) in ns ROLE (h: anserd's), pinned to CPU if given."""
        # One directory per program, so one name can run several programs.
        d = os.path.join(self.bin, os.path.basename(binary))
        exe = os.path.join(d, name)
        if not os.path.exists(exe):
            os.makedirs(d, exist_ok=True)
            shutil.copy(binary, exe)
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        cmd = self.nsexec(role) + ["sh", "-c", 'echo $$ > "$0"/cgroup.procs && exec "$@"',
                                  cgroup or self.cg] + pin + [exe] + [str(a) for a in args]
        if background:
            return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, start_new_session=True)
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout)

    # -- bus + polkit ----------------------------------------------------
    def start_bus(self):
        """A private system bus that enforces the project's own bus policy."""
        with open("/usr/share/dbus-1/system.conf") as f:
            conf = f.read()
        sock = os.path.join(self.tmp, "system_bus_socket")
        import re
        conf = re.sub(r"<listen>.*?</listen>", "<listen>unix:path=%s</listen>" % sock, conf)
        for tag in ("user", "pidfile", "servicehelper"):
            conf = re.sub(r"<%s>.*?</%s>" % (tag, tag), "", conf)
        conf = conf.replace("<fork/>", "")
        # Relative includedirs resolve next to the config file: point them
        # back at the system's (polkitd's own policy lives there).
        conf = conf.replace("<includedir>system.d</includedir>",
                            "<includedir>/usr/share/dbus-1/system.d</includedir>")
        svcdir = os.path.join(self.tmp, "services")
        os.mkdir(svcdir)
        conf = conf.replace("<standard_system_servicedirs/>",
                            "<servicedir>%s</servicedir>" % svcdir)
        conf = conf.replace("</busconfig>",
                            "<includedir>%s</includedir>\n</busconfig>" % os.path.join(SRC, "dbus"))
        path = os.path.join(self.tmp, "bus.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.spawn("dbus", ["dbus-daemon", "--config-file=" + path, "--nofork", "--nosyslog"])
        self.bus = "unix:path=" + sock
        self.wait_for("bus socket", lambda: os.path.exists(sock))
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus
        return self.bus

    def start_polkitd(self, rules=""):
        polkitd = "/usr/lib/polkit-1/polkitd"
        if not os.path.exists(polkitd):
            raise Skip("polkitd not installed")
        actions = os.path.join(self.tmp, "actions")
        rulesd = os.path.join(self.tmp, "rules.d")
        os.mkdir(actions, 0o755)
        os.mkdir(rulesd, 0o755)
        # the policy as built (its messages merged with the translations)
        shutil.copy(os.path.join(BUILD, "polkit", "org.anser.policy"), actions)
        with open(os.path.join(rulesd, "50-test.rules"), "w") as f:
            f.write(rules)
        for d in (actions, rulesd):
            for n in os.listdir(d):
                os.chmod(os.path.join(d, n), 0o644)
        script = ("mount --bind %s /usr/share/polkit-1/actions && "
                  "mount --bind %s /etc/polkit-1/rules.d && exec %s --no-debug"
                  % (actions, rulesd, polkitd))
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus)
        self.spawn("polkitd", ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                   env=env)
        self.wait_for("polkitd on the bus", lambda: "org.freedesktop.PolicyKit1" in run(
            ["busctl", "--address=" + self.bus, "list", "--no-pager"], check=False).stdout)

    # -- anserd ----------------------------------------------------------
    def write_config(self, text, name="config.dae"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        return path

    def start_anserd(self, config, extra=(), wrapper=(), cgroup=None, environ=None, role="h",
                     binary=None):
        # app routes are kept in the test's own directory, never the host's
        cmd = self.nsexec(role) + list(wrapper) + [
            binary or ANSERD, "--config", config, "--cgroup", cgroup or self.cg,
            "--log-level", "debug", "--state-dir", os.path.join(self.tmp, "state"),
            "--bpf-dir", os.path.join(self.tmp, "bpf")]
        cmd += ["--bus-address", self.bus] if self.bus else ["--no-bus"]
        cmd += list(extra)
        self.anserd = self.spawn("anserd", cmd, env=environ)
        self.wait_for("anserd running", lambda: self._anserd_ready(), timeout=60)
        return self.anserd

    def _anserd_ready(self):
        if self.anserd.poll() is not None:
            raise AssertionError("anserd exited with %s:\n%s" % (self.anserd.returncode,
                                                                  self.log("anserd")))
        return " running (listeners" in self.log("anserd")

    def stop_anserd(self):
        if self.anserd and self.anserd.poll() is None:
            self.anserd.terminate()
            self.anserd.wait(10)
        self.anserd = None

    def anserctl(self, *args, check=True):
        r = run([ANSERCTL, "--address=" + self.bus] + list(args), check=False)
        if check and r.returncode != 0:
            raise AssertionError("anserctl %s failed: %s" % (" ".join(args), r.stdout))
        return r

    def busctl(self, *args, check=True):
        return run(["busctl", "--address=" + self.bus] + list(args), check=check)

    def prog_ids_of(self, pid):
        """ids of the BPF programs a process holds, from the fdinfo of its
        program and link fds."""
        return sorted({int(i["prog_id"]) for i in fdinfos(pid) if "prog_id" in i})

    def prog_ids_exist(self, ids):
        return [i for i in ids
                if run(["bpftool", "prog", "show", "id", str(i)], check=False).returncode == 0]

    def cgroup_attached(self):
        r = run(["bpftool", "cgroup", "show", self.cg], check=False)
        return [l for l in r.stdout.splitlines()[1:] if l.strip()]

    # -- teardown --------------------------------------------------------
    def close(self):
        if self._closed:
            return
        self._closed = True
        for name, p, _ in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 5
        for name, p, _ in reversed(self.procs):
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        for ns in self.netns:
            pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for cg in reversed(self.cgs):
            if not os.path.isdir(cg):
                continue
            try:
                with open(os.path.join(cg, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
            except OSError:
                pass
            for _ in range(50):
                try:
                    os.rmdir(cg)
                    break
                except OSError:
                    time.sleep(0.1)
        for ns in reversed(self.netns):
            run(["ip", "netns", "del", ns], check=False)
        if os.environ.get("ANSER_KEEP_TMP") is None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def live_anserds(self):
        """Pids of this test's anserd processes still running (spawned here
        or started by the bus: their command lines name the test's tmp)."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and os.path.basename(argv[0]) == b"anserd" and \
                    any(self.tmp.encode() in a for a in argv):
                pids.append(int(d))
        return pids

    def dump_stacks(self):
        """Where each thread of a live anserd is: its kernel wait, and
        (gdb being there) its user-space stack. A failed test that timed
        out says so why, not only that it did."""
        for pid in self.live_anserds():
            sys.stderr.write("----- anserd %d threads -----\n" % pid)
            try:
                tids = sorted(os.listdir("/proc/%d/task" % pid), key=int)
            except OSError:
                continue
            for tid in tids:
                info = []
                for what in ("comm", "wchan", "syscall"):
                    try:
                        with open("/proc/%d/task/%s/%s" % (pid, tid, what)) as f:
                            info.append(f.read().strip())
                    except OSError:
                        info.append("?")
                sys.stderr.write("  %s %s\n" % (tid, " | ".join(info)))
            gdb = shutil.which("gdb")
            if gdb:
                r = subprocess.run([gdb, "-p", str(pid), "-batch", "-nx", "-ex",
                                    "thread apply all bt 30"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, timeout=60,
                                   check=False)
                sys.stderr.write("\n".join(l for l in r.stdout.splitlines()
                                            if l.startswith(("#", "Thread"))) + "\n")

    def dump_logs(self):
        # how a daemon that is gone ended (a signal: negative)
        if self.anserd is not None and self.anserd.poll() is not None:
            sys.stderr.write("anserd had ended: exit status %d\n" % self.anserd.returncode)
        try:
            self.dump_stacks()
        except (OSError, subprocess.SubprocessError) as e:
            sys.stderr.write("no thread dump: %s\n" % e)
        for name, _, log in self.procs:
            try:
                with open(log, errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            # libbpf's load chatter would fill the tail that tells what happened
            text = "\n".join(l for l in text.splitlines() if "libbpf: " not in l)
            sys.stderr.write("----- %s -----\n%s\n" % (name, text[-6000:]))


def main(tests):
    """Run tests[sys.argv[1]](env) with full setup/teardown; exit 0/1/77."""
    if len(sys.argv) != 2 or sys.argv[1] not in tests:
        sys.stderr.write("usage: %s {%s}\n" % (sys.argv[0], ",".join(tests)))
        sys.exit(2)
    name = sys.argv[1]
    env = None
    try:
        env = Env(name)
        tests[name](env)
        print("PASS", name)
        code = 0
    except Skip as e:
        print("SKIP", name, e)
        code = SKIP
    except Exception as e:  # noqa: BLE001 -- report and fail
        import traceback
        traceback.print_exc()
        if env:
            env.dump_logs()
        print("FAIL", name, e)
        code = 1
    finally:
        if env:
            env.close()
    sys.exit(code)
