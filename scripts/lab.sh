#!/usr/bin/env bash
# The main command: a namespace lab with an XDP director in front of three real
# MariaDB servers; opens many MySQL connections through the VIP and shows which
# backend served each, then tears everything down.
#
#   bash scripts/lab.sh                 run once (native XDP), tear down
#   bash scripts/lab.sh --mode generic  the same with generic (skb) XDP
#   bash scripts/lab.sh --keep          leave it running; prints how to use and remove it
#   bash scripts/lab.sh --down PREFIX   remove a lab left with --keep
#   (also --connections N, --connections6 N, --concurrency C, --config FILE)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ "$(id -u)" = 0 ] || { echo "lab: must run as root (network namespaces, XDP, bpffs); re-run with sudo" >&2; exit 1; }
case " $* " in
  *" --down "*) ;;                                  # teardown only: no setup needed
  *) bash scripts/setup.sh ;;
esac
exec node dist/scripts/lab/main.js "$@"
