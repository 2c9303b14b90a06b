# latchkey server image. Build: docker build -t latchkey .   Run: see docs/operations.md.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY bench ./bench
COPY test ./test
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    LATCHKEY_DATA_DIR=/data \
    LATCHKEY_HOST=0.0.0.0 \
    LATCHKEY_PORT=9443 \
    LATCHKEY_ADMIN_HOST=127.0.0.1 \
    LATCHKEY_ADMIN_PORT=9444
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
# The frame AEAD kernel (prebuilt, checked in; without it the server falls back to node:crypto GCM).
COPY wasm/build/ghash.wasm ./wasm/build/ghash.wasm
COPY package.json ./
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 9443
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--enable-source-maps", "dist/src/main.js"]
CMD ["serve"]
