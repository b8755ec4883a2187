#!/usr/bin/env bash
# Installs what Switchyard needs on Debian 12: the server binaries the tests and the demo start,
# and the npm packages from the committed lock file. As root it installs; otherwise it says what
# to install and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  mariadb-server mariadb-client mariadb-backup   # servers for the sandbox and the tests
  prometheus prometheus-alertmanager             # alert rules, end-to-end alert path
  iproute2 iputils-arping iputils-ping iptables  # namespace hosts, VIPs, fencing tests
  btrfs-progs                                    # snapshot tests on a loop device
  percona-toolkit                                # checksum benchmark baseline
  openssl                                        # the test CA of the TLS tests
)

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d keeps the packaged services from starting: tests start their own servers.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
fi

if ! command -v node >/dev/null || [[ $(node -p 'process.versions.node.split(".")[0]') -lt 20 ]]; then
  echo "Node.js 20 or newer is required (apt-get install nodejs npm on Debian 13, or nodesource for 12)" >&2
  exit 2
fi

# npm ci only when the lock file changed since the last install, to keep repeated runs fast.
if [[ ! -f node_modules/.package-lock.json ]] || ! cmp -s package-lock.json .install-stamp 2>/dev/null; then
  npm ci --no-audit --no-fund
  cp package-lock.json .install-stamp
fi
npm run --silent build
