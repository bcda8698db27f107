#!/usr/bin/env python3
"""deploy/: the files parse, agree with each other, and name files that exist.

  - docker compose: parses (python3-yaml; also `docker compose config` when a
    compose is installed); the four services with pinned images; after
    deploy/redis/set-passwords.sh every bind mount and secret file exists;
    ports only on 127.0.0.1; the pieces agree (the exporter's --script is
    the mounted counters/exporter.lua, its --redis.addr keys its password
    file, Prometheus scrapes the exporter's service and port, Grafana's
    datasource is the Prometheus service, the dashboard provider's path is
    where the dashboards are mounted);
  - set-passwords.sh: the ACL it writes loads in redis-server, the new
    passwords log in and the test passwords no longer do; a rerun keeps the
    passwords, --force changes them;
  - Prometheus: promtool accepts the configuration and the alerting rules,
    and `promtool test rules` finds each way the watcher goes blind alerted
    (the exporter unscrapable, Redis down, a sensor silent);
    the relabelling turns every key kind counters/exporter.lua emits into a
    named metric with the right labels, also for IDs holding '|' and ';'
    (simulated here; test_deploy_e2e.py runs the real thing); every metric
    the dashboard and the rules use is produced;
  - Grafana: the datasource has uid prometheus, the provider is a file
    provider, the dashboard has no __inputs, every panel and target uses uid
    prometheus, and it has the panels the operators asked for;
  - systemd: systemd-analyze verify accepts the unit; its directives are the
    required ones (own user, only CAP_NET_RAW and CAP_NET_ADMIN, sandbox,
    address families, config path, restart); the sandbox's exposure level;
    the sysusers file creates the user;
  - relaywatch.conf.example: every option of --print-config and every rule
    and threshold of sensor/detect.c is there with its default; the sensor
    accepts the file as shipped and with every setting uncommented;
  - counters/exporter.lua: read-only flag, the prefix line, no globals;
  - README.md (its deploy guide): the files it names exist;
  - deploy/install-deps.sh installs what these tests use (python3-yaml)."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtest  # noqa: E402
import test_deploy_redis as fx  # noqa: E402

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is not installed")
    sys.exit(rwtest.SKIP)

DEPLOY = os.path.join(rwtest.SOURCE, "deploy")
COMPOSE_DIR = os.path.join(DEPLOY, "compose")
COMPOSE = os.path.join(COMPOSE_DIR, "docker-compose.yml")
SET_PASSWORDS = os.path.join(DEPLOY, "redis", "set-passwords.sh")
PROM_YML = os.path.join(DEPLOY, "prometheus", "prometheus.yml")
ALERTS_YML = os.path.join(DEPLOY, "prometheus", "alerts.yml")
LOGROTATE = os.path.join(DEPLOY, "logrotate", "relaywatch")
DS_YML = os.path.join(DEPLOY, "grafana", "provisioning", "datasources", "prometheus.yml")
DASH_YML = os.path.join(DEPLOY, "grafana", "provisioning", "dashboards", "relaywatch.yml")
DASHBOARD = os.path.join(DEPLOY, "grafana", "dashboards", "relaywatch.json")
UNIT = os.path.join(DEPLOY, "systemd", "relaywatch.service")
SYSUSERS = os.path.join(DEPLOY, "systemd", "relaywatch.sysusers")
CONF = os.path.join(DEPLOY, "relaywatch.conf.example")
README = os.path.join(rwtest.SOURCE, "README.md")  # holds the deploy guide
DETECT_C = os.path.join(rwtest.SOURCE, "sensor", "detect.c")
DS_REF = {"type": "prometheus", "uid": "prometheus"}


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def flags(cmd):
    """--name=value and --name value pairs of a command list."""
    out, i = {}, 0
    while i < len(cmd):
        a = str(cmd[i])
        if a.startswith("--"):
            if "=" in a:
                k, v = a.split("=", 1)
                out[k] = v
            elif i + 1 < len(cmd) and not str(cmd[i + 1]).startswith("--"):
                out[a] = str(cmd[i + 1])
                i += 1
            else:
                out[a] = ""
        i += 1
    return out


# --- docker compose and set-passwords.sh ----------------------------------------------


def test_compose(c, tmp):
    doc = load_yaml(COMPOSE)
    services = doc.get("services", {})
    c.eq("compose: services", sorted(services),
         ["grafana", "prometheus", "redis", "redis-exporter"])
    images = {n: s.get("image", "") for n, s in services.items()}
    c.true("compose: redis 7.0 (%s)" % images.get("redis"),
           re.fullmatch(r"redis:7\.0(\.\d+)?(-\w+)?", images.get("redis", "")))
    c.eq("compose: redis_exporter v1.45.0", images.get("redis-exporter"),
         "oliver006/redis_exporter:v1.45.0")
    c.true("compose: every image pinned to a version (%r)" % images,
           all(re.search(r":v?\d+\.\d+", i) for i in images.values()))

    secrets_dir = os.path.join(tmp, "secrets")
    p = subprocess.run([SET_PASSWORDS, secrets_dir], capture_output=True, text=True)
    c.eq("set-passwords.sh: exit 0 (%s)" % p.stderr, p.returncode, 0)

    def host_path(src):
        src = src.replace("${PWD}", COMPOSE_DIR)
        if src == "./secrets" or src.startswith("./secrets/"):
            return os.path.join(secrets_dir, src[len("./secrets/"):])
        return os.path.normpath(os.path.join(COMPOSE_DIR, src))

    mounts = {}                      # service -> {container path: host path}
    refs = []
    named = set(doc.get("volumes") or {})
    for name, s in services.items():
        mounts[name] = {}
        for v in s.get("volumes", []):
            src, dst = v.split(":")[:2]
            if src.startswith((".", "/", "$")):
                mounts[name][dst] = host_path(src)
                refs.append(("%s volume %s" % (name, src), mounts[name][dst]))
            else:
                c.true("compose: %s: named volume %s declared" % (name, src), src in named)
        for port in s.get("ports", []):
            c.true("compose: %s publishes %s on 127.0.0.1 only" % (name, port),
                   str(port).startswith("127.0.0.1:"))
        for sec in s.get("secrets", []):
            sname = sec if isinstance(sec, str) else sec["source"]
            c.true("compose: %s: secret %s declared" % (name, sname), sname in doc["secrets"])
    for sname, sec in doc.get("secrets", {}).items():
        refs.append(("secret " + sname, host_path(sec["file"])))
    for what, path in refs:
        c.true("compose: %s exists (%s)" % (what, path), os.path.exists(path))
    c.true("compose: references checked (%d)" % len(refs), len(refs) >= 9)

    # the pieces agree
    redis_cmd = services["redis"]["command"]
    c.eq("compose: redis loads the ACL secret", flags(redis_cmd).get("--aclfile"),
         "/run/secrets/users.acl")
    c.true("compose: redis gets users.acl", "users.acl" in services["redis"].get("secrets", []))
    exp = flags(services["redis-exporter"]["command"])
    lua = os.path.join(rwtest.SOURCE, "counters", "exporter.lua")
    c.eq("compose: --script is the mounted counters/exporter.lua",
         mounts["redis-exporter"].get(exp.get("--script")), lua)
    with open(os.path.join(secrets_dir, "exporter-pwd.json")) as f:
        pwmap = json.load(f)
    c.eq("compose: the exporter's password file is keyed by its --redis.addr",
         list(pwmap), [exp.get("--redis.addr")])
    c.eq("compose: the exporter's password file is the secret",
         exp.get("--redis.password-file"), "/run/secrets/exporter-pwd.json")
    c.eq("compose: the exporter logs in as exporter", exp.get("--redis.user"), "exporter")
    c.true("compose: --redis.addr names the redis service (%s)" % exp.get("--redis.addr"),
           re.fullmatch(r"redis://redis:6379", exp.get("--redis.addr", "")))
    eport = exp.get("--web.listen-address", ":9121").rsplit(":", 1)[1]

    pflags = flags(services["prometheus"]["command"])
    pcfg_path = mounts["prometheus"].get(pflags.get("--config.file"))
    c.eq("compose: Prometheus runs deploy/prometheus/prometheus.yml", pcfg_path, PROM_YML)
    pcfg = load_yaml(PROM_YML)
    cfg_dir = os.path.dirname(pflags.get("--config.file", ""))
    for rf in pcfg.get("rule_files", []):
        c.eq("compose: rule file %s is mounted" % rf,
             mounts["prometheus"].get(os.path.join(cfg_dir, rf)), ALERTS_YML)
    targets = [t for j in pcfg["scrape_configs"] for sc in j.get("static_configs", [])
               for t in sc["targets"]]
    c.eq("compose: Prometheus scrapes the exporter service", targets,
         ["redis-exporter:" + eport])
    pport = pflags.get("--web.listen-address", ":9090").rsplit(":", 1)[1]
    ds = load_yaml(DS_YML)["datasources"][0]
    c.eq("compose: Grafana's datasource is the Prometheus service", ds["url"],
         "http://prometheus:" + pport)
    g = mounts["grafana"]
    c.eq("compose: Grafana datasource provisioning mounted",
         g.get("/etc/grafana/provisioning/datasources"), os.path.dirname(DS_YML))
    c.eq("compose: Grafana dashboard provisioning mounted",
         g.get("/etc/grafana/provisioning/dashboards"), os.path.dirname(DASH_YML))
    provider = load_yaml(DASH_YML)["providers"][0]
    c.eq("compose: the provider's path holds the dashboards",
         g.get(provider["options"]["path"]), os.path.dirname(DASHBOARD))
    env = services["grafana"].get("environment", {})
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "")
    c.eq("compose: Grafana's home dashboard is relaywatch.json",
         os.path.join(g.get(os.path.dirname(home), "?"), os.path.basename(home)), DASHBOARD)
    c.eq("compose: Grafana's admin password from the secret",
         (env.get("GF_SECURITY_ADMIN_PASSWORD__FILE"), "grafana-admin.pass" in
          services["grafana"].get("secrets", [])), ("/run/secrets/grafana-admin.pass", True))
    c.true("compose: no password written in it", not re.search(
        r"(?i)password\s*[:=]\s*\S", "\n".join(l for l in open(COMPOSE) if "__FILE" not in l
                                                and "password-file" not in l)))

    for tool in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(tool[0]) and subprocess.run(tool + ["version"],
                                                    capture_output=True).returncode == 0:
            # the file in a tree like the repository's, with ./secrets next to it
            tree = os.path.join(tmp, "tree")
            os.makedirs(os.path.join(tree, "deploy", "compose"))
            os.symlink(os.path.join(rwtest.SOURCE, "counters"), os.path.join(tree, "counters"))
            for d in ("prometheus", "grafana", "redis"):
                os.symlink(os.path.join(DEPLOY, d), os.path.join(tree, "deploy", d))
            os.symlink(secrets_dir, os.path.join(tree, "deploy", "compose", "secrets"))
            shutil.copy(COMPOSE, os.path.join(tree, "deploy", "compose"))
            p = subprocess.run(tool + ["-f", "docker-compose.yml", "config", "-q"],
                               capture_output=True, text=True,
                               cwd=os.path.join(tree, "deploy", "compose"))
            c.eq("%s config: exit 0 (%s)" % (" ".join(tool), p.stderr.strip()), p.returncode, 0)
            break
    else:
        print("note: no docker compose here; the compose file was checked with python3-yaml")
    return secrets_dir


def test_set_passwords(c, tmp, secrets_dir):
    pw = {}
    for u in fx.PASSWORDS:
        with open(os.path.join(secrets_dir, u + ".pass")) as f:
            pw[u] = f.readline().strip()
        c.true("set-passwords: %s has a new 64-hex-digit password" % u,
               re.fullmatch(r"[0-9a-f]{64}", pw[u]) and pw[u] != fx.PASSWORDS[u])
    c.eq("set-passwords: passwords all different", len(set(pw.values())), len(pw))
    c.eq("set-passwords: directory private", os.stat(secrets_dir).st_mode & 0o777, 0o700)
    with open(fx.ACL) as f:
        template = f.read()
    with open(os.path.join(secrets_dir, "users.acl")) as f:
        acl = f.read()
    strip = lambda t: re.sub(r"#[0-9a-f]{64}", "#H", t)  # noqa: E731
    c.eq("set-passwords: the same rules, other hashes", strip(acl), strip(template))
    with rwtest.RedisServer(extra=["--aclfile", os.path.join(secrets_dir, "users.acl")]) as srv:
        for u in fx.PASSWORDS:
            try:
                r = rwtest.RespClient(srv.port, auth=(u, pw[u]))
                c.eq("set-passwords: %s logs in with its new password" % u, r.command("PING"),
                     b"PONG")
                r.close()
            except rwtest.RedisError as e:
                c.true("set-passwords: %s logs in (%s)" % (u, e), False)
            try:
                rwtest.RespClient(srv.port, auth=(u, fx.PASSWORDS[u])).close()
                c.true("set-passwords: the test password of %s is refused" % u, False)
            except rwtest.RedisError as e:
                c.true("set-passwords: the test password of %s is refused" % u,
                       "WRONGPASS" in str(e))
    p = subprocess.run([SET_PASSWORDS, secrets_dir], capture_output=True, text=True)
    with open(os.path.join(secrets_dir, "users.acl")) as f:
        c.eq("set-passwords: a rerun keeps the passwords", (p.returncode, f.read()), (0, acl))
    p = subprocess.run([SET_PASSWORDS, "--force", secrets_dir], capture_output=True, text=True)
    with open(os.path.join(secrets_dir, "sensor.pass")) as f:
        c.true("set-passwords --force: new passwords",
               p.returncode == 0 and f.readline().strip() != pw["sensor"])
    p = subprocess.run([SET_PASSWORDS], capture_output=True, text=True)
    c.eq("set-passwords without DIR: usage error", p.returncode, 2)
    # the address is written as a JSON key: one that would need escaping is
    # refused, not written as broken JSON
    for bad in ('redis://a"b:6379', "redis://a\\b:6379", "redis://a b:6379"):
        d = os.path.join(tmp, "pw-bad")
        p = subprocess.run([SET_PASSWORDS, "--exporter-addr", bad, d], capture_output=True,
                           text=True)
        c.eq("set-passwords --exporter-addr %r: usage error, nothing written" % bad,
             (p.returncode, os.path.exists(os.path.join(d, "exporter-pwd.json"))), (2, False))
    d = os.path.join(tmp, "pw-v6")
    p = subprocess.run([SET_PASSWORDS, "--exporter-addr", "redis://[::1]:6380", d],
                       capture_output=True, text=True)
    with open(os.path.join(d, "exporter-pwd.json")) as f:
        c.eq("set-passwords --exporter-addr redis://[::1]:6380: valid JSON keyed by it",
             (p.returncode, list(json.load(f))), (0, ["redis://[::1]:6380"]))


# --- Prometheus --------------------------------------------------------------------------


def relabel(rules, labels):
    """Prometheus' `replace` relabelling (the only action used), in Python:
    the source labels joined with ';', a fully anchored regex, $N groups,
    an empty result removes the label."""
    labels = dict(labels)
    for r in rules:
        c_action = r.get("action", "replace")
        assert c_action == "replace", c_action
        value = r.get("separator", ";").join(labels.get(s, "") for s in r["source_labels"])
        m = re.fullmatch(r.get("regex", "(.*)"), value)
        if not m:
            continue
        out = re.sub(r"\$\{?(\d+)\}?", lambda g: m.group(int(g.group(1))) or "",
                     r.get("replacement", "$1"))
        if out:
            labels[r["target_label"]] = out
        else:
            labels.pop(r["target_label"], None)
    return labels


def test_prometheus(c, tmp):
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "config", PROM_YML], capture_output=True,
                           text=True)
        c.eq("promtool check config (%s)" % (p.stdout + p.stderr).strip()[-300:], p.returncode, 0)
        p = subprocess.run(["promtool", "check", "rules", ALERTS_YML], capture_output=True,
                           text=True)
        c.eq("promtool check rules (%s)" % (p.stdout + p.stderr).strip()[-300:], p.returncode, 0)
    else:
        print("note: promtool missing; configuration syntax not checked")
    cfg = load_yaml(PROM_YML)
    rules = cfg["scrape_configs"][0]["metric_relabel_configs"]
    cases = [
        ("stats|msgs", {"__name__": "relaywatch_stats_total", "field": "msgs"}),
        ("alerts|open_relay|critical", {"__name__": "relaywatch_alerts_total",
                                        "rule": "open_relay", "severity": "critical"}),
        ("sensor|mx1|packets_dropped", {"__name__": "relaywatch_sensor", "sensor": "mx1",
                                        "field": "packets_dropped"}),
        ("sensor|we|ird;x|up", {"__name__": "relaywatch_sensor", "sensor": "we|ird;x",
                                "field": "up"}),
        ("sensor_info|mx1|0.1.0", {"__name__": "relaywatch_sensor_info", "sensor": "mx1",
                                   "version": "0.1.0"}),
        ("sensor_checksums|mx1|auto-off", {"__name__": "relaywatch_sensor_checksums",
                                           "sensor": "mx1", "mode": "auto-off"}),
        ("sensor_checksums|we|ird;x|on", {"__name__": "relaywatch_sensor_checksums",
                                          "sensor": "we|ird;x", "mode": "on"}),
        ("top_account|alice@pref.example.jp", {"__name__": "relaywatch_top_msgs_10m",
                                               "account": "alice@pref.example.jp"}),
        ("top_account|a|b;c@x.jp", {"__name__": "relaywatch_top_msgs_10m",
                                    "account": "a|b;c@x.jp"}),
        ("top_account|h:0123456789abcdef", {"__name__": "relaywatch_top_msgs_10m",
                                            "account": "h:0123456789abcdef"}),
        ("top_fingerprint|3db9e84a9d413a83", {"__name__": "relaywatch_top_msgs_10m",
                                              "fingerprint": "3db9e84a9d413a83"}),
        ("top_client|2001:db8::1", {"__name__": "relaywatch_top_msgs_10m",
                                    "client": "2001:db8::1"}),
        ("top|window_end", {"__name__": "relaywatch_top_window_end_seconds"}),
        ("top|lookup", {"__name__": "relaywatch_top_lookup"}),
        ("stream|length", {"__name__": "relaywatch_stream_length"}),
        ("stream|last_entry", {"__name__": "relaywatch_stream_last_entry_seconds"}),
        ("stream_lag|ops", {"__name__": "relaywatch_stream_lag", "group": "ops"}),
        ("stream_pending|o|p", {"__name__": "relaywatch_stream_pending", "group": "o|p"}),
        ("stream_consumers|ops", {"__name__": "relaywatch_stream_consumers", "group": "ops"}),
        ("exporter|errors", {"__name__": "relaywatch_exporter_errors"}),
        ("exporter|skipped", {"__name__": "relaywatch_exporter_skipped"}),
        ("something|new", {"__name__": "redis_script_values", "key": "something|new"}),
    ]
    base = {"job": "relaywatch", "instance": "x:9121"}
    produced = set()
    for key, want in cases:
        got = relabel(rules, dict(base, __name__="redis_script_values", key=key))
        c.eq("relabel %s" % key, got, dict(base, **want))
        produced.add(got["__name__"])
    c.eq("relabel: the exporter's own metrics untouched", relabel(rules, dict(
        base, __name__="redis_up")), dict(base, __name__="redis_up"))

    # every key kind the script emits has a case above (and so a rule)
    with open(fx.EXPORTER_LUA) as f:
        lua = f.read()
    kinds = set(re.findall(r"emit\('([a-z_]+)\|", lua)) | set(re.findall(
        r"\{ '\w+', '([a-z_]+)' \}", lua))
    c.eq("every key kind of exporter.lua is relabelled", sorted(kinds - {
        k.split("|")[0] for k, _ in cases}), [])
    # every relaywatch_* metric the dashboard and the rules use is produced
    with open(DASHBOARD) as f:
        used = set(re.findall(r"relaywatch_[a-z0-9_]+", f.read()))
    with open(ALERTS_YML) as f:
        used |= set(re.findall(r"relaywatch_[a-z0-9_]+", f.read()))
    c.eq("every relaywatch_* metric used is produced", sorted(used - produced), [])


def test_alert_rules_fire(c, tmp):
    """deploy/prometheus/alerts.yml evaluated by `promtool test rules` on
    made-up series: each way the watcher can go blind must fire something.
    When Prometheus cannot scrape redis_exporter at all (stopped, crashed,
    a wrong address) there is no redis_up and no relaywatch_* series, only
    Prometheus' own up == 0: no rule fired, and the dashboard just went
    empty."""
    if not shutil.which("promtool"):
        print("note: promtool missing; alert rules not evaluated")
        return
    inst = {"job": "relaywatch", "instance": "127.0.0.1:9121"}

    def series(name, labels, values):
        return {"series": "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in
                                                     sorted(labels.items()))),
                "values": values}

    def firing(alert, labels, at="10m"):
        return {"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": labels}]}

    def silent(alert, at="10m"):
        return {"eval_time": at, "alertname": alert, "exp_alerts": []}

    # whether a rule fires, not its wording: the annotations are left out
    rules = load_yaml(ALERTS_YML)
    for g in rules["groups"]:
        for r in g["rules"]:
            r.pop("annotations", None)
    rules_file = os.path.join(tmp, "alerts-no-annotations.yml")
    with open(rules_file, "w") as f:
        yaml.safe_dump(rules, f)
    sensor = dict(inst, sensor="mx1")
    cases = [
        ("the exporter cannot be scraped", [series("up", inst, "0x20")],
         [firing("RelaywatchExporterDown", dict(inst, severity="critical")),
          silent("RelaywatchRedisDown")]),
        ("Redis down behind a working exporter",
         [series("up", inst, "1x20"), series("redis_up", inst, "0x20")],
         [firing("RelaywatchRedisDown", dict(inst, severity="critical")),
          silent("RelaywatchExporterDown")]),
        ("all well", [series("up", inst, "1x20"), series("redis_up", inst, "1x20"),
                      series("relaywatch_sensor", dict(sensor, field="up"), "1x20"),
                      series("relaywatch_exporter_errors", inst, "0x20")],
         [silent(a) for a in ("RelaywatchExporterDown", "RelaywatchRedisDown",
                              "RelaywatchSensorSilent", "RelaywatchExporterErrors")]),
        ("a sensor silent", [series("up", inst, "1x20"), series("redis_up", inst, "1x20"),
                             series("relaywatch_sensor", dict(sensor, field="up"), "0x20")],
         [firing("RelaywatchSensorSilent", dict(sensor, field="up", severity="warning"))]),
        # a client can make a sensor that does not verify checksums read
        # bytes the server drops: said when auto mode turned it off, not
        # when an operator did
        ("checksums no longer verified",
         [series("relaywatch_sensor_checksums", dict(sensor, mode="auto-off"), "1x20"),
          series("relaywatch_sensor_checksums", dict(inst, sensor="mx2", mode="off"), "1x20"),
          series("relaywatch_sensor_checksums", dict(inst, sensor="mx3", mode="auto-on"),
                 "1x20")],
         [firing("RelaywatchChecksumsNotVerified",
                 dict(sensor, mode="auto-off", severity="warning"))]),
    ]
    for what, input_series, tests in cases:
        doc = {"rule_files": [rules_file], "evaluation_interval": "1m",
               "tests": [{"interval": "1m", "input_series": input_series,
                          "alert_rule_test": tests}]}
        path = os.path.join(tmp, "rules-test.yml")
        with open(path, "w") as f:
            yaml.safe_dump(doc, f)
        p = subprocess.run(["promtool", "test", "rules", path], capture_output=True, text=True)
        c.eq("alerts.yml, %s (%s)" % (what, (p.stdout + p.stderr).strip()[-600:]),
             p.returncode, 0)


# --- Grafana -------------------------------------------------------------------------------


def test_grafana(c):
    ds = load_yaml(DS_YML)
    c.eq("datasource: apiVersion 1", ds.get("apiVersion"), 1)
    c.eq("datasource: one Prometheus with uid prometheus",
         [(d.get("uid"), d.get("type")) for d in ds.get("datasources", [])],
         [("prometheus", "prometheus")])
    prov = load_yaml(DASH_YML)
    c.eq("dashboard provider: apiVersion 1", prov.get("apiVersion"), 1)
    p = prov.get("providers", [{}])[0]
    c.eq("dashboard provider: a file provider with a path",
         (p.get("type"), bool(p.get("options", {}).get("path"))), ("file", True))
    with open(DASHBOARD) as f:
        text = f.read()
    dash = json.loads(text)
    c.true("dashboard: no __inputs", "__inputs" not in dash)
    c.true("dashboard: no ${DS_...} placeholders", "${DS_" not in text)
    c.eq("dashboard: uid", dash.get("uid"), "relaywatch")
    panels, ids = [], []

    def walk(ps):
        for pn in ps:
            panels.append(pn)
            ids.append(pn.get("id"))
            walk(pn.get("panels", []))
    walk(dash.get("panels", []))
    c.eq("dashboard: panel ids unique", len(ids), len(set(ids)))
    exprs = []
    for pn in panels:
        gp = pn.get("gridPos", {})
        c.true("panel %s: inside 24 columns" % pn.get("title"),
               gp and gp["x"] >= 0 and gp["x"] + gp["w"] <= 24)
        if pn.get("type") == "row":
            continue
        c.eq("panel %s: datasource" % pn.get("title"), pn.get("datasource"), DS_REF)
        c.true("panel %s: has queries" % pn.get("title"), pn.get("targets"))
        for t in pn.get("targets", []):
            c.eq("panel %s/%s: datasource" % (pn["title"], t.get("refId")), t.get("datasource"),
                 DS_REF)
            c.true("panel %s/%s: a query" % (pn["title"], t.get("refId")), t.get("expr"))
            exprs.append(t.get("expr", ""))
    for v in dash.get("templating", {}).get("list", []):
        c.eq("variable %s: datasource" % v.get("name"), v.get("datasource"), DS_REF)
    allq = "\n".join(exprs)
    for what, needle in [
            ("messages per minute", 'relaywatch_stats_total{field="msgs"}'),
            ("recipients per minute", 'relaywatch_stats_total{field="rcpts"}'),
            ("alerts by rule and severity", "sum by (rule, severity) ("
             "relaywatch_alerts_total - relaywatch_alerts_total offset $__interval)"),
            ("top accounts", 'relaywatch_top_msgs_10m{account!=""}'),
            ("top fingerprints", 'relaywatch_top_msgs_10m{fingerprint!=""}'),
            ("AUTH failures", 'field="auth_failures"'),
            ("sessions begun in clear text", 'relaywatch_stats_total{field="sessions"}'),
            ("encrypted sessions", 'field="tls_sessions"'),
            ("alert-stream lag", "relaywatch_stream_lag"),
            ("pcap drops", "packets_dropped"),
            ("flush latency", 'field="flush_latency_ms"'),
            ("sensor memory", 'field="rss_bytes"'),
            ("SMTP sessions open", 'field="sessions"'),
            ("pending deltas", 'field=~"pending|alerts_pending"'),
            ("segments with bad TCP checksums", 'field="bad_checksums"'),
            ("whether TCP checksums are verified", "relaywatch_sensor_checksums{"),
            ("Redis reachable", "redis_up")]:
        c.true("dashboard shows %s" % what, needle in allq)
    # a STARTTLS session is counted in sessions and in tls_sessions: a sum of
    # the two counts it twice (SCHEMA.md)
    both = [m for m in re.findall(r'field=~"([^"]*)"', allq)
            if {"sessions", "tls_sessions"} <= set(m.split("|"))]
    c.eq("dashboard: no sum of sessions and tls_sessions", both, [])


# --- systemd -------------------------------------------------------------------------------


def unit_directives(path):
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, v = line.split("=", 1)
            out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def test_systemd(c, tmp):
    d = unit_directives(UNIT)
    S = lambda k: d.get(("Service", k), [])  # noqa: E731
    words = lambda k: set(" ".join(S(k)).split())  # noqa: E731
    c.eq("unit: own user and group", (S("User"), S("Group")), (["relaywatch"], ["relaywatch"]))
    c.eq("unit: AmbientCapabilities", words("AmbientCapabilities"),
         {"CAP_NET_RAW", "CAP_NET_ADMIN"})
    c.eq("unit: CapabilityBoundingSet", words("CapabilityBoundingSet"),
         {"CAP_NET_RAW", "CAP_NET_ADMIN"})
    for k, v in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                 ("PrivateTmp", "yes"), ("Restart", "on-failure")):
        c.eq("unit: %s" % k, S(k), [v])
    c.eq("unit: RestrictAddressFamilies", words("RestrictAddressFamilies"),
         {"AF_UNIX", "AF_INET", "AF_INET6", "AF_PACKET"})
    exec_start = " ".join(S("ExecStart"))
    c.true("unit: reads /etc/relaywatch/relaywatch.conf (%s)" % exec_start,
           re.search(r"(^|\s)-c /etc/relaywatch/relaywatch\.conf(\s|$)", exec_start))
    c.true("unit: no --user (it starts as relaywatch already)", "--user" not in exec_start)
    cred = S("LoadCredential")
    c.true("unit: the Redis password as a credential (%r)" % cred,
           cred and exec_start.find("%d/" + cred[0].split(":")[0]) > 0)
    c.eq("unit: WantedBy", d.get(("Install", "WantedBy")), ["multi-user.target"])
    c.eq("unit: reload is SIGHUP (the outputs reopened)", S("ExecReload"),
         ["/bin/kill -HUP $MAINPID"])
    test_logrotate(c, tmp, S("LogsDirectory"))
    test_syscall_filter(c, tmp, S("SystemCallFilter"), words("AmbientCapabilities"))


    if not shutil.which("systemd-analyze"):
        print("note: no systemd-analyze; directives checked only")
        return
    # verify wants the program to exist: point ExecStart at the built sensor
    unit = os.path.join(tmp, "relaywatch.service")
    with open(UNIT) as f:
        text = f.read().replace("/usr/local/bin/relaywatch", rwtest.RELAYWATCH)
    with open(unit, "w") as f:
        f.write(text)
    p = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True)
    mine = [l for l in (p.stdout + p.stderr).splitlines() if "relaywatch" in l]
    c.eq("systemd-analyze verify: exit 0, nothing said about the unit (%s)" % mine,
         (p.returncode, mine), (0, []))
    p = subprocess.run(["systemd-analyze", "security", "--offline=true", unit],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", p.stdout + p.stderr)
    if m:
        print("systemd-analyze security: exposure %s %s" % (m.group(1), m.group(2)))
        c.true("systemd-analyze security: exposure OK (%s %s)" % m.groups(),
               m.group(2) == "OK")
    else:
        print("note: systemd-analyze security --offline unsupported here")
    if shutil.which("systemd-sysusers"):
        root = os.path.join(tmp, "sysroot")
        os.makedirs(os.path.join(root, "etc"))
        p = subprocess.run(["systemd-sysusers", "--root=" + root, SYSUSERS], capture_output=True,
                           text=True)
        with open(os.path.join(root, "etc", "passwd")) as f:
            pw = f.read()
        c.true("sysusers: creates relaywatch without a login (%r)" % pw,
               p.returncode == 0 and re.search(r"^relaywatch:x:\d+:\d+:[^:]*:[^:]*:"
                                               r"/usr/sbin/nologin$", pw, re.M))


def syscall_set(name, cache={}):
    """The system calls a SystemCallFilter= word names: a call, or a @group
    expanded (recursively) by systemd-analyze."""
    if not name.startswith("@"):
        return {name}
    if name not in cache:
        out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True,
                             text=True, check=True).stdout
        calls = set()
        for line in out.splitlines()[1:]:
            w = line.strip()
            if w and not w.startswith("#"):
                calls |= syscall_set(w)
        cache[name] = calls
    return cache[name]


def filter_allows(lines):
    """What a unit's SystemCallFilter= lines allow, read as systemd reads
    them: the first (an allow list here) sets the list, a later line adds
    to it, a later "~" line takes from it."""
    allowed = None
    for line in lines:
        deny = line.startswith("~")
        calls = set()
        for w in line.lstrip("~").split():
            calls |= syscall_set(w)
        assert allowed is not None or not deny, "the unit's filter must start as an allow list"
        allowed = (allowed or set()) - calls if deny else (allowed or set()) | calls
    return allowed or set()


def test_syscall_filter(c, tmp, lines, caps):
    """Run the sensor as the unit runs it (a user that is not root, with the
    unit's ambient capabilities), live on lo, under strace: every system
    call it makes must be one the unit's SystemCallFilter allows. A call the
    filter refuses fails with EPERM (SystemCallErrorNumber): capset did, so
    the sensor kept CAP_NET_RAW and CAP_NET_ADMIN for its whole life."""
    if os.geteuid() != 0 or not shutil.which("strace") or not shutil.which("setpriv") \
            or not shutil.which("systemd-analyze"):
        print("note: the unit's system call filter against a traced live run needs root, "
              "strace, setpriv and systemd-analyze; skipped")
        return
    allowed = filter_allows(lines)
    c.true("unit: the filter allows reading packets (%d calls)" % len(allowed),
           {"recvfrom", "poll", "mmap", "setsockopt"} <= allowed)
    # a directory the unprivileged user can read (tmp is 0700)
    d = tempfile.mkdtemp(prefix="rw-unit-", dir="/tmp")
    try:
        os.chmod(d, 0o777)
        exe = os.path.join(d, "relaywatch")
        shutil.copy(rwtest.RELAYWATCH, exe)
        os.chmod(exe, 0o755)
        trace = os.path.join(d, "trace")
        caps = ",".join("+" + x[4:].lower() for x in sorted(caps))
        env = dict(os.environ)
        if rwtest.sanitized():   # LeakSanitizer cannot run under ptrace
            env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS"), "detect_leaks=0") if x)
        with rwtest.RedisServer() as redis:
            p = subprocess.Popen(
                ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                 "--inh-caps=" + caps, "--ambient-caps=" + caps, "--bounding-set=-all," + caps,
                 "strace", "-f", "-qq", "-o", trace, "--", exe, "-i", "lo", "--redis", redis.url,
                 "--records", os.path.join(d, "records.json"), "--stats-interval", "0.2",
                 "--sensor-name", "unit-test"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
            rwtest.wait_for("the traced sensor's health hash",
                            lambda: "rss_bytes" in redis.cli("HKEYS", "rw:sensor:unit-test"))
            # setpriv became strace: the sensor is strace's child
            with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                sensor = int(f.read().split()[0])
            os.kill(sensor, signal.SIGHUP)        # the unit's ExecReload
            rwtest.wait_for("the trace to show the reopen",
                            lambda: open(trace).read().count("records.json") >= 2)
            os.kill(sensor, signal.SIGTERM)
            _, err = p.communicate(timeout=60)
        c.eq("traced sensor under the unit's user and capabilities: exit 0 (%s)" % err.strip(),
             p.returncode, 0)
        c.true("traced sensor: no warning about capabilities (%s)" % err.strip(),
               "capabilit" not in err)
        with open(trace) as f:
            used = set(re.findall(r"^\d+\s+([a-z_0-9]+)\(", f.read(), re.M))
        c.true("traced sensor: it gives its capabilities up (capset)", "capset" in used)
        refused = sorted(used - allowed)
        c.eq("every system call of the traced sensor is allowed by the unit (%d calls)"
             % len(used), refused, [])
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_logrotate(c, tmp, logs_dir):
    """deploy/logrotate/relaywatch rotates the files in the unit's
    LogsDirectory and tells the sensor with a reload (SIGHUP), not
    copytruncate (which loses the lines written while it copies)."""
    with open(LOGROTATE) as f:
        text = f.read()
    c.true("logrotate: the unit's LogsDirectory (%s)" % logs_dir,
           logs_dir and ("/var/log/%s/*.json {" % logs_dir[0]) in text)
    c.true("logrotate: postrotate reloads the unit",
           re.search(r"postrotate\s+systemctl reload relaywatch\.service", text))
    c.true("logrotate: no copytruncate", "copytruncate" not in text)
    if not shutil.which("logrotate"):
        print("note: no logrotate here; its file checked as text only")
        return
    conf = os.path.join(tmp, "logrotate.conf")
    with open(conf, "w") as f:
        f.write(text.replace("/var/log/", os.path.join(tmp, "log") + "/"))
    p = subprocess.run(["logrotate", "--debug", "--state", os.path.join(tmp, "lr.state"), conf],
                       capture_output=True, text=True)
    c.eq("logrotate --debug accepts it (%s)" % (p.stdout + p.stderr).strip()[-300:],
         p.returncode, 0)


# --- relaywatch.conf.example ------------------------------------------------------------


def rule_table():
    """{rule: {key: default}} from the rules[] table of sensor/detect.c."""
    with open(DETECT_C) as f:
        src = f.read()
    body = src[src.index("static const struct rule_def rules[RULE_COUNT]"):]
    body = body[:body.index("\n};")]
    out = {}
    for m in re.finditer(r'\[RULE_\w+\] = \{ "(\w+)",(.*?)(?=\[RULE_|\Z)', body, re.S):
        out[m.group(1)] = {k: float(v) for k, v in
                           re.findall(r'\{ "(\w+)", ([\d.e+]+),', m.group(2))}
    return out


def conf_settings(text):
    """[(section, key, value, active)] of an INI text."""
    out, section = [], None
    for line in text.splitlines():
        m = re.fullmatch(r"\[([\w.]+)\]", line.strip())
        if m:
            section = m.group(1)
            continue
        m = re.fullmatch(r"(;?)([a-z_0-9]+) = ?(.*)", line)
        if m:
            out.append((section, m.group(2), m.group(3), not m.group(1)))
    return out


def test_conf_example(c, tmp):
    with open(CONF) as f:
        text = f.read()
    ex = {(s, k): (v, a) for s, k, v, a in conf_settings(text)}
    printed = conf_settings(rwtest.run(["--print-config"]).stdout)
    c.true("--print-config lists settings (%d)" % len(printed), len(printed) >= 25)
    for s, k, v, _ in printed:
        c.true("example has [%s] %s" % (s, k), (s, k) in ex)
        literal = re.fullmatch(r"[\w./:, -]*", v) and "(" not in v and " live" not in v
        if (s, k) in ex and not ex[(s, k)][1] and v and literal:
            c.eq("example: [%s] %s shows the default" % (s, k), ex[(s, k)][0], v)
    rules = rule_table()
    c.eq("detect.c: the eight rules", len(rules), 8)
    for r, params in rules.items():
        c.true("example has [rule.%s] enabled" % r, ("rule." + r, "enabled") in ex)
        for k, default in params.items():
            v = ex.get(("rule." + r, k))
            c.true("example has [rule.%s] %s" % (r, k), v is not None)
            if v:
                c.eq("example: [rule.%s] %s default" % (r, k), float(v[0]), default)
    active = {k for (s, k), (v, a) in ex.items() if a}
    c.true("example: [sensor] user is not set (the unit runs as relaywatch)", "user" not in active)
    c.eq("example: the ACL user in the Redis URL, with ':'", ex.get(("redis", "url"), ("",))[0],
         "redis://sensor:@127.0.0.1:6379")

    pcap = os.path.join(fx.SCEN, "emotet-reply.pcap")
    # as shipped (but -r instead of its interface)
    shipped = os.path.join(tmp, "shipped.conf")
    with open(shipped, "w") as f:
        f.write(re.sub(r"(?m)^interface = ", ";interface = ", text))
    p = rwtest.run(["-c", shipped, "-r", pcap, "--redis", "none", "-q"], check=False)
    c.eq("example as shipped: accepted (%s)" % p.stderr.strip(), p.returncode, 0)
    # every setting uncommented; files go to the temporary directory
    key = os.path.join(tmp, "pseudonymize.key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    pw = fx.write_file(os.path.join(tmp, "redis.pass"), "x\n")
    files = {"records": os.path.join(tmp, "records.json"), "flows": os.path.join(tmp, "flows.json"),
             "json": os.path.join(tmp, "alerts.json"), "password_file": pw, "key_file": key,
             "interface": None, "user": None}      # None: stays unset (-r; not root)

    def uncomment(m):
        k, v = m.group(1), files.get(m.group(1), m.group(2))
        return ";%s =" % k if v is None else "%s = %s" % (k, v)
    full = os.path.join(tmp, "full.conf")
    with open(full, "w") as f:
        f.write(re.sub(r"(?m)^;?([a-z_0-9]+) = ?(.*)$", uncomment, text))
    n = len(re.findall(r"(?m)^;[a-z_0-9]+ = ", text))
    p = rwtest.run(["-c", full, "-r", pcap, "--redis", "none", "-q"], check=False)
    c.eq("example with all %d commented settings uncommented: accepted (%s)"
         % (n, p.stderr.strip()), p.returncode, 0)
    c.true("example uncommented: the records file written",
           os.path.exists(files["records"]) and os.path.getsize(files["records"]) > 0)


# --- the rest ------------------------------------------------------------------------------


def test_exporter_static(c):
    with open(fx.EXPORTER_LUA) as f:
        lua = f.read()
    c.eq("exporter.lua: read-only (shebang flag)", lua.splitlines()[0], "#!lua flags=no-writes")
    c.true("exporter.lua: the prefix line", re.search(r"(?m)^local P = 'rw:'$", lua))
    code = re.sub(r"--.*", "", lua)
    globals_ = re.findall(r"(?m)^([A-Za-z_]\w*)\s*=[^=]", code)
    c.eq("exporter.lua: no global assignment", globals_, [])


def test_readme(c, tmp):
    with open(README) as f:
        text = f.read()
    paths = set(re.findall(r"(?<![\w/.])((?:deploy|counters|tests|sensor)/[\w./-]*\w)", text))
    c.true("README-deploy names files (%d)" % len(paths), len(paths) >= 10)
    for p in sorted(paths):
        if "secrets" in p.split("/"):          # written by set-passwords.sh
            continue
        c.true("README-deploy: %s exists" % p, os.path.exists(os.path.join(rwtest.SOURCE, p)))
    for word in ("span", "BPF", "local_domains", "trusted_networks", "users.acl",
                 "set-passwords.sh", "docker compose", "Grafana", "relaywatch-alerts",
                 "systemctl", "pseudonymize"):
        c.true("README-deploy mentions %s" % word, word in text)

    # The exporter without Docker: redis_exporter 1.45 looks its password up
    # by its own --redis.addr, string for string (default
    # redis://localhost:6379), in the file set-passwords.sh keys with
    # --exporter-addr: the two must be the same or redis_up stays 0.
    addr = re.findall(r"`--exporter-addr (\S+)`", text)
    args = re.findall(r'ARGS="([^"]*)"', text)
    if c.eq("README: one --exporter-addr and one exporter ARGS", (len(addr), len(args)), (1, 1)):
        a = flags(args[0].split())
        c.eq("README: the exporter's --redis.addr is the --exporter-addr",
             a.get("--redis.addr"), addr[0])
        c.eq("README: the exporter logs in as exporter", a.get("--redis.user"), "exporter")
        d = os.path.join(tmp, "readme-secrets")
        p = subprocess.run([SET_PASSWORDS, "--exporter-addr", addr[0], d], capture_output=True,
                           text=True)
        with open(os.path.join(d, "exporter-pwd.json")) as f:
            c.eq("README: set-passwords.sh keys the exporter's password by that address",
                 (p.returncode, list(json.load(f))), (0, [a.get("--redis.addr")]))


def test_references(c):
    """Every repository path named in the deployment files exists, and the
    README sections they point to are there."""
    named = []
    for root, _dirs, files in os.walk(DEPLOY):
        for name in files:
            path = os.path.join(root, name)
            try:
                with open(path) as f:
                    text = f.read()
            except UnicodeDecodeError:
                continue
            for p in re.findall(r"(?<![\w/.])((?:deploy|counters|tests|sensor)/[\w./-]*\w)", text):
                if "secrets" not in p.split("/"):
                    named.append((os.path.relpath(path, rwtest.SOURCE), p))
    c.true("deploy/ names repository files (%d)" % len(named), len(named) >= 10)
    for where, p in named:
        c.true("%s names %s: it exists" % (where, p), os.path.exists(os.path.join(rwtest.SOURCE, p)))
    with open(README) as f:
        headings = re.findall(r"(?m)^#+ (.*)$", f.read())
    with open(os.path.join(DEPLOY, "compose", "docker-compose.yml")) as f:
        for sect in re.findall(r'README\.md, "([^"]+)"', f.read()):
            c.true("docker-compose.yml: README section %r exists" % sect, sect in headings)


def test_alert_fields_documented(c):
    """SCHEMA.md's table of the alert stream lists every field alert.lua adds."""
    with open(os.path.join(rwtest.SOURCE, "counters", "SCHEMA.md")) as f:
        schema = f.read()
    part = schema.split("## The alert stream", 1)[1].split("\n## ", 1)[0]
    fields = set(re.findall(r"(?m)^\| `(\w+)` \|", part))
    with open(os.path.join(rwtest.SOURCE, "counters", "lua", "alert.lua")) as f:
        # f[#f + 1] = 'NAME'; f[#f + 1] = VALUE: a field name and its value
        added = re.findall(r"f\[#f \+ 1\] = '(\w+)'; f\[#f \+ 1\] = ", f.read())
    c.true("alert.lua adds fields of its own (%r)" % added, added)
    for name in added:
        c.true("SCHEMA.md's alert stream table lists %s (added by alert.lua)" % name,
               name in fields)


def test_install_deps(c):
    with open(os.path.join(DEPLOY, "install-deps.sh")) as f:
        text = f.read()
    for pkg in ("python3-yaml", "prometheus", "prometheus-redis-exporter", "redis-server",
                "tcpreplay", "logrotate"):
        c.true("install-deps.sh installs %s" % pkg, re.search(r"(?<![\w-])%s(?![\w-])" % pkg, text))


def main():
    c = rwtest.Checker()
    with tempfile.TemporaryDirectory(prefix="rw-files-") as tmp:
        secrets_dir = test_compose(c, tmp)
        test_set_passwords(c, tmp, secrets_dir)
        test_prometheus(c, tmp)
        test_alert_rules_fire(c, tmp)
        test_grafana(c)
        test_systemd(c, tmp)
        test_conf_example(c, tmp)
        test_exporter_static(c)
        test_readme(c, tmp)
        test_references(c)
        test_alert_fields_documented(c)
        test_install_deps(c)
    c.done()


if __name__ == "__main__":
    main()
