#!/usr/bin/python3
"""run.py — relaywatch's throughput, memory and Redis cost, against baselines.

On one span-port capture (made by gen-span.py, or --capture FILE), the median
of --runs runs (default 5) of each of:

  relaywatch + Redis   counters into a throwaway redis-server (spare port,
                       temporary directory, pinned to the other core),
                       --records /dev/null
  relaywatch           --redis none --records /dev/null (default filter)
  relaywatch -f tcp    --redis none, every TCP packet (HTTPS too) through nDPI
  ndpiReader -q -i     nDPI 4.2 alone (Debian's libndpi-bin)
  pcap floor           pcap-floor.c: a bare pcap_next_ex loop (the floor), as
                       pcap_open_offline reads (a 4 KB stdio buffer), and again
                       with the 64 KB stdio buffer relaywatch reads files with
  tshark SMTP/IMF      tshark -2 -R imf -T fields -e imf.subject on the first
                       --slice of the packets, its rate scaled to the whole

all pinned to core 0 (taskset -c 0) unless --no-pin. Rates use the capture's
own totals (all frame bytes, all packets, all mail messages), so every row is
"this capture per second of processing". Peak RSS comes from wait4().

Then (unless --skip):
  rss     peak RSS of relaywatch --redis none on a capture with --rss-concurrency
          (100000) mail sessions open at once: with the defaults, and with
          --max-sessions --rss-max-sessions (262144: every session parsed);
  rates   Redis commands per message and round trips at --rates (1k, 10k and
          100k messages per second of packet time), one capture each.

Captures are cached in --workdir (default /tmp/rw-bench) and remade only when
their generator arguments change. The relaywatch binary: --relaywatch, else
$RELAYWATCH, else a release build made in WORKDIR/build.

Prints markdown tables; --json FILE writes every measurement.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
import rwtest  # noqa: E402  (RedisServer: a throwaway redis-server)

GEN = os.path.join(HERE, "gen-span.py")
DEFAULT_FILTER = "tcp port 25 or tcp port 465 or tcp port 587 or tcp port 2525"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --- running things -----------------------------------------------------------


def pin_prefix(core, enabled):
    if enabled and core is not None and shutil.which("taskset"):
        return ["taskset", "-c", str(core)]
    return []


def measure(argv, pin, stdout=subprocess.DEVNULL):
    """Run argv to completion: wall seconds, peak RSS (KB), CPU, rc, stderr
    (and stdout with stdout=subprocess.PIPE). Output goes through temporary
    files so that the process can be reaped with wait4() for its rusage."""
    with tempfile.TemporaryFile() as ef, tempfile.TemporaryFile() as of:
        t0 = time.monotonic()
        p = subprocess.Popen(pin + argv, stdin=subprocess.DEVNULL,
                             stdout=of if stdout == subprocess.PIPE else stdout, stderr=ef)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        ef.seek(0)
        of.seek(0)
        err, out = ef.read(), of.read()
    return {"wall": wall, "rss_kb": ru.ru_maxrss, "rc": p.returncode,
            "user": ru.ru_utime, "sys": ru.ru_stime,
            "stderr": err.decode(errors="replace"), "stdout": out.decode(errors="replace")}


def cpu_seconds(pid):
    """utime + stime of a process, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


RE_PROC = re.compile(r"relaywatch: (\d+) packets .* in ([0-9.]+) s")
RE_REDIS = re.compile(r"redis: (\d+) commands in (\d+) round trips for (\d+) transactions "
                      r"\(([0-9.]+) commands per transaction\), (\d+) batches")
RE_SUMMARY = re.compile(r"relaywatch: (\d+) flows \((\d+) evicted\), (\d+) SMTP sessions, "
                        r"(\d+) encrypted, (\d+) transactions")


