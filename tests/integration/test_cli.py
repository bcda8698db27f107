#!/usr/bin/env python3
"""The command line: exit status 0/1/2, one clear line per error (naming
the file, line and key of a bad setting), --help and --version, the
command line overriding the configuration file, and --print-config
producing a file relaywatch itself accepts."""
import configparser
import json
import os
import shutil
import platform
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtest  # noqa: E402

CAP = os.path.join(rwtest.SOURCE, "tests", "captures", "basic.pcap")
TRUNC = os.path.join(rwtest.SOURCE, "tests", "captures", "truncated.pcap")


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def proc_wchan_read(pid):
    """Blocked in a read (of the pipe), not just between two calls."""
    if platform.machine() != "x86_64":
        return True                            # read(2)'s number differs: the state will do
    try:
        with open("/proc/%d/syscall" % pid) as f:
            return f.read().split()[0] == "0"     # read(2) on x86-64
    except (OSError, IndexError):
        return True                            # no /proc/PID/syscall: the state will do


def proc_in_syscall(pid, names):
    """Blocked in one of the system calls named (x86-64 numbers); elsewhere
    the state alone has to do."""
    numbers = {"read": 0, "open": 2, "openat": 257}
    if platform.machine() != "x86_64":
        return True
    try:
        with open("/proc/%d/syscall" % pid) as f:
            return int(f.read().split()[0]) in {numbers[n] for n in names}
    except (OSError, IndexError, ValueError):
        return True


def pcap_split(path):
    """(global header, [packet records]) of a classic pcap file."""
    import struct
    with open(path, "rb") as f:
        d = f.read()
    head, off, pkts = d[:24], 24, []
    while off < len(d):
        caplen = struct.unpack("<I", d[off + 8:off + 12])[0]
        pkts.append(d[off:off + 16 + caplen])
        off += 16 + caplen
    return head, pkts


