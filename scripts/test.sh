#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh test/vrrp  # only test files under a folder (source path or dist path)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Layout and lint before any test: a violation fails the run with the command that fixes it.
# (No explicit `any` in src/daemon, src/api and src/cli is one of eslint.config.mjs's rules; the
# compiler checks implicit any through tsconfig's noImplicitAny.)
if ! npm run --silent format:check; then
  echo "test.sh: the files above are not laid out as prettier/clang-format would: run \`npm run format\` and commit the result" >&2
  exit 1
fi
if ! npm run --silent lint; then
  echo "test.sh: eslint reports the problems above: \`npm run format\` fixes what is marked fixable (eslint --fix); fix the rest by hand" >&2
  exit 1
fi
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
# Two lanes. The qemu VM tests (test/vm: IPVS in a guest; without /dev/kvm its one TCG vCPU keeps one
# host core busy for ~3 minutes) run beside the rest, which runs one file at a time because the
# kernel tests build namespaces and must not fight over the cores (they are mostly timers, MariaDB and
# namespaces, and pass on a machine loaded far beyond the VM's one core). This takes the VM's minutes
# off the suite's wall time. The VM lane's report is printed after the main lane's; the exit status
# is the main lane's if it failed, else the VM lane's.
vm=(); rest=()
for x in "${files[@]}"; do case $x in dist/test/vm/*) vm+=("$x");; *) rest+=("$x");; esac; done
echo "running ${#files[@]} test files (${#vm[@]} in the VM lane beside the others)"
run() { node --test --test-concurrency=1 --test-timeout=600000 --test-reporter=spec "$@"; }
if [ ${#vm[@]} -eq 0 ] || [ ${#rest[@]} -eq 0 ]; then run "${files[@]}"; exit; fi
vmlog=$(mktemp /tmp/xdirector-test-vm.XXXXXX)
run "${vm[@]}" > "$vmlog" 2>&1 & vmpid=$!
# An interrupted run stops the VM lane too (its test harness stops its own qemu).
trap '[ -z "$vmpid" ] || kill "$vmpid" 2>/dev/null || true; rm -f "$vmlog"' EXIT
rc=0; run "${rest[@]}" || rc=$?
vmrc=0; wait "$vmpid" || vmrc=$?; vmpid=
echo "--- VM lane (${#vm[@]} files, run beside the above) ---"
cat "$vmlog"
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
exit "$vmrc"
