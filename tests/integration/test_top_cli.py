#!/usr/bin/env python3
"""relaywatch-top against a real, throwaway redis-server.

Data comes from the sensor itself: `relaywatch -r smtp.pcap` (Zeek's corpus:
albert@example.com 1 message to 3 recipients in 2015, gurpartap@patriots.in 1
to 1 in 2009), and from the sensor's own Lua scripts (counters/lua/flush.lua
and top.lua, called as the sensor calls them) for entities with known
minutes, so every 10 m / 1 h / 24 h value below is exact. Checked:
  - ranking by the sum of the last 10 per-minute top keys only (an older,
    bigger minute does not count), -n;
  - msgs, rcpts and distinct recipient domains over the three windows;
  - where the windows end: the newest minute in Redis (P{top}:newest, kept
    by top.lua, for a replayed capture as for a live sensor; without it, as
    an older sensor left its data, the minutes around the wall clock only,
    and a value top.lua would not write is no minute), --at, or the wall
    clock when Redis has no top data; with --at WHEN each window is the
    whole buckets ended by WHEN (nothing after WHEN counts), said in the
    header;
  - the text table exactly, with percent-escaped IDs decoded, hostile names
    escaped and cut, wide characters; the JSON document exactly;
  - a top member longer than the ID limit is skipped and counted;
  - among 100,000 other keys, where the windows end costs one GET of
    P{top}:newest and no SCAN, once and at every refresh of the live view
    (Redis' own count, INFO commandstats);
  - the live view on a terminal: refreshes, shows new data, q and SIGINT
    exit 0 and give the screen back; bold only with colour allowed;
  - a read-only ACL user is enough; Redis unreachable: exit 1 with one line
    (--once, --json), a message and retries in the live view; a refused
    login (wrong password): exit 1, in the live view too, which gives the
    screen back;
  - --help, --version, usage errors (exit 2).
"""
import json
import os
import re
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtest  # noqa: E402

TOP = rwtest.RELAYWATCH_TOP
LUA = os.path.join(rwtest.SOURCE, "counters", "lua")

# Minute 45 of an hour in 2023: NOW-2 and NOW-12 share the hour, NOW-30 is in
# the same hour and the last 12 five-minute buckets, NOW-300 five hours back.
HOUR = 472222
NOW = HOUR * 60 + 45                 # minute number (unix time / 60)
WEIRD_RAW = b"\x1b[31mevil{x}:" + b"a" * 250 + b"\xff@example.com"


def escape_id(raw):
    """The sensor's escaping of an entity ID (SCHEMA.md): bytes outside
    printable ASCII and { } % : space as %XX, cut at 320 bytes."""
    out = ""
    for b in raw:
        piece = chr(b) if 0x20 < b < 0x7f and chr(b) not in "{}%:" else "%%%02X" % b
        if len(out) + len(piece) > 320:
            break
        out += piece
    return out


WEIRD = escape_id(WEIRD_RAW)


class Sensor:
    """Writes as the sensor's counters writer does: EVAL of flush.lua per
    entity and minute, EVAL of top.lua for the top sets."""

    runs = 0

    def __init__(self, r, prefix):
        # each instance is a run of its own, as each start of the sensor is:
        # the scripts ignore a (sensor, run) batch number already applied
        Sensor.runs += 1
        self.r, self.prefix, self.seq = r, prefix, 0
        self.run = "run%d" % Sensor.runs
        with open(os.path.join(LUA, "flush.lua")) as f:
            self.flush_lua = f.read()
        with open(os.path.join(LUA, "top.lua")) as f:
            self.top_lua = f.read()

    def send(self, tag, ident, minute, msgs, rcpts, domains=(), sample="", top=True):
        self.seq += 1
        now = minute * 60 + 30
        args = ["sensor-t", self.run, self.seq, now, minute, "0", sample,
                2, "msgs", msgs, "rcpts", rcpts]
        args += [1, "rdom", len(domains)] + list(domains) if domains else [0]
        self.r.command("EVAL", self.flush_lua, 1, "%s{%s:%s}" % (self.prefix, tag, ident), *args)
        if top:
            self.seq += 1
            self.r.command("EVAL", self.top_lua, 1, self.prefix + "{top}", "sensor-t", self.run,
                           self.seq, now, tag, minute, 1, ident, msgs)