def start_on_fifo(tmp, name, *args):
    """relaywatch -r FIFO ARGS..., left blocked opening the FIFO (no writer
    yet): what it does before the capture is open can be looked at."""
    fifo = os.path.join(tmp, name)
    os.mkfifo(fifo)
    p = subprocess.Popen([rwtest.RELAYWATCH, "-r", fifo] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    rwtest.wait_for("relaywatch opening %s" % name, lambda: proc_state(p.pid) == "S"
                    and proc_in_syscall(p.pid, ("open", "openat")), timeout=30, step=0.02)
    return p, fifo


def feed_fifo(fifo, data):
    """Write data to the FIFO's reader, if it still has one."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False                           # ENXIO: nobody reads it any more
    try:
        os.set_blocking(fd, True)
        os.write(fd, data)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def test_hup_while_starting(c, tmp):
    """logrotate's SIGHUP (systemctl reload) may come while the sensor is
    still starting: it must not end it (systemd counts SIGHUP as a clean
    exit and would not restart it)."""
    with open(CAP, "rb") as f:
        data = f.read()
    p, fifo = start_on_fifo(tmp, "hup.fifo", "--redis", "none", "-q", "--records", "-")
    p.send_signal(signal.SIGHUP)
    # The signal interrupts its open() of the FIFO, which it makes again: in
    # between it has the FIFO open for nobody, and a writer's open fails
    # (ENXIO) — the data is offered until it is taken, or the sensor ended.
    rwtest.wait_for("the sensor reading the FIFO after SIGHUP",
                    lambda: p.poll() is not None or feed_fifo(fifo, data), timeout=30, step=0.05)
    out, err = p.communicate(timeout=60)
    c.eq("SIGHUP while starting: the sensor goes on, exit 0 (%r)" % err[-200:], p.returncode, 0)
    c.eq("SIGHUP while starting: the record", out.count(b"\n"), 1)


def test_password_not_in_ps(c, tmp):
    """A password in --redis is not left in the process's command line
    (ps, /proc/PID/cmdline) for other users to read."""
    for i, args in enumerate((["--redis", "redis://sensor:s3cret@127.0.0.1:1/0"],
                              ["--redis=redis://sensor:s3cret@127.0.0.1:1"],
                              ["--redis", "redis://s3cret@127.0.0.1:1"],
                              ["--redis", "unix://sensor:s3cret@/tmp/redis.sock"])):
        p, fifo = start_on_fifo(tmp, "ps%d.fifo" % i, "-q", *args)
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        p.kill()
        p.communicate(timeout=60)
        c.true("%s: the password is not in ps (%r)" % (args, cmdline), "s3cret" not in cmdline)
        c.true("%s: the rest of the command line is (%r)" % (args, cmdline),
               ("127.0.0.1:1" in cmdline or "/tmp/redis.sock" in cmdline) and "-q" in cmdline)


RE_STATS = re.compile(r"relaywatch: stats packets=(\d+) pps=(\d+) .* transactions=(\d+) "
                      r"tps=([0-9.]+) ")


def test_stats_rates(c, tmp):
    """--stats-interval lines give packets/s over the time the line covers:
    packets come through a pipe with pauses the test measures, so each
    line's rate has a known upper bound."""
    head, pkts = pcap_split(CAP)
    p = subprocess.Popen([rwtest.RELAYWATCH, "-r", "-", "--redis", "none", "--stats-interval",
                          "1ms"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    import threading
    err = bytearray()
    lock = threading.Lock()
    def reader():
        for chunk in iter(lambda: p.stderr.read1(4096), b""):
            with lock:
                err.extend(chunk)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    def lines():
        with lock:
            return RE_STATS.findall(err.decode(errors="replace"))
    # the first packet starts the clock, the second gives the first line
    p.stdin.write(head + pkts[0])
    p.stdin.flush()
    rwtest.wait_for("reading the pipe", lambda: proc_state(p.pid) == "S" and
                    proc_in_syscall(p.pid, ("read",)), timeout=30)
    time.sleep(0.01)
    p.stdin.write(pkts[1])
    p.stdin.flush()
    rwtest.wait_for("a first stats line", lambda: len(lines()) >= 1, timeout=30)
    bounds = []
    for k in range(2, 6):
        n = len(lines())
        seen = time.monotonic()          # the last line was printed before this
        time.sleep(0.2)
        p.stdin.write(pkts[k])
        p.stdin.flush()
        sent = time.monotonic()
        rwtest.wait_for("stats line after packet %d" % (k + 1), lambda: len(lines()) > n,
                        timeout=30)
        bounds.append((n, sent - seen))
    p.stdin.write(b"".join(pkts[6:]))
    p.stdin.close()
    p.wait(timeout=60)
    t.join(60)
    got = lines()
    for n, pause in bounds:
        packets, pps = int(got[n][0]) - int(got[n - 1][0]), int(got[n][1])
        # pps is printed rounded to a whole number
        c.true("stats line %d: %d packets after a pause of at least %.3f s: pps=%d is at most "
               "%.1f" % (n + 1, packets, pause, pps, packets / pause),
               pps <= packets / pause + 0.5)


def test_quiet_stats(c, tmp):
    """-q drops the summary and the alert lines (--help); an explicit
    --stats-interval still prints its stats lines: the operator asked for
    them. Before, -q silenced them too. The packets come through a pipe,
    each after the sensor waits in read(2) and a pause longer than the
    interval, so that every packet after the first is due a line."""
    head, pkts = pcap_split(CAP)
    p = subprocess.Popen([rwtest.RELAYWATCH, "-r", "-", "--redis", "none", "-q",
                          "--stats-interval", "1ms"], stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    p.stdin.write(head)
    for pkt in pkts:
        p.stdin.write(pkt)
        p.stdin.flush()
        rwtest.wait_for("reading the pipe", lambda: proc_state(p.pid) == "S" and
                        proc_in_syscall(p.pid, ("read",)), timeout=30)
        time.sleep(0.01)
    p.stdin.close()
    err = p.stderr.read().decode(errors="replace")
    p.wait(timeout=60)
    c.eq("-q --stats-interval: exit 0 (%r)" % err[-200:], p.returncode, 0)
    c.true("-q --stats-interval: stats lines printed (%r)" % err[-200:], RE_STATS.search(err))
    c.true("-q: no summary", " packets (" not in err)
    p = rwtest.run(["-r", CAP, "--redis", "none", "-q"], check=False)
    c.eq("-q, no --stats-interval, a file: nothing on stderr", p.stderr, "")


FLOOD = os.path.join(rwtest.SOURCE, "tests", "scenarios", "contact-form-flood.pcap")


def json_lines(path):
    """(whole JSON lines, lines that are not) of a file."""
    good, bad = 0, []
    with open(path, "rb") as f:
        for line in f.read().split(b"\n")[:-1] if os.path.getsize(path) else []:
            try:
                json.loads(line)
                good += 1
            except ValueError:
                bad.append(line[:60] + b"..." + line[-40:])
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        bad.append(b"(no newline at the end) " + data[-60:])
    return good, bad


def fsize_limit(n):
    import resource
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (n, resource.RLIM_INFINITY))


def test_records_file_full(c, tmp):
    """A records file the system refuses (a full disk; here RLIMIT_FSIZE,
    which needs no root) holds whole lines only, and the sensor says how
    many it could not write (exit 1)."""
    want = len(rwtest.records(FLOOD))
    out = os.path.join(tmp, "full.json")
    p = subprocess.run([rwtest.RELAYWATCH, "-r", FLOOD, "--redis", "none", "--records", out],
                       capture_output=True, text=True, preexec_fn=fsize_limit(20000), timeout=120)
    good, bad = json_lines(out)
    c.eq("records over the file size limit: exit 1 (%r)" % p.stderr[-300:], p.returncode, 1)
    c.eq("records over the file size limit: no line cut in two", bad, [])
    m = re.search(r"writing records to .* failed: File too large \((\d+) lines not written\)",
                  p.stderr)
    c.true("records over the file size limit: told, with the count (%r)" % p.stderr[-300:], m)
    if m:
        c.eq("records over the file size limit: written + not written = all",
             good + int(m.group(1)), want)


class FsizeLimit:
    """A file size limit (RLIMIT_FSIZE: EFBIG, no root needed) that is
    lifted while the sensor runs."""
    error = "File too large"

    def __init__(self, tmp):
        self.dir = tmp

    def preexec(self):
        return fsize_limit(20000)

    def clear(self, pid):
        import resource
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,
                                                      resource.RLIM_INFINITY))

    def close(self):
        pass


class FullTmpfs:
    """A real full disk: a small tmpfs (root only) filled up by another
    file, which is deleted while the sensor runs."""
    error = "No space left on device"

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "small-fs")
        os.mkdir(self.dir)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", self.dir],
                       check=True, capture_output=True)
        self.filler = os.path.join(self.dir, "filler")
        with open(self.filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"x" * 4096)
            except OSError:
                pass

    def preexec(self):
        return None

    def clear(self, pid):
        os.unlink(self.filler)

    def close(self):
        subprocess.run(["umount", self.dir], capture_output=True)


