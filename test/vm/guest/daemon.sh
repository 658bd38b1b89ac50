#!/bin/bash
# Guest entry for test/vm/daemon.test.ts: `xdirector run` in the director namespace of the DR
# lab, in a kernel with IPVS and XDP. Phases (everything recorded under $XD_VM_OUT):
#   A  dataplane: ipvs  -> ipvsadm agrees with the config, connections spread, drain, a backend
#                          whose server stops is removed by the health checks and comes back;
#                          NAT services (forwarding: nat, VIP:3311 -> 10.79.0.11:3306 and IPv6)
#                          to a real server on the director's inner interface (nat-topology.sh),
#                          prepared by `xdirector realserver setup --nat`: Masq dests, the
#                          forwarding sysctls, port translation and the replies translated back
#   B  dataplane: auto on an interface where native XDP cannot attach (lo) -> falls back to IPVS
#   C  dataplane: auto with XDP (generic) -> a live session survives `xdirector dataplane ipvs`
#      and back to `xdirector dataplane xdp`; connections opened during each switch succeed.
#      NAT too (two-armed over eth1, ports translated): a session sending every 200 ms
#      (VIP:3313 -> 10.79.0.11:3312), NAT connections to VIP:3311 through XDP, IPVS and XDP
#      again, and a silent session (VIP:3315 -> 10.79.0.11:3314) whose server sends a line
#      right after each switch, before the client's next packet (the client sends 4 s later):
#      after ipvs -> xdp XDP has taken over IPVS's NAT connections and translates it at once;
#      after xdp -> ipvs it gets through only once the client sends (README, "Switching
#      dataplanes under NAT sessions")
# Phase C also carries tunnel services (forwarding: tunnel) to a real server behind a router
# (tunnel-topology.sh), set up by `xdirector realserver setup --tunnel` for real (in the
# background during A and B): IPIP (4in4), GUE (4 in UDP 6080) and 6in6 through IPVS, then
# through XDP after the switch back; a live tunnelled session survives both switches.
#   T  the recipe: `realserver check --tunnel` passes, names rp_filter once it is strict again,
#      and `realserver teardown --tunnel` leaves no device, fou port, VIP or sysctl file
# XDG_PHASES="A B C T" (default) selects phases, for debugging one.
set -u
PHASES=" ${XDG_PHASES:-A B C T} "
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT=${XD_VM_OUT:-/run/xd-out}
source "$HERE/dr-topology.sh"
source "$HERE/tunnel-topology.sh"
source "$HERE/nat-topology.sh"
now() { cut -d' ' -f1 /proc/uptime; }
step() { echo "XD-VM: $(now) $*"; echo "$(now) $*" >> "$OUT/steps.txt"; }
DIRNS="nsenter --net=/run/netns/xdg-dir"
mkdir -p /run/xdg
SOCK=/run/xdg/xd.sock
# the CLI for the commands under test; curl on the admin socket for the rest (a Node start costs
# seconds under TCG)
xd() { node "$ROOT/bin/xdirector.js" "$@" --socket "$SOCK"; }
api() { # METHOD PATH [JSON]
  local body=${3:-'{}'}
  if [ "$1" = GET ]; then curl -sf --max-time 60 --unix-socket "$SOCK" "http://xd$2"
  else curl -sf --max-time 120 --unix-socket "$SOCK" -X "$1" -H 'content-type: application/json' -d "$body" "http://xd$2"; fi
}

step "topology"
xdg_topology_up 3
for i in 1 2 3; do   # echo service on 3307: id line, then echo
  nsenter --net=/run/netns/xdg-rs$i socat TCP4-LISTEN:3307,fork,reuseaddr SYSTEM:"echo rs$i; exec cat" &
done
xdg_tunnel_up
xdg_nat_up

# the tunnel real server, prepared by the CLI under test (in the background: it overlaps phases
# A and B; waited for before the first tunnelled connection)
RSF=/run/xdg/rs-sysctl.conf
RTS=/run/xdg/rs-tunnel.json   # the sysctls realserver setup --tunnel changed, for teardown
# --director: the nftables filter accepts tunnels (and GUE) only from the director's tunnel sources
# (tunnel.source_v4/v6 below; IPVS picks the same addresses by source selection).
TD="--director 10.77.0.2 --director fd00:77::2"
T4="--tunnel --encap gue --vip $XDG_VIP --sysctl-file $RSF --tunnel-state $RTS $TD"        # IPv4 underlay: ipip device + GUE port 6080
T6="--tunnel --underlay 6 --vip $XDG_VIP6 --sysctl-file $RSF --tunnel-state $RTS $TD"      # IPv6 underlay: ip6tnl device
rs() { nsenter --net=/run/netns/xdg-tun node "$ROOT/bin/xdirector.js" realserver "$@"; }
( rs setup $T4 > "$OUT/t-setup4.txt" 2>&1; echo $? >> "$OUT/t-setup4.txt"
  rs setup $T6 > "$OUT/t-setup6.txt" 2>&1; echo $? >> "$OUT/t-setup6.txt"
  ip -n xdg-tun -d -j link show > "$OUT/t-setup-links.json"
  ip -n xdg-tun fou show > "$OUT/t-setup-fou.txt" ) &
