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
# Integration tests start real servers: one file at a time on a 2-core machine keeps timings sane.
# --test-force-exit: a test file whose tests all finished must not keep CI waiting on a socket to a
# namespace host that its teardown already removed (seen once: a MySQL connection in FIN-WAIT-1).
exec node --import tsx --test --test-reporter=spec --test-concurrency=1 --test-timeout=600000 --test-force-exit "${files[@]}"
