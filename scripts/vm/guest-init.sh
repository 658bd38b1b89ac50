#!/bin/bash
# xdirector VM stage 2, run as PID 1 in the guest after switch_root into the host root (read-only
# 9p). Usage (from the kernel command line, set by run.sh): guest-init.sh RUNDIR
#   RUNDIR/cmd   the command to run (a bash snippet written by run.sh)
#   RUNDIR/out/  a writable 9p share for results (mounted at /run/xd-out)
# Prints "XD-VM-EXIT <status>" on the console and powers the guest off; run.sh parses it.
RUNDIR=$1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/run/home TMPDIR=/run/tmp LANG=C.UTF-8
finish() {
  echo "XD-VM-EXIT $1"
  sync
  echo o > /proc/sysrq-trigger
  sleep 10
}
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
mkdir -p /run/netns /run/home /run/tmp /run/xd-out
# results go back to the host over a second, writable 9p share
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 xdout /run/xd-out || { echo "XD-VM: mount of the result share failed"; finish 125; }
ip link set lo up
echo "XD-VM: userspace at $(cut -d' ' -f1 /proc/uptime) s uptime, kernel $(uname -r)"
echo "XD-VM-UPTIME $(cut -d' ' -f1 /proc/uptime)"
[ -r "$RUNDIR/cmd" ] || { echo "XD-VM: $RUNDIR/cmd not readable in the guest"; finish 125; }
bash "$RUNDIR/cmd" </dev/null
rc=$?
echo "XD-VM: command finished with status $rc at $(cut -d' ' -f1 /proc/uptime) s uptime"
finish "$rc"
