#!/usr/bin/env bash
# Install what relaywatch needs to build, run and test, from Debian 12's
# archive only. Idempotent; run as root (or it uses sudo).
#   deploy/install-deps.sh          install what is missing
#   deploy/install-deps.sh --check  exit 0 if everything is there, else 1
set -euo pipefail

PACKAGES=(
  # build
  gcc clang libclang-rt-14-dev llvm pkg-config meson ninja-build
  libpcap-dev libndpi-dev libhiredis-dev libjansson-dev libxxhash-dev libinih-dev
  # run
  redis-server redis-tools
  # test: real servers, real clients, real capture tools
  python3 python3-aiosmtpd python3-scapy tcpdump tshark tcpreplay swaks postfix
  libndpi-bin prometheus prometheus-redis-exporter iproute2 procps python3-yaml time
  logrotate strace
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [[ "${1:-}" == "--check" ]]; then
  if ((${#missing[@]})); then echo "missing: ${missing[*]}"; exit 1; fi
  exit 0
fi
((${#missing[@]})) || { echo "install-deps: everything is installed"; exit 0; }

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# postfix: only its tools (smtp-source, smtp-sink) are used; no mail system.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
# tshark: no question about non-root capture
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
