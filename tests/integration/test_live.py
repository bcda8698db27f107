#!/usr/bin/python3
"""relaywatch -i: a live capture at 200,000 packets per second, nothing dropped
(issue 6).

A span-port capture made by tests/bench/gen-span.py (mail ports only, so the
default filter keeps every frame; about 2 s at 200k pps) is replayed with
tcpreplay --pps=200000 --preload-pcap (the capture in memory first: reading
it while sending held tcpreplay to ~148k pps here) into one end of a veth pair (MTU 1500, like a span
port) in a network namespace of our own, and relaywatch -i on the other end
(--stats-interval 1 --records FILE, default kernel buffer) captures it.
Nobody else's traffic reaches that namespace, and nobody else's sensor sees
ours. Then:

  * the stats lines show packets received, and dropped=0 if_dropped=0 on every
    one of them and in the final "pcap received" line;
  * the sensor processed every replayed frame, once;
  * every SMTP transaction of the capture was parsed: the records written
    equal the generator's count.

The veth pair keeps its default offloads (TSO/GSO/GRO on, as on most NICs).
That used to matter: with immediate mode libpcap uses TPACKET_V2, whose ring
slots are sized for the largest frame the interface can deliver, 64 KB with
any offload on, so the 128 MB buffer held about 2,000 frames (10 ms at 200k
pps) and frames were dropped. relaywatch uses TPACKET_V3 (blocks of frames of
any size, handed over when full or after 20 ms), which this test shows holds
the rate with the offloads on. lo is no good: its MTU is 64 KB and it queues
every frame twice (outgoing and incoming). Without a veth pair the test falls
back to the namespace's lo with its MTU set to 1500 (`received` then counts
every frame twice and is not compared), and without `ip netns` to the host's
lo.

Needs root (namespaces, raw sockets) and tcpreplay: skipped (77) otherwise,
or when the interface cannot be opened. In a sanitizer build the replay runs
at 20,000 pps: the 200k requirement is the normal build's. The rate tcpreplay
actually reached is printed (199,997 pps on this two-core machine, idle):
it needs a core of its own, and on a loaded machine it falls short of 200k.
"""
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtest  # noqa: E402

GEN = os.path.join(rwtest.SOURCE, "tests", "bench", "gen-span.py")
PPS = 200000
# About 440k frames of SMTP (some STARTTLS and SMTPS, attachments of tens of
# KB): 2.2 s at 200k pps, more than the default 128 MB kernel buffer can hide
# (on lo every frame takes its ring slot twice).
TRAFFIC = ["--messages", "13000", "--rate", "4000", "--concurrency", "2000", "--https", "0",
           "--attach-prob", "0.1", "--attach-median", "20k", "--seed", "6"]
RE_STATS = re.compile(r"relaywatch: stats packets=(\d+) .*?received=(\d+) dropped=(\d+) "
                      r"if_dropped=(\d+)")
RE_FINAL = re.compile(r"relaywatch: pcap received (\d+), dropped (\d+), interface dropped (\d+)")
RE_SEEN = re.compile(r"relaywatch: (\d+) packets \(")
RE_BAD_CSUM = re.compile(r"relaywatch: stats .* bad_checksums=(\d+) ")
RE_ACTUAL = re.compile(r"Actual: (\d+) packets .* sent in ([0-9.]+) seconds")
RE_RATED = re.compile(r"Rated: .*?, ([0-9.]+) pps")


def sanitized():
    try:
        with open(os.path.join(rwtest.BUILD, "meson-info", "intro-buildoptions.json")) as f:
            opts = {o["name"]: o["value"] for o in json.load(f)}
        return opts.get("b_sanitize", "none") not in ("none", "")
    except (OSError, ValueError, KeyError):
        return False


class Netns:
    """A network namespace with a veth pair rw-wire (we replay into it) and
    rw-span (the sensor listens), deleted at exit. Raises OSError if the
    namespace cannot be made; self.span is "lo" when no veth pair can."""

    def __init__(self):
        self.name = "rwlive%d" % os.getpid()
        r = subprocess.run(["ip", "netns", "add", self.name], capture_output=True)
        if r.returncode != 0:
            raise OSError(r.stderr.decode(errors="replace").strip())
        atexit.register(self.delete)
        ip = ["ip", "-n", self.name, "link"]
        subprocess.run(ip + ["set", "lo", "up"], check=True)
        r = subprocess.run(ip + ["add", "rw-wire", "type", "veth", "peer", "name", "rw-span"],
                           capture_output=True)
        if r.returncode == 0:
            for dev in ("rw-wire", "rw-span"):
                subprocess.run(ip + ["set", dev, "mtu", "1500", "up"], check=True)
            self.wire, self.span = "rw-wire", "rw-span"
        else:
            subprocess.run(ip + ["set", "lo", "mtu", "1500"], check=True)
            self.wire = self.span = "lo"

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def delete(self):
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)


