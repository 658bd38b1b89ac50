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
# Three lanes, each running one file at a time:
# - VM: the qemu tests (test/vm: IPVS in a guest; without /dev/kvm its one TCG vCPU keeps one host
#   core busy for ~7 minutes).
# - beside: the end-to-end files listed in BESIDE below.
# - main: every other file.
# The kernel tests build namespaces and must not fight over the cores, so no lane runs two files at
# once; the lanes run at the same time because what they run is mostly waiting (timers, MariaDB,
# BIRD, namespaces) and passes on a machine loaded far beyond its 2 cores.
# A file may join BESIDE only when it cannot meet any other file of the suite, checked by reading
# it and its harness: every namespace, interface, pin directory (/sys/fs/bpf/<prefix>), temp dir,
# admin socket, state dir and instance name carries its per-run prefix (test/daemon/harness.ts and
# test/bgp/fabric.ts: xt<tag><pid>, the tag unique in the tree; test/daemon/drains.test.ts:
# xtdr<pid>; test/daemon/tunnel.test.ts: xttu<pid>); sysctls are set inside its own namespaces only
# (never the host's: no kernel.bpf_stats_enabled, no net.* on the host); no listener on a host port
# or a fixed /run path; processes are stopped by their pid; and nothing it cleans up matches another
# run's names. Benchmarks, packet floods, the machine-wide checks and every file not audited stay in
# the main lane (bench, bpf/flood, layering, docs, ...), as do files whose timing margins are known
# to be tight. Each lane's report is printed when all have ended (main, beside, VM); the exit status
# is the first failing lane's in that order, else 0.
BESIDE=(
  test/bgp/ecmp
  test/bgp/liveness
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
vm=(); beside=(); rest=()
for x in "${files[@]}"; do
  case $x in
    dist/test/vm/*) vm+=("$x") ;;
    *)
      b=${x#dist/}; b=${b%.test.js}
      if printf '%s\n' "${BESIDE[@]}" | grep -qxF "$b"; then beside+=("$x"); else rest+=("$x"); fi
      ;;
  esac
done
# A selection with no main-lane file runs its first other lane in the foreground.
if [ ${#rest[@]} -eq 0 ]; then rest=("${beside[@]}"); beside=(); fi
if [ ${#rest[@]} -eq 0 ]; then rest=("${vm[@]}"); vm=(); fi
echo "running ${#files[@]} test files (main lane ${#rest[@]}, beside it ${#beside[@]} end-to-end files and ${#vm[@]} in the VM lane)"
run() { node --test --test-concurrency=1 --test-timeout=600000 --test-reporter=spec "$@"; }
# In a background subshell: exec, so that the lane's pid is node's own and the trap below stops it.
run_bg() { exec node --test --test-concurrency=1 --test-timeout=600000 --test-reporter=spec "$@"; }
vmpid=; besidepid=
vmlog=$(mktemp /tmp/xdirector-test-vm.XXXXXX)
besidelog=$(mktemp /tmp/xdirector-test-beside.XXXXXX)
# An interrupted run stops the other lanes too (their test harnesses stop their own qemu, daemons
# and namespaces).
trap 'for p in $vmpid $besidepid; do kill "$p" 2>/dev/null || true; done; rm -f "$vmlog" "$besidelog"' EXIT
if [ ${#vm[@]} -gt 0 ]; then run_bg "${vm[@]}" > "$vmlog" 2>&1 & vmpid=$!; fi
if [ ${#beside[@]} -gt 0 ]; then run_bg "${beside[@]}" > "$besidelog" 2>&1 & besidepid=$!; fi
rc=0
if [ ${#rest[@]} -gt 0 ]; then run "${rest[@]}" || rc=$?; fi
besiderc=0
if [ -n "$besidepid" ]; then
  wait "$besidepid" || besiderc=$?; besidepid=
  echo "--- beside lane (${#beside[@]} files, run beside the above) ---"
  cat "$besidelog"
fi
vmrc=0
if [ -n "$vmpid" ]; then
  wait "$vmpid" || vmrc=$?; vmpid=
  echo "--- VM lane (${#vm[@]} files, run beside the above) ---"
  cat "$vmlog"
fi
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
if [ "$besiderc" -ne 0 ]; then exit "$besiderc"; fi
exit "$vmrc"
