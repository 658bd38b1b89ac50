#!/bin/bash
# Boot the kernel built by build.sh under qemu (TCG, no KVM needed) with the host root shared
# read-only, run a command inside, propagate its exit status.
#
#   scripts/vm/run.sh [-t SECONDS] [-o OUTDIR] [-l LOGFILE] [-e NAME=VALUE]... -- COMMAND [ARG]...
#
# COMMAND runs in the guest as root, in the current directory, with the host's files visible
# read-only (write under /run or $TMPDIR=/run/tmp, tmpfs). OUTDIR (default: a new temp dir,
# printed) is shared read-write as /run/xd-out in the guest and as $XD_VM_OUT. Console output
# goes to stdout and LOGFILE. Exit status: COMMAND's; 124 on the hard timeout (default 240 s,
# qemu killed); 125 if the guest did not report a status (boot failure: see the log).
# Guest kernel modules loaded: ip_vs ip_vs_mh ip_vs_rr ip_vs_wrr ip_vs_sh ip_vs_lc veth bridge,
# and for tunnel-mode real servers tunnel4 tunnel6 ipip ip6_tunnel fou fou6.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${XD_VM_CACHE:-/var/cache/xdirector-vm}
TIMEOUT=240 OUT= LOG= ENVS=()
while [ $# -gt 0 ]; do
  case $1 in
    -t) TIMEOUT=$2; shift 2;;
    -o) OUT=$2; shift 2;;
    -l) LOG=$2; shift 2;;
    -e) ENVS+=("$2"); shift 2;;
    --) shift; break;;
    -*) echo "vm/run: unknown option $1 (usage: run.sh [-t S] [-o DIR] [-l LOG] [-e N=V]... -- COMMAND...)" >&2; exit 2;;
    *) break;;
  esac
done
[ $# -gt 0 ] || { echo "vm/run: no command given (usage: run.sh [-t S] [-o DIR] [-l LOG] [-e N=V]... -- COMMAND...)" >&2; exit 2; }
"$HERE/build.sh" >/dev/null
K=$(cat "$CACHE/current"); D=$CACHE/$K
RUNDIR=$(mktemp -d /tmp/xdg-vm-$$.XXXX)
trap 'rm -rf "$RUNDIR"' EXIT
if [ -z "$OUT" ]; then OUT=$RUNDIR/out; fi
mkdir -p "$OUT"; OUT=$(realpath "$OUT")
[ -n "$LOG" ] || LOG=$RUNDIR/console.log
{
  printf 'cd %q || exit 126\n' "$PWD"
  printf 'export XD_VM=1 XD_VM_OUT=/run/xd-out\n'
  for e in "${ENVS[@]}"; do printf 'export %q\n' "$e"; done
  printf 'exec'; printf ' %q' "$@"; printf '\n'
} > "$RUNDIR/cmd"
# the stage-2 script the initramfs switch_roots into (xd.run=RUNDIR/boot)
printf '#!/bin/bash\nexec /bin/bash %q %q\n' "$HERE/guest-init.sh" "$RUNDIR" > "$RUNDIR/boot"
SMP=${XD_VM_SMP:-2} MEM=${XD_VM_MEM:-1024}
START=$(date +%s.%N)
set +e
timeout --kill-after=5 "$TIMEOUT" qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp "$SMP" -m "$MEM" \
  -nographic -no-reboot -nodefaults -serial stdio -monitor none \
  -kernel "$D/vmlinuz" -initrd "$D/initrd.cpio.gz" \
  -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
  -fsdev local,id=xdout,path="$OUT",security_model=none \
  -device virtio-9p-pci,fsdev=xdout,mount_tag=xdout \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init xd.run=$RUNDIR/boot" \
  < /dev/null 2>&1 | tee "$LOG"
QRC=${PIPESTATUS[0]}
set -e
WALL=$(awk -v a="$START" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
RC=$(tr -d '\r' < "$LOG" | sed -n 's/^XD-VM-EXIT \([0-9]*\).*/\1/p' | tail -1)
if [ -z "$RC" ]; then
  if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
    echo "vm/run: hard timeout after ${TIMEOUT}s: qemu killed (log: $LOG)" >&2; RC=124
  else
    echo "vm/run: the guest reported no exit status (qemu status $QRC, log: $LOG)" >&2; RC=125
  fi
fi
echo "vm/run: guest exit $RC, wall ${WALL}s, results in $OUT" >&2
exit "$RC"
