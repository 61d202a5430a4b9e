#!/usr/bin/env bash
# The lab's reference network (client1, director, rs1, rs2 on a bridge,
# VIP 192.168.122.1:8080 rr persistent 60, DR sysctls) built and removed
# with `ip`, `sysctl` and `ipvsadm` commands, one process per step, as a
# shell script would. Run INSIDE the lab's UML guest (`lab guest-run --
# bash bench/scripts/reference-network-commands.sh`): never on a host.
# Prints one JSON line: {"bringup_ms": ..., "teardown_ms": ...}.
set -euo pipefail
[[ -e /proc/net/ip_vs ]] || { echo "no IPVS here: run this inside 'lab guest-run'" >&2; exit 69; }
P=cmdref
ns() { ip netns exec "$P-$1" "${@:2}"; }
now() { date +%s%N; }

t0=$(now)
ip netns add "$P-bridge"
ns bridge ip link add br0 type bridge
ns bridge ip link set br0 up
i=0
for h in client1 director rs1 rs2; do
    i=$((i + 1))
    ip netns add "$P-$h"
    ip link add "v$i" netns "$P-bridge" type veth peer name eth0 netns "$P-$h"
    ns bridge ip link set "v$i" master br0
    ns bridge ip link set "v$i" up
    ns "$h" ip link set lo up
    ns "$h" ip link set eth0 up
done
ns client1 ip addr add 172.22.36.1/16 dev eth0
ns client1 ip route add 192.168.122.1 via 172.22.35.254
ns director ip addr add 172.22.35.254/16 dev eth0
ns director ip addr add 192.168.122.1/32 dev eth0
for n in 1 2; do
    ns "rs$n" ip addr add "172.22.35.$n/16" dev eth0
    ns "rs$n" ip addr add 192.168.122.1/32 dev lo
    for dev in all eth0 lo; do
        ns "rs$n" sysctl -qw "net.ipv4.conf.$dev.arp_ignore=1"
        ns "rs$n" sysctl -qw "net.ipv4.conf.$dev.arp_announce=2"
    done
done
ns director ipvsadm -A -t 192.168.122.1:8080 -s rr -p 60
for n in 1 2; do
    ns director ipvsadm -a -t 192.168.122.1:8080 -r "172.22.35.$n:8080" -g -w 1
done
t1=$(now)
ns director ipvsadm -C
for h in client1 director rs1 rs2 bridge; do ip netns del "$P-$h"; done
t2=$(now)
printf '{"bringup_ms": %.1f, "teardown_ms": %.1f}\n' "$(( (t1 - t0) / 1000 ))e-3" "$(( (t2 - t1) / 1000 ))e-3"
