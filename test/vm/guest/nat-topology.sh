#!/bin/bash
# Guest side: a NAT real server on the director's second (inner) interface, added to the DR lab
# (dr-topology.sh), for two-armed NAT:
#   xdg-dir:   eth1 10.79.0.1/24, fd00:79::1/64 (nat.interface), forwarding set by the daemon
#   xdg-nat1:  the real server 10.79.0.11/24, fd00:79::11/64; TCP servers on 3306 (IPv4 and
#              IPv6) answering "nat1" and closing; on 3312 one writing "nat1" and echoing; on
#              3314 one connection that writes "nat1", then whatever the scenario writes into
#              the FIFO /run/xdg-nat1-push (a reply the server sends on its own, while the
#              client is silent: xdg_nat_push). No default route here: the scenario runs
#              `xdirector realserver setup --nat --gateway 10.79.0.1 --gateway fd00:79::1`, so
#              its replies to the client (10.77.0.10, another subnet) go back through the director.
# Usage: source dr-topology.sh and this file, xdg_topology_up, then xdg_nat_up.
XDG_NAT_RS=10.79.0.11
XDG_NAT_RS6=fd00:79::11

xdg_nat_up() {
  {
    echo "netns add xdg-nat1"
    echo "link add name eth1 netns xdg-dir type veth peer name eth0 netns xdg-nat1"
  } | ip -b - || return 1
  {
    echo "addr add 10.79.0.1/24 dev eth1"
    echo "addr add fd00:79::1/64 dev eth1 nodad"
    echo "link set eth1 up"
  } | ip -n xdg-dir -b - || return 1
  {
    echo "link set lo up"
    echo "addr add $XDG_NAT_RS/24 dev eth0"
    echo "addr add $XDG_NAT_RS6/64 dev eth0 nodad"
    echo "link set eth0 up"
  } | ip -n xdg-nat1 -b - || return 1
  echo nat1 > /run/xdg-nat1.id
  nsenter --net=/run/netns/xdg-nat1 socat TCP4-LISTEN:3306,fork,reuseaddr,backlog=256 OPEN:/run/xdg-nat1.id,rdonly &
  nsenter --net=/run/netns/xdg-nat1 socat TCP6-LISTEN:3306,ipv6only=1,fork,reuseaddr,backlog=256 OPEN:/run/xdg-nat1.id,rdonly &
  nsenter --net=/run/netns/xdg-nat1 socat TCP4-LISTEN:3312,fork,reuseaddr SYSTEM:"echo nat1; exec cat" &
  # opened read-write here (fd 8) so that neither side's open blocks; only cat reads it
  mkfifo /run/xdg-nat1-push && exec 8<> /run/xdg-nat1-push
  nsenter --net=/run/netns/xdg-nat1 socat TCP4-LISTEN:3314,reuseaddr SYSTEM:"echo nat1; exec cat /run/xdg-nat1-push" &
}
xdg_nat_push() { echo "$1" >&8; }   # LINE: the 3314 server sends it to its client