def test_records_disk_cleared(c, tmp, how):
    """A disk that fills and is cleared again while the sensor runs loses no
    record: the lines wait and go out when the file takes them again."""
    want = len(rwtest.records(FLOOD))
    head, pkts = pcap_split(FLOOD)
    out = os.path.join(how.dir, "cleared.json")
    p = subprocess.Popen([rwtest.RELAYWATCH, "-r", "-", "--redis", "none", "--records", out],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, preexec_fn=how.preexec())
    half = len(pkts) // 2
    try:
        p.stdin.write(head + b"".join(pkts[:half]))
        p.stdin.flush()
        rwtest.wait_for("the first half read", lambda: p.poll() is not None or (
            proc_state(p.pid) == "S" and proc_in_syscall(p.pid, ("read",))), timeout=60)
        how.clear(p.pid)
        p.stdin.write(b"".join(pkts[half:]))
        p.stdin.close()
    except OSError:
        pass                                  # it died: told below
    err = p.stderr.read().decode(errors="replace")
    p.wait(timeout=120)
    good, bad = json_lines(out)
    what = "%s for a while" % how.error
    c.true("%s: it was (%r)" % (what, err[-500:]), how.error in err)
    c.eq("%s: no line cut in two" % what, bad, [])
    c.eq("%s: every record written in the end" % what, good, want)
    c.eq("%s: exit 0, nothing lost (%r)" % (what, err[-300:]), p.returncode, 0)
    c.true("%s: said when writing worked again" % what,
           "writing records to %s again" % out in err)


