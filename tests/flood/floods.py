#!/usr/bin/env python3
"""Flood captures: hostile input at the sizes that exhaust memory or time.

Each generator writes one pcap and returns the facts the sensor must still
get right (the record that must come out, what is kept bounded):

  syn_flood        1M SYNs from random sources to port 25, with one real SMTP
                   session interleaved (a 1 ms RTT: ~100 SYNs between its
                   packets)
  endless_line     a complete transaction, then a 100 MB command line without LF
  big_headers      a message whose header block is 10 MB (a 5 KB Subject, then
                   a 1 MB folded To, then 9k filler fields of 1 KB, then a
                   second Subject)
  many_rcpts       one transaction with 100,000 RCPT TO (pipelined in batches
                   of 50, each accepted; all but the first 100 are 250 bytes)
  deep_mime        multiparts nested 10,000 levels deep, an attachment before
                   and after the nest and one at the bottom
  seq_wrap         sequence numbers of both sides wrap past 2^32 mid-session;
                   retransmissions overlap with conflicting bytes and arrive
                   out of order around the wrap

    tests/flood/floods.py NAME OUT.pcap     # write one by hand; prints the facts
"""
import json
import random
import sys

from pcapw import PcapWriter, SynTemplate, TcpSession, ip4

CLIENT = ("192.0.2.10", 40001)
SERVER = ("198.51.100.25", 25)
T0 = 1700000000 * 1000000
BANNER = b"220 mx.example.jp ESMTP\r\n"


class ListWriter:
    """Collects (ts, frame) to be merged into another stream."""

    def __init__(self):
        self.frames = []

    def frame(self, ts_us, data):
        self.frames.append((ts_us, data))

    def save(self, path):
        """The frames collected, in time order, as a pcap at path."""
        w = PcapWriter(path)
        for ts, frame in sorted(self.frames, key=lambda x: x[0]):
            w.frame(ts, frame)
        w.close()


def message(subject, extra_headers=b"", body=b"hello\r\n", frm=b"Alice <alice@example.jp>"):
    return (b"From: " + frm + b"\r\nTo: bob@example.net\r\nSubject: " + subject + b"\r\n" +
            b"Message-ID: <flood@example.jp>\r\n" + extra_headers + b"\r\n" + body)


