#!/usr/bin/env bash
# Build relaywatch and run every test; the last line is "N passed, N failed".
#
#   tests/run.sh            install what is missing, build, run all suites twice:
#                           a normal build, then ASan+UBSan
#   tests/run.sh --quick    the normal build only
#
# Tests start their own servers (redis-server, SMTP servers, prometheus) on
# spare ports in temporary directories; nothing here needs a running service.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1

deploy/install-deps.sh --check >/dev/null || deploy/install-deps.sh || exit 1

setup() { # dir, extra meson args...
  local dir=$1; shift
  if [[ -d "$dir" ]]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null || return 1
  else
    meson setup "$dir" "$@" >/dev/null || return 1
  fi
  ninja -C "$dir" || return 1
}

suites=()
status=0
echo "== build (gcc, werror)"
setup build || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
meson test -C build --print-errorlogs --num-processes 2 --timeout-multiplier 2 || status=1
suites+=(build)

if ((!QUICK)); then
  echo "== build with AddressSanitizer + UndefinedBehaviorSanitizer (clang)"
  if CC=clang setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true; then
    # Every test again, the integration tests driving the sanitized binary.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 4 || status=1
    suites+=(build-asan)
  else
    echo "sanitizer build failed"
    status=1
  fi
fi

# The summary, from meson's own test logs.
/usr/bin/python3 - "${suites[@]/#/$ROOT/}" <<'PY'
import json, sys
passed = failed = skipped = 0
for d in sys.argv[1:]:
    with open(d + "/meson-logs/testlog.json") as f:
        for line in f:
            r = json.loads(line)
            res = r["result"]
            if res in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif res == "SKIP":
                skipped += 1
            else:
                failed += 1
                print("failed: %s (%s) in %s" % (r["name"], res, d))
if skipped:
    print("%d skipped" % skipped)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
