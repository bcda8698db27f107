"""Shared helpers for relaywatch's integration tests (run by meson).

Each test is a script run with /usr/bin/python3 (Debian's, which has
aiosmtpd and scapy); meson passes paths through the environment:
  RELAYWATCH        the built sensor binary
  RW_SOURCE_ROOT    the repository
  RW_BUILD_ROOT     the build directory
  RW_CORPUS         optional: the conformance corpus (default ../shared/corpus)
Exit status 77 tells meson the test was skipped.
"""
import json
import os
import subprocess
import sys

SKIP = 77

SOURCE = os.environ.get("RW_SOURCE_ROOT", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("RW_BUILD_ROOT", os.path.join(SOURCE, "build"))
RELAYWATCH = os.environ.get("RELAYWATCH", os.path.join(BUILD, "sensor", "relaywatch"))


def corpus_dir():
    d = os.environ.get("RW_CORPUS") or os.path.join(SOURCE, "..", "shared", "corpus")
    return os.path.abspath(d) if os.path.isdir(d) else None


def run(args, check=True, input=None, env=None, timeout=600):
    """Run relaywatch with args; returns CompletedProcess (text)."""
    p = subprocess.run([RELAYWATCH] + list(args), capture_output=True, text=True,
                       input=input, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("relaywatch %s exited %d:\n%s" % (" ".join(args), p.returncode,
                                                              p.stderr))
    return p


def records(pcap, *extra):
    """Transaction records of a capture, as dicts, in output order."""
    p = run(["-r", pcap, "--redis", "none", "-q", "--records", "-"] + list(extra))
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def flows(pcap, *extra):
    p = run(["-r", pcap, "--redis", "none", "-q", "--flows", "-"] + list(extra))
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


class Checker:
    """Collects failures; every check names what it compared."""

    def __init__(self):
        self.failures = 0
        self.checks = 0

    def eq(self, what, got, want):
        self.checks += 1
        if got != want:
            self.failures += 1
            print("FAIL %s: got %r, want %r" % (what, got, want))
            return False
        return True

    def true(self, what, cond):
        self.checks += 1
        if not cond:
            self.failures += 1
            print("FAIL %s" % what)
        return bool(cond)

    def done(self):
        print("%d checks, %d failed" % (self.checks, self.failures))
        sys.exit(1 if self.failures else 0)
