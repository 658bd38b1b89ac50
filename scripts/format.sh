#!/usr/bin/env bash
# The code's layout, one tool a language: prettier for TypeScript and JavaScript (.prettierrc.json),
# clang-format for bpf/ and native/ (their .clang-format: the kernel's style, Google's C++ style).
#   bash scripts/format.sh          # npm run format: eslint --fix, then rewrite the layout in place
#   bash scripts/format.sh --check  # npm run format:check: change nothing, exit 1 on a file to format
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format: clang-format not found: apt-get install clang-format (scripts/setup.sh installs it)" >&2; exit 1; }
mapfile -t cfiles < <(find bpf native \( -name '*.c' -o -name '*.h' -o -name '*.cc' \) -type f | sort)
js=('**/*.ts' '**/*.js' '**/*.mjs')
if [ "${1:-}" = --check ]; then
  rc=0
  npx prettier --check --log-level warn "${js[@]}" || rc=1
  clang-format --dry-run --Werror "${cfiles[@]}" || rc=1
  exit $rc
fi
# eslint --fix first: prettier then lays out whatever the fixes wrote.
npx eslint --fix --cache --cache-location node_modules/.cache/eslint/ . || true
# Twice: prettier's first pass over a long member chain is not always its last word (it gave
# src/config/vrrp.ts's `z.string().refine(...)` one layout, then another); the second settles it.
npx prettier --write --log-level warn "${js[@]}"
npx prettier --write --log-level warn "${js[@]}"
clang-format -i "${cfiles[@]}"