def populate(r, prefix="syn:"):
    s = Sensor(r, prefix)
    s.send("acct", "hijacked@pref.example.jp", NOW, 50, 500, ["d1.example", "d2.example",
                                                               "d3.example"])
    s.send("acct", "hijacked@pref.example.jp", NOW - 30, 20, 100, ["d4.example", "d5.example"])
    s.send("acct", "hijacked@pref.example.jp", NOW - 300, 7, 7, ["d6.example"])
    s.send("acct", "tanaka@pref.example.jp", NOW - 2, 5, 5, ["pref.example.jp"])
    s.send("acct", "tanaka@pref.example.jp", NOW - 12, 100, 100, ["pref.example.jp"])
    s.send("acct", WEIRD, NOW - 1, 9, 9, ["x.example", "y.example"])
    s.send("fp", "1111aaaa2222bbbb", NOW, 40, 40, ["d1.example"],
           sample="【重要】会議室の予約変更")
    s.send("fp", "3333cccc4444dddd", NOW - 5, 3, 6, ["d2.example"],
           sample="\x1b]0;pwned\x07Invoice")
    s.send("ip", "203.0.113.7", NOW, 60, 540, ["d1.example", "d2.example"])
    s.send("ip", escape_id(b"2001:db8::1"), NOW - 1, 4, 4, ["d9.example"])
    return s


def top(url, *args, env=None):
    return rwtest.run_tool(TOP, ["--redis", url] + [str(a) for a in args], env=env)


def entity(id, name, top10, msgs, rcpts, rdoms, **kw):
    d = {"id": id, "name": name, "top_10m": top10,
         "msgs": dict(zip(("10m", "1h", "24h"), msgs)),
         "rcpts": dict(zip(("10m", "1h", "24h"), rcpts)),
         "rcpt_domains": dict(zip(("10m", "1h", "24h"), rdoms))}
    d.update(kw)
    return d


HIJACKED = entity("hijacked@pref.example.jp", "hijacked@pref.example.jp", 50,
                  (50, 70, 77), (500, 600, 607), (3, 5, 6))
WEIRD_ROW = entity(WEIRD, WEIRD_RAW.decode("utf-8", "replace"), 9, (9, 9, 9), (9, 9, 9),
                   (2, 2, 2))
TANAKA = entity("tanaka@pref.example.jp", "tanaka@pref.example.jp", 5,
                (5, 105, 105), (5, 105, 105), (1, 1, 1))
FP1 = entity("1111aaaa2222bbbb", "1111aaaa2222bbbb", 40, (40, 40, 40), (40, 40, 40),
             (1, 1, 1), sample_subject="【重要】会議室の予約変更")
FP2 = entity("3333cccc4444dddd", "3333cccc4444dddd", 3, (3, 3, 3), (6, 6, 6), (1, 1, 1),
             sample_subject="\x1b]0;pwned\x07Invoice")
IP1 = entity("203.0.113.7", "203.0.113.7", 60, (60, 60, 60), (540, 540, 540), (2, 2, 2))
IP2 = entity("2001%3Adb8%3A%3A1", "2001:db8::1", 4, (4, 4, 4), (4, 4, 4), (1, 1, 1))


