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

export async function serve(p: Parsed): Promise<void> {
  const config = configFrom(p);
  const log = pino({ level: config.logLevel, base: { service: 'latchkey' } });
  log.info({ config: redactConfig(config) }, 'starting');
  let fatalHooks: FatalHooks | null = null;
  installFatalHandler(log, () => fatalHooks);
  const server = await build(config, log);
  fatalHooks = { stopListening: () => server.gateway.stopListening(), close: () => server.abort() };
  const shown = (h: string): string => (h === '0.0.0.0' || h === '::' ? 'localhost' : h);
  // The listening line is printed at every level but silent: operators and scripts wait for it.
  const announce = config.logLevel === 'silent' ? log : log.child({}, { level: 'info' });
  announce.info({ gateway: `ws://${shown(config.host)}:${server.port}/ep/v1`, admin: `http://${shown(config.adminHost)}:${server.adminPort}`, bind: config.host, port: server.port, adminPort: server.adminPort, uws: server.gateway.native ? 'native' : 'fallback' }, 'listening');
  if (server.firstApiKey) {
    process.stderr.write(`latchkey: first root admin API key (shown once, only its hash is stored):\n  ${server.firstApiKey}\n  try: curl -H 'Authorization: Bearer ${server.firstApiKey}' http://${shown(config.adminHost)}:${server.adminPort}/admin/v1/tenants\n`);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    server.close().then(
      () => {
        log.info('stopped');
        log.flush();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

