#!/bin/bash
# make-captures.sh — regenerate every golden capture in tests/captures/.
#
# Run BY HAND, as root, on Debian 12 (not in CI):   sudo ./make-captures.sh [NAME...]
#
# Needs (Debian packages):
#   tcpdump tshark (with dumpcap) tcpreplay (tcprewrite) swaks libnet-ssleay-perl
#   (swaks TLS) libio-socket-inet6-perl (swaks IPv6) postfix python3-aiosmtpd
#   python3-scapy openssl iproute2 ethtool
# and /usr/bin/python3 (the Debian interpreter that has aiosmtpd and scapy).
#
# What it does:
#   1. netns.sh builds two private network namespaces joined by a veth pair
#      (rw-cli = every client address, rw-srv = mx.pref.example.jp 10.1.0.25 /
#      2001:db8:1::25), offloads off => real <=1514-byte Ethernet frames with
#      valid checksums and real MACs; nothing is added to the host interfaces;
#   2. gen_captures.py runs real servers (aiosmtpd, a private Postfix instance)
#      in rw-srv and real clients (smtplib, swaks, raw sockets) in rw-cli and
#      records each session with tcpdump/dumpcap on the server's veth;
#   3. postprocess.py derives the rewritten captures (VLAN, link types,
#      fragments, TCP disorder, one direction, truncation) from live ones;
#   4. verify.py checks every NAME.expect.json against its capture with tshark.
#
# The *.expect.json files are written by hand and are NOT regenerated.  With
# fixed client ports and fixed message text a regeneration reproduces them,
# except Postfix queue ids in last_reply (bdat, pipelining, relay-denied):
# verify.py reports those, fix the expect files by hand.
#
# With NAME arguments only those live captures are made (see gen_captures.py);
# post-processing and verification always run over everything present.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3

if [ "$(id -u)" != 0 ]; then
    echo "make-captures.sh must run as root (tcpdump, netns, postfix)" >&2
    exit 1
fi
for t in tcpdump tshark tcprewrite swaks postfix openssl ip; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done
$PY -c 'import aiosmtpd, scapy' || { echo "need python3-aiosmtpd and python3-scapy for $PY" >&2; exit 1; }

for t in ethtool dumpcap; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done

"$HERE/netns.sh" up
CERTDIR="$(mktemp -d /tmp/rw-cert.XXXXXX)"
trap '"$HERE/netns.sh" down; rm -rf "$CERTDIR"; rm -f "$HERE"/.tmp-*' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=mx.pref.example.jp \
    -keyout "$CERTDIR/mx.key" -out "$CERTDIR/mx.crt" 2>/dev/null

cd "$HERE"
CERTDIR="$CERTDIR" ip netns exec rw-cli $PY gen_captures.py "$@"
$PY postprocess.py
$PY verify.py
