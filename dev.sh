#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# One entry point for a fresh Debian 12 machine (run as root):
#   ./dev.sh demo    install what is missing, build, run the demo
#   ./dev.sh test    install what is missing, build (gcc, clang, ASan), run
#                    the whole test suite; last line "N passed, N failed"
#   ./dev.sh deps    only install the packages
#   ./dev.sh build   only build (into ./build)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

PKGS=(
  gcc clang llvm pkg-config meson ninja-build bpftool libbpf-dev libelf-dev zlib1g-dev
  libsystemd-dev libglib2.0-dev libpolkit-gobject-1-dev libjson-glib-dev libgnutls28-dev
  libcurl4-gnutls-dev libnm-dev libnghttp2-dev
  libclang-rt-14-dev
  clang-format libxml2-utils valgrind iproute2 python3 dbus dbus-daemon polkitd systemd util-linux
  microsocks dante-server shadowsocks-libev tinyproxy trojan v2ray openssl dnsmasq-base iperf3
  nftables network-manager
  curl gettext b3sum python3-cryptography unbound dnsperf
  bash-completion gdb strace redsocks wrk
)

say() { printf '==> %s\n' "$*"; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "dev.sh: run as root (it installs packages, loads BPF programs and creates network namespaces)" >&2
    exit 1
  fi
}

deps() {
  local missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "All ${#PKGS[@]} packages present"
    return
  fi
  say "Installing ${missing[*]}"
  # No package may start its service here (dante, dbus, polkitd...): a
  # policy-rc.d that says "no" for the duration of the install.
  local prc=/usr/sbin/policy-rc.d had_prc=
  [ -e "$prc" ] && had_prc=1 && cp -p "$prc" "$prc.anser-save"
  printf '#!/bin/sh\nexit 101\n' > "$prc"
  chmod 755 "$prc"
  trap 'restore_prc' EXIT
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  restore_prc
  trap - EXIT
}

restore_prc() {
  local prc=/usr/sbin/policy-rc.d
  if [ -e "$prc.anser-save" ]; then mv -f "$prc.anser-save" "$prc"; else rm -f "$prc"; fi
}

build() {
  say "Building (gcc) into ./build"
  [ -d build ] || meson setup build >/dev/null
  ninja -C build
}

summary() {
  # Count meson's results from its JSON log(s) into one last line.
  python3 - "$@" <<'PY'
import json, sys
passed, failed = int(sys.argv[1]), int(sys.argv[2])
skipped = 0
for path in sys.argv[3:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        print("missing test log", path)
        continue
    for line in lines:
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
if skipped:
    print("%d skipped" % skipped)
print("%d passed, %d failed" % (passed, failed))
PY
}

run_tests() {
  local rc=0 logs=() bp=0 bf=0
  if build; then bp=$((bp + 1)); else summary 0 1; return 1; fi
  say "Running the test suite (unit, bpf, fuzz, style, integration)"
  meson test -C build --print-errorlogs --no-rebuild || rc=1
  cp build/meson-logs/testlog.json build/meson-logs/testlog-gcc.json
  logs+=(build/meson-logs/testlog-gcc.json)

  say "Building with clang (warnings are errors)"
  [ -d build-clang ] || CC=clang meson setup build-clang -Dintegration_tests=false >/dev/null
  if ninja -C build-clang; then bp=$((bp + 1)); else bf=$((bf + 1)); rc=1; fi

  say "ASan/UBSan build: the whole suite again"
  [ -d build-asan ] || CC=clang meson setup build-asan -Db_sanitize=address,undefined \
    -Db_lundef=false >/dev/null
  if ninja -C build-asan; then
    bp=$((bp + 1))
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      meson test -C build-asan --print-errorlogs --no-rebuild || rc=1
    logs+=(build-asan/meson-logs/testlog.json)
  else
    bf=$((bf + 1))
    rc=1
  fi
  summary "$bp" "$bf" "${logs[@]}"
  return $rc
}

case "${1:-}" in
  deps) need_root; deps ;;
  build) build ;;
  demo) need_root; deps; build; say "Running the demo"; python3 tests/integration/demo.py ;;
  test) need_root; deps; run_tests ;;
  *) echo "usage: $0 demo|test|deps|build" >&2; exit 2 ;;
esac
