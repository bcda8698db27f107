#!/usr/bin/python3
# Derived captures: things that cannot be produced live on this machine.
# Every output starts from a live capture made by gen_captures.py; only the
# listed transformation is applied, timestamps are kept (an inserted packet
# gets the time of its predecessor + a few microseconds, so files stay in
# time order), checksums of rewritten packets are recomputed.
#
#   basic.pcap        -> linktype-raw.pcap      (LINKTYPE_RAW 101: Ethernet header removed)
#                     -> linktype-null.pcap     (DLT_NULL 0: 4-byte host-order AF_INET=2 header)
#                     -> vlan-8021q.pcap        (tcprewrite: one 802.1Q tag, VID 100)
#                     -> vlan-qinq.pcap         (802.1ad S-tag VID 200 + 802.1Q C-tag VID 100)
#                     -> fragments.pcap         (the DATA segment as 3 IPv4 fragments)
#                     -> fragments-reversed.pcap (same fragments, last one first)
#   segmented.pcap    -> tcp-reorder.pcap, tcp-retrans.pcap, tcp-overlap.pcap,
#                        tcp-gap.pcap, tcp-disorder.pcap (all of the first three)
#   two-messages.pcap -> one-direction.pcap     (client->server packets only)
#                     -> truncated.pcap         (file cut in the middle of a packet)

import os
import struct
import subprocess
import sys

from scapy.layers.inet import IP, TCP, fragment
from scapy.layers.l2 import Ether

HERE = os.path.dirname(os.path.abspath(__file__))
P = lambda n: os.path.join(HERE, n)


# ----------------------------------------------------------- pcap file I/O ---

class Rec:
    def __init__(self, sec, frac, data, orig=None):
        self.sec, self.frac, self.data = sec, frac, data
        self.orig = len(data) if orig is None else orig

    def copy(self, data=None, dt=0):
        sec, frac = self.sec, self.frac + dt
        while frac >= 1000000:
            sec, frac = sec + 1, frac - 1000000
        return Rec(sec, frac, self.data if data is None else data)


def read_pcap(path):
    raw = open(path, 'rb').read()
    magic = raw[:4]
    assert magic == b'\xd4\xc3\xb2\xa1', 'expect little-endian usec pcap: %s' % path
    _, _, _, _, _, snap, lt = struct.unpack('<IHHiIII', raw[:24])
    recs, off = [], 24
    while off < len(raw):
        sec, frac, cap, orig = struct.unpack('<IIII', raw[off:off + 16])
        recs.append(Rec(sec, frac, raw[off + 16:off + 16 + cap], orig))
        off += 16 + cap
    return lt, snap, recs


def write_pcap(path, linktype, recs, snap=262144):
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, snap, linktype))
        for r in recs:
            f.write(struct.pack('<IIII', r.sec, r.frac, len(r.data), len(r.data)))
            f.write(r.data)
    print('  wrote', os.path.basename(path), os.path.getsize(path), 'bytes')


def tcp_of(rec):
    e = Ether(rec.data)
    return e if TCP in e else None


def refresh(e):
    """Recompute lengths/checksums after an edit."""
    del e[IP].len
    del e[IP].chksum
    del e[TCP].chksum
    return bytes(e)


# ------------------------------------------------------------- link types ---

def linktypes():
    lt, snap, recs = read_pcap(P('basic.pcap'))
    assert lt == 1
    write_pcap(P('linktype-raw.pcap'), 101, [r.copy(r.data[14:]) for r in recs])
    write_pcap(P('linktype-null.pcap'), 0,
               [r.copy(struct.pack('<I', 2) + r.data[14:]) for r in recs])


