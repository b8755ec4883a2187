#!/usr/bin/env bash
# The README's first command: installs what it needs, then starts the demo (a sandbox cluster
# on loopback ports plus the Switchyard daemon).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec node bin/switchyard.js demo "$@"