def test_records_rotated_while_full(c, tmp):
    """logrotate moves a file the disk had stopped taking lines for, and
    SIGHUP reopens the path: the old file keeps whole lines only (the line
    it took part of is cut off again), the new one gets the rest."""
    import resource
    want = len(rwtest.records(FLOOD))
    head, pkts = pcap_split(FLOOD)
    out = os.path.join(tmp, "rotated.json")
    p = subprocess.Popen([rwtest.RELAYWATCH, "-r", "-", "--redis", "none", "--records", out],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, preexec_fn=fsize_limit(20000))
    blocked = lambda: p.poll() is not None or (proc_state(p.pid) == "S" and  # noqa: E731
                                               proc_in_syscall(p.pid, ("read",)))
    half = len(pkts) // 2
    try:
        p.stdin.write(head + b"".join(pkts[:half]))
        p.stdin.flush()
        rwtest.wait_for("the first half read", blocked, timeout=60)
        os.rename(out, out + ".1")
        p.send_signal(signal.SIGHUP)
        p.stdin.write(b"".join(pkts[half:]))
        p.stdin.flush()
        rwtest.wait_for("the second half read", blocked, timeout=60)
        resource.prlimit(p.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,
                                                        resource.RLIM_INFINITY))
        p.stdin.close()
    except OSError:
        pass                                  # it died: told below
    err = p.stderr.read().decode(errors="replace")
    p.wait(timeout=120)
    old_good, old_bad = json_lines(out + ".1")
    new_good, new_bad = json_lines(out) if os.path.exists(out) else (0, ["(no file)"])
    c.eq("rotated while full: the old file holds whole lines", old_bad, [])
    c.eq("rotated while full: the new file holds whole lines", new_bad, [])
    c.eq("rotated while full: every record in one of them (%d + %d)" % (old_good, new_good),
         old_good + new_good, want)
    c.eq("rotated while full: exit 0 (%r)" % err[-300:], p.returncode, 0)