def quiet_interface(ck):
    """A span port with no mail on it: the sensor still rewrites its health
    hash at every flush (the wall clock drives the flushes when no packet
    does), so Prometheus does not call it silent, and the hash says how much
    memory the process holds. The host's lo, with a filter nothing passes."""
    with rwtest.RedisServer() as r, tempfile.TemporaryDirectory() as tmp:
        # live, the outputs are logs: a restart adds to them
        recs = os.path.join(tmp, "records.json")
        with open(recs, "w") as f:
            f.write('{"from":"the sensor\'s run before"}\n')
        sensor = rwtest.Background([rwtest.RELAYWATCH, "-i", "lo", "-f", "tcp port 1",
                                    "--redis", r.url, "--flush-interval", "0.2",
                                    "--sensor-name", "quiet", "--records", recs])
        key = "rw:sensor:quiet"
        first = []

        def rewritten():
            v = r.cli("HGET", key, "last_flush").strip()
            if v and not first:
                first.append(int(v))
            # last_flush is in whole seconds of the wall clock
            return bool(v and int(v) >= first[0] + 2) or sensor._dead("the health hash")
        try:
            ck.true("quiet interface: the health hash is rewritten with nothing captured",
                    rwtest.wait_for("last_flush to move 2 s on", rewritten, timeout=30,
                                    step=0.2))
            h = r.cli("HGETALL", key).split()
            h = dict(zip(h[0::2], h[1::2]))
            ck.eq("quiet interface: nothing passed the filter",
                  (h.get("packets_received"), h.get("records"), h.get("sessions")),
                  ("0", "0", "0"))
            # the kernel ring (--buffer-mb, 128 MB by default) is mapped whole
            # when the capture opens and counts as the process's
            ck.true("quiet interface: resident memory includes the 128 MB ring (%s)"
                    % h.get("rss_bytes"), int(h.get("rss_bytes", 0)) >= 128 << 20)
        finally:
            sensor.signal(signal.SIGTERM)
            ck.eq("quiet interface: exit 0 on SIGTERM", sensor.wait(), 0)
        ck.eq("live: the records file is added to, not truncated", count_lines(recs), 1)


# An SMTP server and a client on 127.0.0.1:2525, in one process: N
# transactions over 4 connections, every reply awaited.
KERNEL_SMTP = r"""
import socket, sys, threading
N = int(sys.argv[1])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 2525))
srv.listen(8)
def serve(c):
    f = c.makefile("rb")
    c.sendall(b"220 mx.example.jp ESMTP\r\n")
    data = False
    for line in f:
        if data:
            if line == b".\r\n":
                data = False
                c.sendall(b"250 2.0.0 Ok: queued\r\n")
            continue
        cmd = line[:4].upper()
        if cmd == b"DATA":
            data = True
            c.sendall(b"354 go ahead\r\n")
        elif cmd == b"QUIT":
            c.sendall(b"221 bye\r\n")
            break
        else:
            c.sendall(b"250 ok\r\n")
    c.close()
def accept():
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
for conn in range(4):
    c = socket.create_connection(("127.0.0.1", 2525))
    f = c.makefile("rb")
    def cmd(b):
        c.sendall(b)
        reply = f.readline()
        while reply[3:4] == b"-":
            reply = f.readline()
    f.readline()
    cmd(b"EHLO client.example\r\n")
    for i in range(conn, N, 4):
        cmd(b"MAIL FROM:<alice@example.jp>\r\n")
        cmd(b"RCPT TO:<bob@example.net>\r\n")
        cmd(b"DATA\r\n")
        cmd(b"Subject: kernel %d\r\n\r\nhello\r\n.\r\n" % i)
    cmd(b"QUIT\r\n")
    c.close()
"""


