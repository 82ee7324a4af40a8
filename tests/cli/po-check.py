#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Translations: po/POTFILES.in lists every source file with translatable
strings (and only files that exist), every message those files have is
translated in every po/*.po (none missing, none fuzzy, msgfmt --check
clean), and the built zh_CN catalogue makes anserctl speak Chinese.
Arguments: the source root, the build's po directory, anserctl."""
import os
import re
import subprocess
import sys
import tempfile

src, built_po, anserctl = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
os.chdir(src)
with open("po/POTFILES.in") as f:
    listed = [l.strip() for l in f if l.strip() and not l.startswith("#")]
for p in listed:
    assert os.path.exists(p), "POTFILES.in lists %s, which does not exist" % p

marked = set()
for top in ("cli", "daemon"):
    for d, _, files in os.walk(top):
        for n in files:
            if n.endswith(".c"):
                p = os.path.join(d, n)
                with open(p, encoding="utf-8") as f:
                    if re.search(r'\bN?_\("', f.read()):
                        marked.add(p)
marked.add("polkit/org.anser.policy.in")
missing = sorted(marked - set(listed))
assert not missing, "POTFILES.in misses %s" % missing

with tempfile.TemporaryDirectory() as d:
    pot = os.path.join(d, "anser.pot")
    subprocess.run(["xgettext", "--from-code=UTF-8", "--keyword=_", "--keyword=N_",
                    "-o", pot] + listed, check=True)
    with open("po/LINGUAS") as f:
        langs = f.read().split()
    for lang in langs:
        po = "po/%s.po" % lang
        r = subprocess.run(["msgfmt", "--check", "--statistics", "-o", "/dev/null", po],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "untranslated" not in r.stderr and "fuzzy" not in r.stderr, r.stderr
        # every message of the sources is in the catalogue, translated
        merged = os.path.join(d, lang + ".po")
        subprocess.run(["msgmerge", "--quiet", "--no-fuzzy-matching", "-o", merged, po, pot],
                       check=True)
        r = subprocess.run(["msgfmt", "--statistics", "-o", "/dev/null", merged],
                           capture_output=True, text=True)
        assert "untranslated" not in r.stderr and "fuzzy" not in r.stderr, \
            "%s is out of date with the sources: %s" % (po, r.stderr)

env = dict(LC_ALL="C.UTF-8", LANGUAGE="zh_CN", ANSER_LOCALEDIR=built_po, PATH="/usr/bin:/bin")
out = subprocess.run([anserctl, "--help"], capture_output=True, text=True, env=env).stdout
assert out.startswith("用法：anserctl"), out
print("ok: %d files, %s translated" % (len(listed), ", ".join(langs)))
