#!/usr/bin/env python3
"""relaywatch-alerts against a real, throwaway redis-server.

Alerts are added with XADD and the exact field set of SCHEMA.md ("The alert
stream"), as counters/lua/alert.lua adds them. Checked:
  - the readable line and the JSON object of each alert, exactly;
  - --since (durations, unix seconds, ISO with and without a zone, all) and
    --once, against stream IDs placed at known times;
  - following: only alerts added after the start are printed, SIGINT ends
    with status 0;
  - consumer groups: a consumer SIGKILLed after printing an entry but before
    its XACK gets exactly the unacknowledged entries again at restart, before
    new ones; what it acknowledged is never printed again; other consumers do
    not receive them;
  - Redis unreachable: --once exits 1 with one line; following retries and
    picks up when Redis appears, and again after Redis was killed;
  - Redis answering but not ready: following, plain and in a group, goes on
    through CLIENT UNBLOCK, a failover to replica and back (UNBLOCKED,
    READONLY), the stream deleted under a blocked XREADGROUP, and a restart
    that reads a dataset (LOADING, said once), with every alert printed
    exactly once; an XACK refused after the line was printed does not print
    it again; --once exits 1 while Redis loads;
  - a refused login (wrong password, database out of range) exits 1 when
    following too, instead of retrying;
  - colour only on a terminal, and not with NO_COLOR, --no-color, TERM=dumb;
  - logging in with an ACL user limited to SCHEMA.md's alerts-consumer
    commands, with the password from the URL, a file, or REDISCLI_AUTH;
  - long and hostile field values stay bounded and escaped;
  - --help, --version, usage errors (exit 2), a key of the wrong type (exit 1).
"""
import json
import os
import signal
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtest  # noqa: E402

ALERTS = rwtest.RELAYWATCH_ALERTS
SCHEMA_FIELDS = ("ts", "rule", "severity", "entity_type", "entity", "window", "value",
                 "threshold", "baseline", "first_seen", "msgs_before_alert", "sample_subject",
                 "client_ips", "sensor", "extra")


def alert(**kw):
    """The flat field list of one alert, in SCHEMA.md's order (plus any
    extra field given, e.g. escalated)."""
    f = {"ts": "1795417934.679462", "rule": "account_burst", "severity": "high",
         "entity_type": "account", "entity": "alice@pref.example.jp", "window": "10m",
         "value": "120", "threshold": "100", "baseline": "", "first_seen": "1795417800.250000",
         "msgs_before_alert": "37", "sample_subject": "HELLO!DEAR!GOOD NEWS TO YOU,",
         "client_ips": "203.0.113.7,198.51.100.2", "sensor": "mx1", "extra": "{}"}
    f.update(kw)
    out = []
    for k in list(SCHEMA_FIELDS) + [k for k in f if k not in SCHEMA_FIELDS]:
        out += [k, f[k]]
    return out


def xadd(r, prefix, fields, id="*"):
    return r.command("XADD", prefix + "alerts", id, *fields).decode()


def lines(p):
    return p.stdout.decode().splitlines()


def ids_of(out):
    return [json.loads(l)["id"] for l in out.decode().splitlines() if l.strip()]


def run(url, *args, env=None):
    return rwtest.run_tool(ALERTS, ["--redis", url] + list(args), env=env)


# --- readable and JSON output -----------------------------------------------------


