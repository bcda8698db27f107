#!/usr/bin/env python3
"""The deployment end to end, with real processes on spare ports:

  redis-server 7.0 with deploy/redis/users.acl
    <- relaywatch replays the incident captures (merged) as ACL user `sensor`
    <- relaywatch-alerts follows the stream as ACL user `alerts` (group `ops`;
       group `tickets` is created and never read)
    <- prometheus-redis-exporter runs counters/exporter.lua as ACL user `exporter`
       <- prometheus, with deploy/prometheus/prometheus.yml (targets moved to the
          spare port, scrape every 1 s) and deploy/prometheus/alerts.yml

Then every query of every panel of deploy/grafana/dashboards/relaywatch.json
(and of its template variable) goes to Prometheus' HTTP API, with Grafana's
variables given concrete values, the way Grafana asks (range queries for
time series, instant queries for tables and stats): each must return data.
The values must be those of the captures: rw:stats totals from the facts
files, alerts by rule and severity as test_scenarios.py expects them, the
top accounts and clients, the stream's length and groups' lag, the sensor's
health, redis_up 1, no script error, no key left without a name, the
alerting rules loaded, and nothing refused by the ACL. Then a STARTTLS
session alone (tests/captures/starttls.pcap) is replayed: the sessions
panel, over a window that holds only it, shows it both begun in clear text
and encrypted, one line as high as the other. Last, the bar chart of new
alerts, asked at Grafana's step over a range ending after the alerts, adds
up to the alerts (one bar per alert, not one per step of a longer window).

Every query is evaluated at one instant T, taken once Prometheus has
scraped the replay's results (polling with a generous timeout: readiness,
never a measurement), so the answers do not depend on how fast this runs."""
import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtest  # noqa: E402
import test_deploy_redis as fx  # noqa: E402  (fixtures: passwords, facts, captures)

try:
    import yaml
except ImportError:                       # python3-yaml (deploy/install-deps.sh)
    print("SKIP: python3-yaml is not installed")
    sys.exit(rwtest.SKIP)

DEPLOY = os.path.join(rwtest.SOURCE, "deploy")
PROM_YML = os.path.join(DEPLOY, "prometheus", "prometheus.yml")
ALERTS_YML = os.path.join(DEPLOY, "prometheus", "alerts.yml")
DASHBOARD = os.path.join(DEPLOY, "grafana", "dashboards", "relaywatch.json")
SENSOR = "e2e"
STEP_S = 5                      # range queries: a point every 5 s ...
RANGE_S = 300                   # ... over the 5 minutes before T
# Grafana's variables, as it would fill them for a 5-minute range and 1 s scrapes
VARIABLES = {
    "__rate_interval": "1m", "__interval": "15s", "__interval_ms": "15000",
    "__range": "5m", "__range_s": "300", "__range_ms": "300000", "sensor": ".*",
}


def need(*progs):
    import shutil
    missing = [p for p in progs if not shutil.which(p)]
    if missing:
        print("SKIP: not installed: " + " ".join(missing))
        sys.exit(rwtest.SKIP)


def substitute(expr):
    """Grafana's $var, ${var} and [[var]] forms, longest names first."""
    for name in sorted(VARIABLES, key=len, reverse=True):
        v = VARIABLES[name]
        expr = expr.replace("${%s}" % name, v).replace("[[%s]]" % name, v)
        expr = re.sub(r"\$%s\b" % re.escape(name), lambda _m: v, expr)
    return expr


