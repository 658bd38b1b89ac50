#!/bin/bash
# Build (once per machine) what scripts/vm/run.sh boots: Debian's own kernel, which has IPVS as
# modules, unpacked from its package (not installed), plus a busybox initramfs that loads the
# modules and switch_roots into the host root shared read-only over virtio-9p.
#
#   scripts/vm/build.sh            # idempotent: a second run with everything cached takes < 1 s
#   XD_VM_CACHE=/dir scripts/vm/build.sh
#   XD_VM_KERNEL=6.1.0-56-amd64 scripts/vm/build.sh   # pin a kernel ABI (else linux-image-amd64's)
#
# Needs: apt-get/apt-cache/dpkg (Debian), busybox-static (for the guest, and for depmod/cpio
# here), gzip, flock. Network only for the one kernel download (~70 MB; ~400 MB unpacked).
# Output: $XD_VM_CACHE/current -> kernel version; $XD_VM_CACHE/<ver>/{vmlinuz,initrd.cpio.gz}.
set -euo pipefail

CACHE=${XD_VM_CACHE:-/var/cache/xdirector-vm}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Modules the guest loads, in order. busybox modprobe ignores softdeps: crc32c_generic must be
# loaded before libcrc32c (needed by nf_conntrack -> ip_vs) or it fails with "unknown symbol".
# The tunnel modules are what a tunnel-mode real server decapsulates with (src/realserver/tunnel.ts):
# ipip (4in4) and ip6_tunnel (4in6/6in6) devices, fou/fou6 for GUE; tunnel4/tunnel6 are their
# protocol demultiplexers (modules.dep pulls in ip_tunnel, udp_tunnel, ip6_udp_tunnel).
# nf_tables (with nfnetlink, libcrc32c from modules.dep) carries `realserver setup --tunnel
# --director`'s filter; the expressions it uses (payload, meta, lookup, counter) are built in.
MODULES="virtio_pci 9pnet_virtio 9p crc32c_generic ip_vs ip_vs_mh ip_vs_rr ip_vs_wrr ip_vs_sh ip_vs_lc veth bridge tunnel4 tunnel6 ipip ip6_tunnel fou fou6 nf_tables"
BUILD_ID="initrd-v3 $MODULES $(sha256sum "$HERE/build.sh" | cut -c1-16)"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # one build at a time; a concurrent caller waits and then finds the cache ready

K=${XD_VM_KERNEL:-}
if [ -z "$K" ] && [ -s "$CACHE/current" ]; then K=$(cat "$CACHE/current"); fi
if [ -z "$K" ]; then
  K=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-\([0-9][^ ]*-amd64\)$/\1/p' | head -1)
  [ -n "$K" ] || { echo "vm/build: cannot find Debian's kernel package: apt-cache depends linux-image-amd64 gave no linux-image-<ver>-amd64 (run apt-get update, or set XD_VM_KERNEL)" >&2; exit 1; }
fi
D=$CACHE/$K
if [ -s "$D/initrd.cpio.gz" ] && [ -s "$D/vmlinuz" ] && [ "$(cat "$D/build-id" 2>/dev/null)" = "$BUILD_ID" ]; then
  echo "$K" > "$CACHE/current"
  echo "vm/build: cached: kernel $K in $D"
  exit 0
fi
mkdir -p "$D"

