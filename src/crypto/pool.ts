/**
 * Typed wrapper around the piscina pool of crypto workers (worker.ts).
 *
 * Admission control: when more than `maxQueue` handshakes wait for a worker, new ones are refused
 * at once (LK_SERVER_BUSY -> CONNACK REFUSE_SERVER_UNAVAILABLE) instead of queueing without bound:
 * under overload a fast refusal lets endpoints back off, while a long queue makes every handshake
 * time out.
 */
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { LatchkeyError } from '../errors.js';
import type { HandshakeOutcome, HandshakeTask, WorkerInit } from './worker.js';

export interface CryptoPoolOptions {
  keyDir: string;
  /** 0: one per available CPU. */
  threads: number;
  maxQueue: number;
  endpointKeyCacheMax?: number;
}

/** Compiled worker next to this module (dist), or the build output when running from src (vitest). */
function workerFile(): string {
  const sibling = new URL('./worker.js', import.meta.url);
  if (fs.existsSync(fileURLToPath(sibling))) return sibling.href;
  const built = new URL('../../dist/src/crypto/worker.js', import.meta.url);
  if (fs.existsSync(fileURLToPath(built))) return built.href;
  throw new LatchkeyError('LK_INTERNAL', 'crypto worker not built: run `npm run build`');
}

export class CryptoPool {
  private readonly pool: Piscina;
  private readonly maxQueue: number;
  private closed = false;
  /** Tasks handed to the workers since start (tests use it to prove refusals cost no RSA work). */
  tasksRun = 0;

  constructor(opts: CryptoPoolOptions) {
    const threads = opts.threads > 0 ? opts.threads : Math.max(1, os.availableParallelism());
    const workerData: WorkerInit = { keyDir: opts.keyDir, endpointKeyCacheMax: opts.endpointKeyCacheMax ?? 50_000 };
    this.maxQueue = opts.maxQueue;
    this.pool = new Piscina({
      filename: workerFile(),
      name: 'handshake',
      workerData,
      minThreads: threads,
      maxThreads: threads,
      // Piscina's own bound is a backstop; run() checks first so overload is a coded refusal.
      maxQueue: opts.maxQueue + threads,
      idleTimeout: 0,
    });
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  get queueSize(): number {
    return this.pool.queueSize;
  }

  async handshake(task: HandshakeTask): Promise<HandshakeOutcome> {
    if (this.closed) throw new LatchkeyError('LK_SERVER_SHUTDOWN');
    if (this.pool.queueSize >= this.maxQueue) throw new LatchkeyError('LK_SERVER_BUSY', 'crypto queue full');
    this.tasksRun++;
    try {
      return (await this.pool.run(task, { name: 'handshake' })) as HandshakeOutcome;
    } catch (err) {
      throw new LatchkeyError('LK_INTERNAL', `crypto worker: ${(err as Error).message}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.close();
  }
}
