#!/usr/bin/python3
"""gen-span.py — a seeded, sized generator of span-port captures for benchmarks.

Writes a classic pcap (Ethernet, microsecond timestamps) of what a sensor on the
span port of a busy mail server sees: many SMTP sessions open at once and
interleaved, each with a proper TCP life (handshake, segments of at most 1460
bytes over IPv4 and 1440 over IPv6 so that every frame fits a 1500-byte MTU,
delayed ACKs every second segment, FIN both ways), carrying

  * submission on 587 with AUTH PLAIN or LOGIN (a few fail: 535, then QUIT),
    relaying on 25 without AUTH, a little SMTP on 2525;
  * PIPELINING (MAIL/RCPT.../DATA in one segment run) or lock-step commands;
  * 1 to 50 recipients per message, a few rejected (550), all-rejected
    transactions answered 554 to DATA (pipelined) or abandoned with RSET;
  * MIME messages: text/plain or multipart/mixed with base64 attachments whose
    sizes follow a log-normal distribution (median 80 KB, a tail to 20 MB),
    RFC 2047 subjects, dot-stuffed lines;
  * some STARTTLS sessions (then TLS 1.3-looking records of random bytes) and
    some implicit-TLS sessions on 465;
  * background HTTPS flows on 443 (TLS ClientHello with SNI, ServerHello,
    application-data records): the sensor's default filter drops them,
    `-f tcp` lets them in.

IPv4 and IPv6 (10 % of clients by default), valid IP and TCP checksums.

Sizing: --messages N (mail transactions, clear and encrypted) and/or
--bytes B (frame bytes): whichever is reached first stops new sessions; the
sessions already open finish. --rate R places messages at R per second of
packet time; --concurrency C sets how many mail sessions are open at once in
the steady state (session length = C / session rate, Little's law; the
capture ramps up over the first session length). Same arguments, same seed:
the same bytes.

A summary (counts the tests compare with the sensor's output) goes to
OUT.json and, as one line, to stderr:
  transactions    records the sensor should write: one per MAIL FROM in clear
                  text, plus one per STARTTLS session (Zeek's smtp.log rule)
  messages        all mail transactions with content, clear + encrypted
  messages_clear  those in clear text, delivered (250 after the dot)
  packets, bytes, duration_s, sessions, max_concurrent, https_flows, ...

Pure Python (Debian's /usr/bin/python3, no scapy): about 0.3–0.5 million
frames per second; a 1 GB capture takes a minute or two.
"""
import argparse
import base64
import heapq
import json
import math
import random
import struct
import sys
import time

MSS = 1460          # IPv4 on a 1500-byte MTU: every frame fits 1514 bytes
MSS6 = 1440         # IPv6 (40-byte header)
PCAP_SNAPLEN = 65535
LINKTYPE_ETHERNET = 1

MAC_SERVER = bytes.fromhex("02000000aa01")
MAC_ROUTER = bytes.fromhex("02000000bb01")

SRV4 = {25: bytes([192, 0, 2, 25]), 587: bytes([192, 0, 2, 25]), 465: bytes([192, 0, 2, 25]),
        2525: bytes([192, 0, 2, 26])}
SRV6 = bytes.fromhex("20010db8000000010000000000000025")

WORDS = ("invoice meeting report quarterly budget project update review schedule "
         "proposal contract shipment delivery order payment account customer "
         "service team notes draft final agenda minutes summary request approval "
         "travel expense policy training workshop deadline reminder follow-up "
         "question answer details attached please kindly regards thanks urgent "
         "information document files data analysis results status plan next week "
         "monday tuesday friday morning afternoon office remote call conference").split()
SUBJ_JA = ["会議の件", "請求書送付のお知らせ", "ご確認のお願い", "見積書", "打ち合わせ日程",
           "資料送付", "お問い合わせ", "契約更新について"]
EXTS = [("pdf", "application/pdf"), ("docx", "application/vnd.openxmlformats-"
        "officedocument.wordprocessingml.document"), ("xlsx", "application/vnd."
        "openxmlformats-officedocument.spreadsheetml.sheet"), ("zip", "application/zip"),
        ("jpg", "image/jpeg"), ("png", "image/png")]
MAILERS = ["Microsoft Outlook 16.0", "Thunderbird 115.6.0", "Apple Mail (2.3774)",
           "Becky! ver. 2.81", "PHPMailer 6.8.1", None, None]


def csum_add(n):
    """Fold an integer holding big-endian 16-bit words into a ones' complement
    sum: 2^16 = 1 (mod 0xffff), so the word sum is the integer mod 0xffff
    (computed in C by Python's big integers, much faster than a word loop)."""
    s = n % 0xffff
    return 0xffff if s == 0 and n else s


