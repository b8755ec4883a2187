#!/usr/bin/env bash
# Runs one tier (unit | integration) or all tests in a single node:test run, so one summary
# covers everything.
set -euo pipefail
cd "$(dirname "$0")/.."
tier="${1:-all}"
case "$tier" in
  unit) dirs=(test/unit) ;;
  integration) dirs=(test/integration) ;;
  all) dirs=(test/unit test/integration) ;;
  *) echo "usage: $0 [unit|integration|all]" >&2; exit 2 ;;
esac
mapfile -t files < <(find "${dirs[@]}" -name '*.test.ts' | sort)
if ((${#files[@]} == 0)); then echo "no test files in ${dirs[*]}" >&2; exit 1; fi
output="$(mktemp)"
trap 'rm -f "$output"' EXIT
# Integration tests start real servers: one file at a time on a 2-core machine keeps timings sane.
# --test-force-exit: a test file whose tests all finished must not keep CI waiting on a socket to a
# namespace host that its teardown already removed (seen once: a MySQL connection in FIN-WAIT-1).
status=0
node --import tsx --test --test-reporter=spec --test-concurrency=1 --test-timeout=600000 --test-force-exit "${files[@]}" 2>&1 | tee "$output" || status=$?
# Outside CI a test whose binary or root is missing skips (test/support/binaries.ts, with this
# prefix in its message); a skipped test proved nothing, so the count ends the run in plain sight.
skipped="$(grep -c 'SKIPPED-PREREQUISITE:' "$output" || true)"
if ((skipped > 0)); then
  echo
  echo "!! ${skipped} test(s) SKIPPED for a missing binary or root: they proved nothing (see the lines with SKIPPED-PREREQUISITE above; with CI=true they fail instead)"
fi
exit "$status"
