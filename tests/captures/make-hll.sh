#!/usr/bin/env bash
# many-distinct-rcpts.pcap: 50 messages x 100 recipients = 5000 distinct
# recipient addresses at 500 domains, for the HyperLogLog accuracy test.
# Real software: Python smtplib -> Postfix smtp-sink, recorded by tcpdump on
# loopback. Run as root (tcpdump), by hand; not part of CI.
set -euo pipefail
cd "$(dirname "$0")"
PORT=2525
smtp-sink -u nobody -c 127.0.0.1:$PORT 100 &
sink=$!
tcpdump -i lo -s 0 -U -w many-distinct-rcpts.pcap "tcp port $PORT" 2>/dev/null &
dump=$!
sleep 1
/usr/bin/python3 - "$PORT" <<'PY'
import smtplib, sys
port = int(sys.argv[1])
with smtplib.SMTP("127.0.0.1", port, local_hostname="bulk.example.net") as s:
    for m in range(50):
        rcpts = ["user%04d@dom%03d.example" % (m * 100 + i, (m * 100 + i) % 500)
                 for i in range(100)]
        body = ("From: bulk@example.net\r\nTo: undisclosed-recipients:;\r\n"
                "Subject: distinct recipients %d\r\n\r\nhello\r\n" % m)
        s.sendmail("bulk@example.net", rcpts, body)
PY
sleep 1
kill -INT $dump; wait $dump || true
kill $sink; wait $sink 2>/dev/null || true
echo "wrote many-distinct-rcpts.pcap ($(stat -c %s many-distinct-rcpts.pcap) bytes)"
