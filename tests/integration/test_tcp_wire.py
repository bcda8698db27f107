#!/usr/bin/env python3
"""What the wire can do to the packet path below SMTP (sensor/decode.c,
flow.c, reasm.c, tracker.c), in captures written with tests/flood/pcapw.py.
Each scenario is one mail transaction (two for the port reuses) that must come
out whole:

  ip_length_lie      a frame captured whole whose IPv4 total length claims
                     1400 bytes more than the frame holds (the server drops
                     it): not a snap-length cut, no gap over the real bytes
                     that follow
  tso_length_zero    the MAIL command in a frame captured before segmentation
                     offload, whose IPv4 total length is 0: the frame's
                     length is the packet's
  ack_ahead          the client's MAIL FROM acknowledges 100,000 server bytes
                     never sent: the server's replies that follow are not
                     taken for bytes already lost (the RCPT stays accepted,
                     last_reply is the queue reply)
  rst_out_of_window  the client sends a RST whose sequence number is far
                     outside the window (RFC 5961 §3: the server drops it),
                     is quiet for 6 s, then sends its mail: the parse must
                     go on, the flow must not end as closed
  syn_mid_session    the client sends a bare SYN (new ISN) on its own
                     established connection, then goes on: a receiver answers
                     that with a challenge ACK (RFC 5961 §4), so the session
                     goes on, its HELO kept, and the flow is not ended as
                     reused
  syn_challenge_ack  the same, with the server's challenge ACK captured
  syn_before_command the bare SYN comes after the greeting, before the
                     client's first command: the client's stream does not
                     start over at the forged ISN
  synack_before_command  the same with a SYN-ACK from the client
  syn_joined_late    the same on a session whose handshake was not captured
  reuse_lost_fin     a session whose FINs the capture lost, then a new
                     connection (new SYN, new ISNs) on the same 5-tuple,
                     which the server's SYN-ACK acknowledges: both
                     transactions come out, the first flow ended as reused
  reuse_challenged   the same, but the server still held the old connection:
                     it answers the SYN with a challenge ACK, the client
                     resets the old connection at the number acknowledged
                     (RFC 793 SYN-SENT) and sends its SYN again
  fin_not_taken      the client sends a FIN at the next byte that the server
                     discards (it acknowledges data never sent), then goes
                     on: its bytes at the FIN's number and after are read
  fin_ahead_not_taken the same with the FIN ahead, where the MAIL command
                     ends: the stream does not end when it gets there
  fin_ahead_covered  a FIN ahead inside the MAIL command, whose bytes then
                     cover it (a receiver drops such a FIN as old)
  keepalive          an idle client sends TCP keep-alives (one byte at the
                     next sequence number - 1, garbage or not, or none): no
                     byte of theirs reaches the parser, no gap
  time_jump          a packet stamped ten days ahead in the middle of a
                     session, then time where it was: the session is not
                     ended by it, and flows idle after it still end
                     (expiry does not stall behind the one stamped ahead)
  first_segment_late the client's first segment (EHLO cut in two) is
                     captured after its second: the SYN sets where the
                     stream starts, the two halves are put back in order
  syn_seq_jump       the client's SYN is retransmitted with a new ISN before
                     the handshake completes: the stream starts at the
                     second one
  bad_checksum_noop  in a capture with valid TCP checksums, the client sends
                     "NOOP" lines with a bad checksum at the next sequence
                     number, then its MAIL command at the same numbers: the
                     server drops the first (RFC 9293 §3.1) and takes the
                     second, and so must the sensor
  bad_checksum_decoy the same with a decoy MAIL FROM of the same length
  bad_checksum_rst   a RST at the next sequence number with a bad checksum:
                     the server drops it, the session goes on after 6 s

Then --checksums (tracker.h): off takes the decoy (as before); on leaves out
every segment of a capture whose checksums are all 0 (pcapw's default, a
capture on the sending host), which auto reads whole; auto decides on the
first 1000 segments verified: with 99 bad it goes on verifying (the decoy
that follows is left out), with 100 it stops (the decoy is taken), and says
so; a segment cut by the snap length is used, its checksum unverifiable.
"""
import json
import os
import re
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtest  # noqa: E402

sys.path.insert(0, os.path.join(rwtest.SOURCE, "tests", "flood"))
import floods  # noqa: E402
import pcapw  # noqa: E402