RSPID=$!
rs_ready() { [ -z "$RSPID" ] || { wait "$RSPID"; RSPID=; step "tunnel real server set up"; }; }
# the NAT real server, by the CLI under test: check before (fails), setup, check after
NATGW="--nat --gateway 10.79.0.1 --gateway fd00:79::1 --nat-state /run/xdg/rs-nat.json"
nrs() { nsenter --net=/run/netns/xdg-nat1 node "$ROOT/bin/xdirector.js" realserver "$@"; }
( nrs check $NATGW > "$OUT/n-check-before.txt" 2>&1; echo "exit $?" >> "$OUT/n-check-before.txt"
  nrs setup $NATGW > "$OUT/n-setup.txt" 2>&1; echo "exit $?" >> "$OUT/n-setup.txt"
  nrs check $NATGW > "$OUT/n-check-after.txt" 2>&1; echo "exit $?" >> "$OUT/n-check-after.txt" ) &
NRSPID=$!
tun_stats() { # NAME: the real server's link counters and UDP counters
  ip -n xdg-tun -s -j link show > "$OUT/$1-links.json"
  nsenter --net=/run/netns/xdg-tun cat /proc/net/snmp > "$OUT/$1-snmp.txt"
}

# one TCP client process for the whole run, fed requests through a FIFO
mkfifo /run/xdg/client.in
nsenter --net=/run/netns/xdg-client node "$ROOT/dist/test/vm/guest/tcp-client.js" < /run/xdg/client.in > /run/xdg/client.out &
exec 7> /run/xdg/client.in
CSEQ=0
conns_send() { # FIRST_PORT COUNT [PORT [VIP SRC]] -> sets CSEQ
  CSEQ=$((CSEQ + 1))
  echo "{\"seq\":$CSEQ,\"host\":\"${4:-$XDG_VIP}\",\"port\":${3:-3306},\"src\":\"${5:-10.77.0.10}\",\"ports\":[$(seq -s, "$1" $(($1 + $2 - 1)))],\"concurrency\":16,\"timeoutMs\":20000}" >&7
}
conns_wait() { # SEQ NAME
  local t
  for t in $(seq 1 1200); do grep -q "^{\"seq\":$1," /run/xdg/client.out && break; sleep 0.1; done
  grep "^{\"seq\":$1," /run/xdg/client.out > "$OUT/$2.json"
}
conns() { conns_send "${@:2}"; conns_wait "$CSEQ" "$1"; }   # NAME FIRST_PORT COUNT [PORT [VIP SRC]]

