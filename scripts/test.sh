#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh test/vrrp  # only test files under a folder (source path or dist path)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Layout and lint before any test: a violation fails the run with the command that fixes it.
# (No explicit `any` in src/daemon, src/api and src/cli is one of eslint.config.mjs's rules; the
# compiler checks implicit any through tsconfig's noImplicitAny.) The two run at the same time (each
# is one process, CPU-bound, and the machine has a core for each); both are reported.
fmtlog=$(mktemp /tmp/xdirector-test-format.XXXXXX)
lintlog=$(mktemp /tmp/xdirector-test-lint.XXXXXX)
npm run --silent format:check > "$fmtlog" 2>&1 & fmtpid=$!
npm run --silent lint > "$lintlog" 2>&1 & lintpid=$!
fmtrc=0; wait "$fmtpid" || fmtrc=$?
lintrc=0; wait "$lintpid" || lintrc=$?
cat "$fmtlog" "$lintlog"; rm -f "$fmtlog" "$lintlog"
if [ "$fmtrc" -ne 0 ]; then
  echo "test.sh: the files above are not laid out as prettier/clang-format would: run \`npm run format\` and commit the result" >&2
fi
if [ "$lintrc" -ne 0 ]; then
  echo "test.sh: eslint reports the problems above: \`npm run format\` fixes what is marked fixable (eslint --fix); fix the rest by hand" >&2
