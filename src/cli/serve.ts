/**
 * `latchkey serve`: build the server from the configuration, print where it listens, and close it
 * gracefully on SIGTERM/SIGINT (exit 0; 1 when the close failed). A crash-level error exits 70
 * through fatal.ts after freeing the ports.
 */
import { pino } from 'pino';
import { redactConfig } from '../config/config.js';
import { installFatalHandler, type FatalHooks } from '../fatal.js';
import { build } from '../server.js';
import { configFrom, type Parsed } from './args.js';
import os from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { nodeProcessEnv, runGatewayProcess } from '../node/gateway-process.js';
import { runPrimary } from '../node/primary.js';
import { probePort } from '../net/ports.js';
import { stopOnSignals } from '../node/shutdown.js';

const shown = (h: string): string => (h === '0.0.0.0' || h === '::' ? 'localhost' : h);

function announce(config: Config, log: Logger, fields: { port: number; adminPort: number; uws?: string; processes: number }, firstApiKey: string | null): void {
  // The listening line is printed at every level but silent: operators and scripts wait for it.
  const out = config.logLevel === 'silent' ? log : log.child({}, { level: 'info' });
  out.info({ gateway: `ws://${shown(config.host)}:${fields.port}/ep/v1`, admin: `http://${shown(config.adminHost)}:${fields.adminPort}`, bind: config.host, ...fields }, 'listening');
  if (firstApiKey) {
    process.stderr.write(`latchkey: first root admin API key (shown once, only its hash is stored):\n  ${firstApiKey}\n  try: curl -H 'Authorization: Bearer ${firstApiKey}' http://${shown(config.adminHost)}:${fields.adminPort}/admin/v1/tenants\n`);
  }
}

/** A multi-process node: this process is its primary (node/primary.ts). */
async function servePrimary(config: Config, count: number, log: Logger): Promise<void> {
  const node = await runPrimary(config, count, log);
  announce(config, log, { port: node.port, adminPort: node.adminPort, processes: count }, node.firstApiKey);
  process.on('SIGTERM', () => node.stop('SIGTERM'));
  process.on('SIGINT', () => node.stop('SIGINT'));
  const code = await node.stopped;
  log.info({ code }, 'stopped');
  log.flush();
  process.exit(code);
}

/** `processes` as a count: auto = one per CPU. */
export function processCount(config: Config): number {
  return config.processes === 'auto' ? Math.max(1, os.availableParallelism()) : Number(config.processes);
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
  announce(config, log, { port: server.port, adminPort: server.adminPort, uws: server.gateway.native ? 'native' : 'fallback', processes: 1 }, server.firstApiKey);
  stopOnSignals(() => server.close(), log);
}