CLIENT = ("192.0.2.10", 40001)
SERVER = ("198.51.100.25", 25)
T0 = 1700000000 * 1000000
ACK = pcapw.TCP_ACK
PSH = pcapw.TCP_PSH


def session(w, **kw):
    return pcapw.TcpSession(w, CLIENT, SERVER, ts_us=kw.pop("ts_us", T0), step_us=1000, **kw)


def frame(s, from_client, seq, ack, flags, payload=b"", bad_checksum=False):
    src, dst = (s.c, s.s) if from_client else (s.s, s.c)
    sp, dp = (s.cp, s.sp) if from_client else (s.sp, s.cp)
    csum = s.checksums
    if bad_checksum:
        good = pcapw.tcp_frame(src, dst, sp, dp, seq, ack, flags, payload, checksum=True)
        csum = struct.unpack_from("!H", good, 14 + 20 + 16)[0] ^ 0x5a5a
    s.w.frame(s.ts, pcapw.tcp_frame(src, dst, sp, dp, seq, ack, flags, payload, s.ident, csum))
    s.ident += 1
    s.ts += s.step


def rest(s, subject):
    """MAIL to the end of the transaction (after the EHLO exchange)."""
    floods.transaction(s, b"alice@example.jp", [b"bob@example.net"],
                       floods.message(subject), helo=False)
    s.close()


def hello(s):
    s.server(floods.BANNER)
    s.client(b"EHLO client.example\r\n")
    s.server(b"250-mx.example.jp\r\n250 PIPELINING\r\n")


def ip_length_lie(w):
    s = session(w)
    s.handshake()
    hello(s)
    f = bytearray(pcapw.tcp_frame(s.c, s.s, s.cp, s.sp, s.seq[True], s.seq[False], ACK | PSH,
                                  b"QUIT", s.ident))
    struct.pack_into("!H", f, 14 + 2, 20 + 20 + 4 + 1400)
    struct.pack_into("!H", f, 14 + 10, 0)
    struct.pack_into("!H", f, 14 + 10, pcapw.ip_checksum(bytes(f[14:34])))
    s.w.frame(s.ts, bytes(f))
    s.ts += s.step
    rest(s, b"after a lying IP length")