def parse_relaywatch(err):
    out = {}
    m = RE_PROC.search(err)
    if m:
        out["packets_seen"] = int(m.group(1))
        out["processing_s"] = float(m.group(2))
    m = RE_REDIS.search(err)
    if m:
        out.update(commands=int(m.group(1)), round_trips=int(m.group(2)),
                   transactions=int(m.group(3)), cmds_per_txn=float(m.group(4)),
                   batches=int(m.group(5)))
    m = RE_SUMMARY.search(err)
    if m:
        out.update(flows=int(m.group(1)), evicted=int(m.group(2)),
                   smtp_sessions=int(m.group(3)), transactions=int(m.group(5)))
    return out


def check(res, what):
    if res["rc"] != 0:
        raise SystemExit("%s exited %d:\n%s" % (what, res["rc"], res["stderr"][-3000:]))


# --- preparing ----------------------------------------------------------------------


def capture(workdir, name, args):
    """Make (or reuse) WORKDIR/NAME.pcap with gen-span.py ARGS; its summary."""
    path = os.path.join(workdir, name + ".pcap")
    with open(GEN, "rb") as f:      # a changed generator makes new captures
        want = [str(a) for a in args] + ["#", hashlib.sha256(f.read()).hexdigest()[:16]]
    meta = path + ".json"
    if os.path.exists(path) and os.path.exists(meta):
        with open(meta) as f:
            s = json.load(f)
        if s.get("argv") == want:
            return path, s
    log("bench: generating %s (gen-span.py %s)" % (path, " ".join(want[:-2])))
    subprocess.run([sys.executable, GEN, "--out", path] + want[:-2], check=True)
    with open(meta) as f:
        s = json.load(f)
    s["argv"] = want
    with open(meta, "w") as f:
        json.dump(s, f, indent=1)
    return path, s