def vlans():
    subprocess.run(['tcprewrite', '--enet-vlan=add', '--enet-vlan-tag=100',
                    '--enet-vlan-cfi=0', '--enet-vlan-pri=0',
                    '--infile=' + P('basic.pcap'), '--outfile=' + P('vlan-8021q.pcap')],
                   check=True)
    print('  wrote vlan-8021q.pcap', os.path.getsize(P('vlan-8021q.pcap')), 'bytes (tcprewrite)')
    lt, snap, recs = read_pcap(P('basic.pcap'))
    out = []
    for r in recs:
        d = r.data
        tags = struct.pack('>HHHH', 0x88a8, 200, 0x8100, 100)
        out.append(r.copy(d[:12] + tags + d[12:]))
    write_pcap(P('vlan-qinq.pcap'), 1, out)


# -------------------------------------------------------------- fragments ---

def fragments():
    lt, snap, recs = read_pcap(P('basic.pcap'))
    # the client's DATA content segment = largest client->server TCP payload
    idx = max(range(len(recs)), key=lambda i: len(tcp_of(recs[i])[TCP].payload)
              if tcp_of(recs[i])[TCP].dport == 25 else -1)
    e = Ether(recs[idx].data)
    ip = e[IP]
    ip.flags = 0                      # clear DF: a router fragmented it
    del ip.chksum
    del ip.len
    frags = fragment(IP(bytes(ip)), fragsize=400)
    assert len(frags) == 3, len(frags)
    eth = e.copy()
    eth.remove_payload()
    fr = [recs[idx].copy(bytes(eth / f), dt=i) for i, f in enumerate(frags)]
    write_pcap(P('fragments.pcap'), 1, recs[:idx] + fr + recs[idx + 1:])
    rev = [recs[idx].copy(bytes(eth / f), dt=i) for i, f in enumerate(reversed(frags))]
    write_pcap(P('fragments-reversed.pcap'), 1, recs[:idx] + rev + recs[idx + 1:])


# ------------------------------------------------------------ TCP disorder ---

FORGED = b'FORGED-BY-OVERLAP-RETRANSMIT\r\nX-Forged: overlap\r\n'


def segmented_parts():
    lt, snap, recs = read_pcap(P('segmented.pcap'))
    data_idx = []      # indexes of client payload packets of transaction 1's DATA
    seen_data = False
    for i, r in enumerate(recs):
        e = tcp_of(r)
        pl = bytes(e[TCP].payload)
        if e[TCP].dport != 25 or not pl:
            continue
        if not seen_data:
            seen_data = pl == b'DATA\r\n'
            continue
        data_idx.append(i)
        if pl.endswith(b'\r\n.\r\n'):
            break
    assert len(data_idx) == 10, data_idx
    return recs, data_idx


def server_reply_idx(recs, prefix):
    for i, r in enumerate(recs):
        e = tcp_of(r)
        if e[TCP].sport == 25 and bytes(e[TCP].payload).startswith(prefix):
            return i
    raise KeyError(prefix)


def forged_overlap(recs, d2, d3):
    """A retransmission covering the last 30 bytes of D2 and the first 19 of
    D3, with different bytes.  Sent after both originals were ACKed."""
    e2, e3 = tcp_of(recs[d2]), tcp_of(recs[d3])
    p2, p3 = bytes(e2[TCP].payload), bytes(e3[TCP].payload)
    assert p2.endswith(b'disaster prevention division\r\n') and len(b'disaster prevention division\r\n') == 30
    assert p3.startswith(b'MIME-Version: 1.0\r\n') and len(b'MIME-Version: 1.0\r\n') == 19
    e = e3.copy()
    e[TCP].seq = e2[TCP].seq + len(p2) - 30
    e[TCP].remove_payload()
    e[TCP].add_payload(FORGED)
    return refresh(e)


