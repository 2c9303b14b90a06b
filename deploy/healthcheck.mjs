#!/usr/bin/env node
/**
 * The image's HEALTHCHECK: GET /healthz on the admin listener, exit 0 when it answers 200 with
 * {"status":"ok"}, else 1 (Docker's "unhealthy"). Node's own fetch, because the slim image has no
 * curl. /healthz is liveness, not readiness: a node whose Redis is down is alive and serves
 * endpoints from the store (docs/operations.md, "Readiness"), so a compose `depends_on:
 * service_healthy` or a restart policy must not wait on /readyz.
 *
 * Where the admin listener is: adminHost and adminPort from the config file (LATCHKEY_CONFIG) and
 * the environment (LATCHKEY_ADMIN_HOST, LATCHKEY_ADMIN_PORT), the environment winning as in
 * src/config/config.ts; defaults 127.0.0.1 and 9444. A wildcard bind is reached on loopback.
 * Command-line flags (`serve --admin-port N`) are not visible here: set the environment instead.
 */
import fs from 'node:fs';

const TIMEOUT_MS = 4000; // under the HEALTHCHECK --timeout of the Dockerfile (5 s)

let host = '127.0.0.1';
let port = 9444;
try {
  if (process.env.LATCHKEY_CONFIG) {
    const file = JSON.parse(fs.readFileSync(process.env.LATCHKEY_CONFIG, 'utf8'));
    if (typeof file.adminHost === 'string' && file.adminHost) host = file.adminHost;
    if (Number.isInteger(file.adminPort)) port = file.adminPort;
  }
} catch {
  // The server itself refuses an unreadable config file; the environment and defaults still apply.
}
if (process.env.LATCHKEY_ADMIN_HOST) host = process.env.LATCHKEY_ADMIN_HOST;
if (process.env.LATCHKEY_ADMIN_PORT) port = Number(process.env.LATCHKEY_ADMIN_PORT);

if (host === '0.0.0.0') host = '127.0.0.1';
else if (host === '::') host = '::1';
const shown = host.includes(':') ? `[${host}]` : host;
const url = `http://${shown}:${port}/healthz`;

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  const body = await res.json().catch(() => null);
  if (res.status === 200 && body?.status === 'ok') process.exit(0);
  process.stderr.write(`healthcheck: ${url} answered ${res.status} ${JSON.stringify(body)}\n`);
} catch (err) {
  process.stderr.write(`healthcheck: ${url}: ${err?.cause?.code ?? err?.name ?? ''} ${err?.message ?? err}\n`);
}
process.exit(1);
