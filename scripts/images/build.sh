#!/usr/bin/env bash
# Builds the three images of the Dockerfile (manager, scheduler, dfdaemon) without a Docker
# engine, with buildah, tags them as the manifests expect (ghcr.io/dragonfly-ts/<target>:<tag>)
# and writes build/images/<target>.tar (docker-archive: `podman load`, `ctr images import`,
# `kind load image-archive` and `docker load` all accept it), then prints their sizes.
#
# The Node 20 base: the official node:20-bookworm-slim when it can be pulled; otherwise a local
# stand-in with the same layout (Debian bookworm minbase from the apt mirror via debootstrap, plus
# this machine's Node 20, npm, headers and CA bundle), built once and cached in containers storage.
#
# Usage: scripts/images/build.sh [target...]        (default: manager scheduler dfdaemon)
# Env:   IMAGE_REGISTRY (default ghcr.io/dragonfly-ts), IMAGE_TAG (default package.json version),
#        NODE_IMAGE (skip base detection), IMAGES_OUT (default build/images),
#        DEBIAN_MIRROR (default: the first deb.debian.org-style URI apt uses, else deb.debian.org)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(manager scheduler dfdaemon)
for t in "${TARGETS[@]}"; do
  case "$t" in manager | scheduler | dfdaemon) ;; *) echo "build.sh: unknown target '$t' (expected manager, scheduler or dfdaemon)" >&2; exit 2 ;; esac
done

for tool in buildah podman; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is not installed (apt-get install buildah podman debootstrap)" >&2; exit 1; }
done

REGISTRY="${IMAGE_REGISTRY:-ghcr.io/dragonfly-ts}"
VERSION="$(node -p 'require("./package.json").version')"
TAG="${IMAGE_TAG:-$VERSION}"
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
OUT="${IMAGES_OUT:-build/images}"
mkdir -p "$OUT"

# Limits the build containers get: podman's defaults (nofile 1048576) exceed what some VMs allow.
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/$OUT/containers.conf}"
if [ ! -f "$CONTAINERS_CONF" ]; then
  nofile="$(ulimit -n)"; [ "$nofile" = unlimited ] && nofile=1048576
  nproc="$(ulimit -u)"; [ "$nproc" = unlimited ] && nproc=32768
  [ "$nproc" -gt 32768 ] && nproc=32768
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' "$nofile" "$nofile" "$nproc" "$nproc" >"$CONTAINERS_CONF"
fi

log() { printf '== %s\n' "$*" >&2; }

# ---- the Node 20 base ----
local_base() {
  local node_bin npm_dir include_dir node_version mirror tag rootfs
  node_bin="$(command -v node)"
  node_version="$("$node_bin" --version)"
  case "$node_version" in v20.*) ;; *) echo "build.sh: no node:20 base can be pulled and this machine's node is $node_version (need v20.x)" >&2; exit 1 ;; esac
  # The suffix changes whenever this recipe does, so a cached base from an older recipe is not reused.
  tag="localhost/dragonfly-ts/node-base:${node_version#v}-bookworm-r2"
  if podman image exists "$tag"; then echo "$tag"; return; fi
  command -v debootstrap >/dev/null || { echo "build.sh: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
  npm_dir="$(npm root -g)/npm"
  include_dir="$(dirname "$(dirname "$node_bin")")/include/node"
  [ -d "$npm_dir" ] || { echo "build.sh: npm not found at $npm_dir" >&2; exit 1; }
  [ -f "$include_dir/node.h" ] || { echo "build.sh: Node headers not found at $include_dir (node-gyp needs them to build better-sqlite3)" >&2; exit 1; }
  mirror="${DEBIAN_MIRROR:-$(grep -rhoE 'https?://[^ ]+/debian/?$' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null | head -n1 || true)}"
  mirror="${mirror:-http://deb.debian.org/debian}"
  rootfs="$(mktemp -d "${TMPDIR:-/tmp}/df-node-base.XXXXXX")"
  trap 'rm -rf "$rootfs"' RETURN
  log "local node base: debootstrap bookworm from $mirror + Node $node_version (once; cached as $tag)"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$OUT/debootstrap.log" 2>&1 \
    || { tail -n 30 "$OUT/debootstrap.log" >&2; exit 1; }
  install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules" "$rootfs/usr/local/include"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  # Node's headers for node-gyp, with OpenSSL's generated config for this architecture only
  # (the other architectures' copies are ~50 MB that every runtime image would carry).
  cp -a "$include_dir" "$rootfs/usr/local/include/node"
  if [ -d "$rootfs/usr/local/include/node/openssl/archs" ]; then
    find "$rootfs/usr/local/include/node/openssl/archs" -mindepth 1 -maxdepth 1 ! -name "linux-$(uname -m)*" -exec rm -rf {} +
  fi
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # The machine's CA bundle, so npm and apt inside the build trust the same TLS as this host.
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  # Debian's image conventions: no apt caches, no docs.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" >"$rootfs/etc/apt/sources.list"
  tar --numeric-owner -C "$rootfs" -c . | podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV NODE_VERSION='"${node_version#v}" \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV npm_config_nodedir=/usr/local' \
    --change 'CMD ["node"]' \
    --message "Debian bookworm minbase + Node $node_version (stand-in for node:20-bookworm-slim)" \
    - "$tag" >/dev/null
  echo "$tag"
}

if [ -n "${NODE_IMAGE:-}" ]; then
  base="$NODE_IMAGE"
elif podman image exists docker.io/library/node:20-bookworm-slim || timeout 90 podman pull -q docker.io/library/node:20-bookworm-slim >/dev/null 2>&1; then
  base=docker.io/library/node:20-bookworm-slim
else
  base="$(local_base)"
fi
log "base image: $base"

# ---- the three targets (--layers: npm ci and the compile are shared and cached between them) ----
for t in "${TARGETS[@]}"; do
  ref="$REGISTRY/$t:$TAG"
  log "building $ref"
  started=$(date +%s)
  buildah bud --layers --pull-never --target "$t" \
    --build-arg "NODE_IMAGE=$base" --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" \
    --ulimit "nofile=$(ulimit -n):$(ulimit -n)" \
    -t "$ref" -f Dockerfile . >"$OUT/$t.build.log" 2>&1 \
    || { tail -n 40 "$OUT/$t.build.log" >&2; echo "build.sh: building $t failed (log: $OUT/$t.build.log)" >&2; exit 1; }
  rm -f "$OUT/$t.tar"
  podman save --quiet --format docker-archive -o "$OUT/$t.tar.part" "$ref"
  mv "$OUT/$t.tar.part" "$OUT/$t.tar"
  log "$ref -> $OUT/$t.tar ($(($(date +%s) - started)) s)"
done

# ---- sizes: the unpacked image (what a node stores) and the archive gzipped (about what a registry shows) ----
printf '%-44s %12s %12s\n' image unpacked compressed
for t in "${TARGETS[@]}"; do
  ref="$REGISTRY/$t:$TAG"
  unpacked=$(podman image inspect --format '{{.Size}}' "$ref")
  compressed=$(gzip -1 -c "$OUT/$t.tar" | wc -c)
  awk -v r="$ref" -v u="$unpacked" -v c="$compressed" 'BEGIN { printf "%-44s %9.1f MB %9.1f MB\n", r, u / 1e6, c / 1e6 }'
done