def disorder():
    recs, D = segmented_parts()
    d = {k + 1: D[k] for k in range(10)}          # D1..D10 -> record index

    # reorder: D3 before D2, D6 before D5 (packets swap places, times stay).
    # The server's ACK after the first slot must not acknowledge data it has
    # not received yet: it becomes a duplicate ACK of what came before, as a
    # receiver sends when a segment arrives out of order. (Acknowledging a
    # hole would tell a sensor the bytes were lost by the capture.)
    def swapped(lst, a, b):
        lst = list(lst)
        ta, tb = (lst[a].sec, lst[a].frac), (lst[b].sec, lst[b].frac)
        first_seq = tcp_of(lst[a])[TCP].seq
        lst[a], lst[b] = lst[b].copy(), lst[a].copy()
        lst[a].sec, lst[a].frac = ta
        lst[b].sec, lst[b].frac = tb
        for k in range(a + 1, b):
            e = tcp_of(lst[k])
            if e[TCP].sport == 25 and not bytes(e[TCP].payload):
                e[TCP].ack = first_seq
                lst[k] = lst[k].copy(refresh(e))
        return lst
    reo = swapped(swapped(recs, d[2], d[3]), d[5], d[6])
    write_pcap(P('tcp-reorder.pcap'), 1, reo)

    # retransmissions: D6 again right after itself, D2 again after D4 (late
    # duplicate of old data), the server's "354" reply of transaction 1 twice
    r354 = server_reply_idx(recs, b'354 ')
    ins = {d[6]: [recs[d[6]].copy(dt=5)],
           d[4]: [recs[d[4]].copy(recs[d[2]].data, dt=5)],
           r354: [recs[r354].copy(dt=5)]}
    out = []
    for i, r in enumerate(recs):
        out.append(r)
        out.extend(ins.get(i, []))
    write_pcap(P('tcp-retrans.pcap'), 1, fix_time(out))

    # overlap with different bytes, after D3
    forged = forged_overlap(recs, d[2], d[3])
    out = []
    for i, r in enumerate(recs):
        out.append(r)
        if i == d[3] + 1:                  # after D3 and the server's ACK of it
            out.append(r.copy(forged, dt=5))
    write_pcap(P('tcp-overlap.pcap'), 1, fix_time(out))

    # gap: D6 never captured
    write_pcap(P('tcp-gap.pcap'), 1, [r for i, r in enumerate(recs) if i != d[6]])

    # all of reorder + retransmissions + overlap in one file
    out = []
    for i, r in enumerate(reo):
        out.append(r)
        if i == d[3] + 1:                  # D2 (moved here) and its ACK are in
            out.append(r.copy(forged, dt=5))
        if i == d[4]:
            out.append(r.copy(recs[d[2]].data, dt=5))
        if i == d[6]:                      # slot of D6 now holds D5
            out.append(r.copy(dt=5))
        if i == r354:
            out.append(r.copy(dt=5))
    write_pcap(P('tcp-disorder.pcap'), 1, fix_time(out))


def fix_time(recs):
    """Make timestamps non-decreasing (an inserted copy never predates)."""
    last = (0, 0)
    for r in recs:
        if (r.sec, r.frac) < last:
            r.sec, r.frac = last
        last = (r.sec, r.frac)
    return recs


# --------------------------------------------------- one direction, truncated ---

def one_direction_and_truncated():
    lt, snap, recs = read_pcap(P('two-messages.pcap'))
    client = [r for r in recs if tcp_of(r)[IP].src == '192.0.2.28']
    write_pcap(P('one-direction.pcap'), 1, client)

    # truncated: keep the file bytes up to the middle of the client segment
    # that carries the second message's content
    raw = open(P('two-messages.pcap'), 'rb').read()
    off, n_data = 24, 0
    while off < len(raw):
        sec, frac, cap, orig = struct.unpack('<IIII', raw[off:off + 16])
        e = Ether(raw[off + 16:off + 16 + cap])
        pl = bytes(e[TCP].payload)
        if e[TCP].dport == 25 and b'Subject: Second of two messages' in pl:
            cut = off + 16 + 54 + 12 + len(pl) // 2
            break
        off += 16 + cap
    else:
        raise RuntimeError('second message not found')
    with open(P('truncated.pcap'), 'wb') as f:
        f.write(raw[:cut])
    print('  wrote truncated.pcap', cut, 'bytes (cut inside the record at file offset %d)' % off)


def main():
    print('== postprocess')
    linktypes()
    vlans()
    fragments()
    disorder()
    one_direction_and_truncated()


if __name__ == '__main__':
    main()
