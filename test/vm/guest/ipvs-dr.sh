#!/bin/bash
# Guest entry for test/vm/ipvs.test.ts: DR lab up, then the IPVS scenario runs in the director's
# namespace and writes $XD_VM_OUT/result.json.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
source "$HERE/dr-topology.sh"
T0=$(cut -d' ' -f1 /proc/uptime)
xdg_topology_up 3
echo "XD-VM: topology up in $(awk -v a="$T0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{print b-a}') s"
cd "$ROOT"
nsenter --net=/run/netns/xdg-dir node dist/test/vm/guest/ipvs-scenario.js