def main():
    c = rwtest.Checker()
    run = lambda *a: rwtest.run(list(a), check=False)  # noqa: E731

    p = run("--help")
    c.eq("--help exits 0", p.returncode, 0)
    for word in ("-r FILE", "-i, --interface IFACE", "--records", "--alerts-json",
                 "{redis.url}", "Exit status", "Examples"):
        c.true("--help mentions %r" % word, word in p.stdout)
    p = run("--version")
    c.eq("--version exits 0", p.returncode, 0)
    c.true("--version names the libraries", "nDPI 4.2" in p.stdout and "hiredis 0.14" in
           p.stdout and "libpcap" in p.stdout)

    keys = tempfile.mkdtemp()
    for n in (8, 5000):
        with open(os.path.join(keys, "key%d" % n), "wb") as f:
            f.write(os.urandom(n))
    usage = [
        ([], "nothing to read"),
        (["-r", CAP, "-i", "lo"], "cannot be used together"),
        (["-r", CAP, "--bogus"], "unknown option"),
        (["-r", CAP, "extra"], "unexpected argument"),
        (["-r", CAP, "--max-flows", "0"], "--max-flows: 0 is out of range"),
        (["-r", CAP, "--max-flows", "12x"], "not a whole number"),
        (["-r", CAP, "--flow-timeout", "soon"], "not a duration"),
        (["-i", "lo", "--pseudo-realtime"], "needs -r"),
        (["-r", CAP, "--rule", "no_such_rule.x=1"], "unknown rule"),
        (["-r", CAP, "--rule", "account_burst.rcpts_10m=-5"], "out of range"),
        # a threshold is a decimal number, written as such
        (["-r", CAP, "--rule", "account_burst.rcpts_10m=100abc"],
         "--rule: [rule.account_burst] rcpts_10m: '100abc' is not a"),
        (["-r", CAP, "--rule", "account_burst.rcpts_10m=0x64"],
         "--rule: [rule.account_burst] rcpts_10m: '0x64' is not a decimal number"),
        (["-r", CAP, "--rule", "account_burst.rcpts_10m=0x1p7"], "is not a decimal number"),
        # a count is whole (a factor need not be: the baseline_factor run below)
        (["-r", CAP, "--rule", "account_burst.rcpts_10m=100.5"],
         "[rule.account_burst] rcpts_10m: '100.5' is not a whole number"),
        (["-r", CAP, "--rule", "tls_blind_burst.bytes_10m=2.5e-1"], "is not a whole number"),
        (["-r", CAP, "--rule", "account_burst.rcpts_10m= 100"], "is not a decimal number"),
        (["-r", CAP, "--rule", "account_burst.rcpts_10m=+100"], "is not a decimal number"),
        (["-r", CAP, "--rule", "account_burst.rcpts_10m=.5e3"], "is not a decimal number"),
        (["-r", CAP, "--rule", "account_burst.rcpts_10m =100"], "no spaces in NAME.KEY"),
        (["-r", CAP, "--rule", "account_burst.baseline_factor=1." + "0" * 5000 + "1"],
         "--rule: longer than"),
        (["-r", CAP, "--local-domains", "not a domain!"], "is not a domain"),
        (["-r", CAP, "--pseudonymize"], "needs a key"),
        # a key file is read whole, 16 bytes to 4 KB (the embedded Redis
        # reads it)
        (["-r", CAP, "--pseudonymize", "--pseudonymize-key-file", os.path.join(keys, "key8")],
         "a pseudonymisation key needs 16 to 4096 bytes"),
        (["-r", CAP, "--pseudonymize", "--pseudonymize-key-file", os.path.join(keys, "key5000")],
         "a pseudonymisation key needs 16 to 4096 bytes"),
        (["-r", CAP, "--redis", "redis://[::1"], "--redis ([redis] url): unterminated"),
        (["-r", CAP, "--redis", "http://localhost"], "--redis ([redis] url)"),
        # configuration errors exit 2 (the unit does not restart on 2)
        (["-r", CAP, "-f", "tcp port foo"], "bad filter"),
        (["-r", CAP, "--user", "no-such-user-here"], "no user named no-such-user-here"),
        (["-r", CAP, "--redis-password-file", "/no/such/file"], "/no/such/file"),
        (["-r", CAP, "--buffer-mb", "4096"], "out of range [1, 2047]"),
        (["-r", CAP, "--max-flows", " -1"], "--max-flows: ' -1' is not a whole number"),
        (["-r", CAP, "--max-pending", "99999999999999999999"],
         "--max-pending: 99999999999999999999 is out of range"),
        (["-r", CAP, "--pseudo-realtime=2h"], "'2h' is not a speed-up factor"),
        (["-r", CAP, "--records", ""], "--records: an empty FILE|-"),
        (["-r", CAP, "--sensor-name", ""], "--sensor-name: an empty NAME"),
        (["-r", CAP, "--user", ""], "--user: an empty USER"),
        # every key would be at the top of the database, among others' keys
        (["-r", CAP, "--redis-prefix", ""], "--redis-prefix: an empty prefix"),
        (["-r", CAP, "--redis-prefix", "p" * 64], "--redis-prefix: longer than 63 bytes"),
        # an abbreviation would take a password for a file name and print it
        (["-r", CAP, "--redis-password", "s3cret"], "--redis-password-file FILE in full"),
        (["-r", CAP, "--redis-pass=s3cret"], "--redis-password-file FILE in full"),
        (["-r", CAP, "--checksums", "yes"], "--checksums: 'yes' is not one of auto|on|off"),
        (["-r", CAP, "--checksums", ""], "--checksums: '' is not one of auto|on|off"),
        (["-r", CAP, "--checksums", "au"], "--checksums: 'au' is not one of auto|on|off"),
    ]
    for args, msg in usage:
        p = run(*args)
        c.eq("%s exits 2" % args, p.returncode, 2)
        c.true("%s: the password is not repeated" % args, "s3cret" not in p.stderr)
        c.true("%s says %r (got %r)" % (args, msg, p.stderr.strip()), msg in p.stderr)
        c.eq("%s: one line" % args, len(p.stderr.strip().splitlines()), 1)
    shutil.rmtree(keys)
    p = run("-r", CAP, "--redis", "none", "-q", "--rule", "account_burst.baseline_factor=2.5",
            "--rule", "tls_blind_burst.bytes_10m=2e8", "--rule", "auth_failures.success_after=3.0")
    c.eq("a fractional factor, whole counts written 2e8 and 3.0: taken (%r)" % p.stderr[-200:],
         p.returncode, 0)

    with tempfile.TemporaryDirectory() as tmp:
        NOT_WRITTEN = os.path.join(tmp, "not-written.json")
        def conf(text):
            path = os.path.join(tmp, "c.conf")
            with open(path, "w") as f:
                f.write(text)
            return path
        cases = [
            ("[network]\n; comment\ntrusted_networks = 10.0.0.0/33\n", ":3: [network] trusted_networks"),
            ("[sensor]\nmax_flows = many\n", ":2: [sensor] max_flows"),
            ("[sensor]\nno_such_key = 1\n", ":2: [sensor] no_such_key: unknown setting"),
            ("[rule.fingerprint_burst]\nmsgs_10m = lots\n", ":2: [rule.fingerprint_burst] msgs_10m"),
            ("[rule.open_relay]\nenabled = perhaps\n", ":2: [rule.open_relay] enabled"),
            ("[rule.account_burst]\n\nrcpts_10m = 0x64\n",
             ":3: [rule.account_burst] rcpts_10m: '0x64' is not a decimal number"),
            ("[redis\nurl = x\n", ":1: not a valid INI line"),
            # found wrong only when used, still named where they were given
            ("[sensor]\nfilter = tcp port foo\n", ":2: [sensor] filter: bad filter"),
            ("[sensor]\n\nuser = no-such-user-here\n", ":3: [sensor] user: no user named"),
            ("[redis]\n; the sensor's login\nurl = redis://[::1\n",
             ":3: [redis] url: unterminated"),
            ("[redis]\nprefix =\n", ":2: [redis] prefix: an empty prefix"),
            ("[sensor]\nchecksums = offf\n",
             ":2: [sensor] checksums: 'offf' is not one of auto|on|off"),
            # inih's 200-byte line buffer would make the rest a line of its own
            ("[sensor]\nname = %srecords = %s\n" % ("a" * 192, NOT_WRITTEN),
             ":2: line longer than"),
        ]
        for text, msg in cases:
            p = run("-r", CAP, "-c", conf(text))
            c.eq("config %r exits 2" % msg, p.returncode, 2)
            c.true("config error names file, line and key: %r in %r" % (msg, p.stderr),
                   os.path.join(tmp, "c.conf") + msg in p.stderr)
        p = run("-r", CAP, "-c", os.path.join(tmp, "missing.conf"))
        c.eq("missing config exits 2", p.returncode, 2)
        c.true("an over-long line set nothing", not os.path.exists(NOT_WRITTEN))
        p = run("-r", CAP, "-c", tmp)
        c.eq("-c DIRECTORY exits 2 (%r)" % p.stderr.strip(), p.returncode, 2)

        # A long list goes on over indented lines: the relay's 24 recipient
        # domains made local (363 bytes over 5 lines) leave nothing relayed.
        relay = os.path.join(rwtest.SOURCE, "tests", "scenarios", "relay-can-i-trust-you.pcap")
        with open(relay[:-5] + ".facts.json") as f:
            doms = sorted(json.load(f)["recipient_domains"])
        text = "[network]\nlocal_domains = " + ", ".join(doms[:6]) + ",\n" + "".join(
            "    " + ", ".join(doms[i:i + 6]) + ",\n" for i in range(6, len(doms), 6))
        for what, conf_text, want in (("first line only", text.split("\n    ")[0] + "\n", 1),
                                      ("continued over indented lines", text, 0)):
            p = run("-r", relay, "-c", conf(conf_text), "--redis", "none", "-q",
                    "--alerts-json", "-")
            c.eq("local_domains %s: open_relay alerts" % what, p.stdout.count('"open_relay"'),
                 want)

        # the command line wins over the file
        path = conf("[sensor]\nfilter = tcp port 9\n")
        p = run("-r", CAP, "-c", path, "--redis", "none", "-q", "--records", "-")
        c.eq("file filter applies: no record", p.stdout.count("\n"), 0)
        p = run("-r", CAP, "-c", path, "-f", "tcp port 25", "--redis", "none", "-q",
                "--records", "-")
        c.eq("-f overrides the file: one record", p.stdout.count("\n"), 1)

        # [sensor] checksums from the file, --checksums over it: CAP's
        # checksums are valid; in a copy its MAIL command's is wrong: the
        # command is left out, and the transaction with it, unless checksums
        # are off
        bad = os.path.join(tmp, "bad-mail.pcap")
        with open(CAP, "rb") as f:
            data = bytearray(f.read())
        off = 24
        while off < len(data):
            caplen = struct.unpack_from("<I", data, off + 8)[0]
            ip = off + 16 + 14
            tcp = ip + (data[ip] & 15) * 4
            payload = tcp + (data[tcp + 12] >> 4) * 4
            if data[payload:payload + 9].upper() == b"MAIL FROM":
                data[tcp + 16] ^= 0xff
                break
            off += 16 + caplen
        with open(bad, "wb") as f:
            f.write(data)
        mailfrom = [json.loads(l)["mailfrom"] for l in
                    run("-r", CAP, "--redis", "none", "-q", "--records", "-").stdout.splitlines()]
        for text, extra, want in (("", [], []), ("[sensor]\nchecksums = off\n", [], mailfrom),
                                  ("[sensor]\nchecksums = off\n", ["--checksums", "on"], [])):
            p = run("-r", bad, "-c", conf(text), "--redis", "none", "-q", "--records", "-",
                    *extra)
            c.eq("checksums %r %s: MAIL FROM" % (text, extra),
                 [json.loads(l)["mailfrom"] for l in p.stdout.splitlines()], want)

        # -r tries a production configuration (with its interface) on a capture
        path = conf("[sensor]\ninterface = eth9-not-here\n")
        p = run("-r", CAP, "-c", path, "--redis", "none", "-q", "--records", "-")
        c.eq("-r overrides the file's interface", (p.returncode, p.stdout.count("\n")), (0, 1))
        p = run("-r", CAP, "-i", "lo", "-c", path)
        c.eq("-r and -i on the command line still conflict", p.returncode, 2)

        # two outputs on one file would interleave their lines
        same = os.path.join(tmp, "same.json")
        p = run("-r", CAP, "--redis", "none", "--records", same, "--flows", same)
        c.eq("--records and --flows on one file: exit 2 (%r)" % p.stderr[-200:], p.returncode, 2)
        # a capture's records are made afresh
        for _ in range(2):
            run("-r", CAP, "--redis", "none", "-q", "--records", same)
        with open(same) as f:
            c.eq("-r twice: the records of the last run only", len(f.readlines()), 1)

        # a full disk: told, exit 1, and the other outputs are still written whole
        if os.path.exists("/dev/full"):
            flows = os.path.join(tmp, "flows.json")
            p = run("-r", CAP, "--redis", "none", "--records", "/dev/full", "--flows", flows)
            c.eq("records to a full disk: exit 1", p.returncode, 1)
            c.true("records to a full disk: the summary says the file is incomplete (%r)"
                   % p.stderr[-400:], "/dev/full, but writing failed" in p.stderr and
                   "records written" not in p.stderr)
            c.true("records to a full disk: the error names the output",
                   "writing records to /dev/full failed: No space left" in p.stderr)
            with open(flows) as f:
                c.eq("records to a full disk: --flows still written", len(f.readlines()), 1)

        # a stop while reading a pipe (tcpdump -w - | relaywatch -r -) is a stop,
        # not a damaged capture
        p = subprocess.Popen([rwtest.RELAYWATCH, "-r", "-", "--redis", "none", "-q",
                              "--records", "-"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False)
        with open(CAP, "rb") as f:
            p.stdin.write(f.read())
        p.stdin.flush()                      # the pipe stays open: more could come
        rwtest.wait_for("relaywatch waiting on the pipe", lambda: proc_state(p.pid) == "S"
                        and proc_wchan_read(p.pid), timeout=30, step=0.05)
        p.send_signal(signal.SIGINT)
        p.wait(timeout=60)                   # the pipe still open, as under tcpdump
        out, err = p.stdout.read(), p.stderr.read()
        p.stdin.close()
        c.eq("SIGINT while reading a pipe: exit 0 (%r)" % err[-200:], p.returncode, 0)
        c.eq("SIGINT while reading a pipe: the record", out.count(b"\n"), 1)

        test_hup_while_starting(c, tmp)
        test_password_not_in_ps(c, tmp)
        test_stats_rates(c, tmp)
        test_quiet_stats(c, tmp)
        test_records_file_full(c, tmp)
        test_records_disk_cleared(c, tmp, FsizeLimit(tmp))
        test_records_rotated_while_full(c, tmp)
        if os.geteuid() == 0 and subprocess.run(["which", "mount"], capture_output=True).returncode == 0:
            try:
                fs = FullTmpfs(tmp)
            except (OSError, subprocess.CalledProcessError):
                fs = None                     # no mount here (a container): the limit did
            if fs:
                try:
                    test_records_disk_cleared(c, tmp, fs)
                finally:
                    fs.close()

        # --print-config is a configuration relaywatch accepts
        p = run("--print-config")
        c.eq("--print-config exits 0", p.returncode, 0)
        ini = configparser.ConfigParser(inline_comment_prefixes=(";",))
        ini.read_string(p.stdout)
        c.true("--print-config has the sections",
               {"sensor", "redis", "alerts", "network", "privacy"} <= set(ini.sections()))
        c.eq("--print-config has the eight rules' sections",
             sorted(x for x in ini.sections() if x.startswith("rule.")),
             ["rule." + r for r in sorted(["open_relay", "account_burst", "fingerprint_burst",
                                            "random_subject_flood", "display_spoof",
                                            "auth_failures", "recipient_rejects",
                                            "tls_blind_burst"])])
        p2 = run("-r", CAP, "-c", conf(p.stdout), "--redis", "none", "-q")
        c.eq("--print-config output is accepted", p2.returncode, 0)
        # and so is every default it shows, uncommented
        uncommented = re.sub(r"(?m)^;([a-z_0-9]+ = .+)$", r"\1", p.stdout)
        c.true("--print-config: rule thresholds among the uncommented",
               "\nrcpts_10m = 100\n" in uncommented and "\nbytes_10m = 200000000\n" in uncommented)
        p2 = run("-r", CAP, "-c", conf(uncommented), "--redis", "none", "-q")
        c.eq("--print-config with its defaults uncommented is accepted (%s)"
             % p2.stderr.strip()[-200:], p2.returncode, 0)

        # runtime errors: exit 1, one clear line; packets before damage processed
        # `key =` in the file is the key unset, as the template's `;records =`
        p = run("-r", CAP, "-c", conf("[sensor]\nrecords =\nuser =\nname =\n"), "--redis",
                "none", "-q")
        c.eq("empty paths, user, name in the file: unset (%r)" % p.stderr.strip(),
             p.returncode, 0)
        p = run("-r", CAP, "-c", conf('[sensor]\nfilter = "tcp port 25"\n'))
        c.true("a quoted filter in the file: told that the file takes no quotes (%r)"
               % p.stderr.strip(), p.returncode == 2 and "without quotes" in p.stderr)

        p = run("-r", os.path.join(tmp, "none.pcap"), "--redis", "none")
        c.eq("missing capture exits 1", p.returncode, 1)
        c.true("missing capture: one line naming it",
               p.stderr.strip().endswith("none.pcap: No such file or directory"))
        bad = os.path.join(tmp, "bad.pcap")
        with open(bad, "w") as f:
            f.write("this is not a capture\n")
        p = run("-r", bad, "--redis", "none")
        c.eq("not a capture exits 1", p.returncode, 1)
        c.true("not a capture: says why", "unknown file format" in p.stderr)
        p = run("-r", TRUNC, "--redis", "none", "--records", "-")
        c.eq("truncated capture exits 1", p.returncode, 1)
        c.true("truncated capture: says so", "truncated" in p.stderr)
        c.true("truncated capture: records before the damage are written",
               p.stdout.count("\n") >= 1)
        p = run("-r", CAP, "--redis", "none", "--records", os.path.join(tmp, "no", "dir.json"))
        c.eq("unwritable output exits 1", p.returncode, 1)
        c.true("unwritable output: names it", "cannot open records output" in p.stderr)
        p = run("-i", "no-such-interface0", "--redis", "none")
        c.eq("missing interface exits 1", p.returncode, 1)
        c.true("missing interface: names it", "no-such-interface0" in p.stderr)
    c.done()


if __name__ == "__main__":
    main()
