#!/usr/bin/env bash
# Builds the Debian package of Switchyard from the npm tarball, with dpkg-deb only (no debhelper).
#
#   scripts/build-deb.sh [--tarball switchyard-X.Y.Z.tgz] [--out DIR]
#
# Without --tarball it runs `npm pack` here first (which builds dist/ through `prepare`). The
# production dependencies are installed from the committed lock file (`npm ci --omit=dev`) into
# the package's own tree: nothing of the TypeScript toolchain lands on a database host.
#
# What the package holds and does (docs/deploy.md, "Installing the Debian package"):
#   /usr/lib/switchyard            the npm package and its production node_modules
#   /usr/bin/switchyard            a wrapper that runs it with the system's node
#   /lib/systemd/system/*.service  the units of deploy/, pointed at /usr/lib/switchyard
#   /etc/switchyard/*.yml          the example configs, as conffiles (kept on upgrade, removed on purge)
#   /usr/share/doc/switchyard/     the README, and examples/switchyard-fleet.conf (a systemd drop-in
#                                  for a process that runs a fleet; not installed as one)
#   postinst                       creates the `switchyard` system user; /etc/switchyard 0750, group switchyard
#   no service is enabled or started: the operator configures first, then `systemctl enable --now`
set -euo pipefail
umask 022

root="$(cd "$(dirname "$0")/.." && pwd)"
tarball=""
out="$root"
while (($# > 0)); do
  case "$1" in
    --tarball) tarball="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "build-deb.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in dpkg-deb tar npm; do
  command -v "$tool" >/dev/null || { echo "build-deb.sh: $tool is needed" >&2; exit 1; }
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"

work="$(mktemp -d "${TMPDIR:-/tmp}/switchyard-deb.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [[ -z "$tarball" ]]; then
  (cd "$root" && npm pack --silent --pack-destination "$work" >/dev/null)
  tarball="$(ls "$work"/switchyard-*.tgz)"
fi
[[ -f "$tarball" ]] || { echo "build-deb.sh: no tarball at $tarball" >&2; exit 1; }

stage="$work/stage"
lib="$stage/usr/lib/switchyard"
mkdir -p "$lib"
tar -xzf "$tarball" -C "$lib" --strip-components=1 --no-same-owner
version="$(node -p "JSON.parse(require('fs').readFileSync('$lib/package.json', 'utf8')).version")"

# Production dependencies exactly as locked. --ignore-scripts: the package's own `prepare` builds
# dist/ with the dev toolchain, which is not installed here (and dist/ is already built).
cp "$root/package-lock.json" "$lib/package-lock.json"
(cd "$lib" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)
rm -f "$lib/package-lock.json"
if find "$lib/node_modules" -name '*.node' | grep -q .; then
  echo "build-deb.sh: a production dependency has a native module; the package would not be Architecture: all" >&2
  exit 1
fi

install -d "$stage/usr/bin"
cat >"$stage/usr/bin/switchyard" <<'EOF'
#!/bin/sh
# Switchyard's command: the npm package under /usr/lib/switchyard, run by the system's Node.js (>= 20).
exec node /usr/lib/switchyard/bin/switchyard.js "$@"
EOF
chmod 0755 "$stage/usr/bin/switchyard"

install -d "$stage/lib/systemd/system"
for unit in switchyard.service switchyard-agent.service; do
  sed -e 's|/opt/switchyard/|/usr/lib/switchyard/|g' "$lib/deploy/$unit" >"$stage/lib/systemd/system/$unit"
  chmod 0644 "$stage/lib/systemd/system/$unit"
done

install -d "$stage/etc/switchyard"
install -m 0644 "$lib/deploy/switchyard.yml" "$stage/etc/switchyard/switchyard.yml"
install -m 0644 "$lib/deploy/agent.yml" "$stage/etc/switchyard/agent.yml"

install -d "$stage/usr/share/doc/switchyard/examples"
cp "$lib/README.md" "$stage/usr/share/doc/switchyard/README.md"
# The fleet drop-in is an example, not installed under /lib/systemd: a one-cluster manager keeps
# the unit's own node flags (docs/fleet.md says when and how to install it).
sed -e 's|/opt/switchyard/|/usr/lib/switchyard/|g' "$lib/deploy/switchyard-fleet.conf" \
  >"$stage/usr/share/doc/switchyard/examples/switchyard-fleet.conf"
chmod 0644 "$stage/usr/share/doc/switchyard/examples/switchyard-fleet.conf"

install -d "$stage/DEBIAN"
cat >"$stage/DEBIAN/conffiles" <<'EOF'
/etc/switchyard/switchyard.yml
/etc/switchyard/agent.yml
EOF
cat >"$stage/DEBIAN/control" <<EOF
Package: switchyard
Version: $version
Architecture: all
Maintainer: Switchyard maintainers <switchyard@localhost>
Depends: nodejs (>= 20), adduser
Recommends: iproute2, iputils-arping
Section: admin
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Description: failover manager for MariaDB/MySQL master-master clusters
 Switchyard watches a master-master cluster, moves the writer role and its
 virtual IPs when the writer fails, and never lets two hosts take writes.
 This package holds the manager (switchyard run), the per-host agent
 (switchyard agent) and the CLI. No service is enabled or started on install.
EOF

cat >"$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd switchyard >/dev/null; then
    adduser --system --group --home /var/lib/switchyard --no-create-home \
      --gecos "Switchyard failover manager" --quiet switchyard
  fi
  # Secrets (passwords, tokens, keys) live here: readable by the service, by no one else.
  chown root:switchyard /etc/switchyard
  chmod 0750 /etc/switchyard
  for file in /etc/switchyard/switchyard.yml /etc/switchyard/agent.yml; do
    if [ -f "$file" ]; then chgrp switchyard "$file"; chmod 0640 "$file"; fi
  done
  install -d -o switchyard -g switchyard -m 0750 /var/lib/switchyard
  # New or changed units are read; none is enabled or started (configure first).
  if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
fi
exit 0
EOF

cat >"$stage/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
  # dpkg has removed the conffiles; the secrets the operator added and the state go too. The
  # system user stays (Debian policy: its uid may still own files elsewhere, e.g. backups).
  rm -rf /etc/switchyard /var/lib/switchyard
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
exit 0
EOF
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"

deb="$out/switchyard_${version}_all.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
