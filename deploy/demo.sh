#!/usr/bin/env bash
# The README's first command: install what is missing, build, replay the
# bundled incident captures (tests/scenarios/*.pcap, merged in time order)
# into an embedded Redis, and show the alerts.
#
#   deploy/demo.sh                 as fast as it can read
#   deploy/demo.sh --pace 20       at 20 times the recorded pace
set -euo pipefail
cd "$(dirname "$0")/.."

pace=()
if [[ "${1:-}" == "--pace" ]]; then pace=(--pseudo-realtime="${2:-1}"); fi

deploy/install-deps.sh --check >/dev/null || deploy/install-deps.sh
if [[ ! -f build/build.ninja ]]; then meson setup build >/dev/null; fi
ninja -C build >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mergecap -F pcap -w "$tmp/incidents.pcap" tests/scenarios/*.pcap

cat <<'TXT'
== relaywatch demo ==========================================================
Replaying six captures made with real SMTP software (tests/scenarios/):
  relay-can-i-trust-you  an outside client relays "Re: Can I trust you?" x130
  hijacked-account       password guessing, then "HELLO!DEAR!GOOD NEWS TO YOU,"
  contact-form-flood     a web form sends 70 random-symbol subjects
  emotet-reply           "helpdesk@s-kantan.example.jp" <nobody@badhost.example>
  benign-staff           40 ordinary Japanese staff mails (no alert expected)
  benign-newsletter      a newsletter to 60 subscribers (no alert expected)
==============================================================================
TXT
build/relaywatch -r "$tmp/incidents.pcap" -c deploy/demo/relaywatch.conf \
  --redis embedded --alerts-json "$tmp/alerts.json" "${pace[@]}"

echo
echo "== the alerts (also in the Redis stream rw:alerts; --alerts-json wrote these) ==="
/usr/bin/python3 - "$tmp/alerts.json" <<'PY'
import json, sys, time
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for a in rows:
    print("%s  %-8s %-21s %-12s %-36s value %-5g (threshold %g, %s) after %d messages" % (
        time.strftime("%H:%M:%S", time.gmtime(a["ts"])), a["severity"], a["rule"],
        a["entity_type"], a["entity"][:36], a["value"], a["threshold"], a["window"],
        a["msgs_before_alert"]))
print("%d alerts" % len(rows))
PY