def kernel_checksums(ck, prefix, tmp):
    """Mail the kernel sends on lo: lo leaves TCP checksums for a NIC it
    does not have (partial checksums, as a host with checksum offload
    captures its own segments), so every one is bad. --checksums auto
    reads the 200 transactions whole, and says after 1000 segments that it
    stopped verifying; --checksums on leaves every segment out."""
    for mode, want in (("auto", 200), ("on", 0)):
        recs = os.path.join(tmp, "kernel-%s.json" % mode)
        sensor = rwtest.Background(prefix + [rwtest.RELAYWATCH, "-i", "lo", "-f", "tcp port 2525",
                                             "--redis", "none", "--records", recs, "-v",
                                             "--checksums", mode])
        try:
            sensor.wait_stderr("the capture to open", lambda e: b"relaywatch: reading lo" in e,
                               timeout=30)
            subprocess.run(prefix + [sys.executable, "-c", KERNEL_SMTP, "200"], check=True,
                           timeout=120)
            time.sleep(0.5)
        finally:
            sensor.signal(signal.SIGINT)
            ck.eq("lo, --checksums %s: exit status" % mode, sensor.wait(timeout=60), 0)
        err = sensor.stderr().decode(errors="replace")
        ck.eq("lo, --checksums %s: transactions" % mode, count_lines(recs) or 0, want)
        if mode == "auto":
            ck.true("lo, --checksums auto: no longer verified after 1000 bad",
                    "checksums: 1000 of the first 1000 TCP segments verified have bad" in err)
        else:
            m = re.search(r"lines cut for want of a line buffer, (\d+) segments with a bad "
                          r"TCP checksum left out", err)
            ck.true("lo, --checksums on: segments left out (%s)" % (m and m.group(1)),
                    m and int(m.group(1)) > 1000)


def count_lines(path):
    try:
        with open(path) as f:
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return None


def rotation(ck, prefix, wire, span, tmp):
    """Log rotation: the records file is moved away and SIGHUP makes the
    sensor open its path again; what came before is all in the moved file,
    what comes after all in the new one, nothing lost or doubled. Two
    scenario captures replayed live, one on each side of the signal."""
    scen = os.path.join(rwtest.SOURCE, "tests", "scenarios")
    before, after = (os.path.join(scen, n + ".pcap") for n in ("emotet-reply",
                                                               "benign-newsletter"))
    want = [len(rwtest.run(["-r", c, "--redis", "none", "-q", "--records", "-"])
                .stdout.splitlines()) for c in (before, after)]
    recs = os.path.join(tmp, "rot.json")
    sensor = rwtest.Background(prefix + [rwtest.RELAYWATCH, "-i", span, "--redis", "none",
                                         "--records", recs, "-v"])
    try:
        sensor.wait_stderr("the capture to open", lambda e: b"relaywatch: reading " in e)
        subprocess.run(prefix + ["tcpreplay", "-q", "--intf1=" + wire, before], check=True,
                       capture_output=True)
        rwtest.wait_for("the first records", lambda: count_lines(recs) == want[0] or
                        sensor._dead("the first records"), step=0.05)
        os.rename(recs, recs + ".1")
        sensor.signal(signal.SIGHUP)
        sensor.wait_stderr("the outputs reopened", lambda e: b"SIGHUP: outputs reopened" in e)
        subprocess.run(prefix + ["tcpreplay", "-q", "--intf1=" + wire, after], check=True,
                       capture_output=True)
        rwtest.wait_for("the records after the signal", lambda: count_lines(recs) == want[1]
                        or sensor._dead("the later records"), step=0.05)
    finally:
        sensor.signal(signal.SIGTERM)
        ck.eq("rotation: exit 0 on SIGTERM", sensor.wait(), 0)
    ck.eq("rotation: records (moved file, new file) = the two captures'",
          (count_lines(recs + ".1"), count_lines(recs)), tuple(want))


