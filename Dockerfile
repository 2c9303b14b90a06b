# latchkey server image. Build: docker build -t latchkey .   Run: see docs/operations.md
# ("Deployment", "Running a cluster"; docker-compose.yml runs two nodes with Cassandra and Redis).
#
# Debian (glibc), not Alpine: uWebSockets.js (@trufflesuite/uws-js-unofficial) ships glibc
# binaries only, and so do the prebuilt lmdb and msgpackr-extract addons.

# --- build: all dependencies, tsc + the browser bundles (npm run build), then production deps only ---
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# npm run build = tsc -p tsconfig.json (src, bench and test: tsconfig.json includes all three),
# tsc -p tsconfig.sdk.json, then scripts/build-web.mjs (SDK bundle, Administration UI into dist/ui,
# which type-checks src/ui with tsconfig.ui.json first).
COPY tsconfig.json tsconfig.sdk.json tsconfig.ui.json ./
COPY scripts ./scripts
COPY src ./src
COPY bench ./bench
COPY test ./test
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# --- runtime ---
FROM node:20-bookworm-slim
# jemalloc: gateway processes of a multi-process node load it when it is installed (config
# allocator=auto, src/node/allocator.ts): 3.7 instead of 6.3 KiB of memory per idle session after a
# ramp of handshakes (docs/operations.md, "Processes").
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libjemalloc2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    LATCHKEY_DATA_DIR=/data \
    LATCHKEY_HOST=0.0.0.0 \
    LATCHKEY_PORT=9443 \
    LATCHKEY_ADMIN_HOST=127.0.0.1 \
    LATCHKEY_ADMIN_PORT=9444
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
# The Administration UI (/ui/ on the admin listener); without it /ui/ answers 404.
COPY --from=build /app/dist/ui ./dist/ui
# The frame AEAD kernel (prebuilt, checked in; without it the server falls back to node:crypto GCM).
COPY wasm/build/ghash.wasm ./wasm/build/ghash.wasm
COPY package.json ./
COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs
# `latchkey ...` for `docker exec` (admin, keygen, bootstrap-key); the entrypoint runs node directly.
RUN printf '#!/bin/sh\nexec node --enable-source-maps /app/dist/src/main.js "$@"\n' > /usr/local/bin/latchkey \
 && chmod 0755 /usr/local/bin/latchkey \
 && mkdir -p /data && chown node:node /data && chmod 0700 /data
USER node
# The key ring (/data/keys), the bootstrap key (/data/bootstrap) and, without Cassandra, the
# embedded store (/data/store). Private keys: never bake them into an image.
VOLUME ["/data"]
# 9443: endpoint gateway (WebSocket /ep/v1, POST /bootstrap/v1/resolve).
# 9444: admin listener (/healthz, /readyz, /metrics, /admin/v1, /ui/); it binds loopback unless
# LATCHKEY_ADMIN_HOST says otherwise, so publishing it does nothing by default.
EXPOSE 9443 9444
# SIGTERM drains: REDIRECT to other nodes, then DISCONNECT within shutdownGraceMs (5 s); the
# primary of a multi-process node SIGKILLs its processes shutdownGraceMs + 10 s after SIGTERM, so
# give `docker stop` more than that (docker stop -t 20, compose stop_grace_period).
STOPSIGNAL SIGTERM
# Liveness of the admin listener (deploy/healthcheck.mjs: GET /healthz with node's fetch). The
# first start generates RSA keys and may create the Cassandra schema: hence the start period.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/app/deploy/healthcheck.mjs"]
ENTRYPOINT ["node", "--enable-source-maps", "/app/dist/src/main.js"]
CMD ["serve"]