config() { # FILE DATAPLANE INTERFACE XDP_MODE ["tun" and/or "nat" or "natlive" (nat and the live NAT sessions' services)]
  cat > "$1" <<CFG
instance: xdgvm
interface: $3
dataplane: $2
xdp: { mode: $4, pin_dir: /sys/fs/bpf/xdg-vm, flow_table_size: 65536, max_backends: 64, max_services: 16 }
admin: { socket: $SOCK }
log: { level: debug }
health: { interval: 2s, timeout: 2s, rise: 1, fall: 2 }
services:
  - name: mysql
    vip: $XDG_VIP
    port: 3306
    check: tcp
    backends:
      - { address: 10.77.0.11, mac: "02:77:00:00:00:11", name: rs1 }
      - { address: 10.77.0.12, mac: "02:77:00:00:00:12", name: rs2 }
      - { address: 10.77.0.13, mac: "02:77:00:00:00:13", name: rs3 }
  - name: echo
    vip: $XDG_VIP
    port: 3307
    check: none
    backends:
      - { address: 10.77.0.11, port: 3307, mac: "02:77:00:00:00:11" }
      - { address: 10.77.0.12, port: 3307, mac: "02:77:00:00:00:12" }
      - { address: 10.77.0.13, port: 3307, mac: "02:77:00:00:00:13" }
CFG
  if [[ " ${5:-} " == *" nat"* ]]; then
    cat >> "$1" <<CFG
  - name: nat
    vip: $XDG_VIP
    port: 3311
    forwarding: nat
    check: tcp
    backends: [ { address: $XDG_NAT_RS, port: 3306, name: nat1 } ]
  - name: nat6
    vip: "$XDG_VIP6"
    port: 3311
    forwarding: nat
    check: tcp
    backends: [ { address: "$XDG_NAT_RS6", port: 3306 } ]
CFG
  fi
  if [[ " ${5:-} " == *" natlive "* ]]; then
    cat >> "$1" <<CFG
  - name: natecho
    vip: $XDG_VIP
    port: 3313
    forwarding: nat
    check: none
    backends: [ { address: $XDG_NAT_RS, port: 3312 } ]
  - name: natpush
    vip: $XDG_VIP
    port: 3315
    forwarding: nat
    check: none
    backends: [ { address: $XDG_NAT_RS, port: 3314 } ]
CFG
  fi
  if [[ " ${5:-} " == *" tun "* ]]; then
  cat >> "$1" <<CFG
  - name: tun
    vip: $XDG_VIP
    port: 3308
    forwarding: tunnel
    check: tcp
    backends: [ { address: $XDG_TUN_RS, name: tun1 } ]
  - name: tunecho
    vip: $XDG_VIP
    port: 3309
    forwarding: tunnel
    check: none
    backends: [ { address: $XDG_TUN_RS } ]
  - name: tungue
    vip: $XDG_VIP
    port: 3310
    forwarding: tunnel
    encap: gue
    gue_port: 6080
    check: tcp
    backends: [ { address: $XDG_TUN_RS } ]
  - name: tun6
    vip: "$XDG_VIP6"
    port: 3308
    forwarding: tunnel
    check: tcp
    backends: [ { address: "$XDG_TUN_RS6" } ]
tunnel: { source_v4: 10.77.0.2, source_v6: "fd00:77::2" }
CFG
  fi
  # a top-level key: after every service
  if [[ " ${5:-} " == *" nat"* ]]; then echo "nat: { interface: eth1 }" >> "$1"; fi
}

DPID=
start_daemon() { # NAME CFG
  rm -f "$SOCK"
  $DIRNS node "$ROOT/bin/xdirector.js" run -c "$2" > "$OUT/$1.log" 2>&1 &
  DPID=$!
  for t in $(seq 1 900); do [ -S "$SOCK" ] && break; kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
  for t in $(seq 1 120); do api GET /status > "$OUT/$1-status0.json" 2>/dev/null && grep -q '"kind"' "$OUT/$1-status0.json" && break; sleep 0.5; done
}
stop_daemon() { # [--detach]
  if [ "${1:-}" = --detach ]; then api POST /stop '{"detach":true}' > /dev/null || kill -TERM "$DPID"; else kill -TERM "$DPID"; fi
  for t in $(seq 1 300); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$DPID" 2>/dev/null && { step "daemon $DPID did not stop: killing"; kill -KILL "$DPID"; }
  wait "$DPID" 2>/dev/null
}
wait_ipvsadm() { # GREP_PATTERN present|absent TIMEOUT_S
  local end=$(($(cut -d. -f1 /proc/uptime) + $3))   # by the clock: one poll costs up to a second under a loaded TCG
  while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do
    if $DIRNS ipvsadm -Ln | grep -q "$1"; then [ "$2" = present ] && return 0; else [ "$2" = absent ] && return 0; fi
    sleep 0.2
  done
  return 1
}

