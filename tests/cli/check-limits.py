#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`anserd --check` refuses rules over the kernel's per-kind limits with a
message naming the file, and accepts the same rules at the limit."""
import os
import subprocess
import sys
import tempfile

anserd = sys.argv[1]


def check(n):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "many.dae")
        with open(path, "w") as f:
            f.write("routing {\n")
            for i in range(n):
                f.write("  dip(10.%d.%d.0/24) -> block\n" % (i // 256, i % 256))
            f.write("  fallback: direct\n}\n")
        os.chmod(path, 0o600)
        r = subprocess.run([anserd, "--check", "-c", path], capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr, path


rc, out, _ = check(128)
assert rc == 0, out
rc, out, path = check(129)
assert rc != 0, out
assert path + ": the routing rules do not fit" in out, out
assert "128 each of pname(), dip() and dport()" in out, out
print("ok")
