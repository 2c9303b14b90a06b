/**
 * `latchkey serve`: build the server from the configuration, print where it listens, and close it
 * gracefully on SIGTERM/SIGINT (exit 0; 1 when the close failed). A crash-level error exits 70
 * through fatal.ts after freeing the ports.
 */
import path from 'node:path';
import { pino } from 'pino';
import { openStore } from '../backends.js';
import { BootstrapKey } from '../bootstrap/key.js';
import { KeyRing } from '../crypto/keyring.js';
import type { Store } from '../store/store.js';
import { processCount, redactConfig } from '../config/config.js';
import { installFatalHandler, type FatalHooks } from '../fatal.js';
import { build } from '../server.js';
import { configFrom, type Parsed } from './args.js';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { nodeProcessEnv, runGatewayProcess } from '../node/gateway-process.js';
import { runPrimary } from '../node/primary.js';
import { probePort } from '../net/ports.js';
import { stopOnSignals } from '../node/shutdown.js';

/** A host as a URL shows it: loopback for a wildcard bind (what a client on this host dials). */
const shown = (h: string): string => (h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h);

/** What an endpoint (examples/, the SDK) and an operator need from a fresh start, read once. */
export interface StartInfo {
  endpointUrl: string;
  adminUrl: string;
  uiUrl: string;
  /** The active server key: SDK serverKey { id, spki }. */
  serverKeyId: string;
  serverKeySpki: string;
  bootstrapUrl: string;
  bootstrapKeyId: string;
  bootstrapKeyFile: string;
  /** The first start's trustful application "default", while it exists. */
  demoApp: { id: string; appToken: string; credentialsService: string } | null;
}

async function startInfo(config: Config, fields: { port: number; adminPort: number }, parts: { keyRing?: KeyRing; bootstrapKey?: BootstrapKey; store?: Store }): Promise<StartInfo> {
  const keyRing = parts.keyRing ?? (await KeyRing.loadOrCreate(path.resolve(config.dataDir, 'keys')));
  const bootstrapKey = parts.bootstrapKey ?? (await BootstrapKey.loadOrCreate(config.bootstrapKeyFile || path.resolve(config.dataDir, 'bootstrap', 'bootstrap-key.pem'))).key;
  // The primary of a multi-process node has no store open: a short read of its own (LMDB and
  // Cassandra both take several processes). Only the demo token depends on it: a failure leaves it out.
  let demo = null;
  try {
    const store = parts.store ?? (await openStore(config, pino({ level: 'silent' })));
    try {
      demo = await store.getApplication('default');
    } finally {
      if (!parts.store) await store.close();
    }
  } catch {
    demo = null;
  }
  const host = shown(config.host);
  const admin = `http://${shown(config.adminHost)}:${fields.adminPort}`;
  return {
    endpointUrl: `ws://${host}:${fields.port}/ep/v1`,
    adminUrl: admin,
    uiUrl: `${admin}/ui/`,
    serverKeyId: keyRing.active.id,
    serverKeySpki: Buffer.from(keyRing.active.spkiDer).toString('base64'),
    bootstrapUrl: `http://${host}:${fields.port}`,
    bootstrapKeyId: bootstrapKey.id,
    bootstrapKeyFile: bootstrapKey.file,
    demoApp: demo ? { id: demo.id, appToken: demo.appToken, credentialsService: demo.credentialsService } : null,
  };
}

/**
 * The start-up print: the `listening` log line (scripts and test/helpers/process.ts wait for it)
 * and, on stderr, the same values for a person, ending with the command line that runs
 * examples/connect.mjs against this server (README, "Quick start").
 */