# ---- A: dataplane ipvs
if [[ $PHASES == *" A "* ]]; then
config /run/xdg/a.yaml ipvs eth0 generic nat
step "A start"
start_daemon a /run/xdg/a.yaml
wait_ipvsadm "10.77.0.13:3306" present 30
step "A running"
$DIRNS ipvsadm -Ln > "$OUT/a-ipvsadm.txt"
$DIRNS cat /proc/sys/net/ipv4/vs/sloppy_tcp > "$OUT/a-sloppy.txt"
$DIRNS sysctl -n net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.send_redirects > "$OUT/a-nat-sysctls.txt"
wait "$NRSPID"; step "NAT real server set up"
wait_ipvsadm "\[$XDG_NAT_RS6\]:3306" present 30
conns a-nat-conns 26000 12 3311
conns a-nat6-conns 26100 12 3311 "$XDG_VIP6" fd00:77::10
$DIRNS ipvsadm -Ln > "$OUT/a-nat-ipvsadm.txt"
$DIRNS ipvsadm -Ln --stats > "$OUT/a-nat-stats.txt"
step "A nat"
conns a-conns 20000 36
step "A conns"
xd drain rs2 > "$OUT/a-drain.txt" 2>&1
$DIRNS ipvsadm -Ln > "$OUT/a-drain-ipvsadm.txt"
conns a-drain-conns 21000 24
api POST /undrain '{"backend":"rs2"}' > /dev/null
step "A drain"
kill "${XDG_RS_PIDS[2]}"
T=$(now)
if wait_ipvsadm "10.77.0.13:3306 " absent 40; then echo "$(awk -v a="$T" -v b="$(now)" 'BEGIN{print b-a}')" > "$OUT/a-down-seconds.txt"; fi
$DIRNS ipvsadm -Ln > "$OUT/a-down-ipvsadm.txt"
conns a-down-conns 22000 24
step "A down"
nsenter --net=/run/netns/xdg-rs3 socat TCP4-LISTEN:3306,fork,reuseaddr,backlog=256 OPEN:/run/xdg-rs3.id,rdonly &
T=$(now)
if wait_ipvsadm "10.77.0.13:3306 " present 40; then echo "$(awk -v a="$T" -v b="$(now)" 'BEGIN{print b-a}')" > "$OUT/a-up-seconds.txt"; fi
$DIRNS ipvsadm -Ln > "$OUT/a-up-ipvsadm.txt"
api GET /status > "$OUT/a-status.json"
step "A up"
stop_daemon
$DIRNS ipvsadm -Ln > "$OUT/a-after-stop-ipvsadm.txt"
$DIRNS ipvsadm -C
# the forwarding the NAT services needed is left set by design (a hot restart keeps NAT working);
# the next phases start from the lab's own values
$DIRNS sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
fi

# ---- B: auto, XDP cannot attach (native XDP on lo is refused by the kernel) -> IPVS
if [[ $PHASES == *" B "* ]]; then
config /run/xdg/b.yaml auto lo native
step "B start"
start_daemon b /run/xdg/b.yaml
wait_ipvsadm "10.77.0.13:3306" present 30
api GET /status > "$OUT/b-status.json"
conns b-conns 23000 20
step "B conns"
stop_daemon --detach
$DIRNS ipvsadm -Ln > "$OUT/b-after-detach-ipvsadm.txt"
fi

# ---- C: auto with XDP, switch to IPVS and back under live sessions (DR, tunnel, NAT)
if [[ $PHASES == *" C "* ]]; then
config /run/xdg/c.yaml auto eth0 generic "tun natlive"
step "C start"
start_daemon c /run/xdg/c.yaml
cp "$OUT/c-status0.json" "$OUT/c-status-xdp.json"
session() { # PORT SRC_PORT NAME [quiet]
  nsenter --net=/run/netns/xdg-client node "$ROOT/dist/test/vm/guest/session-client.js" "$XDG_VIP" "$1" "10.77.0.10:$2" "$OUT/$3.json" ${4:-} &
}
session 3307 40000 c-session; SPID=$!
rs_ready
session 3309 40001 c-tun-session; TPID=$!
wait "$NRSPID" 2>/dev/null   # the NAT real server's default route (realserver setup --nat), when phase A did not wait
session 3313 40002 c-nat-session; NPID=$!
session 3315 40003 c-nat-quiet quiet; QPID=$!
sessions_up() { local f; for f in c-session c-tun-session c-nat-session c-nat-quiet; do [ -s "$OUT/$f.json.ready" ] || return 1; done; }
for t in $(seq 1 600); do sessions_up && break; sleep 0.1; done
# The silent NAT session: the server sends LINE (xdg_nat_push); the client sends only on
# quiet_send. Times in ms since the epoch, as the client records its own.
ms() { date +%s%3N; }
quiet_push() { echo "{\"t\":$(ms),\"push\":\"$1\"}" >> "$OUT/c-nat-quiet-pushes.log"; xdg_nat_push "$1"; }
quiet_send() { kill -USR2 "$QPID"; }
quiet_wait() { # LINE TIMEOUT_S: until the silent client has received LINE
  local end=$(($(cut -d. -f1 /proc/uptime) + $2))
  while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do
    grep -q "\"recv\",\"line\":\"$1\"" "$OUT/c-nat-quiet.json.log" 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}