class Prometheus:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def get(self, path, **params):
        url = self.base + path + ("?" + urllib.parse.urlencode(params, doseq=True)
                                  if params else "")
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.load(r)

    def api(self, path, **params):
        try:
            doc = self.get("/api/v1/" + path, **params)
        except urllib.error.HTTPError as e:          # 400: a bad query, say why
            doc = json.load(e)
        if doc.get("status") != "success":
            raise AssertionError("%s %r: %s" % (path, params, doc.get("error")))
        return doc["data"]

    def instant(self, query, at):
        return self.api("query", query=query, time="%.3f" % at)["result"]

    def range(self, query, at):
        return self.api("query_range", query=query, start="%.3f" % (at - RANGE_S),
                        end="%.3f" % at, step=str(STEP_S))["result"]

    def value(self, query, at):
        """The one number an instant query returns, or None."""
        r = self.instant(query, at)
        return float(r[0]["value"][1]) if len(r) == 1 else None

    def by(self, query, label, at):
        return {s["metric"].get(label): float(s["value"][1]) for s in self.instant(query, at)}

    def ready(self):
        try:
            with urllib.request.urlopen(self.base + "/-/ready", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False


def http_text(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()
    except OSError:
        return ""


def prometheus_config(tmp, exporter_port):
    """deploy/prometheus/prometheus.yml with the target on the spare port, a 1 s
    scrape, and the rule file by absolute path; everything else as shipped."""
    with open(PROM_YML) as f:
        cfg = yaml.safe_load(f)
    cfg["global"]["scrape_interval"] = "1s"
    cfg["global"]["evaluation_interval"] = "1s"
    cfg["rule_files"] = [ALERTS_YML]
    jobs = cfg["scrape_configs"]
    assert len(jobs) == 1 and jobs[0]["job_name"] == "relaywatch", jobs
    jobs[0]["static_configs"] = [{"targets": ["127.0.0.1:%d" % exporter_port]}]
    path = os.path.join(tmp, "prometheus.yml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return path


def panel_queries():
    """(panel title, refId, expr, instant?) for every target of every panel,
    rows included."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                instant = bool(t.get("instant")) and not t.get("range", False)
                out.append((p["title"], t["refId"], t["expr"], instant))
            walk(p.get("panels", []))
    walk(dash["panels"])
    return dash, out


def main():
    need("redis-server", "prometheus", "prometheus-redis-exporter", "mergecap")
    c = rwtest.Checker()
    f = fx.facts()
    totals = fx.expected_totals(f)
    want_alerts = fx.expected_alerts(f)
    with tempfile.TemporaryDirectory(prefix="rw-e2e-") as tmp, fx.acl_server() as redis:
        pcap = fx.merged_capture(tmp)
        addr = "redis://127.0.0.1:%d" % redis.port

        # redis_exporter as `exporter`; its password file is keyed by --redis.addr
        pwjson = fx.write_file(os.path.join(tmp, "exporter-pwd.json"),
                               json.dumps({addr: fx.PASSWORDS["exporter"]}))
        eport = rwtest.free_port()
        exporter = rwtest.Background([
            "prometheus-redis-exporter", "--redis.addr", addr, "--redis.user", "exporter",
            "--redis.password-file", pwjson, "--script", fx.EXPORTER_LUA,
            "--web.listen-address", "127.0.0.1:%d" % eport])
        metrics_url = "http://127.0.0.1:%d/metrics" % eport
        rwtest.wait_for("the exporter to reach Redis", lambda: "\nredis_up 1" in http_text(
            metrics_url) or exporter._dead("redis_up 1"), timeout=60, step=0.2)

        # Prometheus with the shipped configuration
        pport = rwtest.free_port()
        prom = rwtest.Background([
            "prometheus", "--config.file", prometheus_config(tmp, eport),
            "--storage.tsdb.path", os.path.join(tmp, "tsdb"),
            "--web.listen-address", "127.0.0.1:%d" % pport])
        api = Prometheus(pport)
        rwtest.wait_for("Prometheus ready", lambda: api.ready() or prom._dead("ready"),
                        timeout=60, step=0.2)
        rwtest.wait_for("a scrape of the empty Redis", lambda: api.value(
            'relaywatch_stats_total{field="msgs"}', time.time()) == 0, timeout=60, step=0.2)
        # Counters that begin with the alerts cannot show them as new: wait
        # until Prometheus holds the zeros for longer than Grafana's
        # $__interval (readiness, not a measurement).
        offset = int(VARIABLES["__interval"].rstrip("s")) + 1
        rwtest.wait_for("zeros older than $__interval", lambda: api.value(
            'relaywatch_alerts_total{rule="open_relay",severity="high"} offset %ds' % offset,
            time.time()) == 0, timeout=60, step=0.2)
        targets = api.api("targets")["activeTargets"]
        c.eq("Prometheus: one target, up", [(t["labels"]["job"], t["health"]) for t in targets],
             [("relaywatch", "up")])

        # the alert consumers, as ACL user `alerts`: `tickets` never reads
        apw = fx.write_file(os.path.join(tmp, "alerts.pass"), fx.PASSWORDS["alerts"] + "\n")

        def follow(group):
            return rwtest.run_tool(rwtest.RELAYWATCH_ALERTS, [
                "--redis", "redis://alerts:@127.0.0.1:%d" % redis.port,
                "--redis-password-file", apw, "--json", "--group", group, "--consumer", "e2e",
                "--since", "all", "--once"])
        p = follow("tickets")
        c.eq("relaywatch-alerts creates group tickets (%r)" % p.stderr[-200:],
             (p.returncode, p.stdout), (0, b""))

        # the sensor, as ACL user `sensor`, replays the incidents
        conf = fx.sensor_config(tmp, SENSOR)
        p = fx.run_sensor(pcap, conf, redis.port, fx.sensor_password_file(tmp))
        c.eq("sensor: exit 0 (%s)" % p.stderr[-300:], p.returncode, 0)
        c.eq("sensor: alerts on stderr", p.stderr.count("ALERT"), totals["alerts"])
        p = follow("ops")
        got = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
        c.eq("relaywatch-alerts, group ops: every alert",
             (p.returncode, collections.Counter((a["rule"], a["severity"]) for a in got)),
             (0, want_alerts))
        fp_alert = next((a["entity"] for a in got if a["rule"] == "fingerprint_burst"), None)

        # T: Prometheus has the replay's results and two samples of the
        # sensor's health (its hash lives 60 s: what Grafana shows right after)
        def settled():
            t = time.time()
            ok = (api.value('relaywatch_stats_total{field="msgs"}', t) == totals["msgs"] and
                  api.value('relaywatch_stream_lag{group="ops"}', t) == 0 and
                  (api.value('count_over_time(relaywatch_sensor{sensor="%s",field="records"}[1m])'
                             % SENSOR, t) or 0) >= 2)
            return t if ok else None
        try:
            T = rwtest.wait_for("Prometheus to have the replay", lambda: settled() or
                                prom._dead("the replay") or exporter._dead("the replay"),
                                timeout=90, step=0.25)
        except AssertionError as e:
            t = time.time()
            for q in ('redis_up', 'relaywatch_stats_total{field="msgs"}',
                      'relaywatch_stream_lag', 'relaywatch_sensor{field="records"}',
                      'relaywatch_exporter_errors'):
                print("at the timeout: %s = %r" % (q, api.instant(q, t)))
            print("exporter stderr:", exporter.stderr().decode(errors="replace")[-1000:])
            c.true(str(e), False)
            c.done()

        # every panel query returns data
        dash, queries = panel_queries()
        c.true("dashboard: has queries (%d)" % len(queries), len(queries) >= 15)
        series = 0
        for title, ref, expr, instant in queries:
            q = substitute(expr)
            c.true("%s/%s: every variable given a value (%s)" % (title, ref, q), "$" not in q)
            try:
                res = api.instant(q, T) if instant else api.range(q, T)
            except AssertionError as e:
                c.true("%s/%s: a valid query: %s" % (title, ref, e), False)
                continue
            points = sum(len(s.get("values", [1])) for s in res)
            c.true("%s/%s: returns data (%s query: %s)" % (
                title, ref, "instant" if instant else "range", q), res and points > 0)
            series += len(res)
            print("panel %-40s %s %-7s %3d series  %s" % (
                title[:40], ref, "instant" if instant else "range", len(res), q))
        for v in dash.get("templating", {}).get("list", []):
            m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", v["query"]["query"])
            c.true("variable %s: label_values(metric, label)" % v["name"], m)
            if m:
                vals = api.api("label/%s/values" % m.group(2), **{
                    "match[]": m.group(1), "start": "%.3f" % (T - RANGE_S), "end": "%.3f" % T})
                c.true("variable %s: lists sensor %s (%r)" % (v["name"], SENSOR, vals),
                       SENSOR in vals)
        print("%d panel queries, %d series" % (len(queries), series))

        # the values are the captures'
        c.eq("redis_up", api.value('redis_up', T), 1.0)
        for k, n in totals.items():
            c.eq("relaywatch_stats_total{field=%s}" % k,
                 api.value('relaywatch_stats_total{field="%s"}' % k, T), float(n))
        got = {(s["metric"]["rule"], s["metric"]["severity"]): float(s["value"][1])
               for s in api.instant("relaywatch_alerts_total > 0", T)}
        c.eq("relaywatch_alerts_total by rule and severity", got,
             {k: float(n) for k, n in want_alerts.items()})
        c.eq("relaywatch_alerts_total: every rule x severity exported",
             len(api.instant("relaywatch_alerts_total", T)), 8 * 4)
        got = {(s["metric"]["rule"], s["metric"]["severity"]): float(s["value"][1])
               for s in api.instant(substitute(
                   'round(sum by (rule, severity) (increase(relaywatch_alerts_total[$__range])))'
                   ' > 0'), T)}
        c.eq("alerts in the range (the dashboard's table)", got,
             {k: float(n) for k, n in want_alerts.items()})
        c.eq("top accounts (10 minutes)",
             api.by('relaywatch_top_msgs_10m{account!=""}', "account", T),
             {a: float(n) for a, n in fx.expected_by_account(f).most_common(20)})
        c.eq("top clients (10 minutes)",
             api.by('relaywatch_top_msgs_10m{client!=""}', "client", T),
             {a: float(n) for a, n in fx.expected_by_client(f).most_common(20)})
        fps = api.by('relaywatch_top_msgs_10m{fingerprint!=""}', "fingerprint", T)
        top_fp = max(fps, key=fps.get) if fps else None
        c.eq("top fingerprint: the relay's subject, the fingerprint_burst alert's entity",
             (top_fp, fps.get(top_fp)), (fp_alert, 130.0))
        c.eq("stream length", api.value("relaywatch_stream_length", T), float(totals["alerts"]))
        c.eq("stream lag by group", api.by("relaywatch_stream_lag", "group", T),
             {"ops": 0.0, "tickets": float(totals["alerts"])})
        c.eq("stream pending by group", api.by("relaywatch_stream_pending", "group", T),
             {"ops": 0.0, "tickets": 0.0})
        health = api.by('relaywatch_sensor{sensor="%s"}' % SENSOR, "field", T)
        c.eq("sensor health: up, records, drops",
             (health.get("up"), health.get("records"), health.get("packets_dropped"),
              health.get("pending_dropped")), (1.0, float(totals["msgs"]), 0.0, 0.0))
        c.true("sensor health: flush latency measured (%r)" % health.get("flush_latency_ms"),
               health.get("flush_latency_ms") is not None)
        rss, peak = health.get("rss_bytes"), health.get("rss_peak_bytes")
        c.true("sensor health: resident memory now and at most, 1 MB <= now <= peak < 1 GB "
               "(%r, %r)" % (rss, peak), rss and peak and 2**20 <= rss <= peak < 2**30)
        c.true("sensor health: SMTP sessions open reported (%r)" % health.get("sessions"),
               health.get("sessions") is not None)
        # the incidents' checksums are valid: none left out, auto goes on verifying
        c.eq("sensor health: no segment with a bad TCP checksum",
             health.get("bad_checksums"), 0.0)
        c.eq("sensor checksums: verified (auto decided on)",
             [s["metric"].get("mode") for s in api.instant(
                 'relaywatch_sensor_checksums{sensor="%s"}' % SENSOR, T)], ["auto-on"])
        version = rwtest.run(["--version"]).stdout.split()[1]
        c.eq("sensor version", [s["metric"].get("version") for s in api.instant(
            'relaywatch_sensor_info{sensor="%s"}' % SENSOR, T)], [version])
        c.eq("exporter script: no read errors, nothing skipped",
             (api.value("relaywatch_exporter_errors", T),
              api.value("relaywatch_exporter_skipped", T)), (0.0, 0.0))
        c.eq("every script key got a metric name", api.instant("redis_script_values", T), [])
        c.eq("no renamed series keeps `key`",
             api.instant('{__name__=~"relaywatch_.+", key!=""}', T), [])
        rules = [r for g in api.api("rules")["groups"] for r in g["rules"]]
        with open(ALERTS_YML) as f:
            written = sorted(r["alert"] for g in yaml.safe_load(f)["groups"] for r in g["rules"])
        c.eq("alerting rules: every one in alerts.yml loaded and healthy",
             (sorted(r["name"] for r in rules), sorted({r["health"] for r in rules})),
             (written, ["ok"]))
        c.eq("nothing refused by the ACL (sensor, exporter, alerts)", fx.acl_log(redis.port), [])

        # A STARTTLS session alone: it is in rw:stats' sessions and in
        # tls_sessions (SCHEMA.md). The sessions panel is asked over the
        # window from the last scrape before it to the first after it (from
        # sample to sample: rate() then extrapolates nothing): each line must
        # show that one session, 60 / window a minute.
        stat = 'relaywatch_stats_total{field="%s"}'
        before = {k: api.value(stat % k, T) for k in ("sessions", "tls_sessions")}
        p = fx.run_sensor(os.path.join(rwtest.SOURCE, "tests", "captures", "starttls.pcap"),
                          conf, redis.port, fx.sensor_password_file(tmp))
        c.eq("starttls.pcap: sensor exit 0 (%s)" % p.stderr[-300:], p.returncode, 0)
        T2 = rwtest.wait_for("Prometheus to have the STARTTLS session", lambda: (
            lambda t: t if all(api.value(stat % k, t) == before[k] + 1 for k in before) else None)(
            time.time()), timeout=60, step=0.2)
        samples = [(float(ts), float(v)) for ts, v in
                   api.instant("%s[%ds]" % (stat % "sessions", int(T2 - T) + 2), T2)[0]["values"]]
        t0 = max(ts for ts, v in samples if v == before["sessions"])
        t1 = min(ts for ts, v in samples if v == before["sessions"] + 1)
        panel = [p for p in dash["panels"] if any('field="tls_sessions"' in t["expr"]
                                                  for t in p.get("targets", []))]
        if c.eq("the sessions panel: one", len(panel), 1):
            shown = {}
            for t in panel[0]["targets"]:
                q = substitute(t["expr"].replace("$__rate_interval",
                                                 "%dms" % round((t1 - t0) * 1000)))
                shown[t.get("legendFormat")] = api.value(q, t1)
            one = 60 / (t1 - t0)
            c.true("STARTTLS only: the panel shows the session begun in clear text and "
                   "encrypted, %.3f a minute each (%r)" % (one, shown),
                   set(shown) == {"clear text at the start (STARTTLS included)",
                                  "encrypted (SMTPS or STARTTLS)"} and
                   all(v is not None and abs(v - one) < 1e-6 * one for v in shown.values()))

        # The bar chart of new alerts, asked as Grafana asks it (step =
        # $__interval) over a range that ends a minute and more after the
        # alerts, once Prometheus has scraped that far: each alert is one
        # bar in one step, so the bars of a series add up to its alerts
        # (every alerts_total began at 0 in this Prometheus).
        # increase(...[$__rate_interval]) at a step four times shorter than
        # its window drew every alert in four consecutive bars, extrapolated.
        bars = next(e for title, _r, e, _i in queries if title == "Alerts by rule and severity")
        step = int(VARIABLES["__interval"].rstrip("s"))
        end = T - T % step + 5 * step
        rwtest.wait_for("Prometheus to scrape past the bar chart's range", lambda: (
            api.value('max(timestamp(relaywatch_alerts_total))', time.time()) or 0) > end + 1,
            timeout=120, step=0.5)
        res = api.api("query_range", query=substitute(bars), start="%d" % (end - RANGE_S),
                      end="%d" % end, step=str(step))["result"]
        got = {(s["metric"].get("rule"), s["metric"].get("severity")):
               round(sum(float(v) for _, v in s["values"]), 6) for s in res}
        c.eq("alert bars at Grafana's step: they add up to the alerts (%d bars)"
             % sum(len(s["values"]) for s in res), got,
             {(s["metric"]["rule"], s["metric"]["severity"]): float(s["value"][1])
              for s in api.instant("relaywatch_alerts_total > 0", end)})

        # Prometheus shuts down cleanly; redis_exporter 1.45 has no handler (Go's default)
        for name, proc, ok in (("prometheus", prom, {0}), ("exporter", exporter,
                                                          {0, -signal.SIGTERM})):
            proc.signal(signal.SIGTERM)
            rc = proc.wait()
            c.true("%s: stops on SIGTERM (%d)" % (name, rc), rc in ok)
    c.done()


if __name__ == "__main__":
    main()