def dot_stuff(content):
    lines = content.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def transaction(s, mailfrom, rcpts, content, helo=True, batch=50):
    """One mail transaction: [EHLO,] MAIL, RCPTs (pipelined in batches),
    DATA, the content, the end-of-data reply."""
    if helo:
        s.server(BANNER)
        s.client(b"EHLO client.example\r\n")
        s.server(b"250-mx.example.jp\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
    s.client(b"MAIL FROM:<" + mailfrom + b">\r\n")
    s.server(b"250 2.1.0 Ok\r\n")
    for i in range(0, len(rcpts), batch):
        part = rcpts[i:i + batch]
        s.client(b"".join(b"RCPT TO:<" + r + b">\r\n" for r in part))
        s.server(b"250 2.1.5 Ok\r\n" * len(part))
    s.client(b"DATA\r\n")
    s.server(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    body = dot_stuff(content)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    s.client(body + b".\r\n")
    s.server(b"250 2.0.0 Ok: queued as FLOOD1\r\n")


def syn_flood(path, n=1000000, seed=1):
    rnd = random.Random(seed)
    # The real session, its frames collected first (1 ms apart: a LAN RTT).
    lw = ListWriter()
    t_session = T0 + 4 * 1000000  # 4 s into a 10 s flood
    s = TcpSession(lw, CLIENT, SERVER, ts_us=t_session, step_us=1000)
    s.handshake()
    transaction(s, b"alice@example.jp", [b"bob@example.net"],
                message(b"still parsed under a SYN flood"))
    s.client(b"QUIT\r\n")
    s.server(b"221 2.0.0 Bye\r\n")
    s.close()
    session = lw.frames

    w = PcapWriter(path)
    tpl = SynTemplate(ip4(SERVER[0]), SERVER[1])
    step = 10  # µs: 100k SYN/s
    getrandbits = rnd.getrandbits
    # Random sources in 10.0.0.0/8 and ports >= 1024: no collision with the
    # real client, and (almost) every SYN a new flow.
    batch, j = [], 0
    for i in range(n):
        ts = T0 + i * step
        if j < len(session) and session[j][0] <= ts:
            tpl.write(w, batch)
            batch = []
            while j < len(session) and session[j][0] <= ts:
                w.frame(*session[j])
                j += 1
        batch.append((ts, 0x0a000000 | getrandbits(24), 1024 + getrandbits(16) % 64512,
                      getrandbits(32)))
        if len(batch) == 65536:
            tpl.write(w, batch)
            batch = []
    tpl.write(w, batch)
    for f in session[j:]:
        w.frame(*f)
    w.close()
    return {"syns": n, "session_frames": len(session), "frames": w.frames,
            "subject": "still parsed under a SYN flood", "mailfrom": "alice@example.jp",
            "rcpt": ["bob@example.net"]}


def endless_line(path, size=100 * 1024 * 1024):
    w = PcapWriter(path)
    s = TcpSession(w, CLIENT, SERVER, ts_us=T0)
    s.handshake()
    transaction(s, b"alice@example.jp", [b"bob@example.net"], message(b"before the endless line"))
    # The endless command: "NOOP " then bytes without LF, 64 KB at a time.
    s.client(b"NOOP ")
    chunk = (b"A" * 1023 + b"\r") * 64   # bare CRs, no LF: still one line
    sent = 5
    while sent < size:
        s.client(chunk)
        sent += len(chunk)
    s.close()
    w.close()
    return {"line_bytes": sent, "subject": "before the endless line",
            "mailfrom": "alice@example.jp", "rcpt": ["bob@example.net"]}


def big_headers(path, size=10 * 1024 * 1024):
    subject = b"S" * 5000
    to = b",\r\n ".join(b"user%d@example.net" % i for i in range(50000))  # ~1 MB folded
    pad, i = [], 0
    total = len(subject) + len(to)
    while total < size:
        line = b"X-Pad-%d: " % i + b"p" * 1000 + b"\r\n"
        pad.append(line)
        total += len(line)
        i += 1
    # A second Subject far past the header bound: must not replace the first.
    pad.append(b"Subject: late subject past the bound\r\n")
    content = (b"From: Big <big@example.jp>\r\nSubject: " + subject +
               b"\r\nMessage-ID: <big@example.jp>\r\nTo: " + to + b"\r\n" + b"".join(pad) +
               b"\r\nbody\r\n")
    w = PcapWriter(path)
    s = TcpSession(w, CLIENT, SERVER, ts_us=T0)
    s.handshake()
    transaction(s, b"big@example.jp", [b"bob@example.net"], content)
    s.client(b"QUIT\r\n")
    s.server(b"221 Bye\r\n")
    s.close()
    w.close()
    return {"content_bytes": len(content), "header_fields": 4 + len(pad), "subject_len": 5000,
            "to_addresses": 50000, "mailfrom": "big@example.jp"}


def many_rcpts(path, n=100000):
    # The first hundred short (they are kept); the rest 250 bytes long, so
    # that keeping them all would cost 25 MB.
    rcpts = [b"r%d@example.net" % i for i in range(100)] + \
        [b"%s%d@example.net" % (b"x" * 230, i) for i in range(100, n)]
    w = PcapWriter(path)
    s = TcpSession(w, CLIENT, SERVER, ts_us=T0, step_us=20)
    s.handshake()
    transaction(s, b"alice@example.jp", rcpts, message(b"to a hundred thousand"))
    s.client(b"QUIT\r\n")
    s.server(b"221 Bye\r\n")
    s.close()
    w.close()
    return {"rcpt_total": n, "first_rcpts": [r.decode() for r in rcpts[:100]],
            "subject": "to a hundred thousand", "mailfrom": "alice@example.jp"}


def deep_mime(path, depth=10000):
    parts = [b"Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\npreamble\r\n",
             b"--b0\r\nContent-Type: application/pdf\r\n"
             b"Content-Disposition: attachment; filename=\"top.pdf\"\r\n\r\nJVBERi0=\r\n",
             b"--b0\r\n"]
    for i in range(1, depth):
        parts.append(b"Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n" % (i, i))
    parts.append(b"Content-Type: text/plain\r\n"
                 b"Content-Disposition: attachment; filename=\"bottom.txt\"\r\n\r\nx\r\n")
    for i in range(depth - 1, 0, -1):
        parts.append(b"--b%d--\r\n" % i)
    parts.append(b"--b0\r\nContent-Type: application/zip\r\n"
                 b"Content-Disposition: attachment; filename=\"after.zip\"\r\n\r\nUEsDBA==\r\n"
                 b"--b0--\r\n")
    content = message(b"nested ten thousand deep", b"MIME-Version: 1.0\r\n" + parts[0],
                      b"".join(parts[1:]))
    w = PcapWriter(path)
    s = TcpSession(w, CLIENT, SERVER, ts_us=T0)
    s.handshake()
    transaction(s, b"alice@example.jp", [b"bob@example.net"], content)
    s.client(b"QUIT\r\n")
    s.server(b"221 Bye\r\n")
    s.close()
    w.close()
    return {"depth": depth, "content_bytes": len(content), "subject": "nested ten thousand deep"}


def seq_wrap(path):
    """Both ISNs just below 2^32, so each stream wraps mid-session (the
    client's inside the Subject line). The message goes in 200-byte
    segments S0..Sn; Sw spans the wrap. Sent: S0, then S0 again with other
    bytes (an exact retransmission that conflicts: the first copy wins),
    S1..Sw-1, Sw+1 before Sw (out of order across the wrap), Sw, a segment
    re-covering the tail of Sw and the head of Sw+1 with conflicting bytes
    (all old: dropped), then Sw+2 starting 50 bytes early with conflicting
    bytes in the overlap (the new part delivered, the overlap dropped)."""
    content = (b"From: Alice <alice@example.jp>\r\nTo: bob@example.net\r\n" +
               b"X-Filler: " + b"f" * 500 + b"\r\nSubject: sequence numbers wrapped\r\n" +
               b"Message-ID: <wrap@example.jp>\r\n\r\n" + b"line one\r\n" * 100)
    wire = dot_stuff(content) + b".\r\n"
    cmds = b"EHLO wrap.example\r\n", b"MAIL FROM:<wrap@example.jp>\r\n", \
        b"RCPT TO:<bob@example.net>\r\n", b"DATA\r\n"
    before = sum(len(c) for c in cmds)
    subj_at = content.index(b"Subject: ") + 12        # wrap between "Sub" and "ject"
    isn_c = (0xffffffff - before - subj_at) & 0xffffffff  # seq after SYN = isn + 1
    w = PcapWriter(path)
    s = TcpSession(w, CLIENT, SERVER, ts_us=T0, isn_c=isn_c, isn_s=0xffffffff - 10, mss=200)
    s.handshake()
    s.server(BANNER)                       # the server's stream wraps in its banner
    replies = (b"250-mx.example.jp\r\n250 8BITMIME\r\n", b"250 2.1.0 Ok\r\n",
               b"250 2.1.5 Ok\r\n", b"354 go ahead\r\n")
    for c, r in zip(cmds, replies):
        s.client(c)
        s.server(r)
    segs, seq = [], s.seq[True]
    for i in range(0, len(wire), 200):
        segs.append((seq, wire[i:i + 200]))
        seq = (seq + len(wire[i:i + 200])) & 0xffffffff
    wrap_i = next(i for i, (q, d) in enumerate(segs) if ((q + len(d)) & 0xffffffff) < q)
    assert len(segs) > wrap_i + 3
    for k, (q, d) in enumerate(segs):
        if k == wrap_i:
            continue
        if k == wrap_i + 1:
            s.raw(True, q, d)                       # early: waits out of order
            wq, wd = segs[wrap_i]
            s.raw(True, wq, wd)                     # fills the hole across the wrap
            s.raw(True, (wq + 100) & 0xffffffff, b"#" * 200)  # old bytes, conflicting
            continue
        if k == wrap_i + 2:
            s.raw(True, (q - 50) & 0xffffffff, b"#" * 50 + d)  # 50 old (conflicting) + new
            continue
        s.raw(True, q, d)
        if k == 0:
            s.raw(True, q, d.replace(b"Alice", b"Evilx"))       # same bytes range, other bytes
    s.seq[True] = seq
    s.server(b"250 2.0.0 Ok: queued\r\n")
    s.client(b"QUIT\r\n")
    s.server(b"221 Bye\r\n")
    s.close()
    w.close()
    return {"content_bytes": len(content), "subject": "sequence numbers wrapped",
            "from": "Alice <alice@example.jp>", "mailfrom": "wrap@example.jp",
            "client_isn": isn_c, "wrap_segment": wrap_i}


FLOODS = {f.__name__: f for f in (syn_flood, endless_line, big_headers, many_rcpts, deep_mime,
                                  seq_wrap)}


def main(argv):
    if len(argv) != 3 or argv[1] not in FLOODS:
        print("usage: floods.py {%s} OUT.pcap" % "|".join(FLOODS), file=sys.stderr)
        return 2
    print(json.dumps(FLOODS[argv[1]](argv[2]))[:2000])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
