#!/usr/bin/python3
"""Redis round trips follow the flush tick, not the message rate (issues 3, 6).

counters.h promises one batch per flush interval of packet time, sent in one
pipelined round trip, whatever the message rate. Two generated captures
(tests/bench/gen-span.py) with the same population of senders (200 accounts,
100 client addresses, 300 subjects), one at 1,000 and one at 10,000 messages
per second of packet time, a few seconds each, are replayed at their recorded
pace (--pseudo-realtime) into a throwaway redis-server. For each:

  * every transaction is recorded (--records) and counted;
  * the sensor cut one batch per second of packet time (the flush tick), and
    sent them in as many round trips, +-1 (the last batch is cut at exit);
  * it printed its Redis cost ("redis: N commands in M round trips for T
    transactions (X commands per transaction)").

Across the two: ten times the messages do not make more round trips, and the
commands per message fall (a second of traffic costs one command per entity
touched, not one per message).

The rules are switched off: an alert leaves at once on its own round trip
(by design, alerts are urgent), which is not what is measured here.
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtest  # noqa: E402

GEN = os.path.join(rwtest.SOURCE, "tests", "bench", "gen-span.py")
RULES = ["open_relay", "display_spoof", "account_burst", "fingerprint_burst",
         "random_subject_flood", "recipient_rejects", "auth_failures", "tls_blind_burst"]
# Small clear-text sessions of 20 pipelined messages: about 7 packets per
# message, so that 30,000 messages take seconds to generate.
TRAFFIC = ["--https", "0", "--attach-prob", "0", "--starttls", "0", "--smtps", "0",
           "--body-median", "300", "--session-messages", "20", "--pipelining", "1",
           "--max-rcpt", "3", "--accounts", "200", "--clients", "100", "--subjects", "300",
           "--auth-fail", "0", "--seed", "3"]
SECONDS = 3
RE_REDIS = re.compile(r"redis: (\d+) commands in (\d+) round trips for (\d+) transactions "
                      r"\(([0-9.]+) commands per transaction\), (\d+) batches")


def generate(tmp, rate):
    path = os.path.join(tmp, "rate%d.pcap" % rate)
    subprocess.run([sys.executable, GEN, "--out", path, "--rate", str(rate),
                    "--messages", str(rate * SECONDS), "--concurrency", str(rate // 20)]
                   + TRAFFIC, check=True, stderr=subprocess.DEVNULL)
    with open(path + ".json") as f:
        return path, json.load(f)


def replay(ck, path, summ, rate):
    recs = path + ".records"
    args = ["-r", path, "--pseudo-realtime", "--records", recs, "--sensor-name", "rate-test"]
    for r in RULES:
        args += ["--rule", r + ".enabled=no"]
    with rwtest.RedisServer() as srv:
        p = rwtest.run(args + ["--redis", srv.url], timeout=300)
        evalsha = re.search(r"cmdstat_evalsha:calls=(\d+)", srv.cli("INFO", "commandstats"))
    m = RE_REDIS.search(p.stderr)
    if not ck.true("%d/s: the sensor printed its Redis cost line" % rate, m):
        print(p.stderr)
        return None
    commands, trips, txns, per_txn, batches = (int(m.group(1)), int(m.group(2)),
                                               int(m.group(3)), float(m.group(4)),
                                               int(m.group(5)))
    with open(recs) as f:
        nrec = sum(1 for line in f if line.strip())
    ticks = math.ceil(summ["duration_s"])
    print("%6d msgs/s: %d s of packet time, %d transactions, %d commands in %d round trips, "
          "%d batches, %.3f commands per transaction"
          % (rate, ticks, txns, commands, trips, batches, per_txn))
    ck.eq("%d/s: records written" % rate, nrec, summ["transactions"])
    ck.eq("%d/s: transactions counted" % rate, txns, summ["transactions"])
    ck.true("%d/s: batches %d = flush ticks %d +-1" % (rate, batches, ticks),
            abs(batches - ticks) <= 1)
    ck.true("%d/s: round trips %d = flush ticks %d +-1" % (rate, trips, ticks),
            abs(trips - ticks) <= 1)
    ck.true("%d/s: commands per transaction printed as commands / transactions" % rate,
            abs(per_txn - commands / max(txns, 1)) < 0.001)
    if evalsha:
        ck.true("%d/s: Redis ran the commands the sensor counted (%s EVALSHA, %d sent)"
                % (rate, evalsha.group(1), commands), int(evalsha.group(1)) >= commands - 10)
    return {"trips": trips, "per_txn": per_txn, "ticks": ticks}


def main():
    for prog in ("redis-server", "redis-cli"):
        if not any(os.access(os.path.join(d, prog), os.X_OK)
                   for d in os.environ.get("PATH", "").split(":")):
            print("%s not installed: skipped" % prog)
            sys.exit(rwtest.SKIP)
    ck = rwtest.Checker()
    with tempfile.TemporaryDirectory(prefix="rw-rate-") as tmp:
        res = {}
        for rate in (1000, 10000):
            path, summ = generate(tmp, rate)
            res[rate] = replay(ck, path, summ, rate)
        lo, hi = res[1000], res[10000]
        if lo and hi:
            ck.true("10x the messages, no more round trips (%d at 1k/s, %d at 10k/s, "
                    "%d and %d ticks)" % (lo["trips"], hi["trips"], lo["ticks"], hi["ticks"]),
                    hi["trips"] <= lo["trips"] + (hi["ticks"] - lo["ticks"]) + 1)
            ck.true("commands per message fall with the rate (%.3f at 1k/s, %.3f at 10k/s)"
                    % (lo["per_txn"], hi["per_txn"]), hi["per_txn"] < lo["per_txn"])
    ck.done()


if __name__ == "__main__":
    main()
