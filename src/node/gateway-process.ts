/**
 * One gateway process of a multi-process node (started by node/primary.ts through node:cluster):
 * a full server (server.ts build) on the node's shared endpoint port, with the IPC bus, the
 * primary's cache and the node's session directory; process 0 also holds the admin listener.
 *
 * It tells the primary `ready` once listening, or `failed` with its error code when it cannot
 * start (the primary then stops the node). SIGTERM/SIGINT drain it as they drain a single-process
 * node; if the primary goes away (its IPC channel closes) it drains and exits too, so no process
 * outlives its node.
 */
import client from 'prom-client';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { LatchkeyError } from '../errors.js';
import { installFatalHandler, type FatalHooks } from '../fatal.js';
import { build, type Server } from '../server.js';
import { NodeLink } from '../ipc/link.js';
import { setProcessNice } from './priority.js';
import { stopOnSignals } from './shutdown.js';
import { NODE_PROCESS_ENV, type NodeProcessEnv } from './primary.js';

export function nodeProcessEnv(): NodeProcessEnv | null {
  const raw = process.env[NODE_PROCESS_ENV];
  if (!raw) return null;
  const env = JSON.parse(raw) as NodeProcessEnv;
  if (!Number.isInteger(env.index) || !Number.isInteger(env.port)) throw new LatchkeyError('LK_INTERNAL', `bad ${NODE_PROCESS_ENV}`);
  return env;
}

export async function runGatewayProcess(config: Config, env: NodeProcessEnv, baseLog: Logger): Promise<void> {
  const log = baseLog.child({ process: env.index });
  const link = new NodeLink(env.index);
  let fatalHooks: FatalHooks | null = null;
  installFatalHandler(log, () => fatalHooks);
  let server: Server;
  try {
    // RSA threads: one per process by default (the processes already use every core).
    const cryptoThreads = config.cryptoThreads > 0 ? config.cryptoThreads : 1;
    server = await build({ ...config, port: env.port, nodeId: env.nodeId, cryptoThreads }, log, { index: env.index, link });
  } catch (err) {
    const code = err instanceof LatchkeyError ? err.code : 'LK_INTERNAL';
    log.error({ err, code }, 'gateway process could not start');
    await link.post({ lk: 'failed', index: env.index, code, message: (err as Error).message }).catch(() => undefined);
    process.exit(1);
  }
  // Below the primary, which answers every gateway's cache and directory requests: in a storm of
  // 40,000 sessions on 14 processes over 2 cores the primary got only its equal share (~10% of a
  // core), no IPC answer came within 10 s and no handshake was accepted (docs/performance.md). Only
  // once it listens: a process restarted into a reconnect storm competes with the storm for the
  // cores, and at the lower priority 14 restarted processes took 46 s to accept their first
  // session (bench/sessions, 250k). Every thread it has now is set; later ones inherit.
  log.debug({ nice: config.gatewayNice, threads: setProcessNice(config.gatewayNice) }, 'gateway process priority');
  fatalHooks = { stopListening: () => server.gateway.stopListening(), close: () => server.abort() };
  // Answer the primary's requests for this process's metrics (prom-client's cluster protocol).
  new client.AggregatorRegistry();
  client.AggregatorRegistry.setRegistries([server.stats.registry]);

  const stop = stopOnSignals(() => server.close(), log);
  process.on('disconnect', () => stop('the node primary is gone'));
  await link.post({ lk: 'ready', index: env.index, port: server.port, adminPort: env.index === 0 ? server.adminPort : null, pid: process.pid });
}
