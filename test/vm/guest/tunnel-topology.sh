#!/bin/bash
# Guest side: a tunnel-mode real server on another subnet, added to the DR lab (dr-topology.sh):
#   xdg-rt:   router; eth0 on the lab's bridge 10.77.0.1/24, fd00:77::1/64;
#             eth1 10.78.1.1/24, fd00:78:1::1/64 towards xdg-tun; forwarding on
#   xdg-tun:  the real server 10.78.1.11/24, fd00:78:1::11/64, default routes via the router;
#             TCP servers (one listener per port, IPv4 and IPv6): 3308 and 3310 answer "tun1" and
#             close, 3309 writes "tun1" and echoes
#   xdg-dir:  routes 10.78.0.0/16 and fd00:78::/32 via the router
# The real server's tunnel devices, VIPs and sysctls are NOT made here: the scenario runs
# `xdirector realserver setup --tunnel` for them. Replies go from xdg-tun through the router
# straight to the client (the director only ever sees the client's half).
# Usage: source dr-topology.sh and this file, xdg_topology_up, then xdg_tunnel_up.
XDG_TUN_RS=10.78.1.11
XDG_TUN_RS6=fd00:78:1::11

xdg_tunnel_up() {
  {
    echo "netns add xdg-rt"
    echo "netns add xdg-tun"
    echo "link add name eth0 netns xdg-rt type veth peer name p-rt netns xdg-sw"
    echo "link add name eth1 netns xdg-rt type veth peer name eth0 netns xdg-tun"
  } | ip -b - || return 1
  ip -n xdg-sw link set p-rt master xdgbr0 up || return 1
  {
    echo "link set lo up"
    echo "addr add 10.77.0.1/24 dev eth0"
    echo "addr add fd00:77::1/64 dev eth0 nodad"
    echo "addr add 10.78.1.1/24 dev eth1"
    echo "addr add fd00:78:1::1/64 dev eth1 nodad"
    echo "link set eth0 up"
    echo "link set eth1 up"
  } | ip -n xdg-rt -b - || return 1
  {
    echo "link set lo up"
    echo "addr add $XDG_TUN_RS/24 dev eth0"
    echo "addr add $XDG_TUN_RS6/64 dev eth0 nodad"
    echo "link set eth0 up"
    echo "route add default via 10.78.1.1"
    echo "route add default via fd00:78:1::1"
  } | ip -n xdg-tun -b - || return 1
  {
    echo "route add 10.78.0.0/16 via 10.77.0.1"
    echo "route add fd00:78::/32 via fd00:77::1"
    # The director's IPv6 VIP deprecated, as xdirector's VRRP adds it (src/net/address.ts):
    # else source selection may pick it for the outer header of IPVS's 6in6 (IPVS ignores the
    # route's src) and for health checks, and the real server, which has the VIP on lo, drops a
    # tunnel from its own address / keeps the answer.
    echo "addr change $XDG_VIP6/128 dev eth0 nodad preferred_lft 0"
  } | ip -n xdg-dir -b - || return 1
  nsenter --net=/run/netns/xdg-rt sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding' || return 1
  echo "tun1" > /run/xdg-tun.id
  local pids=() p port
  for port in 3308 3310; do
    nsenter --net=/run/netns/xdg-tun socat TCP6-LISTEN:$port,fork,reuseaddr,backlog=256 OPEN:/run/xdg-tun.id,rdonly &
    pids+=($!)
  done
  nsenter --net=/run/netns/xdg-tun socat TCP6-LISTEN:3309,fork,reuseaddr SYSTEM:"echo tun1; exec cat" &
  pids+=($!)
  XDG_TUN_PIDS=("${pids[@]}")
  # wait until the three listen (0CEC..0CEE = 3308..3310, state 0A = LISTEN)
  for port in 0CEC 0CED 0CEE; do
    for t in $(seq 1 100); do [[ "$(< /proc/${pids[0]}/net/tcp6)" == *":$port 00000000000000000000000000000000:0000 0A"* ]] && break; sleep 0.1; done
  done
}
