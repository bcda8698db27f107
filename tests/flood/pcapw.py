"""pcapw.py — a small, fast pcap writer for flood captures.

Frames are built from byte templates with struct.pack_into, not with scapy:
a million SYNs must take seconds, not minutes. Ethernet + IPv4 + TCP only,
with a correct IPv4 header checksum and the TCP checksum left at zero (as on
a capturing host with checksum offload, which the sensor recognises, see
tests/captures/checksum-offload.pcap), or filled in with checksums=True.

    w = PcapWriter("out.pcap")
    s = TcpSession(w, ("192.0.2.10", 40000), ("198.51.100.25", 25))
    s.handshake(); s.server(b"220 mx ESMTP\\r\\n"); s.client(b"EHLO x\\r\\n"); ...
    s.close(); w.close()
"""
import socket
import struct

LINKTYPE_ETHERNET = 1
_PCAP_HEADER = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET)
_REC = struct.Struct("<IIII")
_ETH = bytes.fromhex("52540000aa01" "52540000bb02" "0800")
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def ip4(a):
    return socket.inet_aton(a)


def ip_checksum(hdr):
    s = sum(struct.unpack("!10H", hdr))
    s = (s & 0xffff) + (s >> 16)
    s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def tcp_checksum(src, dst, segment):
    """RFC 9293 §3.1: the TCP checksum of segment (header with its checksum
    field zero, and payload) between 4-byte addresses src and dst."""
    data = src + dst + struct.pack("!HH", 6, len(segment)) + segment
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


class PcapWriter:
    """Buffered pcap (microsecond) writer of Ethernet frames."""

    def __init__(self, path, bufsize=1 << 22):
        self.f = open(path, "wb", buffering=bufsize)
        self.f.write(_PCAP_HEADER)
        self.frames = 0
        self.bytes = 0

    def frame(self, ts_us, data):
        n = len(data)
        self.f.write(_REC.pack(ts_us // 1000000, ts_us % 1000000, n, n))
        self.f.write(data)
        self.frames += 1
        self.bytes += n

    def close(self):
        self.f.close()


def tcp_frame(src, dst, sport, dport, seq, ack, flags, payload=b"", ident=0, checksum=False):
    """One Ethernet/IPv4/TCP frame; src and dst are 4-byte addresses. The
    TCP checksum is 0 unless checksum: True computes it, a number is used
    as it is."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff,
                      5 << 4, flags, 65535, 0, 0)
    if checksum is True:
        tcp = tcp[:16] + struct.pack("!H", tcp_checksum(src, dst, tcp + payload)) + tcp[18:]
    elif checksum:
        tcp = tcp[:16] + struct.pack("!H", checksum) + tcp[18:]
    total = 20 + 20 + len(payload)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident & 0xffff, 0x4000, 64, 6,
                               0, src, dst))
    struct.pack_into("!H", ip, 10, ip_checksum(bytes(ip)))
    return _ETH + bytes(ip) + tcp + payload


class SynTemplate:
    """SYNs to one server from varying sources, written straight into the
    pcap's buffer with three pack_into calls per frame: the fast path of the
    SYN flood (a million frames in a few seconds)."""

    def __init__(self, dst, dport):
        frame = tcp_frame(b"\0\0\0\0", dst, 1, dport, 0, 0, TCP_SYN)
        self.dport = dport
        self.rec = _REC.pack(0, 0, len(frame), len(frame)) + frame
        self.size = len(self.rec)
        ip = bytearray(frame[14:34])
        ip[10:12] = b"\0\0"
        # checksum of the IP header without its source address; each frame
        # adds its source's two 16-bit words
        self.partial = sum(struct.unpack("!10H", bytes(ip)))

    def write(self, w, items):
        """items: (ts_us, src_u32, sport, seq) per SYN."""
        buf = bytearray(self.rec * len(items))
        rec, partial, dport = _REC.pack_into, self.partial, self.dport
        ipv = struct.Struct("!HI").pack_into
        tcp = struct.Struct("!HHI").pack_into
        off = 0
        for ts, src, sport, seq in items:
            rec(buf, off, ts // 1000000, ts % 1000000, self.size - 16, self.size - 16)
            c = partial + (src >> 16) + (src & 0xffff)
            c = (c & 0xffff) + (c >> 16)
            c = (c & 0xffff) + (c >> 16)
            ipv(buf, off + 16 + 24, ~c & 0xffff, src)
            tcp(buf, off + 16 + 34, sport, dport, seq)
            off += self.size
        w.f.write(buf)
        w.frames += len(items)
        w.bytes += len(buf) - 16 * len(items)


class TcpSession:
    """A TCP connection written frame by frame with consistent sequence and
    acknowledgement numbers. Payloads longer than mss are cut into segments.
    Each frame advances the session's clock by step_us; `at` moves it.
    checksums=True fills in every TCP checksum."""

    def __init__(self, w, client, server, ts_us=1700000000 * 1000000, isn_c=1000, isn_s=5000,
                 mss=1448, step_us=50, checksums=False):
        self.w = w
        self.c, self.cp = ip4(client[0]), client[1]
        self.s, self.sp = ip4(server[0]), server[1]
        self.ts = ts_us
        self.step = step_us
        self.seq = {True: isn_c & 0xffffffff, False: isn_s & 0xffffffff}
        self.mss = mss
        self.ident = 1
        self.checksums = checksums

    def _send(self, from_client, flags, payload=b"", seq=None):
        src, dst = (self.c, self.s) if from_client else (self.s, self.c)
        sp, dp = (self.cp, self.sp) if from_client else (self.sp, self.cp)
        s = self.seq[from_client] if seq is None else seq
        ack = self.seq[not from_client] if flags & TCP_ACK else 0
        self.w.frame(self.ts, tcp_frame(src, dst, sp, dp, s, ack, flags, payload, self.ident,
                                        self.checksums))
        self.ident += 1
        self.ts += self.step

    def handshake(self):
        self._send(True, TCP_SYN)
        self.seq[True] += 1
        self._send(False, TCP_SYN | TCP_ACK)
        self.seq[False] += 1
        self._send(True, TCP_ACK)

    def send(self, from_client, data):
        for i in range(0, len(data), self.mss):
            seg = data[i:i + self.mss]
            self._send(from_client, TCP_ACK | TCP_PSH, seg)
            self.seq[from_client] = (self.seq[from_client] + len(seg)) & 0xffffffff

    def client(self, data):
        self.send(True, data)

    def server(self, data):
        self.send(False, data)

    def raw(self, from_client, seq, payload, flags=TCP_ACK | TCP_PSH):
        """A segment at an explicit sequence number (retransmissions,
        overlaps, out of order); the session's own counter is not moved."""
        self._send(from_client, flags, payload, seq=seq & 0xffffffff)

    def close(self):
        self._send(True, TCP_FIN | TCP_ACK)
        self.seq[True] += 1
        self._send(False, TCP_FIN | TCP_ACK)
        self.seq[False] += 1
        self._send(True, TCP_ACK)