function announce(config: Config, log: Logger, fields: { port: number; adminPort: number; uws?: string; processes: number }, info: StartInfo, firstApiKey: string | null): void {
  // The listening line is printed at every level but silent: operators and scripts wait for it.
  const out = config.logLevel === 'silent' ? log : log.child({}, { level: 'info' });
  const { demoApp, ...urls } = info;
  out.info({ gateway: info.endpointUrl, admin: info.adminUrl, bind: config.host, ...fields, ...urls, appToken: demoApp?.appToken ?? null }, 'listening');
  const env = [
    `LATCHKEY_SDK_URL=${info.endpointUrl}`,
    ...(demoApp ? [`LATCHKEY_SDK_APP_TOKEN=${demoApp.appToken}`] : []),
    `LATCHKEY_SDK_SERVER_KEY_ID=${info.serverKeyId}`,
    `LATCHKEY_SDK_SERVER_KEY_SPKI=${info.serverKeySpki}`,
  ];
  const lines = [
    'latchkey: listening',
    `  endpoint URL       ${info.endpointUrl}`,
    `  admin API          ${info.adminUrl}   (/admin/v1, /metrics, /healthz)`,
    `  Administration UI  ${info.uiUrl}`,
    `  server key id      ${info.serverKeyId}   (active; the SDK's serverKey.id)`,
    `  server key SPKI    ${info.serverKeySpki}`,
    `  bootstrap URL      ${info.bootstrapUrl}   (public key: npx latchkey bootstrap-key > bootstrap.pub.pem; key ${info.bootstrapKeyId} in ${info.bootstrapKeyFile})`,
    demoApp
      ? `  demo app token     ${demoApp.appToken}   (application "${demoApp.id}", ${demoApp.credentialsService}${demoApp.credentialsService === 'trustful' ? ': any endpoint key may connect' : ''})`
      : '  demo app token     - (no application "default"; create one: npx latchkey app create ...)',
    `  try: export ${env.join(' ')}`,
    '       node examples/connect.mjs',
  ];
  process.stderr.write(lines.join('\n') + '\n');
  if (firstApiKey) {
    process.stderr.write(`latchkey: first root admin API key (shown once, only its hash is stored):\n  ${firstApiKey}\n  try: curl -H 'Authorization: Bearer ${firstApiKey}' ${info.adminUrl}/admin/v1/tenants\n  or sign in at ${info.uiUrl}\n`);
  }
}

/** A multi-process node: this process is its primary (node/primary.ts). */
async function servePrimary(config: Config, count: number, log: Logger): Promise<void> {
  const node = await runPrimary(config, count, log);
  const fields = { port: node.port, adminPort: node.adminPort, processes: count };
  announce(config, log, fields, await startInfo(config, fields, {}), node.firstApiKey);
  process.on('SIGTERM', () => node.stop('SIGTERM'));
  process.on('SIGINT', () => node.stop('SIGINT'));
  const code = await node.stopped;
  log.info({ code }, 'stopped');
  log.flush();
  process.exit(code);
}

export async function serve(p: Parsed): Promise<void> {
  const config = configFrom(p);
  const log = pino({ level: config.logLevel, base: { service: 'latchkey' } });
  const proc = nodeProcessEnv();
  if (proc) return runGatewayProcess(config, proc, log);
  log.info({ config: redactConfig(config) }, 'starting');
  const count = processCount(config);
  if (count > 1) return servePrimary(config, count, log);
  await probePort(config.host, config.port, 'gateway');
  if (config.adminPort !== 0) await probePort(config.adminHost, config.adminPort, 'admin');
  let fatalHooks: FatalHooks | null = null;
  installFatalHandler(log, () => fatalHooks);
  const server = await build(config, log);
  fatalHooks = { stopListening: () => server.gateway.stopListening(), close: () => server.abort() };
  const fields = { port: server.port, adminPort: server.adminPort, uws: server.gateway.native ? 'native' : 'fallback', processes: 1 };
  announce(config, log, fields, await startInfo(config, fields, { keyRing: server.keyRing, bootstrapKey: server.bootstrapKey, store: server.store }), server.firstApiKey);
  stopOnSignals(() => server.close(), log);
}