def test_synthetic_json(c, srv):
    p = top(srv.url, "--redis-prefix", "syn:", "--json")
    c.eq("json: exit status (%r)" % p.stderr, p.returncode, 0)
    doc = json.loads(p.stdout)
    c.eq("json: windows end with the newest minute in Redis",
         (doc["at"], doc["at_source"]), (NOW * 60 + 59, "data"))
    c.eq("json: at_iso", doc["at_iso"], "2023-11-14T22:45:59+00:00")
    c.eq("json: accounts ranked by the last 10 minutes only (tanaka's 100 at NOW-12 "
         "do not count)", doc["accounts"], [HIJACKED, WEIRD_ROW, TANAKA])
    c.eq("json: fingerprints with their sample subjects", doc["fingerprints"], [FP1, FP2])
    c.eq("json: clients, IPv6 decoded", doc["clients"], [IP1, IP2])
    c.true("json: no skipped members", "skipped" not in doc and "warning" not in doc)
    c.true("json: control characters escaped in the document itself",
           b"\x1b" not in p.stdout and b"\\u001B[31mevil" in p.stdout)

    p = top(srv.url, "--redis-prefix", "syn:", "--json", "-n", 1)
    doc = json.loads(p.stdout)
    c.eq("-n 1", [len(doc[k]) for k in ("accounts", "fingerprints", "clients")], [1, 1, 1])
    c.eq("-n 1: the best", doc["accounts"][0]["id"], "hijacked@pref.example.jp")

    # --at WHEN: each window is the whole buckets that ended by WHEN. At the
    # end of minute NOW (22:46:00) the 10 minutes hold NOW; the hour is the
    # five-minute buckets to 22:45 (NOW-30 in, NOW out), the 24 hours end at
    # 22:00 (NOW-300 in, this hour out).
    p = top(srv.url, "--redis-prefix", "syn:", "--json", "--at", (NOW + 1) * 60)
    doc = json.loads(p.stdout)
    c.eq("--at: source and time", (doc["at_source"], doc["at"]), ("at", (NOW + 1) * 60))
    c.eq("--at end of NOW: whole buckets ended by then", doc["accounts"], [
        entity("hijacked@pref.example.jp", "hijacked@pref.example.jp", 50, (50, 20, 7),
               (500, 100, 7), (3, 2, 1)),
        entity(WEIRD, WEIRD_RAW.decode("utf-8", "replace"), 9, (9, 9, 0), (9, 9, 0),
               (2, 2, 0)),
        entity("tanaka@pref.example.jp", "tanaka@pref.example.jp", 5, (5, 105, 0),
               (5, 105, 0), (1, 1, 0))])
    # At the start of minute NOW (22:45:00) nothing of minute NOW counts:
    # hijacked's 50 came after WHEN.
    p = top(srv.url, "--redis-prefix", "syn:", "--json", "--at", NOW * 60)
    doc = json.loads(p.stdout)
    c.eq("--at start of NOW: minute NOW left out",
         [(a["id"], a["msgs"]["10m"]) for a in doc["accounts"]],
         [(WEIRD, 9), ("tanaka@pref.example.jp", 5)])
    c.eq("--at start of NOW: the fingerprint of minute NOW left out",
         [f["id"] for f in doc["fingerprints"]], ["3333cccc4444dddd"])
    p = top(srv.url, "--redis-prefix", "syn:", "--json", "--at", NOW * 60 + 59)
    c.eq("--at within minute NOW: the same (the minute has not ended)",
         json.loads(p.stdout)["accounts"], doc["accounts"])

    # At 22:35, two minutes after NOW-12: tanaka's 100 count in 10 minutes
    # and in the hour (buckets to 22:35), not in 24 hours (to 22:00).
    p = top(srv.url, "--redis-prefix", "syn:", "--json", "--at", "2023-11-14T22:35Z")
    doc = json.loads(p.stdout)
    c.eq("--at 22:35: accounts", doc["accounts"], [
        entity("tanaka@pref.example.jp", "tanaka@pref.example.jp", 100, (100, 100, 0),
               (100, 100, 0), (1, 1, 0))])
    c.eq("--at 22:35: no fingerprints yet", doc["fingerprints"], [])
    p = top(srv.url, "--redis-prefix", "syn:", "--json", "--at", "2023-11-14T22:35:30Z")
    c.eq("--at ISO", json.loads(p.stdout)["accounts"][0]["msgs"]["10m"], 100)

    # the header says what the windows cover
    p = top(srv.url, "--redis-prefix", "syn:", "--once", "--at", "2023-11-14T22:47:30Z")
    head = p.stdout.decode().splitlines()[:2]
    c.eq("--at, text: the windows in the header", [h.split("  ")[-1] for h in head[:1]] +
         head[1:], ["windows end 2023-11-14T22:47:30+00:00 (given with --at)",
                    "windows of whole buckets ended by then: 10m to 22:47, 1h to 22:45, "
                    "24h to 22:00"])


