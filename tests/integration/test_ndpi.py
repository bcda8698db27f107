#!/usr/bin/env python3
"""Classification: every flow of the nDPI captures in the shared corpus (and
of Zeek's smtp.pcap, which also holds TLS and other flows) gets the protocol
name that Debian's ndpiReader (the same nDPI 4.2 library) gives it.

The corpus' own *.ndpiReader.out files come from a newer nDPI, which names a
STARTTLS session "SMTPS"; nDPI 4.2 says "SMTP". We compare with the library
we link, run here, and report STARTTLS through our own `tls` flag instead,
which this test also checks. Skips (77) when the corpus or ndpiReader is
missing."""
import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwtest  # noqa: E402

EP = r"(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d+)"  # 192.0.2.1:25 or [2001:db8::1]:25
FLOW = re.compile(r"^\s*\d+\s+TCP\s+" + EP + r"\s+<?->\s+" + EP +
                  r".*?\[proto: [0-9.]+/([^\]]+)\]")


def ndpi_reader(pcap):
    out = subprocess.run(["ndpiReader", "-i", pcap, "-v", "2"], capture_output=True,
                         text=True, errors="replace").stdout
    flows = {}
    for line in out.splitlines():
        m = FLOW.match(line)
        if m:
            a6, a4, pa, b6, b4, pb, proto = m.groups()
            a, b = a6 or a4, b6 or b4
            flows[frozenset([(a, int(pa)), (b, int(pb))])] = proto
    return flows


def main():
    corpus = rwtest.corpus_dir()
    if not corpus or not shutil.which("ndpiReader"):
        print("corpus or ndpiReader missing: skipped")
        sys.exit(rwtest.SKIP)
    c = rwtest.Checker()
    pcaps = sorted(glob.glob(os.path.join(corpus, "ndpi", "*.pcap*")))
    pcaps = [p for p in pcaps if not p.endswith(".out")]
    pcaps.append(os.path.join(corpus, "zeek", "smtp.pcap"))
    pcaps.append(os.path.join(corpus, "zeek", "smtp-starttls.pcap"))
    compared = 0
    for pcap in pcaps:
        name = os.path.basename(pcap)
        want = ndpi_reader(pcap)
        c.true("%s: ndpiReader named some flows" % name, len(want) > 0)
        ours = {frozenset([(f["orig_h"], f["orig_p"]), (f["resp_h"], f["resp_p"])]): f
                for f in rwtest.flows(pcap, "-f", "tcp")}
        for k, proto in want.items():
            f = ours.get(k)
            if not c.true("%s: flow %s in our --flows" % (name, sorted(k)), f is not None):
                continue
            c.eq("%s %s proto" % (name, sorted(k)), f["proto"], proto)
            compared += 1
    # STARTTLS: nDPI 4.2 says SMTP; we say tls: true because the 220 was seen.
    starttls = rwtest.flows(os.path.join(corpus, "ndpi", "smtp-starttls.pcap"), "-f", "tcp")
    c.true("smtp-starttls: both sessions marked tls", len(starttls) == 2 and
           all(f["tls"] for f in starttls))
    smtps = rwtest.flows(os.path.join(corpus, "ndpi", "smtps.pcapng"), "-f", "tcp")
    c.true("smtps: encrypted, not parsed", len(smtps) == 1 and smtps[0]["tls"] and
           smtps[0]["verdict"] == "tls" and not smtps[0]["smtp_parsed"])
    print("%d flows compared with ndpiReader" % compared)
    c.done()


if __name__ == "__main__":
    main()
