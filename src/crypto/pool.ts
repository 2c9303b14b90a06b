/**
 * Typed wrapper around the piscina pool of crypto workers (worker.ts).
 *
 * Admission control: a handshake is refused at once (LK_SERVER_BUSY -> CONNACK
 * REFUSE_SERVER_UNAVAILABLE) when it would wait for a worker longer than `maxWaitMs` (the queue
 * ahead of it divided by the rate the workers are measured to complete handshakes), or when
 * `maxQueue` handshakes already wait (a memory bound). Under overload a fast refusal lets endpoints
 * back off, while a queue longer than their CONNACK timeout makes every handshake time out. The
 * bound is a time, not a count, because what the queue may hold depends on how fast this machine
 * and these threads are: a reconnect storm after a restart is absorbed by the queue up to what the
 * workers can finish in time, instead of being refused after a fixed 2,048 and sent into the
 * endpoints' exponential backoff (bench/sessions, docs/performance.md "Reconnect storm").
 */
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { LatchkeyError } from '../errors.js';
import { packHandshakeBatch, type HandshakeOutcome, type HandshakeTask, type WorkerInit } from './worker.js';

export interface CryptoPoolOptions {
  keyDir: string;
  /** 0: one per available CPU minus one for the event loop, at least one. */
  threads: number;
  maxQueue: number;
  /** Longest expected wait for a worker a new handshake is queued for (ms); 0: only maxQueue bounds the queue. */
  maxWaitMs?: number;
  /** Most handshakes per worker task (default 32). */
  maxBatch?: number;
  endpointKeyCacheMax?: number;
  /** Nice value of the worker threads (worker.ts lowerPriority; 0: the process's). */
  nice?: number;
}

/** Compiled worker next to this module (dist), or the build output when running from src (vitest). */
function workerFile(): string {
  const sibling = new URL('./worker.js', import.meta.url);
  if (fs.existsSync(fileURLToPath(sibling))) return sibling.href;
  const built = new URL('../../dist/src/crypto/worker.js', import.meta.url);
  if (fs.existsSync(fileURLToPath(built))) return built.href;
  throw new LatchkeyError('LK_INTERNAL', 'crypto worker not built: run `npm run build`');
}

/**
 * A handle on one handshake in the pool, held by its session. `cancel()` (the connection closed, or
 * a ban ended it) drops the handshake before it reaches a worker, or, while its batch runs, makes
 * the worker skip its RSA decrypt (a shared byte it reads just before decrypting). Junk that is
 * banned or hangs up mid-handshake therefore costs at most the signature verify.
 */
export class CryptoTicket {
  private cancelled_ = false;
  private flags: Uint8Array | null = null;
  private index = -1;
  /** The key hash the CONNECT claims, once decoded (ban matching of handshaking sessions). */
  keyHash: string | null = null;
  /** Its RSA decrypt ran (handshake.ts): if the handshake is not accepted after all, that decrypt was spent for nothing. */
  decrypted = false;

  get cancelled(): boolean {
    return this.cancelled_;
  }

  cancel(): void {
    this.cancelled_ = true;
    if (this.flags) Atomics.store(this.flags, this.index, 1);
  }

  /** @internal pool.ts: the batch slot the worker reads. */
  attach(flags: Uint8Array | null, index: number): void {
    this.flags = flags;
    this.index = index;
    if (flags && this.cancelled_) Atomics.store(flags, index, 1);
  }
}

const INITIAL_RATE_PER_THREAD = 500;
const RATE_WINDOW_MS = 250;
const RATE_ALPHA = 0.3;

/** Outcome of a handshake dropped before any worker saw it (no RSA operation at all). */
export const ABANDONED_UNSENT: HandshakeOutcome = { ok: false, code: 'LK_HS_ABANDONED', detail: 'dropped before a crypto worker took it' };

interface Pending {
  task: HandshakeTask;
  ticket: CryptoTicket | null;
  resolve: (o: HandshakeOutcome) => void;
  reject: (e: unknown) => void;
}