quiet_after() { # T0_MS S: sleep until S seconds after T0_MS
  local left=$(( $1 + $2 * 1000 - $(ms) ))
  [ "$left" -le 0 ] || sleep "$(awk -v l="$left" 'BEGIN{print l/1000}')"
}
quiet_push p0; quiet_wait p0 20
conns c-nat-xdp 26200 8 3311
sleep 2
step "C sessions up on $(cat "$OUT"/c-*session.json.ready "$OUT/c-nat-quiet.json.ready" 2>/dev/null | tr '\n' ' ')"
step "C switch to ipvs"
conns_send 24000 30
CP=$CSEQ
T=$(now)
xd dataplane ipvs > "$OUT/c-switch-ipvs.txt" 2>&1
# the server answers right after the switch, while its client is silent
Q=$(ms); quiet_push p1
echo "$(awk -v a="$T" -v b="$(now)" 'BEGIN{print b-a}')" > "$OUT/c-switch-ipvs-seconds.txt"
conns_wait $CP c-during-ipvs
$DIRNS ipvsadm -Ln > "$OUT/c-ipvsadm.txt"
api GET /status > "$OUT/c-status-ipvs.json"
conns c-nat-ipvs 26300 8 3311
quiet_after "$Q" 4; quiet_send; quiet_wait p1 30
$DIRNS ipvsadm -Lnc > "$OUT/c-ipvs-conns.txt"
$DIRNS cat /proc/net/ip_vs_conn > "$OUT/c-ipvs-conns-proc.txt"
quiet_push p2; quiet_wait p2 20
step "C silent NAT session through ipvs"
wait_ipvsadm "\[$XDG_TUN_RS6\]:3308" present 30
$DIRNS ipvsadm -Ln --tun-info > "$OUT/c-tun-ipvsadm.txt"
tun_stats c-tun-ipvs-before
conns c-tun-ipvs 27000 12 3308
conns c-gue-ipvs 27100 12 3310
conns c-tun6-ipvs 27200 12 3308 "$XDG_VIP6" fd00:77::10
tun_stats c-tun-ipvs-after
step "C tunnel conns through ipvs"
step "C switch to xdp"
conns_send 25000 30
CP=$CSEQ
T=$(now)
xd dataplane xdp > "$OUT/c-switch-xdp.txt" 2>&1
Q=$(ms); quiet_push p3
echo "$(awk -v a="$T" -v b="$(now)" 'BEGIN{print b-a}')" > "$OUT/c-switch-xdp-seconds.txt"
$DIRNS ipvsadm -Lnc > "$OUT/c-after-xdp-ipvs-conns.txt"
conns_wait $CP c-during-xdp
$DIRNS ipvsadm -Ln > "$OUT/c-after-xdp-ipvsadm.txt"
api GET /status > "$OUT/c-status-xdp2.json"
conns c-nat-xdp2 26400 8 3311
quiet_after "$Q" 4; quiet_send; quiet_wait p3 30
quiet_push p4; quiet_wait p4 20
step "C silent NAT session through xdp"
tun_stats c-tun-xdp-before
conns c-tun-xdp 27300 12 3308
conns c-gue-xdp 27400 12 3310
conns c-tun6-xdp 27500 12 3308 "$XDG_VIP6" fd00:77::10
tun_stats c-tun-xdp-after
sleep 1
kill -TERM $SPID $TPID $NPID $QPID; wait $SPID $TPID $NPID $QPID
step "C done"
stop_daemon --detach
fi

# ---- T: the real-server recipe's check and teardown
if [[ $PHASES == *" T "* ]]; then
rs_ready
step "T check"
rs check $T4 > "$OUT/t-check-ok.txt" 2>&1; echo "exit $?" >> "$OUT/t-check-ok.txt"
nsenter --net=/run/netns/xdg-tun sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter'
rs check $T4 > "$OUT/t-check-rpf.txt" 2>&1; echo "exit $?" >> "$OUT/t-check-rpf.txt"
# setup again over the strict rp_filter: it lowers it and records 1; teardown puts 1 back
rs setup $T4 > "$OUT/t-resetup4.txt" 2>&1; echo "exit $?" >> "$OUT/t-resetup4.txt"
step "T teardown"
rs teardown $T4 > "$OUT/t-teardown4.txt" 2>&1; echo "exit $?" >> "$OUT/t-teardown4.txt"
rs teardown $T6 > "$OUT/t-teardown6.txt" 2>&1; echo "exit $?" >> "$OUT/t-teardown6.txt"
ip -n xdg-tun -j link show > "$OUT/t-after-links.json"
ip -n xdg-tun -j addr show dev lo > "$OUT/t-after-lo.json"
ip -n xdg-tun fou show > "$OUT/t-after-fou.txt" 2>&1
[ -e "$RSF" ] && echo present > "$OUT/t-after-sysctl-file.txt"
nsenter --net=/run/netns/xdg-tun cat /proc/sys/net/ipv4/conf/all/rp_filter > "$OUT/t-after-rpf.txt"
[ -e "$RTS" ] && echo present > "$OUT/t-after-tunnel-state.txt"
step "T done"
fi
exit 0
