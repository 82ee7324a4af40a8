#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`anserd --check` refuses rules over the kernel's limits with a message
naming the file (and the line, for the rule count), and accepts the same
kind of rules at the limit."""
import os
import subprocess
import sys
import tempfile

anserd = sys.argv[1]


def check(rules):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "many.dae")
        with open(path, "w") as f:
            f.write("routing {\n")
            f.writelines("  %s\n" % r for r in rules)
            f.write("  fallback: direct\n}\n")
        os.chmod(path, 0o600)
        r = subprocess.run([anserd, "--check", "-c", path], capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr, path


# 1023 rules besides fallback: one bit each in the kernel's rule sets
# (outbounds alternate, so no two rules merge).
rules = ["dip(10.%d.%d.0/24) -> %s" % (i // 256, i % 256, ("block", "direct")[i % 2])
         for i in range(1024)]
rc, out, _ = check(rules[:1023])
assert rc == 0, out
rc, out, path = check(rules)
assert rc != 0, out
assert path + ":1025:3: the routing rules do not fit the kernel's tables: at most 1023" in out, out

# Consecutive rules with one condition of a kind and one outbound merge, as
# in dae: 5000 of them are one rule of the kernel's.
rc, out, _ = check(["dip(10.%d.%d.0/24) -> block" % (i // 256, i % 256) for i in range(5000)])
assert rc == 0 and "5000 rules" in out, out

# Ranges in a staircase: each port between two boundaries has its own set
# of rules; the kernel has 256 port classes.
stairs = ["dport(%d-%d) -> %s" % (i + 1, i + 1001, ("block", "direct")[i % 2])
          for i in range(200)]
rc, out, _ = check(stairs[:100])
assert rc == 0, out
rc, out, path = check(stairs)
assert rc != 0, out
assert path + ": the routing rules do not fit the kernel's tables: at most 256 " in out, out
assert "dport()" in out, out
print("ok")
