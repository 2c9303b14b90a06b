/**
 * The primary of a multi-process node (`latchkey serve --processes N`): it serves no endpoint
 * itself. It
 * - checks that the endpoint and admin ports are free (LK_LISTEN_FAILED before anything else),
 * - does the first-start work once (server.ts prepareNode),
 * - starts N gateway processes (node:cluster workers running node/gateway-process.ts) that share
 *   the endpoint port (SO_REUSEPORT: the kernel spreads new connections over them); process 0 also
 *   holds the admin listener,
 * - relays the bus, holds the node's cache and its session directory (ipc/messages.ts),
 * - restarts a gateway process that dies, with backoff (latchkey_node_process_restarts_total); its
 *   endpoints reconnect to the others meanwhile,
 * - on SIGTERM/SIGINT stops them all (each drains as a single-process node does) and exits.
 *
 * A gateway process that fails while starting (a port, the data directory, a bad plugin) stops the
 * whole node with its coded error: restarting it would fail the same way for ever. One that
 * crashes after it was serving is restarted; three crashes in a row within a minute of their start
 * also stop the node (LK_NODE_PROCESS_FAILED).
 */
import cluster, { type Worker } from 'node:cluster';
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import client from 'prom-client';
import { MemoryCache } from '../cache/cache-memory.js';
import type { Config } from '../config/config.js';
import { LatchkeyError } from '../errors.js';
import { prepareNode } from '../server.js';
import { probePort } from '../net/ports.js';
import { chooseAllocator, type AllocatorSetting } from './allocator.js';
import { answer, isLkMessage, Requester, send, type GatewayOp, type ToGateway, type ToPrimary } from '../ipc/messages.js';

/** Environment variable that tells a forked process which gateway process it is (node/gateway-process.ts). */
export const NODE_PROCESS_ENV = 'LATCHKEY_NODE_PROCESS';

export interface NodeProcessEnv {
  index: number;
  count: number;
  /** The endpoint port every process of the node listens on (chosen by the primary when 0). */
  port: number;
  nodeId: string;
}

const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 10_000;
/** A process up this long is healthy again: its next crash restarts it after RESTART_MIN_MS. */
const HEALTHY_AFTER_MS = 60_000;
const MAX_QUICK_CRASHES = 3;

interface Slot {
  index: number;
  worker: Worker | null;
  requester: Requester<GatewayOp> | null;
  ready: boolean;
  /** Ever ready: a failure before that stops the node. */
  served: boolean;
  startedAt: number;
  quickCrashes: number;
  restartTimer: NodeJS.Timeout | null;
  pid: number | null;
}

export interface PrimaryResult {
  port: number;
  adminPort: number;
  firstApiKey: string | null;
  /** Resolves when the node has stopped (exit code for the process). */
  stopped: Promise<number>;
  stop(signal: string): void;
}