# 1. the kernel package, unpacked (not installed), with modules.dep from busybox depmod
if [ ! -s "$D/tree/lib/modules/$K/modules.dep" ]; then
  (cd "$D" && ls linux-image-"$K"_*.deb >/dev/null 2>&1 || apt-get download -q "linux-image-$K" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  DEB=$(ls "$D"/linux-image-"$K"_*.deb 2>/dev/null | head -1)
  [ -n "$DEB" ] || { echo "vm/build: apt-get download linux-image-$K failed (see above)" >&2; exit 1; }
  rm -rf "$D/tree.tmp"; mkdir -p "$D/tree.tmp"
  dpkg -x "$DEB" "$D/tree.tmp"
  busybox depmod -b "$D/tree.tmp" "$K"
  rm -rf "$D/tree"; mv "$D/tree.tmp" "$D/tree"
  rm -f "$DEB"   # the unpacked tree is what we keep
fi
MD=$D/tree/lib/modules/$K
cp "$D/tree/boot/vmlinuz-$K" "$D/vmlinuz.tmp" && mv "$D/vmlinuz.tmp" "$D/vmlinuz"
cp "$D/tree/boot/config-$K" "$D/config"

# 2. the module closure, from modules.dep ("path: dep dep ...")
closure() {
  awk -v want="$MODULES" '
    { sub(":", "", $1); name=$1; sub(".*/", "", name); sub("\\.ko(\\.[a-z]+)?$", "", name); gsub("-", "_", name)
      path[name]=$1; deps[$1]=""; for (i=2;i<=NF;i++) deps[$1]=deps[$1] " " $i }
    function add(p,   n, a, i) { if (p in got) return; got[p]=1; n=split(deps[p], a, " "); for (i=1;i<=n;i++) add(a[i]) }
    END { n=split(want, w, " "); for (i=1;i<=n;i++) { m=w[i]; gsub("-", "_", m); if (!(m in path)) { print "MISSING " m; continue } add(path[m]) }
          for (p in got) print p }' "$MD/modules.dep"
}
LIST=$(closure)
if grep -q '^MISSING ' <<<"$LIST"; then
  for m in $(sed -n 's/^MISSING //p' <<<"$LIST"); do
    grep -q "/$m.ko" "$MD/modules.builtin" || { echo "vm/build: module $m is neither in modules.dep nor built in for $K" >&2; exit 1; }
  done
fi

# 3. the initramfs: busybox, the modules, /init
R=$D/initrd.root
rm -rf "$R"; mkdir -p "$R"/{bin,dev,proc,sys,newroot,lib/modules/$K}
cp /bin/busybox "$R/bin/busybox"
for a in sh mount umount modprobe mkdir sed cat echo switch_root poweroff sleep; do ln -s busybox "$R/bin/$a"; done
grep -v '^MISSING ' <<<"$LIST" | while read -r p; do mkdir -p "$R/lib/modules/$K/$(dirname "$p")"; cp "$MD/$p" "$R/lib/modules/$K/$p"; done
cp "$MD"/modules.{order,builtin} "$R/lib/modules/$K/"
busybox depmod -b "$R" "$K"
cat > "$R/init" <<INIT
#!/bin/sh
# xdirector VM stage 1: load modules, mount the host root read-only over 9p, switch_root into
# the run's stage-2 script named by xd.run= on the kernel command line.
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $MODULES; do modprobe \$m || echo "XD-VM: modprobe \$m failed"; done
RUN=\$(sed -n 's/.*xd\.run=\([^ ]*\).*/\1/p' /proc/cmdline)
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /newroot || { echo "XD-VM: 9p mount of the host root failed"; echo "XD-VM-EXIT 125"; poweroff -f; }
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
umount /proc /sys /dev
[ -n "\$RUN" ] || { echo "XD-VM: no xd.run= on the kernel command line"; echo "XD-VM-EXIT 125"; poweroff -f; }
exec switch_root /newroot /bin/bash "\$RUN"
INIT
chmod +x "$R/init"
(cd "$R" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$D/initrd.cpio.gz.tmp")
mv "$D/initrd.cpio.gz.tmp" "$D/initrd.cpio.gz"
rm -rf "$R"
echo "$BUILD_ID" > "$D/build-id"
echo "$K" > "$CACHE/current"
echo "vm/build: kernel $K, initramfs $D/initrd.cpio.gz ($(du -h "$D/initrd.cpio.gz" | cut -f1))"
