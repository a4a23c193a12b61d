# Images for the manifests in dist/ (constructs/images.ts defaults):
#   docker build --target manager   -t ghcr.io/dragonfly-ts/manager:<version>   .
#   docker build --target scheduler -t ghcr.io/dragonfly-ts/scheduler:<version> .
#   docker build --target dfdaemon  -t ghcr.io/dragonfly-ts/dfdaemon:<version>  .
# <version> is package.json "version". This file has not been built on the development
# machine (it has no Docker engine); CI or a workstation with Docker builds it.

# ---- build: compile TypeScript and native modules (better-sqlite3 builds with node-gyp) ----
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build \
 && npm prune --omit=dev

# ---- runtime base: compiled JS plus production node_modules, bins on PATH ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /opt/dragonfly
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/build ./build
RUN for bin in dfmanager:manager dfscheduler:scheduler dfdaemon:dfdaemon dfget:dfget dfinit:dfinit; do \
      name="${bin%%:*}"; dir="${bin##*:}"; \
      printf '#!/bin/sh\nexec node /opt/dragonfly/build/services/%s/main.js "$@"\n' "$dir" > "/usr/local/bin/$name"; \
      chmod 0755 "/usr/local/bin/$name"; \
    done \
 && mkdir -p /etc/dragonfly /var/lib/dragonfly /var/run/dragonfly

# ---- manager: REST + console 8080, gRPC 65003, metrics 8000 ----
FROM runtime AS manager
EXPOSE 8080 65003 8000
ENTRYPOINT ["dfmanager"]
CMD ["--config", "/etc/dragonfly/manager.yaml"]

# ---- scheduler: gRPC 8002, metrics 8000 ----
FROM runtime AS scheduler
EXPOSE 8002 8000
ENTRYPOINT ["dfscheduler"]
CMD ["--config", "/etc/dragonfly/scheduler.yaml"]

# ---- dfdaemon (also seed peer; holds dfget and dfinit): gRPC 65000, proxy 65001, upload 65002, metrics 8000 ----
FROM runtime AS dfdaemon
EXPOSE 65000 65001 65002 8000
ENTRYPOINT ["dfdaemon"]
CMD ["--config", "/etc/dragonfly/dfdaemon.yaml"]
