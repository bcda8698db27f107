#!/bin/bash
# make-scenarios.sh — regenerate the incident scenario captures in tests/scenarios/.
#
# Run BY HAND, as root, on Debian 12 (not in CI):   sudo ./make-scenarios.sh [NAME...]
#
# Needs the same Debian packages as ../captures/make-captures.sh (tcpdump,
# tshark, ethtool, iproute2, python3-aiosmtpd, python3-scapy) and /usr/bin/python3.
#
#   1. ../captures/netns.sh builds the private two-namespace test network
#      (rw-cli holds every client address: staff 10.1.2.10-50, web server
#      10.1.0.80, attackers 203.0.113.7/.50 and 198.51.100.23; rw-srv holds
#      mx.pref.example.jp 10.1.0.25); nothing touches the host interfaces;
#   2. gen_scenarios.py runs aiosmtpd servers (587 submission with AUTH, 25
#      open-relay handler) in rw-srv and smtplib clients in rw-cli, captures
#      each scenario with tcpdump and writes NAME.pcap + NAME.facts.json (the
#      facts are what the client sent and the replies it got);
#   3. verify_scenarios.py cross-checks every facts file against its pcap.
#
# Content, client ports and queue ids are deterministic: a rerun gives the
# same facts files (only packet timestamps and TCP sequence numbers change).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
if [ "$(id -u)" != 0 ]; then
    echo "make-scenarios.sh must run as root (tcpdump, netns)" >&2
    exit 1
fi
for t in tcpdump tshark ethtool ip; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done
$PY -c 'import aiosmtpd' || { echo "need python3-aiosmtpd for $PY" >&2; exit 1; }

"$HERE/../captures/netns.sh" up
trap '"$HERE/../captures/netns.sh" down' EXIT
cd "$HERE"
ip netns exec rw-cli $PY gen_scenarios.py "$@"
$PY verify_scenarios.py
