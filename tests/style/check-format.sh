#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every C source and header is clang-format clean and has an SPDX line.
cd "$1" || exit 2
command -v clang-format >/dev/null || { echo "clang-format missing"; exit 77; }
rc=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
for f in $files; do
  [ -f "$f" ] || continue
  if ! clang-format --dry-run -Werror "$f" 2>/dev/null; then
    echo "not clang-format clean: $f (run: clang-format -i $f)"
    rc=1
  fi
  if ! head -2 "$f" | grep -q 'SPDX-License-Identifier: GPL-2.0-or-later'; then
    echo "no SPDX header: $f"
    rc=1
  fi
done
exit $rc
