#!/bin/bash
# Guest side (runs inside scripts/vm/run.sh's VM, as root, in the guest's own kernel):
# a direct-routing lab in network namespaces on a bridge.
#   xdg-sw:       bridge xdgbr0 with one port per namespace below
#   xdg-client:   10.77.0.10/24, fd00:77::10/64
#   xdg-dir:      10.77.0.2/24, fd00:77::2/64, VIP 10.77.0.100/32 + fd00:77::100/128 on eth0
#   xdg-rs1..N:   10.77.0.11../24, fd00:77::11../64, VIPs on lo (arp_ignore/announce), a TCP
#                 server on :3306 (VIP and own address, for health checks) answering "rsN" and closing (socat forks per connection and
#                 copies a file: no exec, which costs seconds per connection under a loaded TCG)
# Process starts are expensive under TCG, so iproute2 runs in batch mode: one `ip` per namespace.
# Usage: source this file, then xdg_topology_up [N_BACKENDS]
XDG_VIP=10.77.0.100
XDG_VIP6=fd00:77::100

xdg_topology_up() {
  local n=${1:-3} i ns
  local names="client dir" ; for i in $(seq 1 "$n"); do names="$names rs$i"; done
  declare -A v4=([client]=10.77.0.10 [dir]=10.77.0.2) v6=([client]=fd00:77::10 [dir]=fd00:77::2) mac=([client]=02:77:00:00:00:10 [dir]=02:77:00:00:00:02)
  for i in $(seq 1 "$n"); do v4[rs$i]=10.77.0.1$i; v6[rs$i]=fd00:77::1$i; mac[rs$i]=02:77:00:00:00:1$i; done
  {
    echo "netns add xdg-sw"
    for ns in $names; do echo "netns add xdg-$ns"; done
    for ns in $names; do echo "link add name eth0 netns xdg-$ns address ${mac[$ns]} type veth peer name p-$ns netns xdg-sw"; done
  } | ip -b - || return 1
  {
    echo "link add xdgbr0 type bridge"
    echo "link set xdgbr0 up"
    for ns in $names; do echo "link set p-$ns master xdgbr0 up"; done
  } | ip -n xdg-sw -b - || return 1
  for ns in $names; do
    {
      echo "link set lo up"
      echo "addr add ${v4[$ns]}/24 dev eth0"
      echo "addr add ${v6[$ns]}/64 dev eth0 nodad"
      echo "link set eth0 up"
      if [ "$ns" = dir ]; then echo "addr add $XDG_VIP/32 dev eth0"; echo "addr add $XDG_VIP6/128 dev eth0 nodad"; fi
      case $ns in rs*) echo "addr add $XDG_VIP/32 dev lo"; echo "addr add $XDG_VIP6/128 dev lo";; esac
    } | ip -n "xdg-$ns" -b - || return 1
  done
  local pids=()
  for i in $(seq 1 "$n"); do
    # arp_ignore/announce: only the director answers ARP for the VIP
    echo "rs$i" > /run/xdg-rs$i.id
    nsenter --net=/run/netns/xdg-rs$i bash -c "echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce;
      exec socat TCP4-LISTEN:3306,fork,reuseaddr,backlog=256 OPEN:/run/xdg-rs$i.id,rdonly" &
    pids+=($!)
  done
  XDG_RS_PIDS=("${pids[@]}")   # index i-1: rs$i's server on 3306 (for tests that stop one)
  # wait until every server listens (0CEA = 3306, state 0A = LISTEN), read from its own netns view
  for p in "${pids[@]}"; do
    for t in $(seq 1 100); do [[ "$(< /proc/$p/net/tcp)" == *":0CEA 00000000:0000 0A"* ]] && break; sleep 0.1; done
  done
}
