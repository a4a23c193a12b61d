#!/usr/bin/env bash
# Installs what the e2e suite needs (containerd, the distribution registry, skopeo, iproute2, iptables)
# the console's browser tests need (chromium, driven headless by puppeteer-core) and the observability
# e2e needs (prometheus, run as the test's own instance) from Debian packages. Idempotent and quiet: does nothing when every tool is already present.
set -euo pipefail

need=()
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v ctr >/dev/null 2>&1 || need+=(containerd)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
{ command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1; } || need+=(iproute2)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || need+=(chromium)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)

if [ "${#need[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2046
apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
# The Debian packages start system services we do not use (each e2e host runs its own).
for svc in containerd docker-registry prometheus prometheus-node-exporter; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" >/dev/null 2>&1 || true
  fi
done
exit 0
