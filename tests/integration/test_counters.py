#!/usr/bin/env python3
"""Counters in a real redis-server (counters/SCHEMA.md):

- exact window totals for a known incident capture (hijacked-account: what
  its facts file says the client sent);
- HyperLogLog distinct counts within 2% (5000 recipients at 500 domains);
- every key expires by itself, except rw:stats and rw:alerts;
- --redis embedded starts, is used, and leaves nothing behind;
- ACL login with a password file, and a wrong password never printed;
- Redis SIGKILLed in the middle of a paced replay and restarted from its
  append-only file: rw:stats, the per-account windows and the alerts equal
  those of a run without the fault (nothing lost, nothing counted twice).
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtest  # noqa: E402

SCEN = os.path.join(rwtest.SOURCE, "tests", "scenarios")
CAPS = os.path.join(rwtest.SOURCE, "tests", "captures")
CONFIG = """[network]
local_domains = pref.example.jp, kankyo-kosha.example.jp
trusted_networks = 10.0.0.0/8
protected_domains = s-kantan.example.jp
"""


def facts(name):
    with open(os.path.join(SCEN, name + ".facts.json"), encoding="utf-8") as f:
        return json.load(f)


def hgetall(redis, key):
    lines = redis.cli("HGETALL", key).split("\n")
    return {lines[i]: lines[i + 1] for i in range(0, len(lines) - 1, 2)}


def entity_totals(redis, entity, res="m"):
    """Sum of every bucket of one resolution: the entity's all-time counts
    (the capture lasts seconds, so every window holds all of it)."""
    tot = {}
    for k in redis.keys():
        if k.startswith(entity + ":c:" + res + ":"):
            for f, v in hgetall(redis, k).items():
                tot[f] = tot.get(f, 0) + int(v)
    return tot


def distinct(redis, entity, kind):
    keys = [k for k in redis.keys() if k.startswith("%s:u:%s:m:" % (entity, kind))]
    return int(redis.cli("PFCOUNT", *keys).strip() or 0) if keys else 0


def conf_file(tmp):
    path = os.path.join(tmp, "relaywatch.conf")
    with open(path, "w") as f:
        f.write(CONFIG)
    return path


def test_exact_windows(c, tmp):
    f = facts("hijacked-account")
    acct, attacker = f["compromised_account"], f["attacker"]
    with rwtest.RedisServer() as redis:
        rwtest.run(["-r", os.path.join(SCEN, "hijacked-account.pcap"), "--redis", redis.url,
                    "-c", conf_file(tmp), "-q"])
        a = entity_totals(redis, "rw:{acct:%s}" % acct)
        c.eq("account msgs", a.get("msgs"), f["accounts"][acct]["messages"])
        c.eq("account rcpts", a.get("rcpts"), f["accounts"][acct]["recipients"])
        c.eq("account auth_fail", a.get("auth_fail"), f["accounts"][acct]["auth_failures"])
        c.eq("account auth_ok", a.get("auth_ok"), f["accounts"][acct]["auth_successes"])
        cl = entity_totals(redis, "rw:{ip:%s}" % attacker)
        ci = f["client_ips"][attacker]
        c.eq("client msgs", cl.get("msgs"), ci["messages"])
        c.eq("client rcpts", cl.get("rcpts"), ci["recipients"])
        c.eq("client auth_fail", cl.get("auth_fail"), ci["auth_failures"])
        c.eq("client sessions", cl.get("sessions"), ci["sessions"])
        # the same totals in the 5-minute and hour buckets
        for res in ("f", "h"):
            c.eq("account msgs (%s buckets)" % res,
                 entity_totals(redis, "rw:{acct:%s}" % acct, res).get("msgs"),
                 f["accounts"][acct]["messages"])
        # fingerprint of the spam subject: 40 messages, one account, 160 domains' rcpts
        spam = [k for k in redis.keys() if k.startswith("rw:{fp:") and k.endswith(":sample")
                and "HELLO!DEAR!" in redis.cli("GET", k)]
        c.eq("one fingerprint for the spam subject", len(spam), 1)
        fp = spam[0][:-len(":sample")]
        c.eq("fingerprint msgs", entity_totals(redis, fp).get("msgs"),
             f["subjects"]["HELLO!DEAR!GOOD NEWS TO YOU,"])
        c.eq("fingerprint distinct accounts", distinct(redis, fp, "acct"), 1)
        c.eq("sender domain msgs",
             entity_totals(redis, "rw:{dom:pref.example.jp}").get("msgs"), f["message_count"])
        st = hgetall(redis, "rw:stats")
        c.eq("rw:stats msgs", int(st["msgs"]), f["message_count"])
        c.eq("rw:stats rcpts", int(st["rcpts"]), f["recipient_count"])
        c.eq("rw:stats auth_failures", int(st["auth_failures"]), f["auth_failure_count"])
        c.eq("rw:stats sessions", int(st["sessions"]), f["session_count"])
        # tried user names from the attacker: 6 (bosai-heli and 5 others)
        c.eq("distinct user names tried", distinct(redis, "rw:{ip:%s}" % attacker, "tried"),
             len({e["user"] for e in f["events"]
                  if e["type"] == "auth" and e["orig_h"] == attacker}))
        ttl_check(c, redis, "hijacked-account")


def ttl_check(c, redis, what):
    keys = redis.keys()
    c.true("%s: keys written" % what, len(keys) > 20)
    for k in keys:
        ttl = int(redis.cli("TTL", k).strip())
        if k in ("rw:stats", "rw:alerts"):
            c.eq("%s: %s has no TTL (a contract)" % (what, k), ttl, -1)
        else:
            c.true("%s: %s expires by itself (ttl %d)" % (what, k, ttl), ttl > 0)


def test_hyperloglog(c):
    with rwtest.RedisServer() as redis:
        rwtest.run(["-r", os.path.join(CAPS, "many-distinct-rcpts.pcap"), "--redis",
                    redis.url, "-q"])
        e = "rw:{acct:bulk@example.net}"
        c.eq("bulk messages", entity_totals(redis, e).get("msgs"), 50)
        c.eq("bulk recipients", entity_totals(redis, e).get("rcpts"), 5000)
        n, d = distinct(redis, e, "rcpt"), distinct(redis, e, "rdom")
        print("HyperLogLog: %d distinct recipients (5000), %d domains (500)" % (n, d))
        c.true("distinct recipients within 2%% (%d)" % n, abs(n - 5000) <= 100)
        c.true("distinct domains within 2%% (%d)" % d, abs(d - 500) <= 10)
        ttl_check(c, redis, "many-distinct-rcpts")


def test_embedded(c, tmp):
    p = rwtest.run(["-r", os.path.join(SCEN, "emotet-reply.pcap"), "--redis", "embedded",
                    "-c", conf_file(tmp), "--alerts-json", "-"])
    m = re.search(r"embedded Redis at unix://(\S+?)(\?db=0)? ", p.stderr)
    if not c.true("embedded: the socket is announced", m):
        return
    sock = m.group(1)
    c.true("embedded: counted (no events lost)", "could not be written" not in p.stderr)
    c.true("embedded: alerts sent to its stream", re.search(r"[1-9]\d* alerts sent", p.stderr))
    c.true("embedded: the temporary directory is gone", not os.path.exists(os.path.dirname(sock)))
    ps = subprocess.run(["pgrep", "-f", sock], capture_output=True, text=True).stdout
    c.eq("embedded: no redis-server left running", ps.strip(), "")


def test_acl_login(c, tmp):
    acl = os.path.join(tmp, "users.acl")
    with open(acl, "w") as f:
        f.write("user default off\n"
                "user sensor on >Sens0r-Pa55 ~rw:* +@all -flushall -flushdb -keys -config\n")
    pw = os.path.join(tmp, "pw")
    with open(pw, "w") as f:
        f.write("Sens0r-Pa55\n")
    bad = os.path.join(tmp, "badpw")
    with open(bad, "w") as f:
        f.write("Wr0ng-Pa55\n")
    with rwtest.RedisServer(["--aclfile", acl]) as redis:
        url = "redis://sensor@127.0.0.1:%d" % redis.port
        p = rwtest.run(["-r", os.path.join(SCEN, "emotet-reply.pcap"), "--redis", url,
                        "--redis-password-file", pw, "-v"], check=False)
        c.eq("acl: exit status", p.returncode, 0)
        st = redis.cli("HGET", "rw:stats", "msgs", user="sensor", password="Sens0r-Pa55")
        c.eq("acl: counted as user sensor", st.strip(), "6")
        p = rwtest.run(["-r", os.path.join(SCEN, "emotet-reply.pcap"), "--redis", url,
                        "--redis-password-file", bad], check=False)
        c.true("acl: a wrong password is reported",
               "WRONGPASS" in p.stderr or "invalid username-password" in p.stderr)
        c.true("acl: the password is never printed",
               "Wr0ng-Pa55" not in p.stderr + p.stdout and "Sens0r" not in p.stderr)
        c.true("acl: what was not written is said",
               "could not be written" in p.stderr)


def test_password_whole_or_refused(c, tmp):
    """The sensor logs in with the password it was given or not at all. A
    password file's line longer than REDIS_PASS_MAX (512 bytes) was cut
    there, and a %00 in a URL's password ended it: a Redis whose password
    happened to be the cut part let the sensor in (exit 0), any other
    refused it at every retry with WRONGPASS, far from the cause. Both are
    configuration errors now (exit 2), the password never printed."""
    pcap = os.path.join(SCEN, "emotet-reply.pcap")
    long_pw = "L0ng-" + "p" * 508                  # 513 bytes
    pw = os.path.join(tmp, "long.pass")
    with open(pw, "w") as f:
        f.write(long_pw + "\n")
    with rwtest.RedisServer(["--requirepass", long_pw[:512]]) as redis:
        p = rwtest.run(["-r", pcap, "--redis", redis.url, "--redis-password-file", pw, "-q"],
                       check=False)
        c.eq("513-byte password file: exit 2 (%r)" % p.stderr[-200:], p.returncode, 2)
        c.true("513-byte password file: says so (%r)" % p.stderr[-200:],
               pw + ": the password is longer than 512 bytes" in p.stderr)
        c.eq("513-byte password file: nothing written with the cut password",
             redis.cli("HGET", "rw:stats", "msgs", password=long_pw[:512]).strip(), "")
        c.true("513-byte password file: the password is never printed",
               "ppppp" not in p.stderr + p.stdout)
    with rwtest.RedisServer(["--requirepass", "Sekr"]) as redis:
        url = "redis://:Sekr%%00et@127.0.0.1:%d" % redis.port
        p = rwtest.run(["-r", pcap, "--redis", url, "-q"], check=False)
        c.eq("%%00 in the URL's password: exit 2 (%r)" % p.stderr[-200:], p.returncode, 2)
        c.true("%%00 in the URL's password: says so (%r)" % p.stderr[-200:],
               "--redis ([redis] url): " in p.stderr and "%00" in p.stderr)
        c.eq("%00 in the URL's password: nothing written with the cut password",
             redis.cli("HGET", "rw:stats", "msgs", password="Sekr").strip(), "")
        c.true("%00 in the URL's password: the password is never printed",
               "Sekr" not in p.stderr + p.stdout)


def snapshot(redis):
    """What a run leaves in Redis, without run-dependent fields."""
    st = {k: v for k, v in hgetall(redis, "rw:stats").items() if not k.startswith("_")}
    acct = {}
    for k in redis.keys():
        if k.startswith("rw:{acct:") and ":c:" in k:
            acct[k] = hgetall(redis, k)
    alerts = sorted(re.findall(r"rule\n(\S+)", redis.cli("XRANGE", "rw:alerts", "-", "+")))
    return st, acct, alerts


def fault_free_relay(tmp):
    """The relay capture, its configuration and flush tick, and what Redis
    holds after a run without a fault: what the fault tests compare with."""
    pcap = os.path.join(SCEN, "relay-can-i-trust-you.pcap")
    conf = conf_file(tmp)
    tick = ["--flush-interval", "0.05"]
    with rwtest.RedisServer() as ref:
        rwtest.run(["-r", pcap, "--redis", ref.url, "-c", conf, "-q"] + tick)
        return pcap, conf, tick, snapshot(ref)


def test_outage(c, tmp):
    # 130 messages in 1.05 s of packet time, flushed every 0.05 s of packet
    # time and replayed at a tenth of the pace: about 20 batches over 10 s,
    # so that Redis dies with part of them written and the rest pending.
    pcap, conf, tick, want = fault_free_relay(tmp)
    aof = ["--appendonly", "yes", "--appendfsync", "always"]
    with rwtest.RedisServer(aof) as redis:
        sensor = subprocess.Popen([rwtest.RELAYWATCH, "-r", pcap, "--redis", redis.url, "-c",
                                   conf, "--pseudo-realtime=0.1"] + tick,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # wait until a first part is in Redis, then crash it
        rwtest.wait_for("the first messages in Redis",
                        lambda: int(redis.cli("HGET", "rw:stats", "msgs").strip() or 0) > 0,
                        timeout=60)
        before = int(redis.cli("HGET", "rw:stats", "msgs").strip())
        redis.kill()
        time.sleep(3)              # the sensor counts on without Redis
        redis.start()              # replays its append-only file
        out, err = sensor.communicate(timeout=300)
        c.eq("outage: sensor exit status", sensor.returncode, 0)
        m = re.search(r"(\d+) reconnects", err)
        c.true("outage: the sensor reconnected", m and int(m.group(1)) >= 1)
        c.true("outage: Redis died in the middle (%d of %d messages counted before)"
               % (before, int(want[0]["msgs"])), 0 < before < int(want[0]["msgs"]))
        got = snapshot(redis)
        c.eq("outage: rw:stats equal to a run without the fault", got[0], want[0])
        c.eq("outage: per-account buckets equal", got[1], want[1])
        c.eq("outage: alerts equal", got[2], want[2])
        c.true("outage: nothing lost", "could not be written" not in err)


def test_error_replies(c, tmp):
    """A Redis that answers with errors (here READONLY: a replica, as after a
    failover that left the sensor on the wrong node; OOM, BUSY and NOPERM
    take the same path) has not taken the batch: it is kept and sent again
    after a backoff, the trouble is logged while the sensor runs, and once
    Redis takes writes again everything is there, as from a run without the
    fault. Before, an error reply counted as acknowledged: the deltas and
    alerts were dropped without a word and the exit status was 0."""
    pcap, conf, tick, want = fault_free_relay(tmp)
    with rwtest.RedisServer() as redis:
        # a replica of nothing: connects, answers, refuses every write
        redis.cli("REPLICAOF", "127.0.0.1", str(rwtest.free_port()))
        sensor = rwtest.Background([rwtest.RELAYWATCH, "-r", pcap, "--redis", redis.url, "-c",
                                    conf, "--pseudo-realtime=0.1"] + tick)
        sensor.wait_stderr("the refusal told while running",
                           lambda e: b"READONLY" in e and b"wait in memory" in e, timeout=60)
        c.eq("error replies: nothing written while refused",
             redis.cli("HGET", "rw:stats", "msgs").strip(), "")
        redis.cli("REPLICAOF", "NO", "ONE")
        c.eq("error replies: sensor exit status", sensor.wait(timeout=300), 0)
        err = sensor.stderr().decode(errors="replace")
        c.true("error replies: the recovery told", "redis: writing again" in err)
        got = snapshot(redis)
        c.eq("error replies: rw:stats equal to a run without the fault", got[0], want[0])
        c.eq("error replies: per-account buckets equal", got[1], want[1])
        c.eq("error replies: alerts equal", got[2], want[2])
        c.true("error replies: nothing lost", "could not be written" not in err)
    with rwtest.RedisServer() as redis:
        redis.cli("REPLICAOF", "127.0.0.1", str(rwtest.free_port()))
        p = rwtest.run(["-r", pcap, "--redis", redis.url, "-c", conf, "-q"], check=False)
        c.eq("refused to the end: exit 1", p.returncode, 1)
        c.true("refused to the end: what was lost and why (%r)" % p.stderr[-300:],
               re.search(r"\d+ events and alerts could not be written before exit \(READONLY",
                         p.stderr))


def test_last_health_at_exit(c, tmp):
    """The batch cut at exit reaches Redis even when it holds only the health
    numbers (no event since the last flush) and Redis is behind. cut() keeps
    such a batch back while earlier ones wait, so that the next one carries
    the newest health; at exit there is no next one, and the sensor's last
    health (packets_received, records, ...) was lost: on a replay against a
    healthy Redis, most runs left the count of the batch before, whose round
    trip was still under way. Here Redis is a replica (READONLY) until the
    sensor has printed its summary, so the batch before is still waiting
    when the last one is cut. The capture: basic.pcap (29 packets, one
    message), then its last packet again 5 s later (a flush: the message
    and the health so far) and 5.1 s later (only the health: 31 packets)."""
    cap = os.path.join(CAPS, "basic.pcap")
    last, at5, at51 = (os.path.join(tmp, n) for n in ("last.pcap", "at5.pcap", "at51.pcap"))
    trail = os.path.join(tmp, "basic-trailing.pcap")
    for cmd in (["editcap", "-r", cap, last, "29"], ["editcap", "-t", "5", last, at5],
                ["editcap", "-t", "5.1", last, at51],
                ["mergecap", "-F", "pcap", "-w", trail, cap, at5, at51]):
        subprocess.run(cmd, check=True, capture_output=True)
    with rwtest.RedisServer() as redis:
        redis.cli("REPLICAOF", "127.0.0.1", str(rwtest.free_port()))
        sensor = rwtest.Background([rwtest.RELAYWATCH, "-r", trail, "--redis", redis.url,
                                    "--sensor-name", "last"])
        sensor.wait_stderr("the summary (the last batch is cut right after)",
                           lambda e: b" packets (" in e)
        redis.cli("REPLICAOF", "NO", "ONE")
        c.eq("last health: exit 0", sensor.wait(timeout=120), 0)
        err = sensor.stderr().decode(errors="replace")
        c.true("last health: nothing lost (%r)" % err[-300:], "could not be written" not in err)
        c.eq("last health: the message counted", redis.cli("HGET", "rw:stats", "msgs").strip(),
             "1")
        c.eq("last health: packets_received of the end",
             redis.cli("HGET", "rw:sensor:last", "packets_received").strip(), "31")


def test_minute_boundary(c):
    """A flush batch (1 s of packet time) that spans a minute boundary holds
    two deltas of one entity, one per minute; both are applied. The
    contact-form flood crosses a minute 56 messages in: before the fix the
    second minute's deltas of every entity of that batch were taken for a
    replay and dropped (4 of its 18 messages counted)."""
    f = facts("contact-form-flood")
    n = f["message_count"]
    with rwtest.RedisServer() as redis:
        rwtest.run(["-r", os.path.join(SCEN, "contact-form-flood.pcap"), "--redis", redis.url,
                    "-q"])
        c.eq("minute boundary: rw:stats msgs", hgetall(redis, "rw:stats").get("msgs"), str(n))
        ents = ["rw:{ip:%s}" % ip for ip in f["client_ips"]] + \
            ["rw:{acct:www-form@pref.example.jp}", "rw:{dom:pref.example.jp}"]
        c.eq("minute boundary: one client in the facts", len(f["client_ips"]), 1)
        for ent in ents:
            minutes = sorted(k for k in redis.keys() if k.startswith(ent + ":c:m:"))
            for res in ("m", "f", "h"):
                c.eq("minute boundary: %s messages at resolution %s (%d minutes)"
                     % (ent, res, len(minutes)), entity_totals(redis, ent, res).get("msgs"), n)


def test_health_bounds(c, tmp):
    """The health hash tells what the sensor holds and what it could not:
    with --max-sessions 5 on a capture that opens 40 at once, sessions_over
    counts the ones left unparsed (Prometheus' RelaywatchSessionsNotParsed)."""
    cap = os.path.join(tmp, "concurrent.pcap")
    subprocess.run([sys.executable, os.path.join(rwtest.SOURCE, "tests", "bench", "gen-span.py"),
                    "--out", cap, "--seed", "3", "--messages", "200", "--rate", "200",
                    "--concurrency", "40", "--https", "0", "--starttls", "0", "--smtps", "0"],
                   check=True, capture_output=True)
    with open(cap + ".json") as f:
        summ = json.load(f)
    with rwtest.RedisServer() as redis:
        p = rwtest.run(["-r", cap, "--redis", redis.url, "--max-sessions", "5",
                        "--sensor-name", "bounded", "--records", "-"])
        h = hgetall(redis, "rw:sensor:bounded")
        over = re.search(r"(\d+) sessions and \d+ messages over their pools", p.stderr)
        c.true("health: more sessions open than the bound (%s of %d)"
               % (summ["max_concurrent"], 5), summ["max_concurrent"] > 5)
        c.true("health: sessions_over > 0 (%r)" % h.get("sessions_over"),
               int(h.get("sessions_over", 0)) > 0)
        c.eq("health: sessions_over = the summary's count",
             h.get("sessions_over"), over.group(1) if over else None)
        c.eq("health: no session open at the end", h.get("sessions"), "0")
        nrec = len([l for l in p.stdout.splitlines() if l.strip()])
        c.true("health: fewer records than transactions (%d of %d)"
               % (nrec, summ["transactions"]), 0 < nrec < summ["transactions"])
        c.true("health: resident memory (%r, peak %r)" % (h.get("rss_bytes"),
                                                          h.get("rss_peak_bytes")),
               0 < int(h.get("rss_bytes", 0)) <= int(h.get("rss_peak_bytes", 0)))


def test_health_checksums(c, tmp):
    """The health hash tells TCP checksums apart (tracker.h): bad_checksums
    counts the segments left out for theirs, as the summary's degraded:
    line does, and checksums says whether they are verified now: on, off,
    auto (the first 1000 segments verified not yet in), auto-on or auto-off
    (what those 1000 decided). The captures are test_tcp_wire.py's: one
    decoy MAIL FROM with a bad checksum among good ones; the first 1000
    segments with 99 bad (auto goes on verifying, and leaves out the decoy
    that follows) and with 100 (auto stops: the 1000th segment and the
    decoy are used); a capture made on the sending host (every checksum 0,
    used while auto samples)."""
    import test_tcp_wire as wire
    caps = {}
    for name, build in (("decoy", wire.bad_checksum_decoy), ("offload", wire.keepalive),
                        ("sample99", lambda w: wire.sample_then_decoy(w, 99)),
                        ("sample100", lambda w: wire.sample_then_decoy(w, 100))):
        caps[name] = os.path.join(tmp, "csum-%s.pcap" % name)
        w = wire.pcapw.PcapWriter(caps[name])
        build(w)
        w.close()
    with rwtest.RedisServer() as redis:
        for i, (cap, extra, mode, bad) in enumerate((
                ("decoy", [], "auto", 1), ("decoy", ["--checksums", "on"], "on", 1),
                ("decoy", ["--checksums", "off"], "off", 0), ("offload", [], "auto", 0),
                ("sample99", [], "auto-on", 100), ("sample100", [], "auto-off", 99))):
            name = "csum%d" % i
            what = "health, %s %s" % (cap, " ".join(extra) or "auto")
            p = rwtest.run(["-r", caps[cap], "--redis", redis.url, "--sensor-name", name] + extra)
            h = hgetall(redis, "rw:sensor:" + name)
            c.eq("%s: checksums" % what, h.get("checksums"), mode)
            c.eq("%s: bad_checksums" % what, h.get("bad_checksums"), str(bad))
            left = re.search(r"(\d+) segments with a bad TCP checksum left out", p.stderr)
            c.eq("%s: bad_checksums = the summary's count" % what,
                 h.get("bad_checksums"), left.group(1) if left else "0")


def counters_snapshot(redis):
    """Every counter Redis holds after a run: rw:stats without its internal
    fields, every bucket hash of every entity, every top-N set."""
    st = {k: v for k, v in hgetall(redis, "rw:stats").items() if not k.startswith("_")}
    buckets, top = {}, {}
    for k in redis.keys():
        if ":c:" in k:
            buckets[k] = hgetall(redis, k)
        elif k == "rw:{top}:newest":     # a string: the newest top minute
            top[k] = redis.cli("GET", k)
        elif k.startswith("rw:{top}:") and not k.endswith(":seq"):
            top[k] = redis.cli("ZRANGE", k, "0", "-1", "WITHSCORES")
    return st, buckets, top


def test_partial_round(c, tmp):
    """After an outage the backlog goes to Redis in one pipelined round; a
    command of it can be refused while a later one of the same entity is
    executed: Redis answers BUSY to the part of a pipeline it reads while
    another client's script runs too long and executes the part it reads
    after (NOSCRIPT after a SCRIPT FLUSH that another sensor's SCRIPT LOAD
    follows does the same). The round is sent again; the refused call must
    then be applied, not taken for a replay because a later call of its
    entity (or of rw:stats, or of the top-N sets) is already in. Here a
    proxy refuses the first flush.lua call of the backlog, and the first
    stats.lua and top.lua calls, with BUSY: the counts must equal those of
    a run without the fault. Before the fix the refused batch of that
    entity, of rw:stats and of the top sets was lost."""
    pcap = os.path.join(SCEN, "relay-can-i-trust-you.pcap")
    conf = conf_file(tmp)
    tick = ["--flush-interval", "0.05"]
    with rwtest.RedisServer() as ref:
        rwtest.run(["-r", pcap, "--redis", ref.url, "-c", conf, "-q"] + tick)
        want = counters_snapshot(ref)
    busy = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."

    def call(pred):
        return lambda a: len(a) > 3 and a[0].upper() == b"EVALSHA" and pred(a[3])

    with rwtest.RedisServer() as redis, rwtest.FaultProxy(redis.port) as proxy:
        proxy.down = True          # connects, then loses every round: a backlog
        sensor = rwtest.Background([rwtest.RELAYWATCH, "-r", pcap, "--redis", proxy.url,
                                    "-c", conf] + tick)
        # the capture is read (the summary comes before the last flush)
        sensor.wait_stderr("the end of the capture", lambda e: b" transactions, " in e,
                           timeout=120)
        proxy.inject(call(lambda k: b"{" in k and not k.startswith((b"rw:{top}",
                                                                     b"rw:{alerts}"))), busy)
        proxy.inject(call(lambda k: k == b"rw:stats"), busy)
        proxy.inject(call(lambda k: k == b"rw:{top}"), busy)
        proxy.down = False
        c.eq("partial round: sensor exit status", sensor.wait(timeout=120), 0)
        err = sensor.stderr().decode(errors="replace")
        c.eq("partial round: three calls refused", len(proxy.injected), 3)
        got = counters_snapshot(redis)
        c.eq("partial round: rw:stats equal to a run without the fault", got[0], want[0])
        c.eq("partial round: the same bucket keys", sorted(got[1]), sorted(want[1]))
        for k in sorted(want[1]):
            if got[1].get(k) != want[1][k]:
                c.eq("partial round: %s" % k, got[1].get(k), want[1][k])
        c.eq("partial round: top-N sets equal", got[2], want[2])
        c.true("partial round: nothing lost", "could not be written" not in err)


def test_seq_ttl(c):
    """E:seq expires by itself whichever call creates it. The sensor reads
    an entity's whole windows (mode 1 or 2, which renews E:seq's TTL) only
    every few minutes; in between its calls are mode 0. When E:seq is gone
    meanwhile (a Redis restarted without persistence, a failover to a
    replica that had not got it, a FLUSHDB), the next mode-0 call created it
    without a TTL: a key that never expired, against SCHEMA.md. flush.lua
    is called here as the sensor calls it, on an empty Redis."""
    with open(os.path.join(rwtest.SOURCE, "counters", "lua", "flush.lua")) as f:
        src = f.read()
    with rwtest.RedisServer() as redis:
        r = rwtest.RespClient(redis.port)
        now = 1795417934
        e = "rw:{acct:alice@pref.example.jp}"
        r.command("EVAL", src, "1", e, "s1", "0123456789abcdef", "7:1", "%d.5" % now,
                  str(now // 60), "0", "", "1", "msgs", "1", "0")
        c.eq("seq ttl: the mode-0 call applied", r.command("HGET", e + ":c:m:%d" % (now // 60),
                                                          "msgs"), b"1")
        ttl = r.command("TTL", e + ":seq")
        c.true("seq ttl: E:seq made by a mode-0 call expires by itself (ttl %d)" % ttl,
               ttl > 0)
        r.close()


def test_alerts_of_failed_round(c, tmp):
    """A round that Redis does not take whole is sent again; its alerts
    that Redis did take (alert.lua answered) must not go again. With a
    cooldown they came back as duplicates and were dropped by alert.lua;
    with --alert-cooldown 0 (every alert goes out) each one was added to
    the stream a second time. A proxy refuses one flush.lua call of the
    round that carries the backlog's alerts; the stream must hold what a
    run without the fault puts there."""
    pcap = os.path.join(SCEN, "relay-can-i-trust-you.pcap")
    conf = conf_file(tmp)
    args = ["-c", conf, "--flush-interval", "0.05", "--alert-cooldown", "0"]
    with rwtest.RedisServer() as ref:
        rwtest.run(["-r", pcap, "--redis", ref.url, "-q"] + args)
        want = int(ref.cli("XLEN", "rw:alerts").strip())
    with rwtest.RedisServer() as redis, rwtest.FaultProxy(redis.port) as proxy:
        proxy.down = True
        sensor = rwtest.Background([rwtest.RELAYWATCH, "-r", pcap, "--redis", proxy.url]
                                   + args)
        sensor.wait_stderr("the end of the capture", lambda e: b" transactions, " in e,
                           timeout=120)
        proxy.inject(lambda a: len(a) > 3 and a[0].upper() == b"EVALSHA" and
                     a[3].startswith(b"rw:{ip:"), "BUSY Redis is busy running a script.")
        proxy.down = False
        c.eq("failed round's alerts: sensor exit status", sensor.wait(timeout=120), 0)
        c.eq("failed round's alerts: one call refused", len(proxy.injected), 1)
        c.true("failed round's alerts: alerts raised (%d)" % want, want > 0)
        c.eq("failed round's alerts: the stream holds each alert once",
             int(redis.cli("XLEN", "rw:alerts").strip()), want)
        c.eq("failed round's alerts: rw:stats alerts",
             redis.cli("HGET", "rw:stats", "alerts").strip(), str(want))


def test_alert_reply_lost(c, tmp):
    """An alert that Redis added but whose reply was lost (the connection
    failed after alert.lua ran) is sent again on the next connection. With a
    cooldown alert.lua finds it within the cooldown; with --alert-cooldown 0
    it added it to the stream a second time. The same alert said twice (the
    same packet time and value) is one, whatever the cooldown."""
    pcap = os.path.join(SCEN, "relay-can-i-trust-you.pcap")
    args = ["-c", conf_file(tmp), "--flush-interval", "0.05", "--alert-cooldown", "0", "-q"]
    with rwtest.RedisServer() as ref:
        rwtest.run(["-r", pcap, "--redis", ref.url] + args)
        want = int(ref.cli("XLEN", "rw:alerts").strip())
    with rwtest.RedisServer() as redis, rwtest.FaultProxy(redis.port) as proxy:
        proxy.inject(lambda a: len(a) > 3 and a[0].upper() == b"EVALSHA" and
                     b"{alerts}:cool:" in a[3], rwtest.FaultProxy.LOSE_REPLY)
        p = rwtest.run(["-r", pcap, "--redis", proxy.url] + args, check=False)
        c.eq("alert reply lost: exit 0 (%s)" % p.stderr[-300:], p.returncode, 0)
        c.eq("alert reply lost: one reply lost", len(proxy.injected), 1)
        c.true("alert reply lost: alerts raised (%d)" % want, want > 0)
        c.eq("alert reply lost: the stream holds each alert once",
             int(redis.cli("XLEN", "rw:alerts").strip()), want)


def test_refused_across_hours(c, tmp):
    """A plain replay (-r) waits at each new hour of packet time until Redis
    has answered for the hours before, or a round has failed (the replay
    goes on with local deltas). A round refused with an error reply
    (READONLY here: a replica; OOM, NOPERM alike) was not taken for a
    failure, because the connection stayed up: a capture that crosses an
    hour hung for as long as Redis refused, instead of finishing and saying
    what could not be written (exit 1), as it does within one hour. The
    relay capture and a copy an hour later; the timeout only guards
    against the hang."""
    src = os.path.join(SCEN, "relay-can-i-trust-you.pcap")
    later = os.path.join(tmp, "relay-later.pcap")
    merged = os.path.join(tmp, "relay-two-hours.pcap")
    subprocess.run(["editcap", "-t", "3600", src, later], check=True, capture_output=True)
    subprocess.run(["mergecap", "-F", "pcap", "-w", merged, src, later], check=True,
                   capture_output=True)
    with rwtest.RedisServer() as redis:
        redis.cli("REPLICAOF", "127.0.0.1", str(rwtest.free_port()))
        try:
            p = rwtest.run(["-r", merged, "--redis", redis.url, "-c", conf_file(tmp), "-q"],
                           check=False, timeout=60)
        except subprocess.TimeoutExpired:
            c.true("refused across hours: the replay ends (it hung)", False)
            return
        c.eq("refused across hours: exit 1", p.returncode, 1)
        c.true("refused across hours: what was lost and why (%r)" % p.stderr[-300:],
               re.search(r"\d+ events and alerts could not be written before exit \(READONLY",
                         p.stderr))


def test_secrets_before_dropping_privileges(c, tmp):
    """Started as root with --user, the sensor reads its secrets (the Redis
    password file, the pseudonymisation key) before it drops to that user:
    they may stay root-only (0600, as README's install steps make them).
    Before, counters_create() read them after the drop and a root-only file
    failed with EACCES (exit 2). The embedded redis-server and the writer
    still start after the drop: Redis runs as the user, not as root."""
    if os.geteuid() != 0:
        print("SKIP secrets before dropping privileges: not root")
        return
    import pwd
    nobody = pwd.getpwnam("nobody")
    secret = os.path.join(tmp, "root-only")
    os.mkdir(secret, 0o700)
    pw = os.path.join(secret, "redis.pass")
    key = os.path.join(secret, "pseudonymize.key")
    for path, data in ((pw, b"R00t-0nly-Pa55\n"), (key, b"k3y-" * 16)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, data)
        os.close(fd)
    pcap = os.path.join(CAPS, "basic.pcap")
    with rwtest.RedisServer(["--requirepass", "R00t-0nly-Pa55"]) as redis:
        def cli(*a):
            return redis.cli(*a, password="R00t-0nly-Pa55")
        for what, extra in (("password file", []),
                            ("password and key file", ["--pseudonymize",
                                                       "--pseudonymize-key-file", key])):
            cli("FLUSHALL")
            p = rwtest.run(["-r", pcap, "--redis", redis.url, "--redis-password-file", pw,
                            "--user", "nobody", "--sensor-name", "dropped", "-v",
                            "--records", "-"] + extra, check=False)
            c.eq("root-only %s, --user nobody: exit 0 (%r)" % (what, p.stderr[-300:]),
                 p.returncode, 0)
            c.eq("root-only %s: counted in Redis" % what,
                 cli("HGET", "rw:stats", "msgs").strip(), "1")
            c.true("root-only %s: the health hash written" % what,
                   cli("HGET", "rw:sensor:dropped", "packets_received").strip() not in ("", "0"))
            c.true("root-only %s: the password is never printed" % what,
                   "R00t-0nly" not in p.stderr + p.stdout)
            accts = [k for k in redis.cli("--scan", "--pattern", "rw:{acct:*",
                                          password="R00t-0nly-Pa55").split() if k]
            if extra:
                c.true("root-only key file: accounts pseudonymised (%r)" % accts[:2],
                       accts and all(k.startswith("rw:{acct:h:") for k in accts))
            else:
                c.true("password file: the account counted (%r)" % accts[:2],
                       any(k.startswith("rw:{acct:info@example.net}") for k in accts))
    # --redis embedded: the server is the sensor's child, run as the user
    with open(pcap, "rb") as f:
        data = f.read()
    sensor = subprocess.Popen([rwtest.RELAYWATCH, "-r", "-", "--redis", "embedded", "--user",
                               "nobody", "--pseudonymize", "--pseudonymize-key-file", key],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    sensor.stdin.write(data)          # the pipe stays open: the sensor runs on
    sensor.stdin.flush()

    def children():
        if sensor.poll() is not None:
            raise AssertionError("relaywatch exited %d: %r"
                                 % (sensor.returncode, sensor.stderr.read()[-300:]))
        try:
            with open("/proc/%d/task/%d/children" % (sensor.pid, sensor.pid)) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []
    kids = rwtest.wait_for("the embedded redis-server", children, timeout=30)
    uids = []
    for k in kids:
        with open("/proc/%d/status" % k) as f:
            uids += [int(l.split()[1]) for l in f if l.startswith("Uid:")]
    sensor.stdin.close()              # the end of the capture
    sensor.stdin = None
    out, err = sensor.communicate(timeout=120)
    c.eq("embedded, --user nobody: exit 0 (%r)" % err[-300:], sensor.returncode, 0)
    c.eq("embedded, --user nobody: redis-server runs as nobody", uids, [nobody.pw_uid])


def main():
    c = rwtest.Checker()
    with tempfile.TemporaryDirectory() as tmp:
        test_exact_windows(c, tmp)
        test_hyperloglog(c)
        test_embedded(c, tmp)
        test_acl_login(c, tmp)
        test_password_whole_or_refused(c, tmp)
        test_outage(c, tmp)
        test_error_replies(c, tmp)
        test_health_bounds(c, tmp)
        test_health_checksums(c, tmp)
        test_last_health_at_exit(c, tmp)
        test_minute_boundary(c)
        test_partial_round(c, tmp)
        test_seq_ttl(c)
        test_alerts_of_failed_round(c, tmp)
        test_alert_reply_lost(c, tmp)
        test_refused_across_hours(c, tmp)
        test_secrets_before_dropping_privileges(c, tmp)
    c.done()


if __name__ == "__main__":
    main()
