#!/usr/bin/env bash
# Removes everything a crashed e2e run may have left: processes inside dfe2e-* network
# namespaces, the namespaces, their /etc/netns dirs, dfe* veth/bridge links, overlay mounts and
# work dirs under .e2e-work. Only touches names with the lab prefix. Safe to run any time no e2e
# run is in progress; with a run id argument, only that run's leftovers are removed.
set -uo pipefail

prefix="dfe2e-${1:-}"
ifprefix="dfe${1:-}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
workroot="${DF_E2E_WORKDIR:-$repo/.e2e-work}"

for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${prefix}" || true); do
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    kill -9 "$pid" 2>/dev/null || true
  done
  ip netns del "$ns" 2>/dev/null || true
done
for dir in /etc/netns/${prefix}*; do
  [ -e "$dir" ] && rm -rf "$dir"
done
# iptables traffic-counting chains (named dfe<runid>-<label>).
if command -v iptables >/dev/null 2>&1; then
  for chain in $(iptables -S 2>/dev/null | awk '$1=="-N"{print $2}' | grep "^${ifprefix}" || true); do
    iptables -D FORWARD -j "$chain" 2>/dev/null || true
    iptables -F "$chain" 2>/dev/null || true
    iptables -X "$chain" 2>/dev/null || true
  done
fi
# The walkthrough's per-run MariaDB database/user and Redis keys.
runpat="${1:-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]}"
if command -v mysql >/dev/null 2>&1; then
  for db in $(mysql -uroot -h 127.0.0.1 -N -e "SHOW DATABASES" 2>/dev/null | grep -E "^e2e_${1:-[0-9a-f]{6}}_manager$" || true); do
    mysql -uroot -h 127.0.0.1 -e "DROP DATABASE \`$db\`" 2>/dev/null || true
  done
  for user in $(mysql -uroot -h 127.0.0.1 -N -e "SELECT DISTINCT user FROM mysql.user" 2>/dev/null | grep -E "^e2e_${1:-[0-9a-f]{6}}$" || true); do
    mysql -uroot -h 127.0.0.1 -e "DROP USER IF EXISTS '$user'@'%'; DROP USER IF EXISTS '$user'@'localhost'" 2>/dev/null || true
  done
fi
if command -v redis-cli >/dev/null 2>&1; then
  redis-cli --scan --pattern "e2e-${runpat}:*" 2>/dev/null | xargs -r redis-cli del >/dev/null 2>&1 || true
fi
# FORWARD accept rules for lab bridges.
if command -v iptables >/dev/null 2>&1; then
  iptables -S FORWARD 2>/dev/null | grep -E -- "-i ${ifprefix}[0-9a-f]*br " | sed 's/^-A /-D /' | while read -r rule; do
    # shellcheck disable=SC2086
    iptables $rule 2>/dev/null || true
  done
fi
# veths first (their peers went with the namespaces), then bridges.
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^${ifprefix}" || true); do
  ip link del "$link" 2>/dev/null || true
done
if [ -d "$workroot" ]; then
  target="$workroot"
  [ -n "${1:-}" ] && target="$workroot/$1"
  awk '{print $2}' /proc/self/mounts | grep "^${target}" | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  if [ -n "${1:-}" ]; then
    rm -rf "$target"
  else
    # Run dirs only; figures.json (the last walkthrough's numbers) stays for the bench runner.
    find "$workroot" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
  fi
fi
exit 0
