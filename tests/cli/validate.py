#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`anserd --validate -c FILE`: every problem with file:line:col, the line
and a caret under the column; exit 1 on errors, 0 when the config can be
used (warnings allowed)."""
import os
import re
import subprocess
import sys
import tempfile

anserd = sys.argv[1]


def validate(text, mode=0o600):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "my.dae")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        r = subprocess.run([anserd, "--validate", "-c", path], capture_output=True, text=True)
        return r.returncode, (r.stdout + r.stderr).replace(path, "my.dae")


BAD = """global {
    log_level: loud
}
node { n: 'socks5://alice:pw@10.0.0.1:1080' }
group { proxy { policy: fixed(0) } }
routing {
    dport(70000) -> proxy
\tdip(10.0.0.0/33) -> direct
    pname(a) -> nowhere
    fallback: direct
}
"""
rc, out = validate(BAD)
assert rc == 1, out
# Each error: its position, then the line, then a caret whose column (tabs
# kept) is the reported one.
errors = re.findall(r"^my\.dae:(\d+):(\d+): error: .*\n    (.*)\n    (.*)\^$", out, re.M)
assert len(errors) == 4, out
lines = BAD.split("\n")
for line, col, src, caret in errors:
    assert src == lines[int(line) - 1], (line, src)
    assert len(caret) == int(col) - 1 and caret.strip(" \t") == "", (line, col, caret)
assert [int(e[0]) for e in errors] == [2, 7, 8, 9], out
assert out.rstrip().endswith("4 errors, 0 warnings"), out

# A usable config with a warning: exit 0, the warning quoted too.
rc, out = validate("global { log_level: info\n  mptcp: true }\nrouting { fallback: direct }\n")
assert rc == 0, out
assert re.search(r"^my\.dae:2:3: warning: .*\n      mptcp: true }\n      \^$", out, re.M), out
assert "0 errors, 1 warning\n" in out and "my.dae: OK" in out, out

# Refused before parsing: no line to quote, still a summary and exit 1.
rc, out = validate("routing { fallback: direct }\n", 0o644)
assert rc == 1 and "chmod 600" in out and "1 error, 0 warnings" in out, out
print("ok")
