#!/usr/bin/env python3
"""Who decides what a flow carries, and what that costs (sensor/classify.h).

Built with tests/flood/pcapw.py: four clear-text SMTP sessions whose packets
interleave (every handshake, then every banner, then every EHLO), three on
port 25 and one on port 2626, plus ten port-25 connection attempts that
never get past their SYN (a scan, or a flood's first second).

  - nDPI's state (688 B + its 2 KB TLS buffer) is taken at a flow's first
    payload byte, not at its SYN: the SYN-only flows never hold one, so at
    most 4 flows are under nDPI at once, not 14;
  - the SMTP parser settles SMTP itself once it has seen the greeting and a
    mail command, on any port, and the flow is named "SMTP" as nDPI would;
  - with --max-classifying 3 the last flow to send payload (port 2626)
    finds the pool empty: it is classified by its ports (unknown: not a
    mail port, so not parsed), the summary says so in a "degraded" line,
    and the three port-25 sessions are still parsed."""
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtest  # noqa: E402

sys.path.insert(0, os.path.join(rwtest.SOURCE, "tests", "flood"))
import floods  # noqa: E402
import pcapw  # noqa: E402

CLASSIFIED = re.compile(
    r"relaywatch: flows classified: (\d+) SMTP \((\d+) settled by the SMTP parser\), (\d+) TLS, "
    r"(\d+) HTTP CONNECT, (\d+) other, (\d+) unknown; at most (\d+) under nDPI at once")
DEGRADED = re.compile(r"relaywatch: degraded: (\d+) flows classified by their ports alone")
T0 = 1700000000 * 1000000


def build(path):
    lw = floods.ListWriter()
    servers = [("198.51.100.25", 25)] * 3 + [("198.51.100.26", 2626)]
    sessions = [pcapw.TcpSession(lw, ("192.0.2.%d" % (10 + i), 40000 + i), srv,
                                 ts_us=T0 + i * 10, step_us=1000)
                for i, srv in enumerate(servers)]
    for i in range(10):  # SYN only, before everything else
        pcapw.TcpSession(lw, ("203.0.113.%d" % (i + 1), 50000), ("198.51.100.25", 25),
                         ts_us=T0 - 1000 + i)._send(True, pcapw.TCP_SYN)
    for s in sessions:
        s.handshake()
    for s in sessions:
        s.server(b"220 mx.example.jp ESMTP\r\n")
    for s in sessions:
        s.client(b"EHLO client.example\r\n")
    for i, s in enumerate(sessions):
        s.server(b"250-mx.example.jp\r\n250 PIPELINING\r\n")
        floods.transaction(s, b"alice%d@example.jp" % i, [b"bob@example.net"],
                           floods.message(b"hello %d" % i), helo=False)
        s.client(b"QUIT\r\n")
        s.server(b"221 bye\r\n")
        s.close()
    w = pcapw.PcapWriter(path)
    for ts, frame in sorted(lw.frames, key=lambda x: x[0]):
        w.frame(ts, frame)
    w.close()


def run(pcap, tmp, *extra):
    recs, fl = os.path.join(tmp, "records.json"), os.path.join(tmp, "flows.json")
    p = rwtest.run(["-r", pcap, "-f", "tcp", "--redis", "none", "--records", recs, "--flows", fl] +
                   list(extra))
    with open(recs) as f:
        records = [json.loads(l) for l in f if l.strip()]
    with open(fl) as f:
        flows = {(x["resp_h"], x["resp_p"], x["orig_h"]): x for x in map(json.loads, f)}
    return p.stderr, records, flows


def main():
    c = rwtest.Checker()
    with tempfile.TemporaryDirectory() as tmp:
        pcap = os.path.join(tmp, "interleaved.pcap")
        build(pcap)

        err, records, flows = run(pcap, tmp)
        m = CLASSIFIED.search(err)
        if c.true("summary has the classification line:\n" + err, m):
            smtp, settled, tls, tunnel, other, unknown, peak = map(int, m.groups())
            c.eq("4 SMTP flows", smtp, 4)
            c.eq("all 4 settled by the parser (nDPI would need one more reply)", settled, 4)
            c.eq("at most 4 flows under nDPI: the 10 SYN-only flows held no state", peak, 4)
        c.true("no degraded line by default", not DEGRADED.search(err))
        c.eq("4 records", len(records), 4)
        odd = flows.get(("198.51.100.26", 2626, "192.0.2.13"))
        if c.true("the port-2626 flow is in --flows", odd):
            c.eq("port 2626: named SMTP", odd["proto"], "SMTP")
            c.eq("port 2626: verdict", odd["verdict"], "smtp")
            c.true("port 2626: parsed", odd["smtp_parsed"])
        c.eq("port 2626: its record", sorted(r["resp_p"] for r in records), [25, 25, 25, 2626])

        err, records, flows = run(pcap, tmp, "--max-classifying", "3")
        m = CLASSIFIED.search(err)
        if c.true("--max-classifying 3: classification line", m):
            c.eq("--max-classifying 3: peak", int(m.group(7)), 3)
            c.eq("--max-classifying 3: 3 SMTP", int(m.group(1)), 3)
            c.eq("--max-classifying 3: 1 unknown", int(m.group(6)), 1)
        d = DEGRADED.search(err)
        if c.true("--max-classifying 3: degraded line:\n" + err, d):
            c.eq("--max-classifying 3: one flow by its ports", int(d.group(1)), 1)
        c.eq("--max-classifying 3: the port-25 sessions still parsed",
             sorted(r["resp_p"] for r in records), [25, 25, 25])
        odd = flows.get(("198.51.100.26", 2626, "192.0.2.13"))
        if c.true("--max-classifying 3: the port-2626 flow is in --flows", odd):
            c.eq("--max-classifying 3: port 2626 not parsed", odd["smtp_parsed"], False)
    c.done()


if __name__ == "__main__":
    main()