def test_output(c, srv, r):
    P = "t1:"
    a = xadd(r, P, alert(baseline="8.5", extra='{"rcpts_1h":480,"fake_reply":false,'
                                             '"domains":["a.example","b.example"]}'))
    b = xadd(r, P, alert(ts="1795417935.000001", rule="open_relay", severity="critical",
                         entity_type="client", entity="203.0.113.9", window="message",
                         value="1", threshold="1", msgs_before_alert="0",
                         sample_subject=b'Re: Can I trust you? \x1b[2J "x" \\ \xff '
                                        b'\xe4\xbc\x9a\xe8\xad\xb0',
                         client_ips="203.0.113.9",
                         extra='{"rcpt":"victim@foreign.example"}'))
    # entity percent-escaped as in the keys; extra that is not JSON; an
    # escalation (alert.lua appends "escalated 1")
    d = xadd(r, P, alert(rule="display_spoof", severity="medium",
                         entity="bob%7Bx%7D%20smith@x.jp", window="message", value="1",
                         threshold="1", msgs_before_alert="0", sample_subject="RE: invoice",
                         client_ips="", extra="oops{", escalated="1"))
    p = run(srv.url, "--redis-prefix", P, "--since", "all", "--once")
    c.eq("readable: exit status", p.returncode, 0)
    c.eq("readable: lines", lines(p), [
        "2026-11-23T07:12:14+00:00 HIGH     account_burst account=alice@pref.example.jp "
        "120/100 10m baseline=8.5 msgs_before=37 subject=\"HELLO!DEAR!GOOD NEWS TO YOU,\" "
        "clients=203.0.113.7,198.51.100.2",
        "2026-11-23T07:12:15+00:00 CRITICAL open_relay client=203.0.113.9 1/1 message "
        "msgs_before=0 subject=\"Re: Can I trust you? \\x1B[2J \\\"x\\\" \\\\ \\xFF 会議\" "
        "clients=203.0.113.9",
        "2026-11-23T07:12:14+00:00 MEDIUM   display_spoof account=bob{x} smith@x.jp 1/1 "
        "message msgs_before=0 subject=\"RE: invoice\" escalated",
    ])
    c.true("readable: no escape byte reaches the output", b"\x1b" not in p.stdout)
    c.eq("readable: nothing on stderr", p.stderr, b"")

    p = run(srv.url, "--redis-prefix", P, "--since", "all", "--once", "--json")
    c.eq("json: exit status", p.returncode, 0)
    got = [json.loads(l) for l in lines(p)]
    base = {"ts": 1795417934.679462, "rule": "account_burst", "severity": "high",
            "entity_type": "account", "entity": "alice@pref.example.jp", "window": "10m",
            "value": 120, "threshold": 100, "baseline": None, "first_seen": 1795417800.25,
            "msgs_before_alert": 37, "sample_subject": "HELLO!DEAR!GOOD NEWS TO YOU,",
            "client_ips": "203.0.113.7,198.51.100.2", "sensor": "mx1", "extra": {}}
    want = [
        dict(base, id=a, baseline=8.5, extra={"rcpts_1h": 480, "fake_reply": False,
                                              "domains": ["a.example", "b.example"]}),
        dict(base, id=b, ts=1795417935.000001, rule="open_relay", severity="critical",
             entity_type="client", entity="203.0.113.9", window="message", value=1,
             threshold=1, msgs_before_alert=0,
             sample_subject='Re: Can I trust you? \x1b[2J "x" \\ \ufffd 会議',
             client_ips="203.0.113.9", extra={"rcpt": "victim@foreign.example"}),
        dict(base, id=d, rule="display_spoof", severity="medium",
             entity="bob%7Bx%7D%20smith@x.jp", window="message", value=1, threshold=1,
             msgs_before_alert=0, sample_subject="RE: invoice", client_ips="",
             extra={}, extra_raw="oops{", escalated=1),
    ]
    c.eq("json: number of objects", len(got), 3)
    for i, (g, w) in enumerate(zip(got, want)):
        c.eq("json: alert %d" % i, g, w)
    c.eq("json: fields in stream order", list(got[0].keys()), ["id"] + list(SCHEMA_FIELDS))
    c.true("json: extra is an object, not a string", isinstance(got[0]["extra"], dict))

    # local time: the same instant in Tokyo
    p = run(srv.url, "--redis-prefix", P, "--since", "all", "--once",
            env=rwtest.tool_env(TZ="Asia/Tokyo"))
    c.true("readable: local time zone", lines(p)[0].startswith("2026-11-23T16:12:14+09:00 HIGH"))


# --- --since and --once ------------------------------------------------------------


