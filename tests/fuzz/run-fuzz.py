#!/usr/bin/env python3
"""Run one fuzz target the way CI does (meson test --suite fuzz):

  1. replay every input of seeds/NAME and regressions/NAME once, exactly as
     stored (files given one by one: libFuzzer runs each and exits; a crash
     fails the test and names the input);
  2. fuzz for --seconds from those corpora (new inputs go to a scratch
     corpus under --work, never into the source tree; a crash writes its
     reproducer to --work/fuzz-NAME-artifacts/ and fails the test).

    run-fuzz.py BUILD/tests/fuzz/fuzz-smtp --name smtp --source tests/fuzz \\
        --work BUILD/tests/fuzz --dict tests/fuzz/smtp-mime.dict --seconds 20 \\
        [-entropic=0 ...]       # anything else goes to libFuzzer
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile


def inputs(dirs):
    out = []
    for d in dirs:
        if os.path.isdir(d):
            out += sorted(os.path.join(d, f) for f in os.listdir(d)
                          if os.path.isfile(os.path.join(d, f)) and not f.startswith("."))
    return out


def replay(exe, files, env):
    """Run every input once, in batches (one process per batch); when a
    batch fails, name the input (libFuzzer prints "Running: FILE" before
    each) and go on after it, so every failing input is reported.
    Returns [(path, the end of its report)]."""
    failed, rest = [], list(files)
    while rest:
        batch = rest[:200]
        r = subprocess.run([exe, "-timeout=25", "-rss_limit_mb=2560"] + batch, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors="replace")
        if r.returncode == 0:
            rest = rest[len(batch):]
            continue
        ran = [l[len("Running: "):].strip() for l in r.stdout.splitlines()
               if l.startswith("Running: ")]
        culprit = ran[-1] if ran and ran[-1] in batch else batch[0]
        report = r.stdout[r.stdout.rfind("Running: " + culprit):]
        failed.append((culprit, "\n".join(report.splitlines()[:60])))
        rest = rest[rest.index(culprit) + 1:]
    return failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("exe")
    ap.add_argument("--name", required=True)
    ap.add_argument("--source", required=True, help="tests/fuzz in the source tree")
    ap.add_argument("--work", required=True, help="scratch directory (the build dir)")
    ap.add_argument("--dict")
    ap.add_argument("--max-len", type=int, default=0)
    ap.add_argument("--seconds", type=int, default=20)
    args, extra = ap.parse_known_args()  # the rest: libFuzzer flags (-entropic=0)

    env = dict(os.environ)
    # Sanitizer reports are crashes (UBSan would otherwise print and go on);
    # meson test sets these already, a run by hand may not.
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")

    dirs = [os.path.join(args.source, "seeds", args.name),
            os.path.join(args.source, "regressions", args.name)]
    files = inputs(dirs)
    print("fuzz-%s: replaying %d inputs" % (args.name, len(files)), flush=True)
    failed = replay(args.exe, files, env)
    if failed:
        for path, report in failed:
            print("=" * 70)
            print("fuzz-%s: FAILED on %s\n%s" % (args.name, path, report))
        print("fuzz-%s: %d input(s) fail:\n  %s" % (args.name, len(failed),
                                                  "\n  ".join(p for p, _ in failed)))
        return 1
    if args.seconds <= 0:
        return 0

    art = os.path.join(args.work, "fuzz-%s-artifacts" % args.name)
    os.makedirs(art, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="fuzz-%s-corpus-" % args.name, dir=args.work)
    try:
        cmd = [args.exe, "-max_total_time=%d" % args.seconds, "-timeout=25",
               "-rss_limit_mb=2560", "-print_final_stats=1", "-artifact_prefix=" + art + "/"]
        if args.max_len:
            cmd.append("-max_len=%d" % args.max_len)
        if args.dict:
            cmd.append("-dict=" + args.dict)
        cmd += extra + [scratch] + [d for d in dirs if os.path.isdir(d)]
        print("fuzz-%s: %s" % (args.name, " ".join(cmd)), flush=True)
        r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, errors="replace")
        lines = r.stdout.splitlines()
        if r.returncode != 0:
            print("\n".join(lines[-200:]))
            print("fuzz-%s: FAILED (exit %d); reproducer in %s" % (args.name, r.returncode, art))
            return 1
        # The last status line and the final stats are the interesting part.
        print("\n".join(l for l in lines if l.startswith(("#", "stat::", "Done")))[-3000:])
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
