/**
 * The coordinator's side of bench/sessions' load generators (bench/lib/sessions-gen.ts): plan the
 * slices and source addresses, fork the processes, send commands, wait (bounded) for their answers
 * and add up their once-a-second ticks. Messages: bench/lib/sessions-ipc.ts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../../test/helpers/root.js';
import { children } from './run.js';
import { histMerge, newHist, type FromGen, type GenConfig, type Tick, type ToGen } from './sessions-ipc.js';

/**
 * Sessions per generator process at most: the open-file limit is 20,000 per process; the rest is
 * Node's own descriptors, the IPC pipe and sockets still closing.
 */
export const MAX_SESSIONS_PER_GENERATOR = 18_000;
/**
 * Sessions per loopback source address at most: a generator picks source ports itself, cycling
 * over 31,743 (1025-32767, below the ephemeral range) per address (bench/lib/sessions-gen.ts), and a reconnect storm holds
 * the old sockets' ports while new ones connect.
 */
export const MAX_SESSIONS_PER_ADDRESS = 9_000;

export interface FleetPlan {
  generators: number;
  slices: Array<{ from: number; to: number; addresses: string[] }>;
}

/** Slices of [0, sessions) over ceil(sessions / 18,000) generators (at least `minGenerators`), addresses 127.0.0.2 upwards. */
export function planFleet(sessions: number, minGenerators: number): FleetPlan {
  const generators = Math.max(minGenerators, Math.ceil(sessions / MAX_SESSIONS_PER_GENERATOR));
  const per = Math.ceil(sessions / generators);
  const perAddressCount = Math.max(1, Math.ceil(per / MAX_SESSIONS_PER_ADDRESS));
  const slices: FleetPlan['slices'] = [];
  let next = 2; // 127.0.0.2: 127.0.0.1 stays for everything else on the box
  for (let g = 0; g < generators; g++) {
    const from = g * per;
    const to = Math.min(sessions, from + per);
    if (from >= to) break;
    const addresses: string[] = [];
    for (let a = 0; a < perAddressCount; a++, next++) {
      if (next > 254) throw new Error('more than 253 loopback source addresses needed');
      addresses.push(`127.0.0.${next}`);
    }
    slices.push({ from, to, addresses });
  }
  return { generators: slices.length, slices };
}

interface Gen {
  id: number;
  child: ChildProcess;
  slice: FleetPlan['slices'][number];
  tick: Tick | null;
  progress: string;
  exited: boolean;
}

type Waiter = { type: FromGen['t']; got: Map<number, FromGen>; resolve: () => void };

export class Fleet {
  readonly gens: Gen[] = [];
  private waiters: Waiter[] = [];
  private failure: Error | null = null;

  constructor(readonly plan: FleetPlan, common: Omit<GenConfig, 'id' | 'from' | 'to' | 'addresses'>, private readonly log: (s: string) => void) {
    const script = path.join(ROOT, 'dist/bench/lib/sessions-gen.js');
    plan.slices.forEach((slice, id) => {
      const cfg: GenConfig = { ...common, id, from: slice.from, to: slice.to, addresses: slice.addresses };
      const child = fork(script, [], {
        env: { ...process.env, SESSIONS_GEN: JSON.stringify(cfg) },
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        execArgv: ['--enable-source-maps'],
      });
      const g: Gen = { id, child, slice, tick: null, progress: '', exited: false };
      children.add({ kill: () => child.kill('SIGKILL') });
      child.on('message', (m: FromGen) => this.onMessage(g, m));
      child.on('exit', (code, signal) => {
        g.exited = true;
        if (!this.stopping) this.fail(new Error(`generator ${id} exited (${code ?? signal})`));
      });
      this.gens.push(g);
    });
  }

  private stopping = false;

