#!/usr/bin/env bash
# Prepare this machine for xdirector: system packages, bpffs, node modules, build.
# Idempotent and quick when everything is present: every step checks first and
# prints one line saying what it did. Exits non-zero with a message on failure.
#
#   bash scripts/setup.sh            # as root (apt-get, mount)
#   XD_SETUP_SKIP_BUILD=1 bash scripts/setup.sh   # packages, bpffs, node_modules only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf 'setup: %-10s %s\n' "$1" "$2"; }
die() { printf 'setup: FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, bpffs mount, XDP); re-run with sudo"

# ---------------------------------------------------------------- packages
# Debian 12 package names. Every helper that needs a package adds it here.
PACKAGES=(
  clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool pkg-config make g++ python3 clang-format
  iproute2 ethtool tcpdump nftables
  mariadb-server mariadb-client
  keepalived haproxy ipvsadm
  qemu-system-x86 busybox-static kmod cpio
  socat netcat-openbsd bird2 tshark
  chromium python3-prometheus-client curl systemd util-linux
)
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii'; then
    missing+=("$p")
  fi
done

# A system mariadbd (started by the package's postinst or left over) would hold
# port 3306 and /run/mysqld; the lab and tests start their own servers only.
stop_system_mariadb() {
  local pidf pid
  for pidf in /run/mysqld/mysqld.pid /var/run/mysqld/mysqld.pid; do
    [ -s "$pidf" ] || continue
    pid="$(cat "$pidf")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && die "system mariadbd (pid $pid from $pidf) did not stop after SIGTERM; stop it by hand"
      step mariadb "stopped the system mariadbd (pid $pid) started by the package"
    fi
  done
}

if [ ${#missing[@]} -eq 0 ]; then
  step packages "all ${#PACKAGES[@]} Debian packages present"
else
  step packages "installing: ${missing[*]}"
  command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand (Debian 12 package names)"
  # Keep package postinst scripts from starting services (mariadb, keepalived,
  # haproxy): install a policy-rc.d that denies starts, only for this install.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, written by xdirector scripts/setup.sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  } >/tmp/xdirector-setup-apt.$$.log 2>&1 || rc=$?
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ $rc -ne 0 ]; then
    tail -n 20 /tmp/xdirector-setup-apt.$$.log >&2
    die "apt-get install failed (exit $rc); full log: /tmp/xdirector-setup-apt.$$.log"
  fi
  rm -f /tmp/xdirector-setup-apt.$$.log
  step packages "installed ${#missing[@]} package(s)"
fi
stop_system_mariadb

# ---------------------------------------------------------------- bpffs
if mountpoint -q /sys/fs/bpf 2>/dev/null && [ "$(stat -f -c %T /sys/fs/bpf)" = bpf_fs ]; then
  step bpffs "/sys/fs/bpf already mounted"
else
  mkdir -p /sys/fs/bpf
  mount -t bpf bpf /sys/fs/bpf || die "mount -t bpf bpf /sys/fs/bpf failed: the kernel needs CONFIG_BPF_SYSCALL and we need CAP_SYS_ADMIN"
  step bpffs "mounted bpffs at /sys/fs/bpf"
fi

# ---------------------------------------------------------------- node modules
command -v node >/dev/null || die "node not found: install Node.js >= 20 (the package.json engines field)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "node $(node --version) is too old: xdirector needs Node.js >= 20"
# node-gyp (our addon, and any dependency that compiles on install) would
# download the Node headers, and only the package registries are reachable
# here: point it at the headers installed with node itself.
node_prefix="$(dirname "$(dirname "$(command -v node)")")"
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node_api.h" ]; then
  export npm_config_nodedir="$node_prefix"
fi
if [ -f package-lock.json ]; then
  if [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] 2>/dev/null; then
    step npm "node_modules up to date with package-lock.json"
  else
    npm ci --no-audit --no-fund --loglevel=error >/dev/null || die "npm ci failed (run it by hand to see why)"
    step npm "npm ci done"
  fi
else
  if [ -d node_modules ] && [ node_modules -nt package.json ]; then
    step npm "node_modules present (no package-lock.json)"
  else
    npm install --no-audit --no-fund --loglevel=error >/dev/null || die "npm install failed (run it by hand to see why)"
    step npm "npm install done"
  fi
fi

if [ "${XD_SETUP_SKIP_BUILD:-0}" = 1 ]; then
  step build "skipped (XD_SETUP_SKIP_BUILD=1)"
  exit 0
fi

# ---------------------------------------------------------------- build
# stale TARGET SRC...: true when TARGET is missing or any file under SRC is newer.
stale() {
  local target="$1"; shift
  [ -e "$target" ] || return 0
  [ -n "$(find "$@" -type f -newer "$target" -print -quit 2>/dev/null)" ]
}

# BPF objects: bpf/Makefile does its own dependency tracking, so make is the check.
[ -f bpf/Makefile ] || die "bpf/Makefile is missing: this checkout is incomplete"
make_out="$(make -C bpf 2>&1)" || { printf '%s\n' "$make_out" >&2; die "building the BPF objects failed (make -C bpf)"; }
if printf '%s' "$make_out" | grep -q "Nothing to be done\|is up to date"; then
  step bpf "BPF objects up to date"
else
  step bpf "BPF objects built (make -C bpf)"
fi

# Native addon: rebuild when any source is newer than the built .node.
[ -f binding.gyp ] || die "binding.gyp is missing: this checkout is incomplete"
addon="$(find build/Release -maxdepth 1 -name '*.node' -print -quit 2>/dev/null || true)"
if [ -n "$addon" ] && ! stale "$addon" binding.gyp native bpf/include; then
  step native "native addon up to date ($addon)"
else
  npm run --silent build:native >/tmp/xdirector-setup-native.$$.log 2>&1 || {
    tail -n 30 /tmp/xdirector-setup-native.$$.log >&2
    die "building the native addon failed (npm run build:native); full log: /tmp/xdirector-setup-native.$$.log"
  }
  rm -f /tmp/xdirector-setup-native.$$.log
  step native "native addon built (node-gyp rebuild)"
fi

# TypeScript: recompile when any input is newer than the last successful
# compile (a stamp file written after tsc succeeded).
stamp=dist/.tsc-stamp
if ! stale "$stamp" src test scripts bin tsconfig.json package.json; then
  step ts "TypeScript output up to date"
else
  npx tsc -p tsconfig.json >/tmp/xdirector-setup-tsc.$$.log 2>&1 || {
    head -n 40 /tmp/xdirector-setup-tsc.$$.log >&2
    die "TypeScript compile failed (npx tsc -p tsconfig.json); full log: /tmp/xdirector-setup-tsc.$$.log"
  }
  rm -f /tmp/xdirector-setup-tsc.$$.log
  mkdir -p dist && touch "$stamp"
  step ts "TypeScript compiled to dist/"
fi
step done "ready"