def build_relaywatch(workdir):
    b = os.path.join(workdir, "build")
    if not os.path.exists(os.path.join(b, "build.ninja")):
        # werror off: gcc -O3 warns where -O2 does not (see README.md).
        subprocess.run(["meson", "setup", b, SOURCE, "--buildtype=release", "-Dwerror=false"],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", b, "relaywatch"], check=True, stdout=subprocess.DEVNULL)
    return os.path.join(b, "relaywatch")


def build_floor(workdir):
    exe = os.path.join(workdir, "pcap-floor")
    src = os.path.join(HERE, "pcap-floor.c")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        cc = os.environ.get("CC", "cc")
        subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-o", exe, src, "-lpcap"], check=True)
    return exe


def slice_capture(path, frac, packets):
    n = max(1, int(packets * frac))
    out = path[:-5] + ".slice%g.pcap" % frac
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(path):
        subprocess.run(["editcap", "-F", "pcap", "-r", path, out, "1-%d" % n], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out, n


def pcap_bytes(path):
    """Frame bytes and packets of a classic pcap (record headers read only)."""
    import struct
    total = n = 0
    with open(path, "rb") as f:
        f.seek(24)
        while True:
            h = f.read(16)
            if len(h) < 16:
                break
            incl = struct.unpack("<IIII", h)[2]
            total += incl
            n += 1
            f.seek(incl, 1)
    return total, n


class Redis:
    """A throwaway redis-server for one run, pinned away from the sensor."""

    def __init__(self, core):
        self.srv = rwtest.RedisServer()
        self.core = core

    def __enter__(self):
        self.srv.start()
        if self.core is not None and shutil.which("taskset"):
            subprocess.run(["taskset", "-p", "-c", str(self.core), str(self.srv.proc.pid)],
                           stdout=subprocess.DEVNULL)
        self.cpu0 = cpu_seconds(self.srv.proc.pid)
        return self

    def cpu(self):
        return cpu_seconds(self.srv.proc.pid) - self.cpu0

    def __exit__(self, *exc):
        self.srv.__exit__(*exc)


# --- the benchmark -------------------------------------------------------------------


def run_relaywatch(rw, path, extra, pin, redis_core=None, with_redis=False):
    args = [rw, "-r", path, "--records", "/dev/null", "--sensor-name", "bench"] + extra
    if with_redis:
        with Redis(redis_core) as r:
            res = measure(args + ["--redis", r.srv.url], pin)
            res["redis_cpu_s"] = r.cpu()
            res["redis_commandstats"] = r.srv.cli("INFO", "commandstats")
    else:
        res = measure(args + ["--redis", "none"], pin)
    check(res, "relaywatch " + " ".join(extra))
    res.update(parse_relaywatch(res["stderr"]))
    return res


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def throughput_rows(a, rw, floor, path, summ):
    pin = pin_prefix(0, not a.no_pin)
    redis_core = 1 if (not a.no_pin and os.cpu_count() and os.cpu_count() > 1) else None
    nbytes, npk = pcap_bytes(path)
    msgs = summ["messages"]
    tools = [
        ("relaywatch + Redis", lambda: run_relaywatch(rw, path, [], pin, redis_core, True)),
        ("relaywatch (--redis none)", lambda: run_relaywatch(rw, path, [], pin)),
        ("relaywatch -f tcp (--redis none)", lambda: run_relaywatch(rw, path, ["-f", "tcp"],
                                                                     pin)),
        ("ndpiReader -q", lambda: measure(["ndpiReader", "-q", "-i", path], pin)),
        ("libpcap floor", lambda: measure([floor, path], pin, stdout=subprocess.PIPE)),
        ("libpcap floor, 64 KB stdio buffer", lambda: measure([floor, "-b", "65536", path], pin,
                                                             stdout=subprocess.PIPE)),
    ]
    rows = {}
    for name, fn in tools:
        if name.startswith("ndpiReader") and not shutil.which("ndpiReader"):
            log("bench: no ndpiReader (apt install libndpi-bin): skipped")
            continue
        runs = []
        for i in range(a.runs):
            r = fn()
            if r["rc"] != 0:
                raise SystemExit("%s exited %d: %s" % (name, r["rc"], r["stderr"][-2000:]))
            runs.append(r)
            log("bench: %-34s run %d: %.3f s, %d MB%s" % (
                name, i + 1, r["wall"], r["rss_kb"] // 1024,
                (", processing %.2f s" % r["processing_s"]) if "processing_s" in r else ""))
        wall = med(runs, "wall")
        row = {"runs": [{k: v for k, v in r.items() if k not in ("stderr", "stdout",
                                                                  "redis_commandstats")}
                        for r in runs],
               "wall_s": wall, "gbps": nbytes * 8 / wall / 1e9, "mpps": npk / wall / 1e6,
               "msgs_per_s": msgs / wall, "rss_mb": med(runs, "rss_kb") / 1024,
               "user_s": med(runs, "user"), "sys_s": med(runs, "sys")}
        for k in ("processing_s", "cmds_per_txn", "commands", "round_trips", "batches",
                  "transactions", "redis_cpu_s"):
            v = med(runs, k)
            if v is not None:
                row[k] = v
        if "redis_commandstats" in runs[-1]:
            row["redis_commandstats"] = runs[-1]["redis_commandstats"]
        rows[name] = row
    if shutil.which("tshark") and shutil.which("editcap") and a.slice > 0:
        sl, n = slice_capture(path, a.slice, npk)
        sbytes, spk = pcap_bytes(sl)
        runs = []
        for i in range(a.runs):
            r = measure(["tshark", "-r", sl, "-2", "-R", "imf", "-T", "fields", "-e",
                         "imf.subject"], pin, stdout=subprocess.PIPE)
            if r["rc"] != 0:
                raise SystemExit("tshark exited %d: %s" % (r["rc"], r["stderr"][-2000:]))
            r["subjects"] = len(r["stdout"].splitlines())
            runs.append(r)
            log("bench: %-34s run %d: %.3f s on %d packets" % ("tshark", i + 1, r["wall"], spk))
        wall = med(runs, "wall")
        scale = nbytes / sbytes
        rows["tshark SMTP+IMF (first %g%%, scaled)" % (a.slice * 100)] = {
            "wall_s": wall * scale, "slice_wall_s": wall, "slice_packets": spk,
            "gbps": sbytes * 8 / wall / 1e9, "mpps": spk / wall / 1e6,
            "msgs_per_s": msgs / (wall * scale), "rss_mb": med(runs, "rss_kb") / 1024,
            "subjects": runs[-1]["subjects"],
            "user_s": med(runs, "user") * scale, "sys_s": med(runs, "sys") * scale,
            "runs": [{"wall": r["wall"], "rss_kb": r["rss_kb"]} for r in runs]}
    return rows, nbytes, npk


def rss_run(a, rw, workdir):
    """Peak RSS on a capture with --rss-concurrency mail sessions open at once,
    twice: with the sensor's defaults (the target applies to what an
    administrator runs), and with --max-sessions --rss-max-sessions, where
    every session is parsed (what memory the parsing itself needs)."""
    c = a.rss_concurrency
    rate = max(1000, c // 10)
    args = ["--seed", a.seed, "--concurrency", c, "--rate", rate,
            "--messages", int(c * 2.2), "--https", 0, "--attach-prob", 0.02,
            "--body-median", 500, "--starttls", 0.02, "--smtps", 0.01]
    path, summ = capture(workdir, "conc%d" % c, args)
    pin = pin_prefix(0, not a.no_pin)
    out = {"capture": path, "max_concurrent": summ["max_concurrent"],
           "expected_transactions": summ["transactions"], "packets": summ["packets"],
           "runs": []}
    for label, extra in (("defaults", []),
                         ("every session parsed", ["--max-sessions", str(a.rss_max_sessions)])):
        res = measure([rw, "-r", path, "--redis", "none", "--records", "/dev/null",
                       "--stats-interval", "0.25"] + extra, pin)
        check(res, "relaywatch (rss, %s)" % label)
        info = parse_relaywatch(res["stderr"])
        peak_flows = peak_sessions = 0
        for m in re.finditer(r"stats .*? flows=(\d+) .*? sessions=(\d+)", res["stderr"]):
            peak_flows = max(peak_flows, int(m.group(1)))
            peak_sessions = max(peak_sessions, int(m.group(2)))
        degraded = re.search(r"degraded: .*", res["stderr"])
        out["runs"].append({"label": label, "args": extra, "rss_mb": res["rss_kb"] / 1024,
                            "wall_s": res["wall"], "peak_flows_seen": peak_flows,
                            "peak_sessions_seen": peak_sessions,
                            "degraded": degraded.group(0) if degraded else None, **info})
    return out


RULES = ["open_relay", "display_spoof", "account_burst", "fingerprint_burst",
         "random_subject_flood", "recipient_rejects", "auth_failures", "tls_blind_burst"]


def rates_run(a, rw, workdir):
    """One capture per rate, the same population of senders (20k accounts,
    5k client addresses, 20k subjects, skewed: a few send most), small clear
    text messages, 5 per session, pipelined. The rules are off: an alert
    leaves at once on a round trip of its own, which is not measured here."""
    out = []
    pin = pin_prefix(0, not a.no_pin)
    redis_core = 1 if (not a.no_pin and os.cpu_count() and os.cpu_count() > 1) else None
    norules = []
    for r in RULES:
        norules += ["--rule", r + ".enabled=no"]
    for rate in a.rates:
        secs = a.rate_seconds
        args = ["--seed", a.seed, "--rate", rate, "--messages", int(rate * secs),
                "--concurrency", max(50, rate // 10), "--https", 0, "--attach-prob", 0,
                "--starttls", 0, "--smtps", 0, "--body-median", 500, "--session-messages", 5,
                "--pipelining", 1, "--max-rcpt", 5, "--accounts", 20000, "--clients", 5000,
                "--subjects", 20000]
        path, summ = capture(workdir, "rate%d" % rate, args)
        r = run_relaywatch(rw, path, norules, pin, redis_core, True)
        lost = re.search(r"redis: (\d+) events and alerts could not be written", r["stderr"])
        out.append({"rate": rate, "capture": path, "packet_seconds": summ["duration_s"],
                    "messages": summ["messages"], "transactions": r.get("transactions"),
                    "commands": r.get("commands"), "round_trips": r.get("round_trips"),
                    "batches": r.get("batches"), "cmds_per_txn": r.get("cmds_per_txn"),
                    "redis_cpu_s": r.get("redis_cpu_s"), "wall_s": r["wall"],
                    "processing_s": r.get("processing_s"),
                    "lost": int(lost.group(1)) if lost else 0})
        log("bench: rate %d/s: %s" % (rate, out[-1]))
    return out


# --- printing ---------------------------------------------------------------------------


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def print_tables(res):
    if res.get("rows"):
        print_throughput(res)
    print_more(res)


def print_throughput(res):
    cap = res["capture"]
    print("\ncapture: %s — %.2f GB, %.2f M packets, %d messages (%d in clear text), "
          "%.1f s of packet time, up to %d mail sessions open; %d runs each, median; "
          "pinned: %s\n" % (cap["path"], cap["bytes"] / 1e9, cap["packets"] / 1e6,
                            cap["messages"], cap["messages_clear"], cap["duration_s"],
                            cap["max_concurrent"], res["runs"], res["pinned"]))
    print("| | seconds (wall) | CPU s | Gbit/s | Mpps | messages/s | peak RSS MB "
          "| Redis cmds/msg |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in res["rows"].items():
        cpu = r["user_s"] + r["sys_s"] if r.get("user_s") is not None else None
        print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, fmt(r["wall_s"], ".2f"), fmt(cpu, ".2f"), fmt(r["gbps"], ".2f"),
            fmt(r["mpps"], ".3f"),
            fmt(r["msgs_per_s"], ",.0f"), fmt(r["rss_mb"], ".0f"),
            fmt(r.get("cmds_per_txn"), ".2f")))
    rows = res["rows"]
    rw = rows.get("relaywatch (--redis none)")
    nd = rows.get("ndpiReader -q")
    fl = rows.get("libpcap floor")
    rr = rows.get("relaywatch + Redis")
    print()

    def cpu(r):
        return r["user_s"] + r["sys_s"]
    if rw and nd:
        print("- relaywatch / ndpiReader throughput: **%.2f×** (CPU time: %.2f×; target ≥ 2×)"
              % (nd["wall_s"] / rw["wall_s"], cpu(nd) / cpu(rw)))
    if rw and fl:
        print("- relaywatch / libpcap floor: **%.0f%%** (CPU time: %.0f%%; target ≥ 40%%)"
              % (100 * fl["wall_s"] / rw["wall_s"], 100 * cpu(fl) / cpu(rw)))
    fb = rows.get("libpcap floor, 64 KB stdio buffer")
    if rw and fb:
        print("- relaywatch / libpcap floor with relaywatch's own 64 KB read buffer: **%.0f%%** "
              "(CPU time: %.0f%%)" % (100 * fb["wall_s"] / rw["wall_s"], 100 * cpu(fb) / cpu(rw)))
    if rr:
        print("- relaywatch + Redis: capture loop %.2f s, exit (waiting for Redis) %.2f s; "
              "redis-server CPU %.2f s = %.2f ms per message; %d commands in %d round trips "
              "(%d batches)" % (rr.get("processing_s", 0), rr["wall_s"] - rr.get("processing_s", 0),
                                rr.get("redis_cpu_s", 0),
                                1000 * rr.get("redis_cpu_s", 0) / max(1, rr.get("transactions", 1)),
                                rr.get("commands", 0), rr.get("round_trips", 0),
                                rr.get("batches", 0)))


def print_more(res):
    if res.get("rss"):
        r = res["rss"]
        print("\n**Memory with %d mail sessions open at once** (%s, %d packets; target: "
              "peak RSS ≤ 64 MB):\n" % (r["max_concurrent"], os.path.basename(r["capture"]),
                                         r["packets"]))
        print("| run | peak RSS MB | flows at once | SMTP sessions at once "
              "| transactions recorded | of |")
        print("|---|---:|---:|---:|---:|---:|")
        for x in r["runs"]:
            print("| %s %s | %.1f | %d | %d | %s | %s |"
                  % (x["label"], " ".join(x["args"]), x["rss_mb"], x["peak_flows_seen"],
                     x["peak_sessions_seen"], x.get("transactions"),
                     r["expected_transactions"]))
    if res.get("rates"):
        print("\n**Redis cost by message rate** (messages per second of packet time):\n")
        print("| rate | packet s | transactions | commands | cmds/msg | batches | round trips "
              "| redis-server CPU s | ms Redis CPU / msg | sensor capture loop s "
              "| sensor wall s | events lost at exit |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in res["rates"]:
            print("| %s | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %d |" % (
                format(r["rate"], ","), r["packet_seconds"], r["transactions"], r["commands"],
                fmt(r["cmds_per_txn"], ".3f"), r["batches"], r["round_trips"],
                fmt(r["redis_cpu_s"], ".2f"),
                fmt(1000 * r["redis_cpu_s"] / r["transactions"] if r["transactions"] else None,
                    ".3f"), fmt(r["processing_s"], ".2f"), r["wall_s"], r["lost"]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--relaywatch", default=os.environ.get("RELAYWATCH"))
    p.add_argument("--workdir", default=os.environ.get("RW_BENCH_DIR", "/tmp/rw-bench"))
    p.add_argument("--capture", help="use this pcap (and FILE.json from gen-span.py if any)")
    p.add_argument("--bytes", default="2G", help="size of the generated capture [2G]")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--slice", type=float, default=0.1, help="tshark's share of the capture")
    p.add_argument("--no-pin", action="store_true", help="do not pin to core 0")
    p.add_argument("--rss-concurrency", type=int, default=100000)
    p.add_argument("--rss-max-sessions", type=int, default=262144,
                   help="--max-sessions of the RSS run: every session parsed [262144]")
    p.add_argument("--rates", default="1000,10000,100000")
    p.add_argument("--rate-seconds", type=float, default=2.0,
                   help="seconds of messages in each rate capture [2]")
    p.add_argument("--skip", default="", help="comma-separated: throughput,rss,rates")
    p.add_argument("--json", help="write every measurement here")
    a = p.parse_args()
    a.rates = [int(float(x)) for x in a.rates.split(",") if x]
    skip = set(x for x in a.skip.split(",") if x)
    os.makedirs(a.workdir, exist_ok=True)
    rw = a.relaywatch or build_relaywatch(a.workdir)
    floor = build_floor(a.workdir)
    res = {"relaywatch": rw, "runs": a.runs,
           "pinned": "no" if a.no_pin or not shutil.which("taskset") else
           "relaywatch/ndpiReader/floor/tshark on core 0, redis-server on core 1",
           "machine": machine()}
    if "throughput" not in skip:
        if a.capture:
            path = a.capture
            try:
                with open(path + ".json") as f:
                    summ = json.load(f)
            except OSError:
                raise SystemExit("--capture needs FILE.json from gen-span.py (message counts)")
        else:
            path, summ = capture(a.workdir, "span-%s-seed%d" % (a.bytes, a.seed),
                                 ["--seed", a.seed, "--bytes", a.bytes, "--concurrency", 2000,
                                  "--rate", 2000])
        rows, nbytes, npk = throughput_rows(a, rw, floor, path, summ)
        res["capture"] = {"path": path, "bytes": nbytes, "packets": npk,
                          "messages": summ["messages"], "messages_clear": summ["messages_clear"],
                          "duration_s": summ["duration_s"],
                          "max_concurrent": summ["max_concurrent"]}
        res["rows"] = rows
    if "rss" not in skip:
        res["rss"] = rss_run(a, rw, a.workdir)
    if "rates" not in skip:
        res["rates"] = rates_run(a, rw, a.workdir)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    print_tables(res)


def machine():
    model = cores = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
        cores = os.cpu_count()
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except OSError:
        pass
    return {"cpu": model, "cores": cores, "mem_mb": mem, "kernel": os.uname().release}


if __name__ == "__main__":
    main()