  get pids(): number[] {
    return this.gens.map((g) => g.child.pid!).filter(Boolean);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiters) w.resolve();
  }

  private onMessage(g: Gen, m: FromGen): void {
    if (m.t === 'tick') {
      if (m.seq === this.seq) g.tick = m; // a tick of the phase before is stale
    }
    else if (m.t === 'progress') g.progress = `${m.what} ${m.done}/${m.of}`;
    else if (m.t === 'error') this.fail(new Error(`generator ${g.id}: ${m.message}`));
    for (const w of this.waiters) {
      if (w.type !== m.t) continue;
      w.got.set(g.id, m);
      if (w.got.size === this.gens.length) w.resolve();
    }
  }

  private seq = 0;

  /** Send `m` to every generator (a connect gets the next phase number; ticks of earlier phases are dropped). */
  send(m: ToGen | Omit<Extract<ToGen, { t: 'connect' }>, 'seq'>): void {
    let msg = m as ToGen;
    if (m.t === 'connect') {
      this.seq++;
      for (const g of this.gens) g.tick = null;
      msg = { ...m, seq: this.seq };
    }
    for (const g of this.gens) if (!g.exited) g.child.send(msg);
  }

  /**
   * Send `m` (if given) and wait until every generator answered with a `type` message, printing
   * `label` progress once a second; at most `timeoutMs`.
   */
  async ask<T extends FromGen['t']>(m: ToGen | null, type: T, timeoutMs: number, label: string): Promise<Array<Extract<FromGen, { t: T }>>> {
    const w: Waiter = { type, got: new Map(), resolve: () => undefined };
    for (const g of this.gens) g.progress = '';
    const done = new Promise<void>((r) => (w.resolve = r));
    this.waiters.push(w);
    if (m) this.send(m);
    const t0 = Date.now();
    const progress = setInterval(() => {
      const busy = this.gens.filter((g) => !w.got.has(g.id));
      const sample = busy.slice(0, 3).map((g) => `g${g.id}: ${g.progress || '...'}`).join(', ');
      this.log(`${label}: ${w.got.size}/${this.gens.length} generators done (${((Date.now() - t0) / 1000).toFixed(0)} s)${sample ? `; ${sample}` : ''}`);
    }, 1000);
    let timer: NodeJS.Timeout | null = null;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    try {
      await Promise.race([done, timeout]);
    } finally {
      clearInterval(progress);
      if (timer) clearTimeout(timer);
      this.waiters = this.waiters.filter((x) => x !== w);
    }
    if (this.failure) throw this.failure;
    if (w.got.size < this.gens.length) throw new Error(`${label}: ${this.gens.length - w.got.size} generators did not answer '${type}' within ${timeoutMs} ms`);
    return this.gens.map((g) => w.got.get(g.id)) as Array<Extract<FromGen, { t: T }>>;
  }

  check(): void {
    if (this.failure) throw this.failure;
  }

  /** The latest ticks added up (failures and errors by outcome). */
  totals(): Tick {
    const sum: Tick = {
      t: 'tick', id: -1, seq: this.seq, at: 0, established: 0, attempts: 0, inflight: 0, accepted: 0, failures: {}, terminal: 0, lost: 0, back: 0, firstBackAt: 0, allBackAt: 0, lastAcceptAt: 0,
      pingsSent: 0, pongs: 0, pingTimeouts: 0, resigned: 0, confirmationsChecked: 0, confirmationsBad: 0, errors: {}, cpuUs: 0, rssBytes: 0,
      resumesOnSpot: 0, acceptedResumed: 0, resumeFallbacks: 0, ticketsAsked: 0, ticketsReceived: 0, ticketsHeld: 0, pacedWaitMs: 0,
    };
    let allBack = true;
    for (const g of this.gens) {
      const x = g.tick;
      if (!x) {
        allBack = false;
        continue;
      }
      for (const k of ['established', 'attempts', 'inflight', 'accepted', 'terminal', 'lost', 'back', 'pingsSent', 'pongs', 'pingTimeouts', 'resigned', 'confirmationsChecked', 'confirmationsBad', 'cpuUs', 'rssBytes',
        'resumesOnSpot', 'acceptedResumed', 'resumeFallbacks', 'ticketsAsked', 'ticketsReceived', 'ticketsHeld', 'pacedWaitMs'] as const) {
        sum[k] += x[k] ?? 0;
      }
      for (const [k, v] of Object.entries(x.failures)) sum.failures[k] = (sum.failures[k] ?? 0) + v;
      for (const [k, v] of Object.entries(x.errors)) sum.errors[k] = (sum.errors[k] ?? 0) + v;
      sum.at = Math.max(sum.at, x.at);
      sum.lastAcceptAt = Math.max(sum.lastAcceptAt, x.lastAcceptAt);
      if (x.firstBackAt > 0) sum.firstBackAt = sum.firstBackAt === 0 ? x.firstBackAt : Math.min(sum.firstBackAt, x.firstBackAt);
      if (x.allBackAt === 0) allBack = false;
      sum.allBackAt = Math.max(sum.allBackAt, x.allBackAt);
    }
    if (!allBack) sum.allBackAt = 0;
    return sum;
  }

  /** Round-trip histogram of every generator since the last mark (and start a new one). */
  async mark(timeoutMs = 10_000): Promise<{ hist: Uint32Array; samples: number }> {
    const replies = await this.ask({ t: 'mark' }, 'marked', timeoutMs, 'mark');
    const hist = newHist();
    let samples = 0;
    for (const r of replies) {
      histMerge(hist, r.hist);
      samples += r.samples;
    }
    return { hist, samples };
  }

  /** Ask every generator to exit; SIGKILL the ones still there after `timeoutMs`. */
  async stop(timeoutMs = 5000): Promise<void> {
    this.stopping = true;
    this.send({ t: 'exit' });
    const until = Date.now() + timeoutMs;
    while (Date.now() < until && this.gens.some((g) => !g.exited)) await new Promise((r) => setTimeout(r, 50));
    for (const g of this.gens) if (!g.exited) g.child.kill('SIGKILL');
  }
}