/**
 * Handshakes go to the workers in batches: while a worker is free a handshake is sent at once
 * (batch of one, no added latency); while all are busy, handshakes wait here and the next free
 * worker takes up to `maxBatch` of them in one task. Per-task costs (two postMessages and a thread
 * wake-up) are then shared by the batch; see worker.ts for the measurements.
 */
export class CryptoPool {
  private readonly pool: Piscina;
  private readonly maxQueue: number;
  private readonly maxWaitMs: number;
  /**
   * Handshakes per second the pool completes while it has work (moving average of wall-clock
   * windows): what a queued handshake will actually see, including the CPU this process gets
   * beside the others on the machine (with 14 gateway processes on 2 cores, each worker completes
   * far fewer than its RSA time alone would say).
   */
  private rate: number;
  private windowStart = 0;
  private windowDone = 0;
  private readonly maxBatch: number;
  private readonly threadCount: number;
  private readonly waiting: Pending[] = [];
  private inFlight = 0;
  private pumpScheduled = false;
  private closed = false;
  /** Handshakes handed to the workers since start (tests use it to prove refusals cost no RSA work). */
  tasksRun = 0;
  /** Piscina tasks (batches) run since start. */
  batchesRun = 0;
  /** Handshakes whose RSA decrypt was skipped because their ticket was cancelled (connection gone). */
  abandoned = 0;

  constructor(opts: CryptoPoolOptions) {
    // Default: leave the event loop a core. During a reconnect storm the loop still has to serve
    // every live session (pings, syncs, closes); with one worker per core it competes with RSA for
    // CPU. Measured on the 2-core reference machine (docs/performance.md): 1 worker 1,190
    // handshakes/s at 1.45x the RSA floor per session, 2 workers 1,460/s at ~1.53x.
    const threads = opts.threads > 0 ? opts.threads : Math.max(1, os.availableParallelism() - 1);
    const workerData: WorkerInit = { keyDir: opts.keyDir, endpointKeyCacheMax: opts.endpointKeyCacheMax ?? 50_000, nice: opts.nice ?? 0 };
    this.maxQueue = opts.maxQueue;
    this.maxWaitMs = opts.maxWaitMs ?? 0;
    this.maxBatch = opts.maxBatch ?? 32;
    // A modest first guess (an RSA-2048 decrypt takes ~0.25-1 ms on one core); measured from the first full batch on.
    this.rate = threads * INITIAL_RATE_PER_THREAD;
    this.threadCount = threads;
    this.pool = new Piscina({
      filename: workerFile(),
      name: 'handshakeBatch',
      workerData,
      minThreads: threads,
      maxThreads: threads,
      // One task per thread at a time: batching happens here, where it can see the backlog.
      concurrentTasksPerWorker: 1,
      // Workers wait for tasks on their event loop instead of Atomics.wait: with batching, the two
      // measured within noise of each other on bench/handshake, 'disabled' slightly ahead
      // (ratioToFloor 1.62 vs 1.66 over 3,000 sessions).
      atomics: 'disabled',
      idleTimeout: 0,
    });
  }

  get threads(): number {
    return this.threadCount;
  }

  /** Handshakes waiting for a worker. */
  get queueSize(): number {
    return this.waiting.length;
  }

  /** Handshakes per second the pool is measured to complete while busy. */
  get measuredRate(): number {
    return this.rate;
  }

  /** True while a handshake queued now would be refused for its expected wait (the upgrade refuses it first: protection/admission.ts). */
  overloaded(): boolean {
    return this.maxWaitMs > 0 && this.waiting.length >= this.threadCount * this.maxBatch && this.expectedWaitMs() > this.maxWaitMs;
  }

  /**
   * Rate windows: from a batch's dispatch while the pool was idle, or from the end of the previous
   * window, to the completion that closes RATE_WINDOW_MS of busy time. A pool that goes idle (no
   * queue, nothing in flight) drops its open window: idle time is not throughput.
   */
  private measure(done: number, sentAt: number): void {
    const now = performance.now();
    if (this.windowStart === 0) this.windowStart = sentAt;
    this.windowDone += done;
    const elapsed = now - this.windowStart;
    if (elapsed >= RATE_WINDOW_MS) {
      const sample = (this.windowDone * 1000) / elapsed;
      this.rate += (sample - this.rate) * RATE_ALPHA;
      this.windowStart = now;
      this.windowDone = 0;
    }
    if (this.waiting.length === 0 && this.inFlight === 0) {
      this.windowStart = 0;
      this.windowDone = 0;
    }
  }