class Content:
    """A byte stream read in pieces: literal parts and slices of a shared
    block of base64 lines (so gigabytes of attachments cost no memory)."""
    __slots__ = ("parts", "i", "off")

    def __init__(self, parts):
        self.parts = parts      # list of bytes, or (block, start, length)
        self.i = 0
        self.off = 0

    def read(self, n):
        out = []
        parts = self.parts
        while n > 0 and self.i < len(parts):
            p = parts[self.i]
            if isinstance(p, bytes):
                length = len(p)
                take = min(n, length - self.off)
                out.append(p[self.off:self.off + take])
            else:
                block, start, length = p
                take = min(n, length - self.off)
                pos = (start + self.off) % len(block)
                if pos + take <= len(block):
                    out.append(block[pos:pos + take])
                else:
                    out.append(block[pos:])
                    out.append(block[:take - (len(block) - pos)])
            self.off += take
            n -= take
            if self.off >= length:
                self.i += 1
                self.off = 0
        return b"".join(out)


class Gen:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        r = random.Random(a.seed ^ 0x5eed)
        # 1 MiB of random bytes, base64 in 76-character lines: attachment bodies.
        raw = r.getrandbits(8 * 768 * 1024).to_bytes(768 * 1024, "little")
        b = base64.b64encode(raw)
        self.b64 = b"".join(b[i:i + 76] + b"\r\n" for i in range(0, len(b), 76))
        self.b64_lines = len(self.b64) // 78
        # Random bytes for TLS records.
        self.rand = r.getrandbits(8 * 256 * 1024).to_bytes(256 * 1024, "little")
        self.packets = 0
        self.bytes = 0
        self.mail_sessions = 0
        self.https_flows = 0
        self.transactions = 0
        self.messages = 0
        self.messages_clear = 0
        self.messages_tls = 0
        self.rcpts = 0
        self.auth_fail = 0
        self.starttls = 0
        self.smtps = 0
        self.ip_id = 0
        self.open_sessions = 0
        self.max_concurrent = 0
        self.out_t0 = None
        self.out_t1 = None
        self.subject_pool = {}

    # --- frames ----------------------------------------------------------

    def tcp_frame(self, c, d, flags, payload, opts=b""):
        """One Ethernet frame of connection c, direction d (0 client->server)."""
        if d == 0:
            sport, dport, seq, ack = c.cport, c.sport, c.seq[0], c.seq[1]
            src, dst, smac, dmac = c.cip, c.sip, MAC_ROUTER, MAC_SERVER
        else:
            sport, dport, seq, ack = c.sport, c.cport, c.seq[1], c.seq[0]
            src, dst, smac, dmac = c.sip, c.cip, MAC_SERVER, MAC_ROUTER
        hl = 20 + len(opts)
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack if flags & 0x10 else 0,
                          (hl // 4) << 4, flags, 64240, 0, 0) + opts
        seglen = hl + len(payload)
        n = int.from_bytes(tcp + payload, "big")
        if seglen & 1:
            n <<= 8
        s = csum_add(n + c.pseudo[d] + seglen)
        ck = (~s) & 0xffff
        tcp = tcp[:16] + ck.to_bytes(2, "big") + tcp[18:]
        if c.v6:
            ip = struct.pack("!IHBB", 0x60000000, seglen, 6, 64) + src + dst
            eth = dmac + smac + b"\x86\xdd"
        else:
            self.ip_id = (self.ip_id + 1) & 0xffff
            ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + seglen, self.ip_id, 0x4000, 64, 6, 0) \
                + src + dst
            ick = (~csum_add(int.from_bytes(ip, "big"))) & 0xffff
            ip = ip[:10] + ick.to_bytes(2, "big") + ip[12:]
            eth = dmac + smac + b"\x08\x00"
        # Sequence space: SYN and FIN count one, payload its length.
        c.seq[d] = (c.seq[d] + len(payload) + (1 if flags & 0x03 else 0)) & 0xffffffff
        return eth + ip + tcp + payload

    # --- planning ----------------------------------------------------------

    def lognormal_size(self, median, sigma, lo, hi):
        return int(min(hi, max(lo, self.rng.lognormvariate(math.log(median), sigma))))

    def text(self, nbytes, stuff_prob=0.02):
        """Plain text lines (CRLF), about nbytes, some dot-stuffed."""
        rng = self.rng
        lines, total = [], 0
        while total < nbytes:
            k = rng.randint(6, 12)
            line = " ".join(rng.choice(WORDS) for _ in range(k))
            if rng.random() < stuff_prob:
                line = ".." + line      # "." + line, dot-stuffed on the wire
            lines.append(line)
            total += len(line) + 2
        return ("\r\n".join(lines) + "\r\n").encode()

    def subject(self, ts):
        """(Subject as sent, is a reply). With --subjects N, one of N
        subjects, a few of them very common (newsletters, notifications)."""
        if self.a.subjects:
            k = int(self.a.subjects * self.rng.random() ** 2)
            if k not in self.subject_pool:
                self.subject_pool[k] = self.fresh_subject(random.Random(k * 7919 + self.a.seed))
            return self.subject_pool[k]
        return self.fresh_subject(self.rng)

    def fresh_subject(self, rng):
        x = rng.random()
        if x < 0.10:
            s = rng.choice(SUBJ_JA) + " %d" % rng.randint(1, 9999)
            return "=?UTF-8?B?%s?=" % base64.b64encode(s.encode()).decode(), False
        if x < 0.15:
            s = rng.choice(SUBJ_JA)
            enc = s.encode("iso2022_jp")
            return "=?ISO-2022-JP?B?%s?=" % base64.b64encode(enc).decode(), False
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7)))
        reply = rng.random() < 0.2
        return ("Re: " if reply else "") + words.capitalize() + \
            (" #%d" % rng.randint(1000, 99999) if rng.random() < 0.5 else ""), reply

    def message(self, sender, rcpts, ts, mid):
        """Content of one message (dot-stuffed, ends with CRLF), as a Content
        and its length on the wire (without the final ".")."""
        a, rng = self.a, self.rng
        subj, reply = self.subject(ts)
        date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(ts))
        shown = rcpts[:8]
        hdr = ["Received: from client.example ([%s]) by mx.example.net with ESMTPSA id %X; %s"
               % ("10.0.0.1", mid, date),
               "From: \"%s\" <%s>" % (sender.split("@")[0].replace(".", " ").title(), sender),
               "To: " + ",\r\n ".join(shown),
               "Subject: " + subj,
               "Date: " + date,
               "Message-ID: <%x.%d@%s>" % (mid, a.seed, sender.split("@")[1]),
               "MIME-Version: 1.0"]
        if reply:
            hdr.append("In-Reply-To: <%x.reply@example.org>" % mid)
        mailer = rng.choice(MAILERS)
        if mailer:
            hdr.append("X-Mailer: " + mailer)
        body_text = self.text(self.lognormal_size(a.body_median, 0.8, min(200, a.body_median),
                                                  20000))
        parts = []
        n_att = 0
        if rng.random() < a.attach_prob:
            n_att = 1 + (rng.random() < 0.3) + (rng.random() < 0.1)
        if n_att == 0:
            hdr += ["Content-Type: text/plain; charset=UTF-8",
                    "Content-Transfer-Encoding: 7bit"]
            parts.append(("\r\n".join(hdr) + "\r\n\r\n").encode() + body_text)
        else:
            bnd = "----=_Part_%d_%d" % (mid, rng.randint(0, 1 << 30))
            hdr += ['Content-Type: multipart/mixed; boundary="%s"' % bnd]
            parts.append(("\r\n".join(hdr) + "\r\n\r\nThis is a multi-part message in MIME "
                          "format.\r\n\r\n--%s\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                          "Content-Transfer-Encoding: 7bit\r\n\r\n" % bnd).encode() + body_text)
            for k in range(n_att):
                ext, ctype = rng.choice(EXTS)
                name = "%s-%d.%s" % (rng.choice(WORDS), rng.randint(1, 999), ext)
                size = self.lognormal_size(a.attach_median, 1.3, 1024, a.attach_max)
                lines = (size + 56) // 57        # 57 bytes per 76-character line
                start = rng.randrange(self.b64_lines) * 78
                parts.append(("\r\n--%s\r\nContent-Type: %s; name=\"%s\"\r\n"
                              "Content-Disposition: attachment; filename=\"%s\"\r\n"
                              "Content-Transfer-Encoding: base64\r\n\r\n"
                              % (bnd, ctype, name, name)).encode())
                parts.append((self.b64, start, lines * 78))
            parts.append(("\r\n--%s--\r\n" % bnd).encode())
        length = sum(len(p) if isinstance(p, bytes) else p[2] for p in parts)
        return Content(parts), length

    def plan_mail(self, idx, t0):
        """A mail session's script: a list of steps, and its message count."""
        a, rng = self.a, self.rng
        x = rng.random()
        if x < a.smtps:
            kind, port = "smtps", 465
        elif x < a.smtps + a.starttls:
            kind, port = "starttls", 587
        elif x < a.smtps + a.starttls + 0.30:
            kind, port = "relay", 25 if rng.random() < 0.9 else 2525
        else:
            kind, port = "submit", 587
        if a.session_messages:
            m = a.session_messages
        else:
            m = 1 if rng.random() < 0.7 else min(10, 2 + int(rng.expovariate(0.7)))
        acct = int(a.accounts * rng.random() ** 3)          # a few heavy senders
        user = "user%d" % acct
        domain = "corp%d.example.jp" % (acct % 50)
        sender = "%s@%s" % (user, domain)
        return kind, port, m, sender, user

    def rcpt_list(self):
        rng = self.rng
        x = rng.random()
        n = 1 if x < 0.6 else rng.randint(2, 5) if x < 0.85 else rng.randint(6, 50)
        n = min(n, self.a.max_rcpt)
        return ["<r%d@dest%d.example.com>" % (rng.randrange(1 << 20), rng.randrange(500))
                for _ in range(n)]

    # --- sessions as generators of (ts, frame) -------------------------------

    def connection(self, idx, port, https=False):
        """Addresses, ports and initial sequence numbers of session idx.

        Sessions open at the same time never share a 5-tuple: the client port
        is idx mod 64000 and the client address carries idx / 64000 in its
        second byte (IPv6: in its host part), so two sessions can only collide
        12.8 million sessions apart. The other address bytes pick one of
        --clients clients."""
        a, rng = self.a, self.rng
        c = Conn()
        k = rng.randrange(a.clients)
        c.v6 = rng.random() < a.ipv6
        hi = (idx // 64000) % 200
        c.cport = 1024 + idx % 64000
        c.sport = port
        if c.v6:
            c.cip = bytes.fromhex("20010db8000c") + bytes([hi, 0, 0, 0, 0, 0]) + \
                (k + 1).to_bytes(4, "big")
            c.sip = SRV6 if not https else \
                bytes.fromhex("20010db80443000000000000000000") + bytes([rng.randrange(1, 255)])
        else:
            c.cip = bytes([10, hi, (k >> 8) & 0xff, k & 0xff])
            c.sip = SRV4[port] if not https else bytes([198, 51, 100, rng.randrange(1, 255)])
        c.seq = [rng.getrandbits(32), rng.getrandbits(32)]
        c.pseudo = [int.from_bytes(c.cip + c.sip, "big") + 6,
                    int.from_bytes(c.sip + c.cip, "big") + 6]
        return c

    def mail_session(self, idx, t0, duration):
        """Plan session idx (kind, account, recipients: what fixes its number
        of turns) and return (generator of its frames, messages planned).
        Message contents are made when their turn comes, to keep 100k open
        sessions small."""
        a, rng = self.a, self.rng
        kind, port, m, sender, user = self.plan_mail(idx, t0)
        c = self.connection(idx, port)
        pipelining = rng.random() < a.pipelining
        mech = "PLAIN" if rng.random() < 0.6 else "LOGIN"
        auth_fails = kind == "submit" and rng.random() < a.auth_fail
        self.mail_sessions += 1
        txns = []
        turns = 4                                   # banner, EHLO, reply, QUIT...
        if kind in ("smtps", "starttls"):
            turns += 3 + 4 * m
        else:
            if kind == "submit":
                turns += 2 if mech == "PLAIN" else 6
            if not auth_fails:
                for _ in range(m):
                    rcpts = self.rcpt_list()
                    rej = [rng.random() < a.reject for _ in rcpts]
                    if rng.random() < 0.01:
                        rej = [True] * len(rcpts)
                    txns.append((rcpts, rej))
                    turns += 4 if pipelining else 6 + 2 * len(rcpts)
        gap = duration / turns
        seg_gap = 12e-6 * (1 + rng.random())        # bursts at about 1 Gbit/s
        g = self._mail_gen(c, kind, m, txns, sender, user, mech, auth_fails, pipelining, t0,
                           gap, seg_gap, idx)
        return g, (m if not auth_fails else 0)

    def _mail_gen(self, c, kind, m, txns, sender, user, mech, auth_fails, pipelining, t, gap,
                  seg_gap, idx):
        rng = self.rng
        st = Stream(self, c, t, gap, seg_gap, idx)
        yield from st.handshake()
        if kind == "smtps":
            self.smtps += 1
            yield from st.tls_session(m, mail=True)
            self.messages += m
            self.messages_tls += m
            return
        yield from st.say(1, b"220 mx.example.net ESMTP Postfix (Debian/GNU)\r\n")
        helo = "EHLO client%d.example.com\r\n" % (idx % 100000)
        yield from st.say(0, helo.encode())
        yield from st.say(1, b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n"
                          b"250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n"
                          b"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
                          b"250 SMTPUTF8\r\n")
        if kind == "starttls":
            self.starttls += 1
            yield from st.say(0, b"STARTTLS\r\n")
            yield from st.say(1, b"220 2.0.0 Ready to start TLS\r\n")
            self.transactions += 1           # the STARTTLS record (Zeek's rule)
            yield from st.tls_session(m, mail=True)
            self.messages += m
            self.messages_tls += m
            return
        if kind == "submit":
            password = "pw-%08x" % rng.getrandbits(32)
            if mech == "PLAIN":
                tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
                yield from st.say(0, b"AUTH PLAIN " + tok + b"\r\n")
            else:
                yield from st.say(0, b"AUTH LOGIN\r\n")
                yield from st.say(1, b"334 VXNlcm5hbWU6\r\n")
                yield from st.say(0, base64.b64encode(user.encode()) + b"\r\n")
                yield from st.say(1, b"334 UGFzc3dvcmQ6\r\n")
                yield from st.say(0, base64.b64encode(password.encode()) + b"\r\n")
            if auth_fails:
                self.auth_fail += 1
                yield from st.say(1, b"535 5.7.8 Error: authentication failed: "
                                  b"authentication failure\r\n")
                yield from st.say(0, b"QUIT\r\n")
                yield from st.say(1, b"221 2.0.0 Bye\r\n")
                yield from st.close()
                return
            yield from st.say(1, b"235 2.7.0 Authentication successful\r\n")
        for k, (rcpts, rej) in enumerate(txns):
            ok = not all(rej)
            content, length = self.message(sender, rcpts, st.t, idx * 16 + k)
            self.transactions += 1
            self.rcpts += len(rcpts)
            mail = b"MAIL FROM:<%s> SIZE=%d\r\n" % (sender.encode(), length)
            rc = [b"RCPT TO:%s\r\n" % r.encode() for r in rcpts]
            rr = [b"550 5.1.1 %s: Recipient address rejected: User unknown\r\n" % r.encode()
                  if j else b"250 2.1.5 Ok\r\n" for r, j in zip(rcpts, rej)]
            if pipelining:
                yield from st.say(0, mail + b"".join(rc) + b"DATA\r\n")
                yield from st.say(1, b"250 2.1.0 Ok\r\n" + b"".join(rr) +
                                  (b"354 End data with <CR><LF>.<CR><LF>\r\n" if ok else
                                   b"554 5.5.1 Error: no valid recipients\r\n"))
            else:
                yield from st.say(0, mail)
                yield from st.say(1, b"250 2.1.0 Ok\r\n")
                for cmd, rep in zip(rc, rr):
                    yield from st.say(0, cmd)
                    yield from st.say(1, rep)
                if not ok:
                    yield from st.say(0, b"RSET\r\n")
                    yield from st.say(1, b"250 2.0.0 Ok\r\n")
                    continue
                yield from st.say(0, b"DATA\r\n")
                yield from st.say(1, b"354 End data with <CR><LF>.<CR><LF>\r\n")
            if not ok:
                continue
            yield from st.send(0, content, length, tail=b".\r\n")
            yield from st.say(1, b"250 2.0.0 Ok: queued as %X\r\n" % (idx * 16 + k))
            self.messages += 1
            self.messages_clear += 1
        yield from st.say(0, b"QUIT\r\n")
        yield from st.say(1, b"221 2.0.0 Bye\r\n")
        yield from st.close()

    def https_flow(self, idx, t0, duration):
        c = self.connection(idx, 443, https=True)
        self.https_flows += 1
        st = Stream(self, c, t0, duration / 8, 12e-6, idx)
        yield from st.handshake()
        yield from st.tls_session(1, mail=False)

    # --- the merge ---------------------------------------------------------

    def run(self, out):
        a, rng = self.a, self.rng
        # messages per session (see plan_mail)
        mean_m = a.session_messages or 0.7 + 0.3 * 3.3
        session_rate = a.rate / mean_m
        duration = a.concurrency / session_rate
        t_next = a.start
        heap = []
        seq = 0
        idx = 0
        https_idx = 1 << 24
        stop = False
        planned_msgs = 0
        w = out.write
        w(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, PCAP_SNAPLEN, LINKTYPE_ETHERNET))
        while True:
            # Start every session due before the next frame.
            while not stop and (not heap or t_next <= heap[0][0]):
                dur = duration * (0.5 + rng.random())
                g, m = self.mail_session(idx, t_next, dur)
                idx += 1
                heapq.heappush(heap, (t_next, seq, g, True, None))
                seq += 1
                self.open_sessions += 1
                if self.open_sessions > self.max_concurrent:
                    self.max_concurrent = self.open_sessions
                if rng.random() < a.https:
                    g = self.https_flow(https_idx, t_next + rng.random() * dur / 2, dur / 2)
                    https_idx += 1
                    heapq.heappush(heap, (t_next, seq, g, False, None))
                    seq += 1
                planned_msgs += m
                # Sessions with more messages are rarer: keep R messages/s.
                t_next += rng.expovariate(a.rate / max(m, 1))
                if (a.messages and planned_msgs >= a.messages) or \
                        (a.bytes and self.bytes >= a.bytes):
                    stop = True
            if not heap:
                break
            # The heap is keyed by each generator's next frame, which it
            # holds (None until first drawn): frames go out in time order,
            # as on a span port. Keyed by the frame before, a session whose
            # next frame came seconds later wrote it ahead of every other
            # session's, and the capture went back in time by up to 6 s.
            ts, sq, g, is_mail, frame = heap[0]
            if frame is None:
                try:
                    nts, frame = next(g)
                except StopIteration:
                    heapq.heappop(heap)
                    if is_mail:
                        self.open_sessions -= 1
                    continue
                heapq.heapreplace(heap, (max(nts, ts), sq, g, is_mail, frame))
                continue
            nts = ts
            sec = int(nts)
            usec = int((nts - sec) * 1e6)
            w(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            w(frame)
            self.packets += 1
            self.bytes += len(frame)
            if self.out_t0 is None:
                self.out_t0 = nts
            self.out_t1 = nts
            heapq.heapreplace(heap, (nts, seq, g, is_mail, None))
            seq += 1
            if a.bytes and self.bytes >= a.bytes and not stop:
                stop = True

    def summary(self):
        a = self.a
        dur = (self.out_t1 or 0) - (self.out_t0 or 0)
        return {
            "seed": a.seed, "packets": self.packets, "bytes": self.bytes,
            "duration_s": round(dur, 6), "start": self.out_t0,
            "sessions": self.mail_sessions, "https_flows": self.https_flows,
            "transactions": self.transactions, "messages": self.messages,
            "messages_clear": self.messages_clear, "messages_tls": self.messages_tls,
            "rcpts": self.rcpts, "auth_failures": self.auth_fail,
            "starttls_sessions": self.starttls, "smtps_sessions": self.smtps,
            "max_concurrent": self.max_concurrent,
            "rate": a.rate, "concurrency": a.concurrency,
            "args": {k: v for k, v in vars(a).items() if k != "out"},
        }


class Conn:
    __slots__ = ("v6", "cip", "sip", "cport", "sport", "seq", "pseudo")


class Stream:
    """The TCP side of one connection: timing, segmentation, ACKs."""

    def __init__(self, g, c, t, gap, seg_gap, idx):
        self.g, self.c, self.t, self.gap, self.seg_gap = g, c, t, gap, seg_gap
        self.unacked = [0, 0]
        self.k = idx & 0x7fffffff
        self.mss = MSS6 if c.v6 else MSS

    def _turn(self):
        # Deterministic jitter without an RNG per session: a cheap LCG.
        self.k = (self.k * 1103515245 + 12345) & 0x7fffffff
        self.t += self.gap * (0.5 + (self.k % 1000) / 1000.0)

    def handshake(self):
        g, c = self.g, self.c
        # MSS option, NOP NOP SACK-permitted
        mss = b"\x02\x04" + self.mss.to_bytes(2, "big") + b"\x01\x01\x04\x02"
        yield self.t, g.tcp_frame(c, 0, 0x02, b"", mss)
        self.t += 0.0002
        yield self.t, g.tcp_frame(c, 1, 0x12, b"", mss)
        self.t += 0.0002
        yield self.t, g.tcp_frame(c, 0, 0x10, b"")

    def say(self, d, data):
        """A short message in one turn (segmented if longer than the MSS)."""
        self._turn()
        g, c = self.g, self.c
        mss = self.mss
        for i in range(0, len(data), mss):
            yield self.t, g.tcp_frame(c, d, 0x18, data[i:i + mss])
            self.t += self.seg_gap
        # The peer's delayed ACK rides on its next data or comes alone.
        self.unacked[d] += 1
        if self.unacked[d] >= 2 or len(data) > mss:
            yield self.t + 0.00004, g.tcp_frame(c, 1 - d, 0x10, b"")
            self.unacked[d] = 0

    def send(self, d, content, length, tail=b""):
        """A bulk transfer: full segments, an ACK every second one."""
        self._turn()
        g, c = self.g, self.c
        left = length
        n = 0
        pending_tail = tail
        while left > 0 or pending_tail:
            chunk = content.read(min(self.mss, left)) if left > 0 else b""
            left -= len(chunk)
            if left == 0 and pending_tail and len(chunk) + len(pending_tail) <= self.mss:
                chunk += pending_tail
                pending_tail = b""
            yield self.t, g.tcp_frame(c, d, 0x18 if left == 0 else 0x10, chunk)
            self.t += self.seg_gap
            n += 1
            if n % 2 == 0:
                yield self.t, g.tcp_frame(c, 1 - d, 0x10, b"")
        if n % 2:
            yield self.t + 0.00004, g.tcp_frame(c, 1 - d, 0x10, b"")

    def tls_record(self, ctype, n):
        """A TLS record of n random bytes (ctype 0x17 application data)."""
        rand = self.g.rand
        start = (self.k * 7919) % (len(rand) - n - 1) if n < len(rand) - 1 else 0
        self.k = (self.k * 1103515245 + 12345) & 0x7fffffff
        return bytes([ctype, 3, 3]) + n.to_bytes(2, "big") + rand[start:start + n]

    def tls_session(self, m, mail):
        """ClientHello, ServerHello (TLS 1.3), CCS, then application records:
        m exchanges whose sizes follow the mail (or web) size distribution."""
        g, rng = self.g, self.g.rng
        sni = (b"mx.example.net" if mail else b"www%d.example.org" % rng.randrange(1000))
        yield from self.say(0, client_hello(sni, rng))
        sh = server_hello(rng) + b"\x14\x03\x03\x00\x01\x01" + self.tls_record(0x17, 2400)
        yield from self.say(1, sh)
        yield from self.say(0, b"\x14\x03\x03\x00\x01\x01" + self.tls_record(0x17, 80))
        for _ in range(m):
            if mail:
                size = g.lognormal_size(4000, 0.8, 500, 100000)
                if rng.random() < g.a.attach_prob:
                    size += int(1.37 * g.lognormal_size(g.a.attach_median, 1.3, 1024,
                                                        g.a.attach_max))
                yield from self.say(0, self.tls_record(0x17, 300))
                yield from self.say(1, self.tls_record(0x17, 60))
                yield from self.tls_bulk(0, size)
                yield from self.say(1, self.tls_record(0x17, 60))
            else:
                yield from self.say(0, self.tls_record(0x17, rng.randint(200, 900)))
                yield from self.tls_bulk(1, g.lognormal_size(20000, 1.5, 300, 5 << 20))
        yield from self.close()

    def tls_bulk(self, d, size):
        parts = []
        while size > 0:
            n = min(size, 16384)
            parts.append(self.tls_record(0x17, n))
            size -= n
        data = b"".join(parts)
        yield from self.send(d, Content([data]), len(data))

    def close(self):
        g, c = self.g, self.c
        self._turn()
        yield self.t, g.tcp_frame(c, 0, 0x11, b"")
        self.t += 0.0002
        yield self.t, g.tcp_frame(c, 1, 0x11, b"")
        self.t += 0.0002
        yield self.t, g.tcp_frame(c, 0, 0x10, b"")


def client_hello(sni, rng):
    """A TLS 1.2-framed ClientHello with SNI, supported_versions (1.3, 1.2),
    ALPN: enough for nDPI to say TLS at once."""
    ext = b""
    name = b"\x00" + len(sni).to_bytes(2, "big") + sni
    sn = len(name).to_bytes(2, "big") + name
    ext += b"\x00\x00" + len(sn).to_bytes(2, "big") + sn
    ext += b"\x00\x0a\x00\x08\x00\x06\x00\x1d\x00\x17\x00\x18"            # groups
    ext += b"\x00\x0b\x00\x02\x01\x00"                                    # ec formats
    ext += b"\x00\x0d\x00\x08\x00\x06\x04\x03\x08\x04\x04\x01"            # sig algs
    ext += b"\x00\x10\x00\x0b\x00\x09\x08http/1.1"                        # ALPN
    ext += b"\x00\x2b\x00\x05\x04\x03\x04\x03\x03"                        # versions
    ks = rng.getrandbits(256).to_bytes(32, "big")
    ext += b"\x00\x33\x00\x26\x00\x24\x00\x1d\x00\x20" + ks                # key share
    suites = b"\x13\x01\x13\x02\x13\x03\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30"
    body = b"\x03\x03" + rng.getrandbits(256).to_bytes(32, "big") + b"\x20" + \
        rng.getrandbits(256).to_bytes(32, "big") + len(suites).to_bytes(2, "big") + suites + \
        b"\x01\x00" + len(ext).to_bytes(2, "big") + ext
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs


def server_hello(rng):
    ext = b"\x00\x2b\x00\x02\x03\x04" + b"\x00\x33\x00\x24\x00\x1d\x00\x20" + \
        rng.getrandbits(256).to_bytes(32, "big")
    body = b"\x03\x03" + rng.getrandbits(256).to_bytes(32, "big") + b"\x20" + \
        rng.getrandbits(256).to_bytes(32, "big") + b"\x13\x01\x00" + \
        len(ext).to_bytes(2, "big") + ext
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + len(hs).to_bytes(2, "big") + hs


def size_arg(s):
    """1000, 10k, 2M, 1.5G (bytes or counts; k = 1000, Ki = 1024)."""
    s = s.strip()
    mult = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024, "Mi": 1 << 20, "Gi": 1 << 30}
    for suf in ("Ki", "Mi", "Gi", "k", "K", "M", "G"):
        if s.endswith(suf):
            return int(float(s[:-len(suf)]) * mult[suf])
    return int(float(s))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", "-o", required=True, help="pcap to write ('-' = stdout)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--messages", type=size_arg, default=0,
                   help="mail transactions to generate (default 1000 when no --bytes)")
    p.add_argument("--bytes", type=size_arg, default=0, help="stop near this capture size")
    p.add_argument("--rate", type=float, default=1000.0,
                   help="messages per second of packet time [1000]")
    p.add_argument("--concurrency", type=int, default=500,
                   help="mail sessions open at once in the steady state [500], up to 100k")
    p.add_argument("--https", type=float, default=0.5,
                   help="background HTTPS flows per mail session [0.5]")
    p.add_argument("--attach-prob", type=float, default=0.25,
                   help="share of messages with base64 attachments [0.25]")
    p.add_argument("--attach-median", type=size_arg, default=80000,
                   help="median attachment size in bytes [80k], log-normal, sigma 1.3")
    p.add_argument("--attach-max", type=size_arg, default=20 << 20,
                   help="largest attachment [20Mi]")
    p.add_argument("--body-median", type=size_arg, default=1500,
                   help="median text body in bytes [1500], log-normal, sigma 0.8")
    p.add_argument("--starttls", type=float, default=0.06, help="share of STARTTLS sessions")
    p.add_argument("--smtps", type=float, default=0.02, help="share of SMTPS (465) sessions")
    p.add_argument("--ipv6", type=float, default=0.1, help="share of IPv6 clients")
    p.add_argument("--auth-fail", type=float, default=0.03,
                   help="share of AUTH attempts answered 535")
    p.add_argument("--reject", type=float, default=0.02, help="share of RCPT answered 550")
    p.add_argument("--accounts", type=int, default=20000,
                   help="sending accounts, a few of them heavy senders [20000]")
    p.add_argument("--clients", type=int, default=5000, help="client addresses [5000]")
    p.add_argument("--subjects", type=int, default=0,
                   help="draw subjects from this many (0: a fresh one per message) [0]")
    p.add_argument("--session-messages", type=int, default=0,
                   help="messages per session (0: 1, sometimes up to 10) [0]")
    p.add_argument("--pipelining", type=float, default=0.7,
                   help="share of sessions that pipeline MAIL/RCPT/DATA [0.7]")
    p.add_argument("--max-rcpt", type=int, default=50, help="most recipients per message [50]")
    p.add_argument("--start", type=float, default=1700000000.0,
                   help="packet time of the first session (unix seconds)")
    p.add_argument("--summary", help="where the JSON summary goes [OUT.json]")
    a = p.parse_args()
    if not a.messages and not a.bytes:
        a.messages = 1000
    if not 1 <= a.concurrency <= 1_000_000:
        p.error("--concurrency must be 1..1000000")
    if a.rate <= 0:
        p.error("--rate must be > 0")
    g = Gen(a)
    t = time.monotonic()
    if a.out == "-":
        g.run(sys.stdout.buffer)
    else:
        with open(a.out, "wb", buffering=1 << 20) as f:
            g.run(f)
    s = g.summary()
    s["generate_s"] = round(time.monotonic() - t, 2)
    path = a.summary or (a.out + ".json" if a.out != "-" else None)
    if path:
        with open(path, "w") as f:
            json.dump(s, f, indent=1)
            f.write("\n")
    print("gen-span: %(packets)d packets, %(bytes)d bytes, %(duration_s).1f s of packet time, "
          "%(sessions)d mail sessions (max %(max_concurrent)d open), %(messages)d messages "
          "(%(messages_clear)d clear), %(transactions)d expected records, %(https_flows)d HTTPS "
          "flows, generated in %(generate_s).1f s" % s, file=sys.stderr)


if __name__ == "__main__":
    main()
