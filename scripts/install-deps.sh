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
  btrfs-progs e2fsprogs                          # snapshot tests and a small ext4 on loop devices
  percona-toolkit                                # checksum benchmark baseline
  etcd-server etcd-client                        # several managers (ha): leadership and state tests
  openssl                                        # the test CA of the TLS tests
  haproxy                                        # routing through HAProxy's runtime API, demo --haproxy
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
    # Debian starts a package's service as soon as it is installed (mariadb on port 3306,
    # prometheus on 9090...); Switchyard's tests and demo start their own servers on other ports
    # and need none of those. A policy-rc.d that answers 101 ("action forbidden") stops that, but
    # only for this install: we write it only when there is none (a Docker image usually has its
    # own, which we leave alone) and remove it when the script ends, on failure or Ctrl-C too, so
    # packages installed later start their services as usual. SWITCHYARD_POLICY_RC_D lets the
    # test of this script use a scratch path instead of /usr/sbin.
    policy_rc_d="${SWITCHYARD_POLICY_RC_D:-/usr/sbin/policy-rc.d}"
    if [[ ! -e "$policy_rc_d" ]]; then
      created_policy=1
      trap 'rm -f "$policy_rc_d"' EXIT
      trap 'exit 130' INT TERM HUP
      printf '#!/bin/sh\n# temporary, from switchyard scripts/install-deps.sh: no service starts during its apt-get install\nexit 101\n' >"$policy_rc_d"
      chmod +x "$policy_rc_d"
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    trap - EXIT INT TERM HUP
    if [[ -n "${created_policy:-}" ]]; then rm -f "$policy_rc_d"; fi
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
