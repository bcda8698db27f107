#!/usr/bin/env python3
"""Who decides what a flow carries, and what that costs (sensor/classify.h,
the state machine at the top of sensor/tracker.c).

Captures built with tests/flood/pcapw.py: four clear-text SMTP sessions
whose packets interleave (every handshake, then every greeting, then every
EHLO), three on port 25 and one on port 2626, plus ten port-25 connection
attempts that never get past their SYN. Run with -f tcp (all ports).

  greeted: the servers greet with "220". The parser reads the greeting
    alone and settles SMTP at the EHLO, on any port, naming the flow "SMTP"
    as nDPI would; nDPI's state (688 B + its 2 KB TLS buffer) is never
    taken: at most 0 flows under nDPI at once (before: 14, SYNs included).
  rejected: the servers greet with "554" (a rejecting greeting, then 503
    to EHLO). nDPI reads from that first payload byte, never from the SYN,
    and the parser still settles at the EHLO: at most 4 flows under nDPI
    at once, not 14. With --max-classifying 3 the last flow to send payload
    (port 2626) finds the pool empty: it is classified by its ports
    (unknown: not a mail port, so not parsed), the summary says so in a
    "degraded" line, and the port-25 sessions are parsed as before."""
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


def build(path, greeting):
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
        s.server(greeting)
    for s in sessions:
        s.client(b"EHLO client.example\r\n")
    for i, s in enumerate(sessions):
        if greeting.startswith(b"220"):
            s.server(b"250-mx.example.jp\r\n250 PIPELINING\r\n")
            floods.transaction(s, b"alice%d@example.jp" % i, [b"bob@example.net"],
                               floods.message(b"hello %d" % i), helo=False)
        else:
            s.server(b"503 5.5.1 Error: send QUIT\r\n")
        s.client(b"QUIT\r\n")
        s.server(b"221 bye\r\n")
        s.close()
    lw.save(path)


def run(pcap, tmp, *extra):
    recs, fl = os.path.join(tmp, "records.json"), os.path.join(tmp, "flows.json")
    p = rwtest.run(["-r", pcap, "-f", "tcp", "--redis", "none", "--records", recs, "--flows", fl] +
                   list(extra))
    with open(recs) as f:
        records = [json.loads(l) for l in f if l.strip()]
    with open(fl) as f:
        flows = {(x["resp_h"], x["resp_p"], x["orig_h"]): x for x in map(json.loads, f)}
    return p.stderr, records, flows


def classified(c, what, err, **want):
    """The summary's classification counts are `want` (smtp, settled, tls,
    tunnel, other, unknown, peak), and no degraded line unless ports > 0
    flows fell back to their ports."""
    m = CLASSIFIED.search(err)
    c.true("%s: the summary has the classification line:\n%s" % (what, err), m)
    got = dict(zip(("smtp", "settled", "tls", "tunnel", "other", "unknown", "peak"),
                   map(int, m.groups()))) if m else {}
    ports = want.pop("ports", 0)
    for key, v in want.items():
        c.eq("%s: %s" % (what, key), got.get(key), v)
    d = DEGRADED.search(err)
    c.eq("%s: flows classified by their ports (degraded line)" % what,
         int(d.group(1)) if d else 0, ports)


def main():
    c = rwtest.Checker()
    odd_key = ("198.51.100.26", 2626, "192.0.2.13")
    with tempfile.TemporaryDirectory() as tmp:
        pcap = os.path.join(tmp, "greeted.pcap")
        build(pcap, b"220 mx.example.jp ESMTP\r\n")
        err, records, flows = run(pcap, tmp)
        # all 4 settled by the parser, and no flow ever under nDPI
        classified(c, "greeted", err, smtp=4, settled=4, peak=0)
        c.eq("greeted: a record per session", sorted(r["resp_p"] for r in records),
             [25, 25, 25, 2626])
        odd = flows.get(odd_key)
        if c.true("greeted: the port-2626 flow is in --flows", odd):
            c.eq("greeted: port 2626 named SMTP", odd["proto"], "SMTP")
            c.eq("greeted: port 2626 verdict", odd["verdict"], "smtp")
            c.true("greeted: port 2626 parsed", odd["smtp_parsed"])

        pcap = os.path.join(tmp, "rejected.pcap")
        build(pcap, b"554 5.7.1 mx.example.jp: no service for you\r\n")
        err, records, flows = run(pcap, tmp)
        # nDPI from the greeting, never from a SYN: 4 at most, not 14
        classified(c, "rejected", err, smtp=4, settled=4, peak=4)
        c.eq("rejected: every session parsed", sum(f["smtp_parsed"] for f in flows.values()), 4)

        err, records, flows = run(pcap, tmp, "--max-classifying", "3")
        classified(c, "--max-classifying 3", err, smtp=3, unknown=1, peak=3, ports=1)
        odd = flows.get(odd_key)
        if c.true("--max-classifying 3: the port-2626 flow is in --flows", odd):
            c.eq("--max-classifying 3: port 2626 not parsed", odd["smtp_parsed"], False)
        c.eq("--max-classifying 3: the port-25 sessions still parsed",
             sum(f["smtp_parsed"] for k2, f in flows.items() if k2[1] == 25), 3)
    c.done()


if __name__ == "__main__":
    main()
