# Images for the manifests in dist/ (constructs/images.ts defaults): ghcr.io/dragonfly-ts/<target>:<version>
# with <target> one of manager, scheduler, dfdaemon and <version> package.json "version".
#   scripts/images/build.sh            builds all three with buildah (no Docker engine needed) and
#                                      writes build/images/<target>.tar for `podman load` / `ctr images import`
#   docker build --target manager -t ghcr.io/dragonfly-ts/manager:0.1.0 .   works as well
# NODE_IMAGE is the Node 20 base (a local stand-in where Docker Hub cannot be reached, see build.sh).
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- package manifests only, so `npm ci` stays cached until a package.json or the lock changes ----
# Copies the whole context and keeps every package.json (root and any workspace such as constructs/).
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN find . -type f ! -name package.json ! -name package-lock.json -delete \
 && find . -mindepth 1 -type d -empty -delete

# ---- build: compile TypeScript and better-sqlite3 (node-gyp), then keep production files only ----
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY --from=manifests /src/ ./
RUN npm ci --no-audit --no-fund
COPY . .
# The runtime tree: compiled services (no tests, no constructs, no declarations), the .proto
# contracts services/proto/index.ts loads at run time, production node_modules without native
# build leftovers, the cdk8s libraries (only constructs/ uses them) or workspace links.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && mkdir -p /out/services/proto \
 && cp -a build/services /out/build-services \
 && find /out/build-services \( -name '*.d.ts' -o -name '*.test.js' -o -name '*.test.js.map' \) -delete \
 && cp services/proto/*.proto /out/services/proto/ \
 && cp package.json /out/package.json \
 && addon=node_modules/better-sqlite3/build/Release/better_sqlite3.node \
 && test -f "$addon" \
 && mv "$addon" /tmp/better_sqlite3.node \
 && rm -rf node_modules/better-sqlite3/build node_modules/better-sqlite3/deps node_modules/better-sqlite3/src \
 && mkdir -p node_modules/better-sqlite3/build/Release \
 && mv /tmp/better_sqlite3.node "$addon" \
 && rm -rf node_modules/.bin node_modules/.package-lock.json node_modules/cdk8s node_modules/cdk8s-plus-* node_modules/constructs node_modules/@types \
 && find node_modules -mindepth 1 -maxdepth 2 -type l -delete \
 && find node_modules \( -name '*.md' -o -name '*.d.ts' -o -name '*.map' -o -name '*.gyp' -o -name '*.gypi' \) -type f -delete \
 && mv node_modules /out/node_modules

# ---- runtime base: compiled JS plus production node_modules, program wrappers on PATH ----
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/dragonfly-ts/dragonfly-ts
LABEL org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="dragonfly-ts"
ENV NODE_ENV=production
WORKDIR /opt/dragonfly
# Non-root identity for manager and scheduler (dfdaemon and dfinit run as root on the node:
# they edit /etc/containerd and serve hostPath caches).
RUN groupadd --system --gid 10001 dragonfly \
 && useradd --system --uid 10001 --gid dragonfly --home-dir /var/lib/dragonfly --no-create-home --shell /usr/sbin/nologin dragonfly
COPY --from=build /out/package.json ./package.json
COPY --from=build /out/node_modules ./node_modules
COPY --from=build /out/services ./services
COPY --from=build /out/build-services ./build/services
RUN for bin in dfmanager:manager dfscheduler:scheduler dfdaemon:dfdaemon dfget:dfget dfinit:dfinit; do \
      name="${bin%%:*}"; dir="${bin##*:}"; \
      test -f "/opt/dragonfly/build/services/$dir/main.js"; \
      printf '#!/bin/sh\nexec node /opt/dragonfly/build/services/%s/main.js "$@"\n' "$dir" > "/usr/local/bin/$name"; \
      chmod 0755 "/usr/local/bin/$name"; \
    done \
 && mkdir -p /etc/dragonfly /var/lib/dragonfly /var/run/dragonfly /var/log/dragonfly \
 && chown dragonfly:dragonfly /var/lib/dragonfly /var/run/dragonfly /var/log/dragonfly
STOPSIGNAL SIGTERM

# ---- manager: REST + console 8080, gRPC 65003, metrics 8000 ----
FROM runtime AS manager
USER 10001:10001
EXPOSE 8080 65003 8000
ENTRYPOINT ["dfmanager"]
CMD ["--config", "/etc/dragonfly/manager.yaml"]

# ---- scheduler: gRPC 8002, metrics 8000 ----
FROM runtime AS scheduler
USER 10001:10001
EXPOSE 8002 8000
ENTRYPOINT ["dfscheduler"]
CMD ["--config", "/etc/dragonfly/scheduler.yaml"]

# ---- dfdaemon (also the seed peer; holds dfget and dfinit): gRPC 65000, proxy 65001, upload 65002, metrics 8000 ----
FROM runtime AS dfdaemon
EXPOSE 65000 65001 65002 8000
ENTRYPOINT ["dfdaemon"]
CMD ["--config", "/etc/dragonfly/dfdaemon.yaml"]