fi
if [ "$fmtrc" -ne 0 ] || [ "$lintrc" -ne 0 ]; then exit 1; fi
filter=("${@:-test}")
files=()
for f in "${filter[@]}"; do
  f=${f#dist/}; f=${f%.ts}; f=${f%.js}
  while IFS= read -r x; do
    # Only compiled tests whose source still exists: a moved or deleted test leaves a stale .js in dist/.
    src=${x#dist/}; src=${src%.js}.ts
    [ -f "$src" ] && files+=("$x")
  done < <( { find "dist/$f" -name '*.test.js' 2>/dev/null || true; } | sort; if [ -f "dist/$f.js" ]; then echo "dist/$f.js"; fi)
done
if [ ${#files[@]} -eq 0 ]; then echo "no test files found under: ${filter[*]}" >&2; exit 1; fi
# Lanes, each running one file at a time:
# - VM: the qemu tests (test/vm: IPVS in a guest; without /dev/kvm its one TCG vCPU keeps one host
#   core busy for ~7 minutes), from the start.
# - beside: the end-to-end files listed in BESIDE below, from the start.
# - main: every other file except PACED, from the start; then, once the beside lane has ended, the
#   PACED files.
# The kernel tests build namespaces and must not fight over the cores, so no lane runs two files at
# once; the lanes run at the same time because what they run is mostly waiting (timers, MariaDB,
# BIRD, namespaces) and passes on a machine loaded far beyond its 2 cores.
# A file may join BESIDE only when it cannot meet any other file of the suite, checked by reading
# it and its harness: every namespace, interface, pin directory (/sys/fs/bpf/<prefix>), temp dir,
# admin socket, state dir and instance name carries its per-run prefix (test/daemon/harness.ts:
# xt<tag><pid>, the tag unique in the tree; test/daemon/drains.test.ts:
# xtdr<pid>; test/daemon/tunnel.test.ts: xttu<pid>); sysctls are set inside its own namespaces only
# (never the host's: no kernel.bpf_stats_enabled, no net.* on the host); no listener on a host port
# or a fixed /run path; processes are stopped by their pid; and nothing it cleans up matches another
# run's names. Every file not audited stays out of it.
# PACED: the benchmark, the packet flood and the files whose checks hold sub-second timeouts or
# detection-time limits (health checks with 150-400 ms timeouts, VRRP's one-advert overlap, keepalived
# failover, BFD withdrawal within a second; ECMP starts four daemons at once within 30 s): they
# failed under a load average of 14 with both lanes running, so they run after the beside lane,
# with no other lane of this run but the VM's.
# Each lane's report is printed when all have ended (main, beside, VM); the exit status is the first
# failing lane's in that order, else 0.
PACED=(
  test/bench/bench
  test/bgp/ecmp
  test/bgp/liveness
  test/bpf/flood
  test/daemon/nat-vrrp
  test/health/adopt
  test/health/connect-errors
  test/health/detect-time
  test/health/mysql
  test/health/script
  test/health/tcp
  test/vrrp/gateway
  test/vrrp/keepalived
  test/vrrp/netns
  test/vrrp/sockets
  test/vrrp/sync
)
BESIDE=(
  test/daemon/apply-retry
  test/daemon/crash
  test/daemon/drains
  test/daemon/health-pools
  test/daemon/instance-lock
  test/daemon/no-refusal
  test/daemon/operator
  test/daemon/tunnel
  test/daemon/vrrp-failover
  test/daemon/xdp-dr
  test/daemon/xdp-generic
)
listed() { local b=${1#dist/}; b=${b%.test.js}; shift; printf '%s\n' "$@" | grep -qxF "$b"; }
vm=(); beside=(); rest=(); paced=()
for x in "${files[@]}"; do
  if [[ $x == dist/test/vm/* ]]; then vm+=("$x")
  elif listed "$x" "${BESIDE[@]}"; then beside+=("$x")
  elif listed "$x" "${PACED[@]}"; then paced+=("$x")
  else rest+=("$x"); fi
done
# With nothing to run beside them, the paced files are the main lane's; a selection with no main-lane
# file runs its first other lane in the foreground.
if [ ${#beside[@]} -eq 0 ]; then rest+=("${paced[@]}"); paced=(); fi
if [ ${#rest[@]} -eq 0 ] && [ ${#paced[@]} -eq 0 ]; then rest=("${beside[@]}"); beside=(); fi
if [ ${#rest[@]} -eq 0 ] && [ ${#paced[@]} -eq 0 ]; then rest=("${vm[@]}"); vm=(); fi
echo "running ${#files[@]} test files (main lane ${#rest[@]}, then ${#paced[@]} paced ones once the ${#beside[@]} end-to-end files beside it have ended; ${#vm[@]} in the VM lane)"
# Beside the spec report, scripts/test-times.mjs writes each file's wall time to $times/<lane>.tsv:
# the slowest files are listed at the end.
times=$(mktemp -d /tmp/xdirector-test-times.XXXXXX)
# One node:test command for every lane: `lane_cmd LANE FILES...` sets cmd. A VM file gets 20
# minutes: node applies --test-timeout to a whole file, and the daemon scenario's guest may take its
# own 1080 s under TCG on a loaded host (it takes ~3-5 min when quiet); every other file gets 10.
lane_cmd() {
  local lane=$1; shift
  local timeout=600000
  [[ " $* " != *" dist/test/vm/"* ]] || timeout=1200000
  cmd=(node --test --test-concurrency=1 --test-timeout=$timeout --test-reporter=spec --test-reporter-destination=stdout
    --test-reporter=./scripts/test-times.mjs --test-reporter-destination="$times/$lane.tsv" "$@")
}
run() { lane_cmd "$@"; "${cmd[@]}"; }
# In a background subshell: exec, so that the lane's pid is node's own and the trap below stops it.
run_bg() { lane_cmd "$@"; exec "${cmd[@]}"; }
vmpid=; besidepid=
vmlog=$(mktemp /tmp/xdirector-test-vm.XXXXXX)
besidelog=$(mktemp /tmp/xdirector-test-beside.XXXXXX)
# An interrupted run stops the other lanes too (their test harnesses stop their own qemu, daemons
# and namespaces).
trap 'for p in $vmpid $besidepid; do kill "$p" 2>/dev/null || true; done; rm -rf "$vmlog" "$besidelog" "$times"' EXIT
if [ ${#vm[@]} -gt 0 ]; then run_bg vm "${vm[@]}" > "$vmlog" 2>&1 & vmpid=$!; fi
if [ ${#beside[@]} -gt 0 ]; then run_bg beside "${beside[@]}" > "$besidelog" 2>&1 & besidepid=$!; fi
rc=0
if [ ${#rest[@]} -gt 0 ]; then run main "${rest[@]}" || rc=$?; fi
besiderc=0
if [ -n "$besidepid" ]; then wait "$besidepid" || besiderc=$?; besidepid=; fi
if [ ${#paced[@]} -gt 0 ]; then
  echo "--- main lane, paced files (${#paced[@]}, run once the beside lane had ended) ---"
  pacedrc=0; run paced "${paced[@]}" || pacedrc=$?
  [ "$rc" -ne 0 ] || rc=$pacedrc
fi
if [ ${#beside[@]} -gt 0 ]; then
  echo "--- beside lane (${#beside[@]} files, run beside the main lane) ---"
  cat "$besidelog"
fi
vmrc=0
if [ -n "$vmpid" ]; then
  wait "$vmpid" || vmrc=$?; vmpid=
  echo "--- VM lane (${#vm[@]} files, run beside the above) ---"
  cat "$vmlog"
fi
echo "--- slowest test files (wall seconds, lane) ---"
for lane in main paced beside vm; do
  [ ! -s "$times/$lane.tsv" ] || sed "s|$PWD/||; s|\$|\t$lane|" "$times/$lane.tsv"
done | sort -rn | head -n 20
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
if [ "$besiderc" -ne 0 ]; then exit "$besiderc"; fi
exit "$vmrc"