TEXT = """\
relaywatch-top  redis://127.0.0.1:PORT/0  prefix syn:  windows end 2023-11-14T22:45:59+00:00 (the newest minute in Redis)

ACCOUNTS                                 ------ msgs ------ ----- rcpts ------ -- rcpt domains --
                                            10m    1h   24h    10m    1h   24h    10m    1h   24h
hijacked@pref.example.jp                     50    70    77    500   600   607      3     5     6
\\x1B[31mevil{x}:aaaaaaaaaaaaaaaaaaaaaaa…      9     9     9      9     9     9      2     2     2
tanaka@pref.example.jp                        5   105   105      5   105   105      1     1     1

FINGERPRINTS                             ------ msgs ------ ----- rcpts ------ -- rcpt domains --  sample subject
                                            10m    1h   24h    10m    1h   24h    10m    1h   24h
1111aaaa2222bbbb                             40    40    40     40    40    40      1     1     1  【重要】会議室の予約変更
3333cccc4444dddd                              3     3     3      6     6     6      1     1     1  \\x1B]0;pwned\\x07Invoice

CLIENTS                                  ------ msgs ------ ----- rcpts ------ -- rcpt domains --
                                            10m    1h   24h    10m    1h   24h    10m    1h   24h
203.0.113.7                                  60    60    60    540   540   540      2     2     2
2001:db8::1                                   4     4     4      4     4     4      1     1     1
"""


def test_synthetic_text(c, srv):
    p = top(srv.url, "--redis-prefix", "syn:", "--once")
    c.eq("text: exit status", p.returncode, 0)
    got = p.stdout.decode().replace(str(srv.port), "PORT")
    c.eq("text: the table", got, TEXT)
    c.true("text: no escape byte from Redis reaches the output", b"\x1b" not in p.stdout)
    p = top(srv.url, "--redis-prefix", "syn:")
    c.eq("text: not a terminal, no --once: printed once", p.stdout, top(srv.url, "--redis-prefix",
                                                                      "syn:", "--once").stdout)


