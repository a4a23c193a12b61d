#!/usr/bin/env bash
# Installs what scripts/images/build.sh needs (buildah, podman, debootstrap for the local Node
# base, runc for containerd to run the images) from Debian/Ubuntu packages. Idempotent and
# quiet: does nothing when every tool is already present.
set -euo pipefail

need=()
for tool in buildah podman debootstrap runc gzip; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "images/install-deps: need root to install: ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
