#!/usr/bin/env bash
# The README's test command: installs what it needs, type-checks, then runs every test tier
# against real servers. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "== type check"
npx tsc --noEmit -p tsconfig.json
echo "== format and lint"
npm run -s format:check
npx eslint .
echo "== tests (unit + integration)"
bash scripts/run-tests.sh all