def tso_length_zero(w):
    s = session(w)
    s.handshake()
    hello(s)
    # captured on the sending host before segmentation offload: IPv4 total
    # length 0, the frame is the packet
    mail = b"MAIL FROM:<alice@example.jp>\r\n"
    f = bytearray(pcapw.tcp_frame(s.c, s.s, s.cp, s.sp, s.seq[True], s.seq[False], ACK | PSH,
                                  mail, s.ident))
    struct.pack_into("!H", f, 14 + 2, 0)
    struct.pack_into("!H", f, 14 + 10, 0)
    struct.pack_into("!H", f, 14 + 10, pcapw.ip_checksum(bytes(f[14:34])))
    s.w.frame(s.ts, bytes(f))
    s.ts += s.step
    s.seq[True] += len(mail)
    s.server(b"250 2.1.0 Ok\r\n")
    s.client(b"RCPT TO:<bob@example.net>\r\n")
    s.server(b"250 2.1.5 Ok\r\n")
    s.client(b"DATA\r\n")
    s.server(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    s.client(floods.message(b"segmentation offload") + b".\r\n")
    s.server(b"250 2.0.0 Ok: queued as FLOOD1\r\n")
    s.close()


def ack_ahead(w):
    s = session(w)
    s.handshake()
    hello(s)
    frame(s, True, s.seq[True], s.seq[False] + 100000, ACK | PSH, b"MAIL FROM:<alice@example.jp>\r\n")
    s.seq[True] += len(b"MAIL FROM:<alice@example.jp>\r\n")
    s.server(b"250 2.1.0 Ok\r\n")
    s.client(b"RCPT TO:<bob@example.net>\r\n")
    s.server(b"250 2.1.5 Ok\r\n")
    s.client(b"DATA\r\n")
    s.server(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    s.client(floods.message(b"acked ahead") + b".\r\n")
    s.server(b"250 2.0.0 Ok: queued as FLOOD1\r\n")
    s.close()


def rst_out_of_window(w):
    s = session(w)
    s.handshake()
    hello(s)
    frame(s, True, s.seq[True] + 3000000, 0, pcapw.TCP_RST)
    # quiet for longer than a closed flow lingers (another flow's packet
    # moves the clock), then the mail
    other = pcapw.TcpSession(w, ("192.0.2.99", 40099), SERVER, ts_us=s.ts + 5500000)
    other._send(True, pcapw.TCP_SYN)
    s.ts += 6000000
    rest(s, b"after a forged RST")


def syn_mid_session(w):
    s = session(w, isn_c=900000, isn_s=5000)
    s.handshake()
    hello(s)
    frame(s, True, 123456789, 0, pcapw.TCP_SYN)
    rest(s, b"after a forged SYN")


def challenge_ack(s):
    """RFC 5961 §4: the server's answer to a SYN on an established
    connection, an ACK of where it is."""
    frame(s, False, s.seq[False], s.seq[True], ACK)


def syn_challenge_ack(w):
    s = session(w, isn_c=900000, isn_s=5000)
    s.handshake()
    hello(s)
    frame(s, True, 123456789, 0, pcapw.TCP_SYN)
    challenge_ack(s)
    rest(s, b"after a challenged SYN")


def syn_before_command(w):
    s = session(w, isn_c=900000, isn_s=5000)
    s.handshake()
    s.server(floods.BANNER)
    frame(s, True, 123456789, 0, pcapw.TCP_SYN)
    challenge_ack(s)
    s.client(b"EHLO client.example\r\n")
    s.server(b"250-mx.example.jp\r\n250 PIPELINING\r\n")
    rest(s, b"SYN before the first command")


def synack_before_command(w):
    s = session(w, isn_c=900000, isn_s=5000)
    s.handshake()
    s.server(floods.BANNER)
    frame(s, True, 123456789, s.seq[False], pcapw.TCP_SYN | ACK)
    challenge_ack(s)
    s.client(b"EHLO client.example\r\n")
    s.server(b"250-mx.example.jp\r\n250 PIPELINING\r\n")
    rest(s, b"SYN-ACK before the first command")


def syn_joined_late(w):
    s = session(w, isn_c=900000, isn_s=5000)
    s.seq[True] += 1
    s.seq[False] += 1
    s.server(floods.BANNER)
    frame(s, True, 123456789, 0, pcapw.TCP_SYN)
    challenge_ack(s)
    s.client(b"EHLO client.example\r\n")
    s.server(b"250-mx.example.jp\r\n250 PIPELINING\r\n")
    rest(s, b"SYN on a session joined late")


def first_connection(w):
    """A session with one transaction and no end: its FINs are never
    captured."""
    s = session(w, isn_c=900000, isn_s=5000)
    s.handshake()
    hello(s)
    floods.transaction(s, b"alice@example.jp", [b"bob@example.net"],
                       floods.message(b"first connection"), helo=False)
    return s


def reuse_lost_fin(w):
    s = first_connection(w)
    # no FIN captured; ten seconds later the client's port comes round again
    s2 = session(w, ts_us=s.ts + 10000000, isn_c=1000, isn_s=2000000000)
    s2.handshake()
    hello(s2)
    rest(s2, b"second connection")


def reuse_challenged(w):
    s = first_connection(w)
    # the server still holds the old connection: it challenges the new SYN,
    # the client resets at the number the challenge acknowledges, SYNs again
    s2 = session(w, ts_us=s.ts + 10000000, isn_c=1000, isn_s=2000000000)
    frame(s2, True, 1000, 0, pcapw.TCP_SYN)
    frame(s2, False, s.seq[False], s.seq[True], ACK)
    frame(s2, True, s.seq[True], 0, pcapw.TCP_RST)
    s2.ts += 1000000
    s2.handshake()
    hello(s2)
    rest(s2, b"second connection")


def fin_not_taken(w):
    s = session(w)
    s.handshake()
    hello(s)
    # at the next byte, but acknowledging server bytes never sent: a
    # receiver discards it (RFC 9293 §3.10.7.4), and the client goes on
    frame(s, True, s.seq[True], s.seq[False] + 100000, pcapw.TCP_FIN | ACK)
    rest(s, b"after a FIN not taken")


def fin_ahead_not_taken(w):
    s = session(w)
    s.handshake()
    hello(s)
    # where the MAIL command will end, and discarded by the server as above
    mail = b"MAIL FROM:<alice@example.jp>\r\n"
    frame(s, True, s.seq[True] + len(mail), s.seq[False] + 100000, pcapw.TCP_FIN | ACK)
    rest(s, b"after a FIN ahead not taken")


def fin_ahead_covered(w):
    s = session(w)
    s.handshake()
    hello(s)
    # in the middle of the MAIL command: the command's bytes cover it
    frame(s, True, s.seq[True] + 7, s.seq[False], pcapw.TCP_FIN | ACK)
    rest(s, b"after a FIN ahead covered")


def keepalive(w):
    s = session(w)
    s.handshake()
    hello(s)
    # idle: a keep-alive of one garbage byte at the next sequence number - 1
    # (Windows), one of the last byte again, one of none (Linux), each
    # acknowledged
    for data in (b"\0", b"\n", b""):
        s.ts += 45000000
        frame(s, True, s.seq[True] - 1, s.seq[False], ACK, data)
        frame(s, False, s.seq[False], s.seq[True], ACK)
    rest(s, b"after keep-alives")


def time_jump(w):
    s = session(w)
    s.handshake()
    hello(s)
    # another client's SYN stamped ten days ahead (a clock stepped back
    # after it, a damaged record), then time goes on where it was
    other = pcapw.TcpSession(w, ("192.0.2.99", 40099), SERVER, ts_us=s.ts + 10 * 86400 * 1000000)
    other._send(True, pcapw.TCP_SYN)
    rest(s, b"after a time jump 0")
    # sessions that stop without a FIN, each 400 s after the one before:
    # idle ones end while the capture goes on
    for i in range(1, 5):
        s = pcapw.TcpSession(w, ("192.0.2.10", 40001 + i), SERVER, ts_us=T0 + i * 400 * 1000000,
                             step_us=1000)
        s.handshake()
        hello(s)
        floods.transaction(s, b"alice@example.jp", [b"bob@example.net"],
                           floods.message(b"after a time jump %d" % i), helo=False)


def first_segment_late(w):
    s = session(w)
    s.handshake()
    s.server(floods.BANNER)
    seq = s.seq[True]
    frame(s, True, seq + 9, s.seq[False], ACK | PSH, b"client.example\r\n")
    frame(s, True, seq, s.seq[False], ACK | PSH, b"EHLO good")
    s.seq[True] += len(b"EHLO goodclient.example\r\n")
    s.server(b"250-mx.example.jp\r\n250 PIPELINING\r\n")
    rest(s, b"first segment late")


def syn_seq_jump(w):
    s = session(w, isn_c=3000000000)
    frame(s, True, 7000, 0, pcapw.TCP_SYN)
    s.handshake()
    hello(s)
    rest(s, b"after a SYN seq jump")


def bad_checksum_first(w, fake):
    """Valid checksums all through, but for `fake` sent with a bad one at
    the sequence numbers of the MAIL command that follows."""
    s = session(w, checksums=True)
    s.handshake()
    hello(s)
    mail = b"MAIL FROM:<alice@example.jp>\r\n"
    assert len(fake) == len(mail)
    frame(s, True, s.seq[True], s.seq[False], ACK | PSH, fake, bad_checksum=True)
    rest(s, b"after a bad checksum")


def bad_checksum_noop(w):
    bad_checksum_first(w, b"NOOP\r\n" * 5)


def bad_checksum_decoy(w):
    bad_checksum_first(w, b"MAIL FROM:<decoy@example.jp>\r\n")


def bad_checksum_rst(w):
    s = session(w, checksums=True)
    s.handshake()
    hello(s)
    frame(s, True, s.seq[True], 0, pcapw.TCP_RST, bad_checksum=True)
    # quiet for longer than a closed flow lingers, as in rst_out_of_window
    other = pcapw.TcpSession(w, ("192.0.2.99", 40099), SERVER, ts_us=s.ts + 5500000,
                             checksums=True)
    other._send(True, pcapw.TCP_SYN)
    s.ts += 6000000
    rest(s, b"after a RST with a bad checksum")


SCENARIOS = {
    "ip_length_lie": (ip_length_lie, [("after a lying IP length", "client.example")]),
    "tso_length_zero": (tso_length_zero, [("segmentation offload", "client.example")]),
    "ack_ahead": (ack_ahead, [("acked ahead", "client.example")]),
    "rst_out_of_window": (rst_out_of_window, [("after a forged RST", "client.example")]),
    "syn_mid_session": (syn_mid_session, [("after a forged SYN", "client.example")],
                        ["shutdown"]),
    "syn_challenge_ack": (syn_challenge_ack, [("after a challenged SYN", "client.example")],
                          ["shutdown"]),
    "syn_before_command": (syn_before_command,
                           [("SYN before the first command", "client.example")], ["shutdown"]),
    "synack_before_command": (synack_before_command,
                              [("SYN-ACK before the first command", "client.example")],
                              ["shutdown"]),
    "syn_joined_late": (syn_joined_late, [("SYN on a session joined late", "client.example")],
                        ["shutdown"]),
    "reuse_lost_fin": (reuse_lost_fin, [("first connection", "client.example"),
                                        ("second connection", "client.example")],
                       ["reused", "shutdown"]),
    "reuse_challenged": (reuse_challenged, [("first connection", "client.example"),
                                            ("second connection", "client.example")],
                         ["reused", "shutdown"]),
    "fin_not_taken": (fin_not_taken, [("after a FIN not taken", "client.example")]),
    "fin_ahead_not_taken": (fin_ahead_not_taken,
                            [("after a FIN ahead not taken", "client.example")]),
    "fin_ahead_covered": (fin_ahead_covered, [("after a FIN ahead covered", "client.example")]),
    "keepalive": (keepalive, [("after keep-alives", "client.example")]),
    "time_jump": (time_jump, [("after a time jump %d" % i, "client.example") for i in range(5)],
                  ["closed", "idle", "idle", "idle", "idle", "shutdown"]),
    "first_segment_late": (first_segment_late, [("first segment late", "goodclient.example")]),
    "syn_seq_jump": (syn_seq_jump, [("after a SYN seq jump", "client.example")]),
    "bad_checksum_noop": (bad_checksum_noop, [("after a bad checksum", "client.example")]),
    "bad_checksum_decoy": (bad_checksum_decoy, [("after a bad checksum", "client.example")]),
    "bad_checksum_rst": (bad_checksum_rst,
                         [("after a RST with a bad checksum", "client.example")],
                         ["shutdown", "shutdown"]),
}


def sample_then_decoy(w, bad):
    """A session whose client sends 1000 - 5 keep-alive ACKs (the handshake,
    the greeting and the EHLO make 1000 segments verified), `bad` of them,
    the last ones, with bad checksums; then a decoy MAIL FROM with a bad
    checksum ahead of the real one, and the server's EHLO reply."""
    s = session(w, checksums=True)
    s.handshake()
    s.server(floods.BANNER)
    s.client(b"EHLO client.example\r\n")
    for i in range(995):
        frame(s, True, s.seq[True], s.seq[False], ACK, bad_checksum=i >= 995 - bad)
    s.server(b"250-mx.example.jp\r\n250 PIPELINING\r\n")
    frame(s, True, s.seq[True], s.seq[False], ACK | PSH, b"MAIL FROM:<decoy@example.jp>\r\n",
          bad_checksum=True)
    rest(s, b"after the sample")


def checksum_modes(c, tmp):
    path = os.path.join(tmp, "decoy.pcap")
    w = pcapw.PcapWriter(path)
    bad_checksum_decoy(w)
    w.close()
    recs = rwtest.records(path, "--checksums", "off")
    c.eq("--checksums off: the decoy is taken", [r.get("mailfrom") for r in recs],
         ["decoy@example.jp"])
    recs = rwtest.records(path, "--checksums", "on")
    c.eq("--checksums on: the decoy is left out", [r.get("mailfrom") for r in recs],
         ["alice@example.jp"])
    p = rwtest.run(["-r", path, "--redis", "none", "--stats-interval", "1ms"])
    c.true("summary: 1 segment with a bad TCP checksum left out",
           "lines cut for want of a line buffer, 1 segments with a bad TCP checksum left out"
           in p.stderr)

    path = os.path.join(tmp, "offload.pcap")
    w = pcapw.PcapWriter(path)
    keepalive(w)
    w.close()
    c.eq("checksums all 0, auto: read whole", len(rwtest.records(path)), 1)
    c.eq("checksums all 0, --checksums on: nothing", len(rwtest.records(path, "--checksums",
                                                                          "on")), 0)
    p = rwtest.run(["-r", path, "--redis", "none", "--records", "/dev/null"])
    c.true("checksums all 0, auto: the summary says they were used (%s)" % p.stderr,
           re.search(r"checksums: (\d+) of \1 TCP segments verified had bad checksums and "
                     r"were used", p.stderr))

    for bad, want, verdict in ((99, "alice@example.jp", "99 of the first 1000 TCP segments "
                                "verified have bad checksums: segments with bad ones are "
                                "left out"),
                               (100, "decoy@example.jp", "100 of the first 1000 TCP segments "
                                "verified have bad checksums: the capture is made where the "
                                "NIC fills them in")):
        path = os.path.join(tmp, "sample%d.pcap" % bad)
        w = pcapw.PcapWriter(path)
        sample_then_decoy(w, bad)
        w.close()
        p = rwtest.run(["-r", path, "--redis", "none", "-v", "--records", "-"])
        recs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        c.eq("auto, %d bad in the sample: the MAIL FROM" % bad,
             [r.get("mailfrom") for r in recs], [want])
        c.true("auto, %d bad in the sample: told (%s)" % (bad, p.stderr), verdict in p.stderr)

    # a segment cut by the snap length is used: its gap is in the record
    path = os.path.join(tmp, "cut.pcap")
    w = pcapw.PcapWriter(path)
    s = session(w, checksums=True)
    s.handshake()
    hello(s)
    s.client(b"MAIL FROM:<alice@example.jp>\r\n")
    s.server(b"250 2.1.0 Ok\r\n")
    s.client(b"RCPT TO:<bob@example.net>\r\n")
    s.server(b"250 2.1.5 Ok\r\n")
    s.client(b"DATA\r\n")
    s.server(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    s.client(floods.message(b"cut by the snap length"))
    body = b"x" * 1000 + b"\r\n"
    f = pcapw.tcp_frame(s.c, s.s, s.cp, s.sp, s.seq[True], s.seq[False], ACK | PSH, body,
                        s.ident, 0x1234)
    w.f.write(pcapw._REC.pack(s.ts // 1000000, s.ts % 1000000, 100, len(f)) + f[:100])
    s.ts += s.step
    s.seq[True] += len(body)
    s.client(b".\r\n")
    s.server(b"250 2.0.0 Ok: queued as FLOOD1\r\n")
    s.close()
    w.close()
    recs = rwtest.records(path, "--checksums", "on")
    c.eq("cut by the snap length: the record", [(r.get("subject"), r.get("gaps")) for r in recs],
         [("cut by the snap length", 1)])
    # the 46 bytes captured are read; the rest of the 1002 is the gap
    c.eq("cut by the snap length: the gap's bytes",
         [f.get("gap_bytes") for f in rwtest.flows(path, "--checksums", "on")], [1002 - 46])


def main():
    c = rwtest.Checker()
    only = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        for name, (build, want, *ends) in SCENARIOS.items():
            if only and name not in only:
                continue
            path = os.path.join(tmp, name + ".pcap")
            w = pcapw.PcapWriter(path)
            build(w)
            w.close()
            recs = rwtest.records(path)
            c.eq("%s: records" % name, len(recs), len(want))
            for i, (subject, helo) in enumerate(want[:len(recs)]):
                r = recs[i]
                c.eq("%s[%d]: subject" % (name, i), r.get("subject"), subject)
                c.eq("%s[%d]: helo" % (name, i), r.get("helo"), helo)
                c.eq("%s[%d]: mailfrom" % (name, i), r.get("mailfrom"), "alice@example.jp")
                c.eq("%s[%d]: rcptto" % (name, i), r.get("rcptto"), ["bob@example.net"])
                c.eq("%s[%d]: last_reply" % (name, i), r.get("last_reply"),
                     "250 2.0.0 Ok: queued as FLOOD1")
                c.eq("%s[%d]: gaps" % (name, i), r.get("gaps"), None)
            if ends:
                c.eq("%s: flows ended" % name, [f.get("end") for f in rwtest.flows(path)],
                     ends[0])
        if not only or "checksum_modes" in only:
            checksum_modes(c, tmp)
    c.done()


if __name__ == "__main__":
    main()