def test_since(c, srv, r):
    P = "t2:"
    now_ms = int(time.time() * 1000)
    old = xadd(r, P, alert(rule="old"), id="%d-0" % (now_ms - 3 * 3600 * 1000))
    mid = xadd(r, P, alert(rule="mid"), id="%d-0" % (now_ms - 30 * 60 * 1000))
    new = xadd(r, P, alert(rule="new"), id="%d-0" % (now_ms - 60 * 1000))
    mid_s = (now_ms - 30 * 60 * 1000) / 1000.0

    def since(when, env=None):
        p = run(srv.url, "--redis-prefix", P, "--json", "--once", *(["--since", when] if when
                                                                     is not None else []),
                env=env)
        c.eq("--since %s: exit status" % when, p.returncode, 0)
        return ids_of(p.stdout)

    c.eq("--since all", since("all"), [old, mid, new])
    c.eq("--since 0", since("0"), [old, mid, new])
    c.eq("--since 1h", since("1h"), [mid, new])
    c.eq("--since 10m", since("10m"), [new])
    c.eq("--since 4h", since("4h"), [old, mid, new])
    c.eq("--since unix seconds (inclusive)", since("%.3f" % mid_s), [mid, new])
    c.eq("--since unix seconds + 1 ms", since("%.3f" % (mid_s + 0.001)), [new])
    utc = datetime.fromtimestamp(int(mid_s), timezone.utc)
    c.eq("--since ISO Z", since(utc.strftime("%Y-%m-%dT%H:%M:%SZ")), [mid, new])
    tokyo = datetime.fromtimestamp(int(mid_s), timezone(timedelta(hours=9)))
    c.eq("--since ISO +09:00", since(tokyo.strftime("%Y-%m-%dT%H:%M:%S+09:00")), [mid, new])
    c.eq("--since ISO local time (TZ=Asia/Tokyo)",
         since(tokyo.strftime("%Y-%m-%dT%H:%M:%S"), env=rwtest.tool_env(TZ="Asia/Tokyo")),
         [mid, new])
    c.eq("--since ISO to the minute, one minute after mid",
         since((utc + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%MZ")), [new])
    c.eq("--once without --since: new alerts only, so none", since(None), [])
    p = run(srv.url, "--redis-prefix", "nostream:", "--once", "--since", "all")
    c.eq("--once on a missing stream: exit 0", (p.returncode, p.stdout), (0, b""))


# --- following -------------------------------------------------------------------------


def following(srv, P, *extra):
    """Start a follower and wait until it waits in XREAD (its start position is
    fixed then)."""
    f = rwtest.Background([ALERTS, "--redis", srv.url, "--redis-prefix", P, "--json"] +
                          list(extra), env=rwtest.tool_env())
    mon = rwtest.RespClient(srv.port)
    rwtest.wait_for("the follower to block in XREAD", lambda: any(
        "name=relaywatch-alerts" in l and "cmd=xread" in l
        for l in mon.command("CLIENT", "LIST").decode().splitlines()) or f._dead("XREAD"))
    mon.close()
    return f


def test_follow(c, srv, r):
    P = "t3:"
    xadd(r, P, alert(rule="before_start"))
    f = following(srv, P)
    n1 = xadd(r, P, alert(rule="new1"))
    n2 = xadd(r, P, alert(rule="new2"))
    f.wait_stdout("two alerts", lambda o: o.count(b"\n") >= 2)
    c.eq("follow: only alerts added after the start, in order", ids_of(f.stdout()), [n1, n2])
    f.signal(signal.SIGINT)
    c.eq("follow: SIGINT exits 0", f.wait(), 0)
    c.eq("follow: nothing on stderr", f.stderr(), b"")


# --- consumer groups: at least once --------------------------------------------------


def pending(r, P, group):
    return [(e[0].decode(), e[1].decode())
            for e in r.command("XPENDING", P + "alerts", group, "-", "+", "100")]


def test_group(c, srv, r):
    P = "t4:"
    e = [xadd(r, P, alert(rule="e%d" % i)) for i in range(1, 6)]
    base = ["--redis", srv.url, "--redis-prefix", P, "--json", "--group", "G"]

    # c1 reads e1..e5 in one batch, prints and acks e1, e2, prints e3 and is
    # stopped before acking it: then SIGKILL.
    f = rwtest.Background([ALERTS] + base + ["--consumer", "c1", "--since", "all"],
                          env=rwtest.tool_env(RELAYWATCH_ALERTS_STOP_BEFORE_ACK=3))
    rwtest.wait_for("the consumer to stop before its third XACK",
                    lambda: f.state() == "T" or f._dead("SIGSTOP"))
    f.signal(signal.SIGKILL)
    c.eq("crash: killed by SIGKILL", f.wait(), -signal.SIGKILL)
    c.eq("crash: printed e1..e3 before dying", ids_of(f.stdout()), e[:3])
    c.eq("crash: e3 (printed, not acked), e4, e5 (read, not printed) pending for c1",
         pending(r, P, "G"), [(e[2], "c1"), (e[3], "c1"), (e[4], "c1")])

    # another consumer gets neither c1's pending entries nor anything new
    p = rwtest.run_tool(ALERTS, base + ["--consumer", "c2", "--once"])
    c.eq("other consumer: exit status", p.returncode, 0)
    c.eq("other consumer: c1's pending entries are not its own", ids_of(p.stdout), [])
    c.eq("other consumer: c1's entries still pending", len(pending(r, P, "G")), 3)

    # c1 restarts: its pending entries first, then what is new; e1, e2 never again
    e6 = xadd(r, P, alert(rule="e6"))
    p = rwtest.run_tool(ALERTS, base + ["--consumer", "c1", "--once"])
    c.eq("restart: exit status", p.returncode, 0)
    c.eq("restart: replays e3, e4, e5, then the new e6", ids_of(p.stdout), e[2:] + [e6])
    c.eq("restart: everything acknowledged", pending(r, P, "G"), [])
    p = rwtest.run_tool(ALERTS, base + ["--consumer", "c1", "--once"])
    c.eq("second restart: acknowledged entries are not replayed", ids_of(p.stdout), [])
    p = rwtest.run_tool(ALERTS, base + ["--consumer", "c1", "--once", "--since", "all"])
    c.eq("existing group: --since does not rewind it", ids_of(p.stdout), [])
    c.true("existing group: says --since was not used (%r)" % p.stderr,
           b"group G exists and goes on where it was" in p.stderr)

    # a following consumer acks each entry it printed
    f = following(srv, P, "--group", "G", "--consumer", "c3")
    e7 = xadd(r, P, alert(rule="e7"))
    f.wait_stdout("e7", lambda o: o.count(b"\n") >= 1)
    rwtest.wait_for("e7 acknowledged", lambda: pending(r, P, "G") == [])
    f.signal(signal.SIGTERM)
    c.eq("group follow: SIGTERM exits 0", f.wait(), 0)
    c.eq("group follow: printed e7", ids_of(f.stdout()), [e7])

    # where a new group starts: --since, else new entries only
    p = rwtest.run_tool(ALERTS, base[:-1] + ["G2", "--consumer", "x", "--once", "--since",
                                             "all"])
    c.eq("new group with --since all: everything", ids_of(p.stdout), e + [e6, e7])
    p = rwtest.run_tool(ALERTS, base[:-1] + ["G3", "--consumer", "x", "--once"])
    c.eq("new group without --since: nothing old", ids_of(p.stdout), [])
    groups = {g[1].decode() for g in r.command("XINFO", "GROUPS", P + "alerts")}
    c.eq("groups created", groups, {"G", "G2", "G3"})


# --- Redis unreachable ------------------------------------------------------------------


def test_unreachable(c):
    port = rwtest.free_port()
    url = "redis://:hunter2secret@127.0.0.1:%d" % port
    p = run(url, "--once")
    c.eq("unreachable --once: exit 1", p.returncode, 1)
    err = p.stderr.decode()
    c.eq("unreachable --once: one line", err.count("\n"), 1)
    c.true("unreachable --once: says why and where (%r)" % err,
           "Connection refused" in err and "127.0.0.1:%d" % port in err)
    c.true("unreachable --once: no password", "hunter2" not in err)

    # following: retries until Redis appears, then prints
    f = rwtest.Background([ALERTS, "--redis", "redis://127.0.0.1:%d" % port, "--json"],
                          env=rwtest.tool_env())
    f.wait_stderr("a retry message", lambda e: b"retrying in" in e)
    first = f.stderr().decode().splitlines()[0]
    c.true("retry: one clear line (%r)" % first,
           first.startswith("relaywatch-alerts: redis://127.0.0.1:%d/0: Connection refused; "
                            "retrying in" % port))
    srv = rwtest.RedisServer()
    srv.port, srv.url = port, "redis://127.0.0.1:%d" % port
    with srv:
        f.wait_stderr("the reconnection", lambda e: b"connected to" in e)
        r = rwtest.RespClient(port)
        a1 = xadd(r, "rw:", alert(rule="after_outage"))
        f.wait_stdout("the alert", lambda o: o.count(b"\n") >= 1)
        c.eq("retry: the alert added once Redis is up", ids_of(f.stdout()), [a1])
        # Redis dies and comes back (empty: no persistence); IDs go on growing
        r.close()
        srv.kill()
        f.wait_stderr("the lost connection", lambda e: b"reconnecting" in e)
        n_conn = f.stderr().count(b"connected to")
        srv.start()
        f.wait_stderr("the second reconnection",
                      lambda e: e.count(b"connected to") > n_conn)
        r = rwtest.RespClient(port)
        a2 = xadd(r, "rw:", alert(rule="after_restart"))
        f.wait_stdout("the second alert", lambda o: o.count(b"\n") >= 2)
        c.eq("restart: the alert added after Redis came back", ids_of(f.stdout()), [a1, a2])
        r.close()
        f.signal(signal.SIGINT)
        c.eq("retry: SIGINT exits 0", f.wait(), 0)


# --- Redis answers, but not now ------------------------------------------------------


def followers(mon):
    """CLIENT LIST fields of the connections relaywatch-alerts holds."""
    out = []
    for line in mon.command("CLIENT", "LIST").decode().splitlines():
        f = dict(kv.split("=", 1) for kv in line.split(" ") if "=" in kv)
        if f.get("name") == "relaywatch-alerts":
            out.append(f)
    return out


def blocked_in(mon, cmd):
    """The id of the follower blocked in cmd (xread, xreadgroup), or None."""
    for f in followers(mon):
        if f["cmd"] == cmd and "b" in f["flags"]:
            return f["id"]
    return None


def unblock(mon, cmd):
    """CLIENT UNBLOCK ... ERROR the follower blocked in cmd, once it is."""
    rwtest.wait_for("a follower blocked in " + cmd, lambda: (
        blocked_in(mon, cmd) and
        mon.command("CLIENT", "UNBLOCK", blocked_in(mon, cmd), "ERROR") == 1))


def test_transient(c):
    # events processed every 1 KB while loading, so a slow load answers LOADING
    srv = rwtest.RedisServer(["--loading-process-events-interval-bytes", "1024"])
    with srv:
        r = rwtest.RespClient(srv.port)
        mon = rwtest.RespClient(srv.port)
        plain = rwtest.Background([ALERTS, "--redis", srv.url, "--json"], env=rwtest.tool_env())
        group = rwtest.Background([ALERTS, "--redis", srv.url, "--json", "--group", "G",
                                   "--consumer", "g1"], env=rwtest.tool_env())
        both = (("plain", plain), ("group", group))
        rwtest.wait_for("both followers reading", lambda: {
            f["cmd"] for f in followers(mon)} == {"xread", "xreadgroup"})
        sent = []

        def add_and_wait(rule):
            sent.append(xadd(r, "rw:", alert(rule=rule)))
            for name, f in both:
                f.wait_stdout("%s: %s" % (name, rule), lambda o: o.count(b"\n") >= len(sent))

        add_and_wait("first")
        # CLIENT UNBLOCK ... ERROR: "UNBLOCKED client unblocked via CLIENT UNBLOCK"
        unblock(mon, "xread")
        unblock(mon, "xreadgroup")
        for name, f in both:
            f.wait_stderr("%s: the unblock said" % name, lambda e: b"UNBLOCKED" in e)
        add_and_wait("after_unblock")

        # a failover and back: blocked reads are cut short ("UNBLOCKED force
        # unblock ... instance state changed"), the group's writes refused
        r.command("REPLICAOF", "127.0.0.1", "1")
        group.wait_stderr("group: READONLY said", lambda e: b"READONLY" in e)
        r.command("REPLICAOF", "NO", "ONE")
        add_and_wait("after_failover")

        # the stream deleted under a blocked XREADGROUP ("UNBLOCKED the stream
        # key no longer exists"), and an alert in the new stream at once
        rwtest.wait_for("the group follower blocked", lambda: blocked_in(mon, "xreadgroup"))
        r.command("DEL", "rw:alerts")
        add_and_wait("new_stream")

        # a restart that reads a dataset for a while (10 ms a key, 20 s)
        r.command("MSET", *[x for i in range(2000) for x in ("pad:%d" % i, "x" * 100)])
        r.command("SAVE")
        r.close()
        mon.close()
        srv.stop()
        srv.extra += ["--key-load-delay", "10000"]
        srv.start(ready=False)
        for name, f in both:
            f.wait_stderr("%s: LOADING said" % name, lambda e: b"LOADING" in e)
        # both try again (with their backoff) while it loads
        info = rwtest.RespClient(srv.port)

        def connections():
            for line in info.command("INFO", "stats").decode().splitlines():
                if line.startswith("total_connections_received:"):
                    return int(line.split(":")[1])
        n = connections()
        rwtest.wait_for("more attempts while loading", lambda: connections() >= n + 4)
        info.close()
        p = run(srv.url, "--once", "--since", "all")
        c.eq("loading, --once: exit 1", p.returncode, 1)
        c.true("loading, --once: says LOADING (%r)" % p.stderr, b"LOADING" in p.stderr)
        for name, f in both:
            err = f.stderr().decode()
            c.eq("%s: LOADING said once while it lasted (%r)" % (name, err),
                 err.count("LOADING"), 1)
        srv.kill()
        srv.extra = srv.extra[:-2]
        srv.start()
        r = rwtest.RespClient(srv.port)
        add_and_wait("after_loading")

        for name, f in both:
            c.eq("%s: every alert once, in order" % name, ids_of(f.stdout()), sent)
            f.signal(signal.SIGINT)
            c.eq("%s: still following, SIGINT exits 0" % name, f.wait(), 0)
        c.eq("group: everything acknowledged", pending(r, "rw:", "G"), [])
        r.close()


def test_ack_retry(c, srv, r):
    """An XACK refused after the line was printed: the entry comes back from
    the group's pending list at the retry, and is acknowledged, not printed."""
    P = "t8:"
    e = [xadd(r, P, alert(rule="a%d" % i)) for i in (1, 2)]
    f = rwtest.Background([ALERTS, "--redis", srv.url, "--redis-prefix", P, "--json",
                           "--group", "A", "--consumer", "a", "--since", "all"],
                          env=rwtest.tool_env(RELAYWATCH_ALERTS_STOP_BEFORE_ACK=1))
    rwtest.wait_for("the consumer to stop before its first XACK",
                    lambda: f.state() == "T" or f._dead("SIGSTOP"))
    r.command("REPLICAOF", "127.0.0.1", "1")
    f.signal(signal.SIGCONT)
    f.wait_stderr("the XACK refused", lambda o: b"XACK" in o and b"READONLY" in o)
    r.command("REPLICAOF", "NO", "ONE")
    e.append(xadd(r, P, alert(rule="a3")))
    f.wait_stdout("three lines", lambda o: o.count(b"\n") >= 3)
    rwtest.wait_for("everything acknowledged", lambda: pending(r, P, "A") == [])
    f.signal(signal.SIGTERM)
    c.eq("XACK refused: still following, SIGTERM exits 0", f.wait(), 0)
    c.eq("XACK refused: each alert printed once", ids_of(f.stdout()), e)


def ends(argv):
    """Run a follower until it exits or says it retries: (status or None, stderr)."""
    f = rwtest.Background(argv, env=rwtest.tool_env())
    rwtest.wait_for("an exit or a retry", lambda: f.proc.poll() is not None or
                    b"retrying" in f.stderr())
    if f.proc.poll() is None:
        f.signal(signal.SIGKILL)
        f.wait()
        return None, f.stderr().decode()
    return f.wait(), f.stderr().decode()


# --- colour ------------------------------------------------------------------------------


def test_color(c, srv, r):
    P = "t5:"
    xadd(r, P, alert())
    base = [ALERTS, "--redis", srv.url, "--redis-prefix", P, "--since", "all", "--once"]

    def on_tty(*extra, **env):
        f = rwtest.Background(base + list(extra), env=rwtest.tool_env(**env), pty=True)
        c.eq("tty %s %s: exit status" % (extra, env), f.wait(), 0)
        return f.stdout()

    out = on_tty()
    c.true("tty: severity coloured (%r)" % out, b"\x1b[1;31mHIGH\x1b[0m" in out)
    c.true("tty, NO_COLOR=1: no colour", b"\x1b[" not in on_tty(NO_COLOR="1"))
    c.true("tty, NO_COLOR empty: colour (no-color.org)", b"\x1b[1;31m" in on_tty(NO_COLOR=""))
    c.true("tty, --no-color: no colour", b"\x1b[" not in on_tty("--no-color"))
    c.true("tty, TERM=dumb: no colour", b"\x1b[" not in on_tty(TERM="dumb"))
    c.true("tty, --json: no colour", b"\x1b[" not in on_tty("--json"))
    p = rwtest.run_tool(ALERTS, base[1:])
    c.true("pipe: no colour", b"\x1b[" not in p.stdout and b"HIGH" in p.stdout)


# --- ACL user and passwords ----------------------------------------------------------


def test_acl(c):
    tmpdir = tempfile.TemporaryDirectory(prefix="rwtest-acl-")
    tmp = tmpdir.name
    acl = os.path.join(tmp, "users.acl")
    # the alerts consumer of SCHEMA.md "Who may do what", and nothing more
    with open(acl, "w") as f:
        f.write("user default on nopass ~* &* +@all\n"
                "user alerts on >alerts-secret resetkeys ~rw:alerts resetchannels -@all "
                "+xread +xreadgroup +xack +xgroup|create +xpending +xclaim +xautoclaim +xinfo "
                "+xrange\n")
    pwfile = os.path.join(tmp, "alerts.pass")
    with open(pwfile, "w") as f:
        f.write("alerts-secret\n")
    with rwtest.RedisServer(extra=["--aclfile", acl]) as srv:
        r = rwtest.RespClient(srv.port)
        a = xadd(r, "rw:", alert())
        host = "127.0.0.1:%d" % srv.port
        for what, url, extra, env in [
            ("user and password in the URL", "redis://alerts:alerts-secret@" + host, [], {}),
            ("password file", "redis://alerts:@" + host, ["--redis-password-file", pwfile], {}),
            ("REDISCLI_AUTH", "redis://alerts:@" + host, [], {"REDISCLI_AUTH": "alerts-secret"}),
        ]:
            p = rwtest.run_tool(ALERTS, ["--redis", url, "--json", "--since", "all", "--once"] +
                                extra, env=rwtest.tool_env(**env))
            c.eq("ACL, %s: exit status (%r)" % (what, p.stderr), p.returncode, 0)
            c.eq("ACL, %s: the alert" % what, ids_of(p.stdout), [a])
        p = rwtest.run_tool(ALERTS, ["--redis", "redis://alerts:alerts-secret@" + host, "--json",
                                     "--group", "ops", "--consumer", "o1", "--since", "all",
                                     "--once"])
        c.eq("ACL, group mode with the consumer's commands only (%r)" % p.stderr,
             (p.returncode, ids_of(p.stdout)), (0, [a]))
        p = rwtest.run_tool(ALERTS, ["--redis", "redis://alerts:wrong-pw@" + host, "--once"])
        err = p.stderr.decode()
        c.eq("ACL, wrong password: exit 1", p.returncode, 1)
        c.true("ACL, wrong password: says so (%r)" % err, "WRONGPASS" in err)
        c.true("ACL, wrong password: not printed", "wrong-pw" not in err)
        for mode in ([], ["--group", "ops", "--consumer", "o2"]):
            rc, err = ends([ALERTS, "--redis", "redis://alerts:wrong-pw@" + host] + mode)
            c.eq("ACL, wrong password, following %s: exit 1, no retry (%r)" % (mode, err),
                 rc, 1)
            c.true("ACL, wrong password, following: one line with WRONGPASS and where",
                   err.count("\n") == 1 and "WRONGPASS" in err and host in err and
                   "wrong-pw" not in err)
        rc, err = ends([ALERTS, "--redis", "redis://127.0.0.1:%d/99" % srv.port])
        c.eq("database out of range, following: exit 1, no retry (%r)" % err, rc, 1)
        c.true("database out of range: says SELECT and why (%r)" % err,
               "SELECT" in err and "out of range" in err)
        p = rwtest.run_tool(ALERTS, ["--redis", "redis://alerts:alerts-secret@" + host,
                                     "--redis-prefix", "other:", "--once", "--since", "all"])
        c.eq("ACL, a stream the user may not read: exit 1", p.returncode, 1)
        c.true("ACL, says NOPERM (%r)" % p.stderr, b"NOPERM" in p.stderr)
        r.close()


# --- hostile values, errors, usage ---------------------------------------------------


def test_bounds(c, srv, r):
    P = "t6:"
    long_entity = "%1B" + "x" * 5000
    long_subject = ("\u5927" * 3000).encode() + b"\x07"
    xadd(r, P, alert(entity=long_entity, sample_subject=long_subject,
                     client_ips=",".join("198.51.100.%d" % i for i in range(200)),
                     extra="[" * 100000))
    p = run(srv.url, "--redis-prefix", P, "--since", "all", "--once")
    c.eq("long: exit status", p.returncode, 0)
    line = p.stdout.decode()
    c.true("long: one line, bounded (%d bytes)" % len(line),
           line.count("\n") == 1 and len(line.encode()) < 2000)
    c.true("long: entity cut with an ellipsis", "account=\\x1Bxxxx" in line and "x…" in line)
    c.true("long: subject cut with an ellipsis, 120 columns of wide characters",
           'subject="' + "\u5927" * 59 + '…"' in line)
    p = run(srv.url, "--redis-prefix", P, "--since", "all", "--once", "--json")
    o = json.loads(p.stdout)
    c.eq("long json: whole subject kept", o["sample_subject"], "\u5927" * 3000 + "\x07")
    c.eq("long json: bad extra kept aside, cut at 64 KiB", (o["extra"], len(o["extra_raw"])),
         ({}, 65536))

    r.command("SET", "t7:alerts", "not a stream")
    p = run(srv.url, "--redis-prefix", "t7:", "--once", "--since", "all")
    c.eq("wrong type: exit 1", p.returncode, 1)
    c.true("wrong type: says WRONGTYPE (%r)" % p.stderr, b"WRONGTYPE" in p.stderr)


def test_usage(c):
    p = rwtest.run_tool(ALERTS, ["--help"])
    out = p.stdout.decode()
    c.eq("--help: exit 0", p.returncode, 0)
    for word in ("Examples:", "--since", "--group", "--consumer", "--json", "--once",
                 "--redis-password-file", "REDISCLI_AUTH", "NO_COLOR", "Exit status"):
        c.true("--help mentions %s" % word, word in out)
    p = rwtest.run_tool(ALERTS, ["--version"])
    c.true("--version", p.returncode == 0 and p.stdout.startswith(b"relaywatch-alerts 0."))
    for args in (["--bogus"], ["--since"], ["--since", "yesterday"], ["--consumer", "x"],
                 ["extra-arg"], ["--redis", "http://x"], ["--redis", "embedded"],
                 ["--redis-prefix", "p" * 100], ["--redis-prefix", "p" * 64],
                 ["--redis-prefix", ""]):
        p = rwtest.run_tool(ALERTS, args)
        c.eq("usage error %s: exit 2" % args, p.returncode, 2)
        c.true("usage error %s: one line on stderr" % args,
               p.stderr.decode().count("\n") == 1 and p.stdout == b"")


def main():
    c = rwtest.Checker()
    test_usage(c)
    test_unreachable(c)
    test_acl(c)
    test_transient(c)
    with rwtest.RedisServer() as srv:
        r = rwtest.RespClient(srv.port)
        test_output(c, srv, r)
        test_since(c, srv, r)
        test_follow(c, srv, r)
        test_group(c, srv, r)
        test_ack_retry(c, srv, r)
        test_color(c, srv, r)
        test_bounds(c, srv, r)
        r.close()
    c.done()


if __name__ == "__main__":
    main()