def test_sensor_capture(c, srv):
    corpus = rwtest.corpus_dir()
    pcap = os.path.join(corpus or "", "zeek", "smtp.pcap")
    if not os.path.exists(pcap):
        print("corpus smtp.pcap not found: capture part skipped")
        return
    p = rwtest.run(["-r", pcap, "-q", "--redis", srv.url])
    c.eq("sensor: exit status", p.returncode, 0)
    p = top(srv.url, "--json")
    doc = json.loads(p.stdout)
    c.eq("capture: windows end at albert's minute (2015), through rw:{top}:newest",
         (doc["at_source"], doc["at"] // 60), ("data", 1437831787 // 60))
    c.eq("capture: albert@example.com 1 message, 3 recipients, 3 domains", doc["accounts"], [
        entity("albert@example.com", "albert@example.com", 1, (1, 1, 1), (3, 3, 3),
               (3, 3, 3))])
    c.eq("capture: albert's fingerprint and subject",
         [(f["id"], f["msgs"]["10m"], f["rcpts"]["24h"], f["sample_subject"])
          for f in doc["fingerprints"]],
         [("dc6279cb9023a09c", 1, 3, "Re: Bro SMTP CC Header")])
    c.eq("capture: albert's client", [(x["name"], x["msgs"]["1h"], x["rcpts"]["1h"])
                                      for x in doc["clients"]], [("192.168.133.100", 1, 3)])
    # gurpartap's message is at 1254722768 (06:06:08 UTC): the windows that
    # end at or before the end of its minute hold it in 10 minutes only
    p = top(srv.url, "--json", "--at", "1254722820")
    doc = json.loads(p.stdout)
    c.eq("capture --at 2009: gurpartap@patriots.in 1 message, 1 recipient", doc["accounts"], [
        entity("gurpartap@patriots.in", "gurpartap@patriots.in", 1, (1, 0, 0), (1, 0, 0),
               (1, 0, 0))])
    c.eq("capture --at 2009: subject", [f["sample_subject"] for f in doc["fingerprints"]],
         ["SMTP"])
    c.eq("capture --at 2009: client", [x["name"] for x in doc["clients"]], ["10.10.1.4"])
    p = top(srv.url, "--once", "-n", 1)
    c.true("capture text: albert's row", any(
        l.split() == ["albert@example.com", "1", "1", "1", "3", "3", "3", "3", "3", "3"]
        for l in p.stdout.decode().splitlines()))


def test_now_sources(c, srv):
    r = rwtest.RespClient(srv.port)
    wall_min = int(time.time()) // 60
    Sensor(r, "live:").send("acct", "live@pref.example.jp", wall_min, 2, 3, ["a.example"])
    doc = json.loads(top(srv.url, "--redis-prefix", "live:", "--json").stdout)
    c.eq("live sensor: windows end at the wall-clock minute (P{top}:newest)",
         (doc["at_source"], doc["at"] // 60), ("data", wall_min))
    c.eq("live sensor: the account", [(a["name"], a["msgs"]["10m"], a["rcpts"]["10m"])
                                      for a in doc["accounts"]], [("live@pref.example.jp", 2, 3)])
    before = int(time.time())
    p = top(srv.url, "--redis-prefix", "empty:", "--json")
    doc = json.loads(p.stdout)
    c.eq("no top keys: the wall clock, nothing ranked",
         (p.returncode, doc["at_source"], doc["accounts"], doc["fingerprints"], doc["clients"]),
         (0, "clock", [], [], []))
    c.true("no top keys: at is now", before <= doc["at"] <= int(time.time()))
    p = top(srv.url, "--redis-prefix", "empty:", "--once")
    c.eq("no top keys, text: three empty sections",
         p.stdout.decode().count("(none in the 10 minutes to "), 3)
    # a member longer than an ID can be (the sensor cuts at 320 bytes)
    r.command("ZADD", "odd:{top}:acct:%d" % NOW, 5, "x" * 400)
    r.command("ZADD", "odd:{top}:acct:%d" % NOW, 3, "ok@example.jp")
    r.command("SET", "odd:{top}:newest", NOW)       # as top.lua keeps it
    doc = json.loads(top(srv.url, "--redis-prefix", "odd:", "--json").stdout)
    c.eq("over-long member: skipped and counted",
         (doc.get("skipped"), [a["id"] for a in doc["accounts"]]), (1, ["ok@example.jp"]))
    p = top(srv.url, "--redis-prefix", "odd:", "--once")
    c.true("over-long member: said in the text", b"1 top entries skipped" in p.stdout)

    # An older sensor wrote top sets but no P{top}:newest. Writing now: the
    # minutes around the wall clock are probed (one round trip of EXISTS).
    r.command("ZADD", "older:{top}:acct:%d" % (wall_min - 1), 4, "older@pref.example.jp")
    r.command("CONFIG", "RESETSTAT")
    doc = json.loads(top(srv.url, "--redis-prefix", "older:", "--json").stdout)
    calls = commandstats(r)
    c.eq("older sensor, live: the minute found around the wall clock",
         (doc["at_source"], doc["at"] // 60, [a["id"] for a in doc["accounts"]]),
         ("data", wall_min - 1, ["older@pref.example.jp"]))
    c.eq("older sensor, live: one GET, one probe, no SCAN (%r)" % calls,
         (calls.get("get", 0), calls.get("exists", 0), calls.get("scan", 0)), (1, 12, 0))
    # Its replayed capture, far from the wall clock: not looked for over the
    # keyspace; the wall clock, and --at reaches the data.
    r.command("ZADD", "oldreplay:{top}:acct:%d" % NOW, 6, "replayed@pref.example.jp")
    r.command("CONFIG", "RESETSTAT")
    doc = json.loads(top(srv.url, "--redis-prefix", "oldreplay:", "--json").stdout)
    calls = commandstats(r)
    c.eq("older sensor, replayed: the wall clock, nothing ranked",
         (doc["at_source"], doc["accounts"]), ("clock", []))
    c.eq("older sensor, replayed: no SCAN (%r)" % calls, calls.get("scan", 0), 0)
    doc = json.loads(top(srv.url, "--redis-prefix", "oldreplay:", "--json",
                         "--at", (NOW + 1) * 60).stdout)
    c.eq("older sensor, replayed: --at reaches it", [a["id"] for a in doc["accounts"]],
         ["replayed@pref.example.jp"])

    # P{top}:newest holding what top.lua never writes is no minute: the
    # probe decides (here it finds the older sensor's live minute)
    r.command("ZADD", "bad:{top}:acct:%d" % wall_min, 2, "live@pref.example.jp")
    r.command("ZADD", "bad:{top}:acct:%d" % NOW, 9, "stale@pref.example.jp")
    for bad in ("", "abc", "-5", "+%d" % NOW, " %d" % NOW, "%d.5" % NOW, "%de0" % NOW,
                "2147483648", "99999999999999999999", "\x1b[31m"):
        r.command("SET", "bad:{top}:newest", bad)
        doc = json.loads(top(srv.url, "--redis-prefix", "bad:", "--json").stdout)
        c.eq("P{top}:newest %r: not a minute, the probe decides" % bad,
             (doc["at_source"], doc["at"] // 60, [a["id"] for a in doc["accounts"]],
              "warning" in doc), ("data", wall_min, ["live@pref.example.jp"], False))
    r.command("DEL", "bad:{top}:newest")
    r.command("HSET", "bad:{top}:newest", "f", NOW)
    doc = json.loads(top(srv.url, "--redis-prefix", "bad:", "--json").stdout)
    c.eq("P{top}:newest a hash: the probe decides",
         (doc["at_source"], doc["at"] // 60, [a["id"] for a in doc["accounts"]]),
         ("data", wall_min, ["live@pref.example.jp"]))
    c.true("P{top}:newest a hash: Redis' refusal said (%r)" % doc.get("warning"),
           "WRONGTYPE" in doc.get("warning", ""))
    r.command("DEL", "bad:{top}:newest")
    r.command("SET", "bad:{top}:newest", "2147483647")
    doc = json.loads(top(srv.url, "--redis-prefix", "bad:", "--json").stdout)
    c.eq("P{top}:newest 2^31 - 1: a minute (far ahead), empty windows",
         (doc["at_source"], doc["at"], doc["accounts"]), ("data", 2147483647 * 60 + 59, []))
    r.close()


def test_live_view(c, srv):
    r = rwtest.RespClient(srv.port)
    s = Sensor(r, "syn:")
    base = [TOP, "--redis", srv.url, "--redis-prefix", "syn:", "--interval", "0.2"]
    f = rwtest.Background(base, env=rwtest.tool_env(), pty=True)
    f.wait_stdout("two refreshes", lambda o: o.count(b"\x1b[H\x1b[2J") >= 2 and
                  b"hijacked@pref.example.jp" in o)
    c.true("live: alternate screen, no cursor", f.stdout().startswith(b"\x1b[?1049h\x1b[?25l"))
    c.true("live: section titles in bold", b"\x1b[1mACCOUNTS\x1b[0m" in f.stdout())
    c.true("live: says how to quit", b"q quits" in f.stdout())
    # new data shows up at a later refresh
    s.send("acct", "newcomer@pref.example.jp", NOW, 70, 70, ["n.example"])
    def frames_with_newcomer(o):
        return [fr for fr in o.split(b"\x1b[H\x1b[2J")
                if b"newcomer@" in fr and b"hijacked@" in fr]
    frame = f.wait_stdout("a frame with the newcomer", frames_with_newcomer)[0]
    c.true("live: the newcomer ranks first",
           frame.index(b"newcomer@") < frame.index(b"hijacked@"))
    f.send(b"q")
    c.eq("live: q exits 0", f.wait(), 0)
    c.true("live: screen and cursor given back",
           f.stdout().endswith(b"\x1b[?25h\x1b[?1049l"))

    f = rwtest.Background(base, env=rwtest.tool_env(NO_COLOR="1"), pty=True)
    f.wait_stdout("a frame", lambda o: b"hijacked@" in o)
    f.signal(signal.SIGINT)
    c.eq("live: SIGINT exits 0", f.wait(), 0)
    c.true("live, NO_COLOR: no bold", b"\x1b[1m" not in f.stdout())
    c.true("live, SIGINT: screen given back", f.stdout().endswith(b"\x1b[?25h\x1b[?1049l"))

    # Redis unreachable: the live view says so and keeps trying
    port = rwtest.free_port()
    f = rwtest.Background([TOP, "--redis", "redis://127.0.0.1:%d" % port, "--interval", "0.2"],
                          env=rwtest.tool_env(), pty=True)
    f.wait_stdout("the error, twice", lambda o: o.count(b"Connection refused") >= 2)
    c.true("live, unreachable: retrying", b"retrying every 0.2 s" in f.stdout())
    f.send(b"q")
    c.eq("live, unreachable: q exits 0", f.wait(), 0)
    r.close()


def test_acl_read_only(c, srv_unused):
    tmpdir = tempfile.TemporaryDirectory(prefix="rwtest-acl-")
    tmp = tmpdir.name
    acl = os.path.join(tmp, "users.acl")
    with open(acl, "w") as f:
        f.write("user default on nopass ~* &* +@all\n"
                "user reader on >reader-pw resetkeys ~syn:* resetchannels -@all +@read\n")
    with rwtest.RedisServer(extra=["--aclfile", acl]) as srv:
        r = rwtest.RespClient(srv.port)
        populate(r)
        url = "redis://reader:reader-pw@127.0.0.1:%d" % srv.port
        p = top(url, "--redis-prefix", "syn:", "--json")
        c.eq("read-only user: exit status (%r)" % p.stderr, p.returncode, 0)
        doc = json.loads(p.stdout)
        c.eq("read-only user: same accounts", doc.get("accounts"), [HIJACKED, WEIRD_ROW, TANAKA])
        c.true("read-only user: nothing refused", "warning" not in doc)
        bad = "redis://reader:wrong-pw@127.0.0.1:%d" % srv.port
        for mode in (["--once"], ["--json"]):
            p = top(bad, "--redis-prefix", "syn:", *mode)
            err = p.stderr.decode()
            c.eq("wrong password %s: exit 1" % mode, p.returncode, 1)
            c.true("wrong password %s: one line, WRONGPASS, no password (%r)" % (mode, err),
                   err.count("\n") == 1 and "WRONGPASS" in err and "wrong-pw" not in err)
        f = rwtest.Background([TOP, "--redis", bad, "--interval", "0.2"],
                              env=rwtest.tool_env(), pty=True)
        rwtest.wait_for("an exit or a retry", lambda: f.proc.poll() is not None or
                        b"retrying" in f.stdout())
        if f.proc.poll() is None:
            f.send(b"q")
        f.wait()
        err = f.stderr().decode()
        c.eq("live, wrong password: exit 1, no retry (%r)" % f.stdout()[-200:],
             f.proc.returncode, 1)
        c.true("live, wrong password: says WRONGPASS on stderr (%r)" % err,
               "WRONGPASS" in err and "wrong-pw" not in err)
        c.true("live, wrong password: screen given back",
               f.stdout().endswith(b"\x1b[?25h\x1b[?1049l"))
        r.close()


def commandstats(r):
    """{command: calls} of INFO commandstats: Redis' own count of what was asked."""
    text = r.command("INFO", "commandstats").decode()
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"cmdstat_([\w|]+):calls=(\d+)", text)}


def test_keyspace_scale(c):
    """Where the windows end costs one GET of P{top}:newest (kept by
    counters/lua/top.lua), whatever the size of the keyspace and wherever
    the minutes are: no SCAN, at every refresh of the live view too. Before,
    data far from the wall clock (a replayed capture) was looked for with
    SCAN over the whole keyspace at every refresh. 100,000 keys that are not
    top sets stand for a busy deployment's counters; the calls are counted
    by Redis (INFO commandstats), not timed."""
    with rwtest.RedisServer() as srv:
        r = rwtest.RespClient(srv.port)
        for chunk in range(100):
            args = []
            for i in range(chunk * 1000, chunk * 1000 + 1000):
                args += ["big:{acct:filler%d@pref.example.jp}:sample" % i, "x"]
            r.command("MSET", *args)
        populate(r, "big:")
        r.command("CONFIG", "RESETSTAT")
        p = top(srv.url, "--redis-prefix", "big:", "--json")
        calls = commandstats(r)
        doc = json.loads(p.stdout or b"{}")
        c.eq("scale, replayed minutes: the newest minute in Redis (%r)" % p.stderr,
             (p.returncode, doc.get("at"), doc.get("at_source")), (0, NOW * 60 + 59, "data"))
        c.eq("scale, replayed minutes: the same accounts", doc.get("accounts"),
             [HIJACKED, WEIRD_ROW, TANAKA])
        c.eq("scale, replayed minutes: no SCAN (%r)" % calls, calls.get("scan", 0), 0)
        c.eq("scale, replayed minutes: one GET for where the windows end, no probe (%r)" % calls,
             (calls.get("get", 0), calls.get("exists", 0)), (1, 0))

        # the live view: one GET a refresh, never a SCAN
        r.command("CONFIG", "RESETSTAT")
        f = rwtest.Background([TOP, "--redis", srv.url, "--redis-prefix", "big:", "--interval",
                               "0.2"], env=rwtest.tool_env(), pty=True)
        f.wait_stdout("three refreshes", lambda o: o.count(b"\x1b[H\x1b[2J") >= 3)
        f.send(b"q")
        c.eq("scale, live view: q exits 0", f.wait(), 0)
        frames = f.stdout().count(b"\x1b[H\x1b[2J")
        calls = commandstats(r)
        c.true("scale, live view: frames of the replayed minutes",
               b"hijacked@pref.example.jp" in f.stdout())
        c.eq("scale, live view: no SCAN (%r)" % calls, calls.get("scan", 0), 0)
        c.eq("scale, live view: one GET a refresh (%d frames, %r)" % (frames, calls),
             (calls.get("get", 0), calls.get("exists", 0)), (frames, 0))
        r.close()


def test_errors_and_usage(c):
    port = rwtest.free_port()
    for mode in (["--once"], ["--json"]):
        p = top("redis://:pw-not-shown@127.0.0.1:%d" % port, *mode)
        err = p.stderr.decode()
        c.eq("unreachable %s: exit 1" % mode, p.returncode, 1)
        c.true("unreachable %s: one line saying why (%r)" % (mode, err),
               err.count("\n") == 1 and "Connection refused" in err)
        c.true("unreachable %s: no password" % mode, "pw-not-shown" not in err)
    p = rwtest.run_tool(TOP, ["--help"])
    out = p.stdout.decode()
    c.eq("--help: exit 0", p.returncode, 0)
    for word in ("Examples:", "--once", "--json", "--at", "--interval", "-n N",
                 "--redis-prefix", "q or Ctrl-C"):
        c.true("--help mentions %s" % word, word in out)
    p = rwtest.run_tool(TOP, ["--version"])
    c.true("--version", p.returncode == 0 and p.stdout.startswith(b"relaywatch-top 0."))
    for args in (["-n", "0"], ["-n", "1001"], ["-n", "2.5"], ["--interval", "0"],
                 ["--at", "noon"], ["--bogus"], ["extra"], ["--redis", "none"],
                 ["--redis-prefix", ""], ["--redis-prefix", "p" * 64]):
        p = rwtest.run_tool(TOP, args)
        c.eq("usage error %s: exit 2" % args, p.returncode, 2)
        c.true("usage error %s: one line on stderr" % args,
               p.stderr.decode().count("\n") == 1 and p.stdout == b"")


def main():
    c = rwtest.Checker()
    test_errors_and_usage(c)
    with rwtest.RedisServer() as srv:
        r = rwtest.RespClient(srv.port)
        populate(r)
        r.close()
        test_synthetic_json(c, srv)
        test_synthetic_text(c, srv)
        test_sensor_capture(c, srv)
        test_now_sources(c, srv)
        test_live_view(c, srv)
    test_acl_read_only(c, None)
    test_keyspace_scale(c)
    c.done()


if __name__ == "__main__":
    main()
