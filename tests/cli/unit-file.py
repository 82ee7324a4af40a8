#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The installed systemd unit: `systemd-analyze verify` finds nothing
wrong, and `systemd-analyze security` rates its exposure below 4.0.
Arguments: the unit built into the build directory, and the anserd
binary to point ExecStart= at (verify checks that it is executable)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

unit, anserd = sys.argv[1], os.path.abspath(sys.argv[2])
if not shutil.which("systemd-analyze"):
    print("systemd-analyze not installed")
    sys.exit(77)
with open(unit) as f:
    text = re.sub(r"(?m)^ExecStart=\S+", "ExecStart=" + anserd, f.read())
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "anserd.service")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "anserd.service" not in out, "verify: " + out
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=40",
                        path], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for anserd.service: ([0-9.]+)", r.stdout)
    assert m, "no exposure level: " + r.stdout + r.stderr
    level = float(m.group(1))
    assert r.returncode == 0 and level < 4.0, "exposure %.1f (aim below 4.0)" % level
    print("ok: verify clean, exposure %.1f" % level)
