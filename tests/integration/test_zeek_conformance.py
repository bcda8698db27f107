#!/usr/bin/env python3
"""Zeek conformance: every row of Zeek's smtp.log baselines in the shared
corpus is reproduced by `relaywatch -r TRACE --records -`.

Rows are matched per connection in order (several rows may share a 5-tuple
and trans_depth). Compared: 5-tuple, trans_depth, helo, mailfrom, rcptto (set),
from, to (set), subject (Zeek logs it raw: our subject_raw), last_reply, tls.
Sets are compared unordered: Zeek prints them in hash order.

Where we deliberately differ from a Zeek row, OURS pins our answer and says
why; the test checks our value, so a change in either direction is caught.
Skips (exit 77) when the corpus is absent.
"""
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtest  # noqa: E402

# Traces outside the default mail-port filter need a wider one.
FILTERS = {
    # SMTP through an open HTTP CONNECT proxy on port 8240
    "connect-with-smtp": ["-f", "tcp"],
}

# (trace, row index, field) -> (our value, why)
OURS = {
    ("smtp-bdat-gap", 0, "from"): (
        "sender@example.com",
        "after the gap the client sent a whole new message with DATA, which the server "
        "queued ('250 OK: message queued'); Zeek keeps only the first message begun in "
        "a record (the gapped BDAT one, no headers). We report the delivered message."),
    ("smtp-bdat-gap", 0, "to"): ({"recipient@example.com"}, "same as from"),
    ("smtp-bdat-gap", 0, "subject"): ("Test", "same as from"),
}


def unescape(v):
    out, i = [], 0
    while i < len(v):
        if v[i] == "\\" and v[i + 1:i + 2] == "x":
            out.append(chr(int(v[i + 2:i + 4], 16)))
            i += 4
        elif v[i] == "\\" and v[i + 1:i + 2] == "\\":
            out.append("\\")
            i += 2
        else:
            out.append(v[i])
            i += 1
    return "".join(out)


def zeek_value(v, is_set):
    if v == "-":
        return None
    if v == "(empty)":
        return set() if is_set else ""
    if is_set:
        return {unescape(x) for x in v.split(",")}
    return unescape(v)


SETS = {"rcptto", "to"}


def read_baseline(path):
    fields, rows = None, []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#fields"):
                fields = line.split("\t")[1:]
            elif line and not line.startswith("#"):
                vals = line.split("\t")
                rows.append({k: zeek_value(v, k in SETS) for k, v in zip(fields, vals)})
    return rows


def ours(rec, field):
    if field == "subject":
        return rec.get("subject_raw")
    v = rec.get(field)
    if field in SETS:
        return None if v is None else set(v)
    return v


def main():
    corpus = rwtest.corpus_dir()
    if not corpus:
        print("corpus not found (set RW_CORPUS): skipped")
        sys.exit(rwtest.SKIP)
    c = rwtest.Checker()
    logs = sorted(glob.glob(os.path.join(corpus, "zeek", "*.smtp.log")))
    c.true("baselines found", len(logs) >= 15)
    total_rows = 0
    for log in logs:
        name = os.path.basename(log)[:-len(".smtp.log")]
        pcap = [p for p in glob.glob(os.path.join(corpus, "zeek", name + ".pcap*"))][0]
        want = read_baseline(log)
        got = rwtest.records(pcap, *FILTERS.get(name, []))
        total_rows += len(want)
        c.eq("%s: number of records" % name, len(got), len(want))
        # pair rows per connection, in order
        def key(r, z):
            if z:
                return (r["id.orig_h"], int(r["id.orig_p"]), r["id.resp_h"], int(r["id.resp_p"]))
            return (r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"])
        by_conn = {}
        for r in got:
            by_conn.setdefault(key(r, False), []).append(r)
        seen = {}
        for i, z in enumerate(want):
            k = key(z, True)
            j = seen.get(k, 0)
            seen[k] = j + 1
            mine = by_conn.get(k, [])
            if not c.true("%s row %d: a record for %s #%d" % (name, i, k, j), j < len(mine)):
                continue
            r = mine[j]
            c.eq("%s row %d trans_depth" % (name, i), r["trans_depth"], int(z["trans_depth"]))
            for f in ("helo", "mailfrom", "rcptto", "from", "to", "subject", "last_reply"):
                wantv = z[f]
                if (name, i, f) in OURS:
                    wantv = OURS[(name, i, f)][0]
                c.eq("%s row %d %s" % (name, i, f), ours(r, f), wantv)
            c.eq("%s row %d tls" % (name, i), r["tls"], z["tls"] == "T")
    print("%d Zeek rows compared over %d traces" % (total_rows, len(logs)))
    robustness(c, corpus)
    c.done()


# Bounds from sensor/smtp.h and sensor/message.h
RCPT_KEEP_MAX, FIELD_MAX = 100, 1024
RSS_BOUND_KB = 64 * 1024  # nDPI alone is ~10 MB; these traces are one session each


def robustness(c, corpus):
    """The traces without a baseline: huge headers, hundreds of addresses,
    odd address forms. Each runs within the bounds, keeps what matters, and
    says what it cut."""
    z = lambda n: os.path.join(corpus, "zeek", n + ".pcap")  # noqa: E731
    rc, out, err, rss = rwtest.run_rss(["-r", z("mime-header-size-limit"), "--redis", "none",
                                        "--records", "-"])
    recs = [json.loads(l) for l in out.splitlines()]
    c.eq("header-size: one record", (rc, len(recs)), (0, 1))
    r = recs[0]
    c.true("header-size: subject kept up to its bound",
           r["subject_raw"].startswith("CVE-CANDIDATE x x") and
           len(r["subject_raw"].encode()) == FIELD_MAX)
    c.eq("header-size: the rest of the row", (r["mailfrom"], r["from"], r["last_reply"]),
         ("exploit@attacker.evil", "exploit@attacker.evil", "250 OK: message accepted"))
    c.true("header-size: the oversized block is reported",
           "1 header blocks over their bound" in err)
    c.true("header-size: peak RSS %d KiB within %d" % (rss, RSS_BOUND_KB),
           rss < RSS_BOUND_KB or rwtest.sanitized())

    rc, out, err, rss = rwtest.run_rss(["-r", z("smtp-many-addresses"), "--redis", "none",
                                        "--records", "-"])
    r = json.loads(out)
    c.eq("many-addresses: 600 recipients counted, 100 kept",
         (r["rcpt_total"], len(r["rcptto"])), (600, RCPT_KEEP_MAX))
    c.true("many-addresses: the cut is reported", "500 recipients not kept" in err)
    # From and Subject come after 1800 other headers: read all the same
    c.eq("many-addresses: From and Subject found past 1800 headers",
         (r["from"], r["subject_raw"]), ("itzltrab@kmzcztrw.kkk.com", "Test message"))
    c.true("many-addresses: peak RSS %d KiB within %d" % (rss, RSS_BOUND_KB),
           rss < RSS_BOUND_KB or rwtest.sanitized())

    recs = rwtest.records(z("smtp-multi-addr"))
    c.eq("multi-addr: the five forms of To, as Zeek splits them", recs[0]["to"], [
        '"Jan Grashoefer" <jan.grashoefer@gmail.com>', '"Test Group":addr-spec@example.com',
        "<angle-addr@example.com>", '"Test Member" <name-addr@example.com>;',
        "jan.grashofer@cern.ch"])


if __name__ == "__main__":
    main()
