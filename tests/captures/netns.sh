#!/bin/bash
# netns.sh up|down — the private two-host test network used by make-captures.sh
# and ../scenarios/make-scenarios.sh (run as root).
#
#   rw-cli  [veth-net 52:54:00:c0:00:01] <====> [veth-mx 52:54:00:0a:01:19]  rw-srv
#   all client addresses                                    10.1.0.25, 2001:db8:1::25
#
# Nothing is added to the host's own interfaces; all test traffic stays inside
# these namespaces.  Offloads are switched off on both veth ends so tcpdump sees
# <=1514-byte frames with correct IP/TCP checksums.
set -euo pipefail
SRV=${RW_SRV_NS:-rw-srv}
CLI=${RW_CLI_NS:-rw-cli}

down() {
    ip netns del "$SRV" 2>/dev/null || true
    ip netns del "$CLI" 2>/dev/null || true
}

up() {
    down
    ip netns add "$SRV"
    ip netns add "$CLI"
    ip link add veth-mx netns "$SRV" type veth peer name veth-net netns "$CLI"
    ip -n "$SRV" link set veth-mx address 52:54:00:0a:01:19
    ip -n "$CLI" link set veth-net address 52:54:00:c0:00:01
    for ns in "$SRV" "$CLI"; do ip -n "$ns" link set lo up; done
    ip -n "$SRV" link set veth-mx mtu 1500 up
    ip -n "$CLI" link set veth-net mtu 1500 up
    ip netns exec "$SRV" ethtool -K veth-mx tx off tso off gso off gro off >/dev/null 2>&1
    ip netns exec "$CLI" ethtool -K veth-net tx off tso off gso off gro off >/dev/null 2>&1
    # server side
    ip -n "$SRV" addr add 10.1.0.25/32 dev veth-mx
    ip -n "$SRV" -6 addr add 2001:db8:1::25/128 dev veth-mx nodad
    ip -n "$SRV" route add default dev veth-mx
    ip -n "$SRV" -6 route add default dev veth-mx
    # client side: staff 10.1.2.10-50, web server 10.1.0.80, outside MTAs
    # 192.0.2.10-30, attackers 203.0.113.{7,9,50} 198.51.100.23, IPv6 client
    local a
    for a in $(seq 10 50); do ip -n "$CLI" addr add 10.1.2.$a/32 dev veth-net; done
    ip -n "$CLI" addr add 10.1.0.80/32 dev veth-net
    for a in $(seq 10 30); do ip -n "$CLI" addr add 192.0.2.$a/32 dev veth-net; done
    for a in 203.0.113.7 203.0.113.9 203.0.113.50 198.51.100.23; do
        ip -n "$CLI" addr add $a/32 dev veth-net
    done
    ip -n "$CLI" -6 addr add 2001:db8:2::15/128 dev veth-net nodad
    ip -n "$CLI" route add default dev veth-net
    ip -n "$CLI" -6 route add default dev veth-net
    # no ARP/NDP round trip at the start of the first session
    ip -n "$CLI" neigh replace 10.1.0.25 lladdr 52:54:00:0a:01:19 dev veth-net
    ip -n "$CLI" -6 neigh replace 2001:db8:1::25 lladdr 52:54:00:0a:01:19 dev veth-net
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
