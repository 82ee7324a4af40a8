#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""dae's global options: the table in daemon/config/global-options.h and the
one in docs/configuration.md agree, and anserd --validate accepts every
option at dae's default, with the warning its status promises."""
import os
import re
import subprocess
import sys
import tempfile

anserd, src = sys.argv[1], sys.argv[2]
header = open(os.path.join(src, "daemon", "config", "global-options.h")).read()
code = {}
for name, typ, default, status, why in re.findall(
        r'\{ "(\w+)", (GT_\w+), "([^"]*)",\s*(USED|NOT_YET|NOT_NEEDED\("((?:[^"]|"\s*")*)"\))',
        header):
    code[name] = (typ, default, status.split("(")[0], re.sub(r'"\s*"', "", why))
assert len(code) >= 26 and header.count('{ "') == len(code), "cannot read the header's table"

docs = open(os.path.join(src, "docs", "configuration.md")).read()
section = docs[docs.index("## `global`"):docs.index("## `node`")]
rows = re.findall(r"^\| `(\w+)` \| [\w ]+ \| (?:`([^`]*)`|\(none\)) \| (.*) \|$", section, re.M)
documented = {name: (default, status) for name, default, status in rows}
assert set(documented) == set(code), "docs and code list different options: %s" % (
    set(documented) ^ set(code))
for name, (typ, default, status, why) in code.items():
    ddefault, dstatus = documented[name]
    assert ddefault == default, "%s: docs say default %r, code %r" % (name, ddefault, default)
    want = {"USED": "used", "NOT_YET": "not supported yet", "NOT_NEEDED": "not needed"}[status]
    assert dstatus.startswith(want), "%s: docs say %r, code %s" % (name, dstatus, status)
    if status == "NOT_NEEDED":
        assert why in dstatus, "%s: docs do not give the reason %r" % (name, why)

example = {"GT_LIST": "eth0", "GT_STRING": "x"}
lines = []
for name, (typ, default, status, why) in code.items():
    value = default or example[typ]
    lines.append("    %s: %s" % (name, "'%s'" % value if typ == "GT_LIST" else value))
text = "global {\n%s\n}\nrouting {\n    fallback: direct\n}\n" % "\n".join(lines)
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "all.dae")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    r = subprocess.run([anserd, "--validate", "-c", path], capture_output=True, text=True)
out = r.stdout + r.stderr
assert r.returncode == 0, out
for i, (name, (typ, default, status, why)) in enumerate(code.items()):
    where = "%s:%d:5: " % (path, i + 2)
    if status == "USED":
        assert where not in out, out
    elif status == "NOT_YET":
        assert where + "warning: global option '%s' is not supported yet, ignored\n" % name in out, \
            (name, out)
    else:
        assert where + "warning: global option '%s' is not needed by anser (%s), ignored\n" % (
            name, why) in out, (name, out)
assert "0 errors, %d warnings" % sum(1 for v in code.values() if v[2] != "USED") in out, out
print("ok: %d options" % len(code))
