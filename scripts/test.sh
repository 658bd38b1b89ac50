#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh test/vrrp  # only test files under a folder (source path or dist path)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# No `any` in the daemon, the admin API and the CLI: their types are the contract (the compiler
# checks implicit any through tsconfig's noImplicitAny; this catches the explicit ones).
if anys=$(grep -rnE ': any\b|as any\b|<any>' src/daemon src/api src/cli); then
  echo "test.sh: \`any\` is not allowed in src/daemon, src/api, src/cli (use the config, status and dataplane types):" >&2
  echo "$anys" >&2
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
echo "running ${#files[@]} test files"
# One file at a time: kernel tests build namespaces and must not fight for the 2 cores.
exec node --test --test-concurrency=1 --test-timeout=600000 --test-reporter=spec "${files[@]}"
