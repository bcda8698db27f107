#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from the captures in tests/captures and
tests/scenarios (and a few hand-written inputs for what no capture holds).

    tests/fuzz/make-seeds.py [--out DIR]     # default: tests/fuzz/seeds

writes DIR/packets, DIR/smtp, DIR/message and DIR/subject, one file per input,
named by the SHA-1 of its content (as libFuzzer names corpus files), in each
target's input format (the comment at the top of each fuzz-*.c):

  packets   frames of a capture, in capture order, cut into inputs of at most
            PACKETS_MAX bytes at frame boundaries
  smtp      each TCP session's two directions, reassembled (a small
            in-order reassembler here), as client/server chunks in the order
            the bytes were delivered
  message   the content of each DATA / BDAT transfer (dot-unstuffed), plus
            hand-written MIME, RFC 2231 and RFC 2047 cases
  subject   each message's Subject, decoded to UTF-8, plus hand-written ones

Pure Python (no scapy): pcap and pcapng are read here, and the link types the
sensor decodes are parsed far enough to find TCP. Deterministic: the same
captures give the same files.
"""
import argparse
import email.header
import glob
import hashlib
import os
import re
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# fuzz-packets.c's `dlts` table, in its order
DLT_INDEX = {1: 0, 0: 1, 12: 2, 101: 3, 108: 4, 113: 5, 228: 6, 229: 7, 276: 8}
PACKETS_BOUNDS = 2          # fuzz-packets.c bounds[2]: 16 flows, 8 sessions
PACKETS_MAX = 16 * 1024     # bytes per packets seed
SMTP_MAX = 16 * 1024        # bytes per smtp seed
MESSAGE_MAX = 16 * 1024     # bytes per message seed
PER_CAPTURE_MAX = 12        # seeds of one kind taken from one capture
SERVER_PORTS = {25, 465, 587, 2525}
DELIM = b"\xff\xff"          # fuzz-smtp.c's chunk separator


# --- capture files -------------------------------------------------------------------

def read_capture(path):
    """(linktype, [(ts_us, frame bytes)]) of a pcap or pcapng file."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4",
                 b"\xa1\xb2\x3c\x4d"):
        return read_pcap(data)
    if magic == b"\x0a\x0d\x0d\x0a":
        return read_pcapng(data)
    raise ValueError("%s: not a capture file" % path)