  /** Expected wait (ms) of a handshake queued now. */
  expectedWaitMs(): number {
    return ((this.waiting.length + 1) * 1000) / this.rate;
  }

  handshake(task: HandshakeTask, ticket: CryptoTicket | null = null): Promise<HandshakeOutcome> {
    if (this.closed) return Promise.reject(new LatchkeyError('LK_SERVER_SHUTDOWN'));
    if (this.waiting.length >= this.maxQueue) return Promise.reject(new LatchkeyError('LK_SERVER_BUSY', 'crypto queue full'));
    // A queue the workers take in one round never waits long; past that, the measured rate decides.
    if (this.maxWaitMs > 0 && this.waiting.length >= this.threadCount * this.maxBatch) {
      const waitMs = this.expectedWaitMs();
      if (waitMs > this.maxWaitMs) return Promise.reject(new LatchkeyError('LK_SERVER_BUSY', `crypto queue: ~${Math.round(waitMs)} ms to a worker`));
    }
    // A task that cannot be packed fails alone here, never the batch it would have joined.
    for (const f of [task.publicKey, task.sigInput, task.signature, task.wrappedSecret]) {
      if (f.byteLength > 0xffff) return Promise.reject(new LatchkeyError('LK_FRAME_MALFORMED', 'handshake field too large'));
    }
    this.tasksRun++;
    return new Promise<HandshakeOutcome>((resolve, reject) => {
      this.waiting.push({ task, ticket, resolve, reject });
      // Dispatch once per event-loop turn: uWS delivers every message that arrived in one epoll
      // wake-up in the same turn, so concurrent CONNECTs share one worker task at no added latency.
      if (!this.pumpScheduled) {
        this.pumpScheduled = true;
        setImmediate(() => {
          this.pumpScheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.inFlight < this.threadCount && this.waiting.length > 0) {
      const taken = this.waiting.splice(0, this.maxBatch);
      // Handshakes whose connection went while they waited never reach a worker.
      const batch: Pending[] = [];
      for (const p of taken) {
        if (p.ticket?.cancelled) {
          this.abandoned++;
          p.resolve(ABANDONED_UNSENT);
        } else batch.push(p);
      }
      if (batch.length === 0) continue;
      this.inFlight++;
      this.batchesRun++;
      const sentAt = performance.now();
      let packed: ReturnType<typeof packHandshakeBatch>;
      try {
        packed = packHandshakeBatch(batch.map((p) => p.task));
        if (batch.some((p) => p.ticket !== null)) {
          const flags = new Uint8Array(new SharedArrayBuffer(batch.length));
          packed.cancel = flags;
          batch.forEach((p, i) => p.ticket?.attach(flags, i));
        }
      } catch (err) {
        this.inFlight--;
        for (const p of batch) p.reject(new LatchkeyError('LK_INTERNAL', (err as Error).message, { cause: err }));
        continue;
      }
      this.pool.run(packed, { name: 'handshakeBatch', transferList: [packed.packed.buffer as ArrayBuffer] }).then(
        (outcomes: HandshakeOutcome[]) => {
          this.inFlight--;
          this.measure(batch.length, sentAt);
          batch.forEach((p, i) => {
            p.ticket?.attach(null, -1);
            const o = outcomes[i] ?? { ok: false, code: 'LK_INTERNAL', detail: 'missing outcome' };
            if (!o.ok && o.code === 'LK_HS_ABANDONED') this.abandoned++;
            p.resolve(o);
          });
          this.pump();
        },
        (err: unknown) => {
          this.inFlight--;
          const e = new LatchkeyError('LK_INTERNAL', `crypto worker: ${(err as Error).message}`, { cause: err });
          for (const p of batch) {
            p.ticket?.attach(null, -1);
            p.reject(e);
          }
          this.pump();
        },
      );
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.waiting.splice(0)) p.reject(new LatchkeyError('LK_SERVER_SHUTDOWN'));
    await this.pool.close();
  }
}