def main():
    if os.geteuid() != 0:
        print("not root: live capture needs root: skipped")
        sys.exit(rwtest.SKIP)
    for prog in ("tcpreplay", "ip"):
        if not shutil.which(prog):
            print("%s not installed: skipped" % prog)
            sys.exit(rwtest.SKIP)
    pps = PPS if not sanitized() else PPS // 10
    try:
        ns = Netns()
        prefix, wire, span = ns.prefix(), ns.wire, ns.span
        where = "%s -> %s in network namespace %s" % (wire, span, ns.name)
    except OSError as e:
        print("no network namespace (%s): using the host's lo" % e)
        prefix, wire, span = [], "lo", "lo"
        where = "the host's lo"

    ck = rwtest.Checker()
    with tempfile.TemporaryDirectory(prefix="rw-live-") as tmp:
        cap = os.path.join(tmp, "span.pcap")
        subprocess.run([sys.executable, GEN, "--out", cap] + TRAFFIC, check=True,
                       stderr=subprocess.DEVNULL)
        with open(cap + ".json") as f:
            summ = json.load(f)
        recs = os.path.join(tmp, "records.json")
        sensor = rwtest.Background(prefix + [rwtest.RELAYWATCH, "-i", span, "--redis", "none",
                                             "--records", recs, "--stats-interval", "1",
                                             "--sensor-name", "live-test", "-v"])
        # -v says "reading IFACE ..." once the capture is open, before the loop.
        try:
            sensor.wait_stderr("the capture to open",
                               lambda e: b"relaywatch: reading " + span.encode() in e,
                               timeout=30)
        except AssertionError as e:
            err = sensor.stderr().decode(errors="replace")
            if sensor.proc.poll() is not None:
                print("relaywatch -i %s cannot capture here: skipped\n%s" % (span, err))
                sys.exit(rwtest.SKIP)
            raise e
        time.sleep(0.3)
        rp = subprocess.run(prefix + ["tcpreplay", "--intf1=" + wire, "--pps=%d" % pps,
                                      "--pps-multi=10", "--preload-pcap", cap],
                            capture_output=True, text=True)
        out = rp.stdout + rp.stderr
        if not ck.eq("tcpreplay exit status", rp.returncode, 0):
            print(out)
        m = RE_ACTUAL.search(out)
        sent = int(m.group(1)) if m else 0
        rated = RE_RATED.search(out)
        print("replayed on %s: %d frames in %s s, %s pps (asked %d); the capture has %d "
              "frames, %d SMTP transactions" % (where, sent, m.group(2) if m else "?",
                                                rated.group(1) if rated else "?", pps,
                                                summ["packets"], summ["transactions"]))
        ck.eq("frames replayed", sent, summ["packets"])

        # Let the sensor drain its kernel buffer: done when it stops using CPU
        # (it then sleeps in poll: a quiet interface).
        def cpu():
            with open("/proc/%d/stat" % sensor.proc.pid) as f:
                v = f.read().rsplit(")", 1)[1].split()
            return int(v[11]) + int(v[12])
        last, t0 = cpu(), time.monotonic()
        while time.monotonic() - t0 < 120:
            time.sleep(0.5)
            now = cpu()
            if now == last:
                break
            last = now
        sensor.signal(signal.SIGINT)
        rc = sensor.wait(timeout=60)
        err = sensor.stderr().decode(errors="replace")
        ck.eq("relaywatch exit status", rc, 0)

        stats = [tuple(int(g) for g in x.groups()) for x in RE_STATS.finditer(err)]
        ck.true("stats lines printed (%d)" % len(stats), stats)
        ck.true("stats lines show packets received", any(s[1] > 0 for s in stats))
        for i, (seen, received, dropped, if_dropped) in enumerate(stats):
            ck.true("stats line %d: dropped=%d if_dropped=%d (received=%d)"
                    % (i + 1, dropped, if_dropped, received), dropped == 0 and if_dropped == 0)
        final = RE_FINAL.search(err)
        if ck.true("final pcap statistics printed", final):
            print("pcap: received %s, dropped %s, interface dropped %s" % final.groups())
            ck.eq("pcap dropped", int(final.group(2)), 0)
            ck.eq("interface dropped", int(final.group(3)), 0)
        seen = RE_SEEN.search(err)
        ck.eq("frames the sensor processed", int(seen.group(1)) if seen else None, sent)
        # tcpreplay sends the frames as they are: their checksums, valid,
        # are verified (--checksums auto, -v tells), and none is bad
        ck.true("checksums verified: 0 bad among the first 1000",
                "checksums: 0 of the first 1000 TCP segments verified have bad" in err)
        ck.eq("stats lines: bad_checksums", set(RE_BAD_CSUM.findall(err)), {"0"})
        with open(recs) as f:
            nrec = sum(1 for line in f if line.strip())
        # The same capture read from the file: what the live path must match.
        flows = os.path.join(tmp, "flows.json")
        offline = rwtest.run(["-r", cap, "--redis", "none", "-q", "--records", "-",
                              "--flows", flows])
        noff = sum(1 for line in offline.stdout.splitlines() if line.strip())
        ck.eq("transactions recorded live = read from the file", nrec, noff)
        if not ck.eq("transactions recorded = transactions in the capture", nrec,
                     summ["transactions"]):
            with open(flows) as f:
                lost = [json.loads(line) for line in f if line.strip()]
            lost = [x for x in lost if x["resp_p"] != 465 and not x["smtp_parsed"]]
            for x in lost[:10]:
                print("  not parsed: %s:%s -> %s:%s, nDPI: %s, verdict %s" % (
                    x["orig_h"], x["orig_p"], x["resp_h"], x["resp_p"], x["proto"],
                    x["verdict"]))
        if ck.failures:
            print(err[-4000:])
        if prefix:
            rotation(ck, prefix, wire, span, tmp)
            kernel_checksums(ck, prefix, tmp)
        else:  # other tests replay mail on the host's lo
            print("no network namespace: the rotation and lo checksum checks skipped")
    quiet_interface(ck)
    ck.done()


if __name__ == "__main__":
    main()