def read_pcap(data):
    le = data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
    nano = data[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    e = "<" if le else ">"
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0fffffff
    off, out = 24, []
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        frame = data[off:off + caplen]
        off += caplen
        out.append((sec * 1000000 + (frac // 1000 if nano else frac), frame))
    return linktype, out


def read_pcapng(data):
    off, out, linktypes, e = 0, [], [], "<"
    while off + 12 <= len(data):
        btype = struct.unpack(e + "I", data[off:off + 4])[0]
        if btype == 0x0a0d0d0a:
            e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        blen = struct.unpack(e + "I", data[off + 4:off + 8])[0]
        body = data[off + 8:off + blen - 4]
        if btype == 1:      # IDB
            linktypes.append(struct.unpack(e + "H", body[:2])[0])
        elif btype == 6:    # EPB (timestamps: assume the default µs resolution)
            iface, hi, lo, caplen, _ = struct.unpack(e + "IIIII", body[:20])
            out.append((hi << 32 | lo, body[20:20 + caplen]))
        if blen < 12:
            break
        off += blen
    return (linktypes[0] if linktypes else 1), out


# --- just enough decoding to find TCP ----------------------------------------------

def l3_of(linktype, frame):
    """(ethertype-ish version, l3 bytes) or None."""
    if linktype == 1:
        off, et = 12, None
        while off + 2 <= len(frame):
            et = struct.unpack(">H", frame[off:off + 2])[0]
            if et in (0x8100, 0x88a8):
                off += 4
                continue
            return et, frame[off + 2:]
        return None
    if linktype in (0, 108):
        return 0, frame[4:]
    if linktype in (12, 101, 228, 229):
        return 0, frame
    if linktype == 113:
        return struct.unpack(">H", frame[14:16])[0], frame[16:]
    if linktype == 276:
        return struct.unpack(">H", frame[0:2])[0], frame[20:]
    return None


def tcp_of(linktype, frame):
    """(src, sport, dst, dport, seq, flags, payload) of a TCP segment, or None."""
    r = l3_of(linktype, frame)
    if not r or not r[1]:
        return None
    ip = r[1]
    ver = ip[0] >> 4
    if ver == 4 and len(ip) >= 20:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        frag = struct.unpack(">H", ip[6:8])[0]
        if ip[9] != 6 or frag & 0x3fff:
            return None
        src, dst, tcp = ip[12:16], ip[16:20], ip[ihl:total]
    elif ver == 6 and len(ip) >= 40:
        if ip[6] != 6:
            return None
        plen = struct.unpack(">H", ip[4:6])[0]
        src, dst, tcp = ip[8:24], ip[24:40], ip[40:40 + plen]
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq = struct.unpack(">HHI", tcp[:8])
    doff = (tcp[12] >> 4) * 4
    return src, sport, dst, dport, seq, tcp[13], tcp[doff:]


# --- seeds ----------------------------------------------------------------------------

class Out:
    def __init__(self, root):
        self.root = root
        self.counts = {}

    def put(self, kind, data):
        d = os.path.join(self.root, kind)
        os.makedirs(d, exist_ok=True)
        name = hashlib.sha1(data).hexdigest()
        path = os.path.join(d, name)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            self.counts[kind] = self.counts.get(kind, 0) + 1


def packets_seeds(linktype, pkts):
    """Inputs of fuzz-packets: capture order, cut at PACKETS_MAX."""
    head = bytes([DLT_INDEX[linktype], PACKETS_BOUNDS])
    cur, prev = bytearray(head), None
    for ts, frame in pkts:
        frame = frame[:0xffff]
        if prev is None:
            dt = 0
        elif ts < prev:
            dt = 0xff
        else:
            ms = (ts - prev) // 1000
            dt = ms if ms < 0xf0 else min(0xfe, 0xef + max(1, ms // 20000))
        prev = ts
        rec = bytes([dt]) + struct.pack(">H", len(frame)) + frame
        if len(cur) + len(rec) > PACKETS_MAX and len(cur) > len(head):
            yield bytes(cur)
            cur = bytearray(head)
        cur += rec
    if len(cur) > len(head):
        yield bytes(cur)


def sessions(linktype, pkts):
    """TCP sessions of a capture: for each, handshake seen and the in-order
    (from_client, bytes) deliveries in capture order."""
    flows, order = {}, []
    for ts, frame in pkts:
        t = tcp_of(linktype, frame)
        if not t:
            continue
        src, sport, dst, dport, seq, flags, payload = t
        key = tuple(sorted([(src, sport), (dst, dport)]))
        fl = flows.get(key)
        if fl is None:
            if flags & 0x02 and not flags & 0x10:
                client = (src, sport)
            elif dport in SERVER_PORTS or (sport not in SERVER_PORTS and dport < sport):
                client = (src, sport)
            else:
                client = (dst, dport)
            fl = flows[key] = {"client": client, "handshake": False, "next": {}, "ooo": {},
                               "out": []}
            order.append(key)
        d = (src, sport) == fl["client"]
        if flags & 0x02:
            fl["handshake"] = True
            fl["next"][d] = (seq + 1) & 0xffffffff
            continue
        if not payload:
            continue
        nxt = fl["next"].setdefault(d, seq)
        off = (seq - nxt) & 0xffffffff
        if off >= 0x80000000:               # starts before what we have
            cut = (nxt - seq) & 0xffffffff
            if cut >= len(payload):
                continue
            payload, seq = payload[cut:], nxt
        elif off:
            fl["ooo"].setdefault(d, {})[seq] = payload
            continue
        fl["out"].append((d, payload))
        nxt = (seq + len(payload)) & 0xffffffff
        pend = fl["ooo"].get(d, {})
        while nxt in pend:
            p = pend.pop(nxt)
            fl["out"].append((d, p))
            nxt = (nxt + len(p)) & 0xffffffff
        fl["next"][d] = nxt
    return [flows[k] for k in order]


def smtp_seed(fl):
    out = bytearray([1 if fl["handshake"] else 0])
    for d, data in fl["out"]:
        for piece in data.split(DELIM):
            if len(out) + len(piece) + 3 > SMTP_MAX:
                return bytes(out)
            out += DELIM + bytes([1 if d else 0]) + piece
    return bytes(out)


def client_stream(fl):
    return b"".join(data for d, data in fl["out"] if d)


def message_contents(stream):
    """Contents of DATA (dot-unstuffed) and BDAT transfers in a client stream."""
    out, pos = [], 0
    while True:
        m = re.compile(rb"(?im)^(DATA\r?\n|BDAT +(\d+)( +LAST)?\r?\n)").search(stream, pos)
        if not m:
            return out
        if m.group(2) is None:
            end = stream.find(b"\r\n.\r\n", m.end())
            end = len(stream) if end < 0 else end + 2
            body = stream[m.end():end]
            body = re.sub(rb"(?m)^\.\.", b".", body)
            out.append(body)
            pos = end
        else:
            body, p = b"", m.start()
            while True:
                b = re.compile(rb"(?i)BDAT +(\d+)( +LAST)?\r?\n").match(stream, p)
                if not b:
                    break
                n = int(b.group(1))
                body += stream[b.end():b.end() + n]
                p = b.end() + n
                if b.group(2):
                    break
            out.append(body)
            pos = max(p, m.end())


def subject_of(content):
    hdr = content.split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"(?im)^subject:[ \t]*(.*(?:\r\n[ \t].*)*)", hdr)
    if not m:
        return None
    raw = re.sub(rb"\r\n", b"", m.group(1)).decode("latin-1")
    try:
        parts = email.header.decode_header(raw)
        txt = "".join(p.decode(c or "ascii", "replace") if isinstance(p, bytes) else p
                      for p, c in parts)
    except (LookupError, ValueError, email.errors.HeaderParseError):
        txt = raw
    return txt.encode("utf-8", "surrogateescape")


# Hand-written inputs for what the captures do not hold.
EXTRA_MESSAGES = [
    b"From: =?ISO-2022-JP?B?GyRCJEgkaiQiJCgkOhsoQg==?= <a@b.example.jp>\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9?= =?utf-8?q?_=E2=82?= =?utf-8?q?=AC?=\r\n"
    b"To: \"Doe, J\" <j@x.example>, k@y.example\r\n\r\nbody\r\n",
    b"From: helpdesk@org.jp <x@elsewhere.example>\r\nSubject: Re: Re[2]: RE: Fwd: invoice\r\n"
    b"Content-Type: multipart/mixed; boundary=\"AAA\"\r\n\r\n--AAA\r\n"
    b"Content-Type: multipart/alternative; boundary=BBB\r\n\r\n--BBB\r\n"
    b"Content-Type: text/plain\r\n\r\nhi\r\n--BBB--\r\n--AAA\r\n"
    b"Content-Disposition: attachment; filename*0*=utf-8''%E8%AB%8B%E6%B1%82;\r\n"
    b" filename*1=\".zip\"\r\n\r\nUEsDBA==\r\n--AAA\r\n"
    b"Content-Type: application/octet-stream; name=\"=?Shift_JIS?B?kL+LgY+R?=.doc\"\r\n"
    b"\r\n\r\n--AAA--\r\n",
    b"Subject: =?euc-jp?b?pLOk86TLpMGkzw==?=\r\nX-Mailer: test\r\nUser-Agent: other\r\n"
    b"Subject: dup\r\nIn-Reply-To: <1@x>\r\nReferences: <0@x> <1@x>\r\n\r\n",
    b"Content-Type: multipart/mixed; boundary=" + b"x" * 71 + b"\r\n\r\n--" + b"x" * 71 + b"\r\n",
    b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
             for i in range(12)) + b"Content-Type: text/plain; name=deep.txt\r\n\r\nx\r\n",
]
EXTRA_SUBJECTS = [
    "Re: Fwd: 返信：転送: Ｒｅ：　お見積り 2024-01-15", "RE[3]: Re(2): AW: SV: hello  world ",
    "#$%&'kdf!!?@@ZQ", "¡¿ÀÉ 123 456 Ｔｅｓｔ", "回复: 转发: 会议", "회신: 전달: 안녕하세요",
    "\u3000\u3000Re:\u2003x", "x" * 1100, "é" * 600,
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "seeds"))
    args = ap.parse_args()
    for kind in ("packets", "smtp", "message", "subject"):
        shutil.rmtree(os.path.join(args.out, kind), ignore_errors=True)
    out = Out(args.out)
    caps = sorted(glob.glob(os.path.join(ROOT, "tests", "captures", "*.pcap*")) +
                  glob.glob(os.path.join(ROOT, "tests", "scenarios", "*.pcap")))
    for path in caps:
        linktype, pkts = read_capture(path)
        if linktype not in DLT_INDEX:
            continue
        for i, s in enumerate(packets_seeds(linktype, pkts)):
            if i < PER_CAPTURE_MAX:
                out.put("packets", s)
        n_smtp = n_msg = 0
        for fl in sessions(linktype, pkts):
            if not fl["out"]:
                continue
            if n_smtp < PER_CAPTURE_MAX:
                out.put("smtp", smtp_seed(fl))
                n_smtp += 1
            for content in message_contents(client_stream(fl)):
                if n_msg < PER_CAPTURE_MAX:
                    out.put("message", b"\x00\x00" + content[:MESSAGE_MAX])
                    n_msg += 1
                subj = subject_of(content)
                if subj is not None:
                    out.put("subject", b"\x10" + subj)
    for m in EXTRA_MESSAGES:
        out.put("message", b"\x00\x00" + m)
        out.put("message", b"\x05\x03" + m)
    for s in EXTRA_SUBJECTS:
        out.put("subject", b"\x07" + s.encode())
    total = 0
    for kind in sorted(out.counts):
        d = os.path.join(args.out, kind)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        total += size
        print("%-8s %4d inputs %8d bytes" % (kind, len(os.listdir(d)), size))
    print("total %d bytes in %s" % (total, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
