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
import fs from 'node:fs';
import os from 'node:os';
import client from 'prom-client';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { LatchkeyError } from '../errors.js';
import { installFatalHandler, type FatalHooks } from '../fatal.js';
import { build, type Server } from '../server.js';
import { NodeLink } from '../ipc/link.js';
import { stopOnSignals } from './shutdown.js';
import { NODE_PROCESS_ENV, type NodeProcessEnv } from './primary.js';

export function nodeProcessEnv(): NodeProcessEnv | null {
  const raw = process.env[NODE_PROCESS_ENV];
  if (!raw) return null;
  const env = JSON.parse(raw) as NodeProcessEnv;
  if (!Number.isInteger(env.index) || !Number.isInteger(env.port)) throw new LatchkeyError('LK_INTERNAL', `bad ${NODE_PROCESS_ENV}`);
  return env;
}

/**
 * Lower this process's priority to `nice` (gatewayNice): every thread it has now (Linux sets a nice
 * value per thread; threads started later inherit their creator's). Measured reason: in a reconnect
 * storm of 40,000 sessions on 14 gateway processes over 2 cores, the primary got only its equal
 * share of the CPU (~10% of a core) while every gateway waited for its answers (cache, directory):
 * no IPC answer within 10 s, 0 handshakes accepted per second (docs/performance.md). Raising a nice
 * value needs no privilege; where it fails (not Linux) the process keeps its priority.
 */
function lowerPriority(nice: number, log: Logger): void {
  if (!(nice > 0)) return;
  let threads: string[];
  try {
    threads = fs.readdirSync('/proc/self/task');
  } catch {
    threads = [String(process.pid)];
  }
  let done = 0;
  for (const t of threads) {
    try {
      os.setPriority(Number(t), nice);
      done++;
    } catch {
      // a thread that ended meanwhile, or no such call here
    }
  }
  log.debug({ nice, threads: done }, 'gateway process priority lowered');
}

export async function runGatewayProcess(config: Config, env: NodeProcessEnv, baseLog: Logger): Promise<void> {
  const log = baseLog.child({ process: env.index });
  lowerPriority(config.gatewayNice, log);
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
  fatalHooks = { stopListening: () => server.gateway.stopListening(), close: () => server.abort() };
  // Answer the primary's requests for this process's metrics (prom-client's cluster protocol).
  new client.AggregatorRegistry();
  client.AggregatorRegistry.setRegistries([server.stats.registry]);

  const stop = stopOnSignals(() => server.close(), log);
  process.on('disconnect', () => stop('the node primary is gone'));
  await link.post({ lk: 'ready', index: env.index, port: server.port, adminPort: env.index === 0 ? server.adminPort : null, pid: process.pid });
}