export async function runPrimary(config: Config, count: number, log: Logger): Promise<PrimaryResult> {
  const port = await probePort(config.host, config.port, 'gateway');
  if (config.adminPort !== 0) await probePort(config.adminHost, config.adminPort, 'admin');
  const allocator = chooseAllocator(config.allocator as AllocatorSetting);
  const { firstApiKey } = await prepareNode(config, log);
  const nodeId = config.nodeId || crypto.randomUUID();
  log.info({ allocator: allocator.name, path: allocator.path, reason: allocator.reason }, 'gateway process allocator');

  const registry = new client.Registry();
  const restarts = new client.Counter({ name: 'latchkey_node_process_restarts_total', help: 'Gateway processes of this node restarted after they died.', registers: [registry] });
  const processesUp = new client.Gauge({ name: 'latchkey_node_processes', help: 'Gateway processes of this node serving now.', registers: [registry] });
  const aggregator = new client.AggregatorRegistry();
  const cache = new MemoryCache();
  /** endpoint key -> index of the process holding its session. */
  const directory = new Map<string, number>();
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({ index, worker: null, requester: null, ready: false, served: false, startedAt: 0, quickCrashes: 0, restartTimer: null, pid: null }));
  let adminPort = config.adminPort;
  let stopping = false;
  let exitCode = 0;
  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((r) => (resolveStopped = r));
  let resolveStarted!: () => void;
  let rejectStarted!: (e: unknown) => void;
  const started = new Promise<void>((res, rej) => {
    resolveStarted = res;
    rejectStarted = rej;
  });

  const liveSlots = (): Slot[] => slots.filter((s) => s.worker && s.ready);

  const toAll = (m: ToGateway): void => {
    for (const s of slots) if (s.worker) send(s.worker, m);
  };

  const gatewayRequest = (op: string, args: unknown[]): Promise<unknown> => {
    switch (op) {
      case 'cache.get':
        return cache.get(args[0] as string);
      case 'cache.set':
        return cache.set(args[0] as string, args[1] as string, args[2] as number);
      case 'cache.delete':
        return cache.delete(args[0] as string);
      case 'cache.setIfAbsent':
        return cache.setIfAbsent(args[0] as string, args[1] as string, args[2] as number);
      case 'node.health':
        return nodeHealth();
      case 'node.metrics':
        return nodeMetrics();
      case 'node.online':
        // The directory knows every live session of the node (endpoint key = appId/keyHash).
        return Promise.resolve((args[1] as string[]).map((k) => directory.has(`${args[0] as string}/${k}`)));
      case 'node.sessions':
        return Promise.all(liveSlots().map((sl) => sl.requester!.request<unknown[]>('sessions', args).catch(() => []))).then((parts) => parts.flat());
      case 'node.drain':
        // Every process leaves the bootstrap lists and redirects its own sessions; the count is the node's.
        return Promise.all(liveSlots().map((sl) => sl.requester!.request<number>('drain', []))).then((parts) => parts.reduce((a, b) => a + b, 0));
      default:
        return Promise.reject(new LatchkeyError('LK_BAD_ARGUMENT', `unknown node IPC request ${op}`));
    }
  };

  const nodeHealth = async (): Promise<unknown[]> => {
    const out = await Promise.all(
      slots.map(async (s) => {
        if (!s.worker || !s.ready || !s.requester) return { index: s.index, pid: s.pid, status: s.restartTimer ? 'restarting' : 'starting' };
        try {
          return { status: 'ok', ...(await s.requester.request<Record<string, unknown>>('health', [])) };
        } catch (err) {
          return { index: s.index, pid: s.pid, status: 'not answering', error: (err as Error).message };
        }
      }),
    );
    return [{ role: 'primary', pid: process.pid, rssBytes: process.memoryUsage.rss(), restarts: (await restarts.get()).values[0]?.value ?? 0, directory: directory.size, cacheEntries: cache.size }, ...out];
  };

  const nodeMetrics = async (): Promise<string> => {
    processesUp.set(liveSlots().length);
    const [workers, own] = await Promise.all([aggregator.clusterMetrics(), registry.metrics()]);
    return `${workers}\n${own}`;
  };

  const onMessage = (slot: Slot, worker: Worker, m: ToPrimary): void => {
    if (slot.worker !== worker) return;
    switch (m.lk) {
      case 'bus':
        // Every process, the sender included (bus.ts contract).
        toAll(m);
        return;
      case 'claim': {
        const prev = directory.get(m.key);
        directory.set(m.key, slot.index);
        if (prev !== undefined && prev !== slot.index) {
          const other = slots[prev]?.worker;
          if (other) send(other, { lk: 'replace', key: m.key, at: m.at } satisfies ToGateway);
        }
        return;
      }
      case 'release':
        if (directory.get(m.key) === slot.index) directory.delete(m.key);
        return;
      case 'req':
        answer(worker, m.id, () => gatewayRequest(m.op, m.args));
        return;
      case 'reply':
        slot.requester?.settle(m);
        return;
      case 'ready':
        slot.ready = true;
        slot.served = true;
        slot.pid = m.pid;
        if (m.adminPort !== null) adminPort = m.adminPort;
        log.info({ process: slot.index, pid: m.pid }, 'gateway process serving');
        if (slots.every((s) => s.served)) resolveStarted();
        return;
      case 'failed':
        if (!slot.served) {
          // Before it ever served: the same cause would stop every restart. Stop the node.
          fail(new LatchkeyError(m.code, `gateway process ${slot.index}: ${m.message}`));
        } else {
          log.error({ process: slot.index, code: m.code, err: m.message }, 'gateway process failed');
        }
        return;
    }
  };

  const fork = (slot: Slot): void => {
    slot.restartTimer = null;
    const env: NodeProcessEnv = { index: slot.index, count, port, nodeId };
    const worker = cluster.fork({ ...allocator.env, [NODE_PROCESS_ENV]: JSON.stringify(env) });
    slot.worker = worker;
    slot.requester = new Requester<GatewayOp>(worker);
    slot.ready = false;
    slot.startedAt = Date.now();
    slot.pid = worker.process.pid ?? null;
    worker.on('message', (m: unknown) => {
      if (isLkMessage(m)) onMessage(slot, worker, m as ToPrimary);
    });
    worker.on('exit', (code, signal) => onExit(slot, worker, code, signal));
  };

  const onExit = (slot: Slot, worker: Worker, code: number | null, signal: string | null): void => {
    if (slot.worker !== worker) return;
    slot.worker = null;
    slot.ready = false;
    slot.requester?.failAll('process exited');
    slot.requester = null;
    for (const [k, i] of directory) if (i === slot.index) directory.delete(k);
    if (stopping) {
      if (slots.every((s) => !s.worker)) finish();
      return;
    }
    if (!slot.served) {
      fail(new LatchkeyError('LK_NODE_PROCESS_FAILED', `gateway process ${slot.index} exited while starting (code ${code}, signal ${signal})`));
      return;
    }
    const upMs = Date.now() - slot.startedAt;
    slot.quickCrashes = upMs < HEALTHY_AFTER_MS ? slot.quickCrashes + 1 : 1;
    if (slot.quickCrashes > MAX_QUICK_CRASHES) {
      fail(new LatchkeyError('LK_NODE_PROCESS_FAILED', `gateway process ${slot.index} died ${slot.quickCrashes} times within a minute of starting (last: code ${code}, signal ${signal})`));
      return;
    }
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** (slot.quickCrashes - 1));
    restarts.inc();
    log.warn({ process: slot.index, pid: slot.pid, code, signal, restartInMs: delay }, 'gateway process died; restarting it (its endpoints reconnect to the other processes meanwhile)');
    slot.restartTimer = setTimeout(() => fork(slot), delay);
  };

  const finish = (): void => {
    clearInterval(counts);
    cache.close().catch(() => undefined);
    resolveStopped(exitCode);
  };

  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping the node: draining every gateway process');
    for (const s of slots) {
      if (s.restartTimer) clearTimeout(s.restartTimer);
      s.restartTimer = null;
    }
    const alive = slots.filter((s) => s.worker);
    if (alive.length === 0) return finish();
    // Each process drains as a single-process node does (shutdownGraceMs), then exits.
    for (const s of alive) s.worker!.process.kill('SIGTERM');
    const hard = setTimeout(() => {
      for (const s of slots) if (s.worker) s.worker.process.kill('SIGKILL');
      exitCode = exitCode || 1;
    }, config.shutdownGraceMs + 10_000);
    hard.unref();
  };

  const fail = (err: LatchkeyError): void => {
    log.error({ err, code: err.code }, `${err.code}: ${err.message}; stopping the node`);
    exitCode = 1;
    rejectStarted(err);
    stop('failure');
  };

  // Each process announces the node to the bootstrap registry with the node's session count.
  const counts = setInterval(() => toAll({ lk: 'nodeSessions', n: directory.size }), config.nodeHeartbeatMs);
  counts.unref();
  cluster.setupPrimary({ exec: process.argv[1]!, args: process.argv.slice(2) });
  for (const s of slots) fork(s);
  try {
    await started;
  } catch (err) {
    // Stopping already: wait until every process is gone, so the caller exits with nothing left behind.
    await stopped;
    throw err;
  }
  processesUp.set(count);
  return { port, adminPort, firstApiKey, stopped, stop };
}

