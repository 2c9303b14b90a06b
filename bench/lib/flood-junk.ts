/**
 * The junk generators of bench/flood as child processes (bench/lib/flood-generator.ts, one per
 * `count`), driven over their IPC channels: load frames once, run phases, merge what they report.
 * A phase's rate and source addresses are split between the generators (addresses dealt out in
 * turn when there are at least as many as generators, else every generator uses all of them).
 * Every wait is bounded; stop() kills what is left. The children exit when this process goes away
 * (their IPC channel closes).
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../../test/helpers/root.js';
import type { DoneMessage, JunkKindFrames, RunSpec, TickMessage } from './flood-generator.js';

export type { JunkKindFrames };

const SCRIPT = path.join(ROOT, 'dist/bench/lib/flood-generator.js');

export interface JunkPhaseSpec {
  label: string;
  port: number;
  addresses: string[];
  /** Attempts per second, all generators together; 0 = as fast as they can. */
  rate: number;
  seconds: number;
  /** In-flight cap per generator. */
  inflight: number;
  timeoutMs: number;
}

export interface JunkPhaseResult {
  label: string;
  seconds: number;
  started: number;
  finished: number;
  skipped: number;
  abandoned: number;
  /** finished attempts per second over the phase */
  perSec: number;
  outcomes: Record<string, Record<string, number>>;
  /** outcome -> count, all kinds together */
  byOutcome: Record<string, number>;
  latencyMs: { p50: number; p99: number; max: number };
  generatorCpuUs: number;
  /** each second: finished attempts (all generators) */
  perSecond: number[];
}

interface Gen {
  child: ChildProcess;
  pid: number;
  exited: Promise<void>;
  waiters: Map<string, (m: unknown) => void>;
  onTick: ((t: TickMessage) => void) | null;
}

function addOutcomes(into: Record<string, Record<string, number>>, add: Record<string, Record<string, number>>): void {
  for (const [kind, outs] of Object.entries(add)) {
    const k = (into[kind] ??= {});
    for (const [o, n] of Object.entries(outs)) k[o] = (k[o] ?? 0) + n;
  }
}

export class JunkGenerators {
  private constructor(private readonly gens: Gen[]) {}

  /** Live counters of the running phase (sums of the ticks received so far). */
  live = { started: 0, finished: 0, skipped: 0, inflight: new Map<number, number>(), outcomes: {} as Record<string, Record<string, number>> };

  get pids(): number[] {
    return this.gens.map((g) => g.pid);
  }

  static async start(count: number, timeoutMs = 10_000): Promise<JunkGenerators> {
    const gens = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        new Promise<Gen>((resolve, reject) => {
          const child = fork(SCRIPT, [], { serialization: 'advanced', env: { ...process.env, FLOOD_GENERATOR_ID: String(i) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
          const exited = new Promise<void>((r) => child.once('exit', () => r()));
          const g: Gen = { child, pid: child.pid!, exited, waiters: new Map(), onTick: null };
          const timer = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`flood generator ${i} did not start within ${timeoutMs} ms`));
          }, timeoutMs);
          child.on('message', (m: { type: string }) => {
            if (m.type === 'hello') {
              clearTimeout(timer);
              resolve(g);
            } else if (m.type === 'tick') g.onTick?.(m as TickMessage);
            else g.waiters.get(m.type)?.(m);
          });
          void exited.then(() => {
            clearTimeout(timer);
            reject(new Error(`flood generator ${i} exited (${child.exitCode ?? child.signalCode})`));
          });
        }),
      ),
    );
    return new JunkGenerators(gens);
  }

  private wait<T>(g: Gen, type: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        g.waiters.delete(type);
        reject(new Error(`flood generator ${g.pid}: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      g.waiters.set(type, (m) => {
        clearTimeout(timer);
        g.waiters.delete(type);
        resolve(m as T);
      });
      void g.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`flood generator ${g.pid} exited while waiting for '${type}'`));
      });
    });
  }

  async load(kinds: JunkKindFrames[]): Promise<void> {
    await Promise.all(
      this.gens.map((g) => {
        const p = this.wait(g, 'ready', 30_000);
        g.child.send({ type: 'frames', kinds });
        return p;
      }),
    );
  }

  /** Run one phase on every generator; resolves when all reported 'done' (bounded). */
  async run(spec: JunkPhaseSpec): Promise<JunkPhaseResult> {
    const G = this.gens.length;
    const perSecond: number[] = [];
    this.live = { started: 0, finished: 0, skipped: 0, inflight: new Map(), outcomes: {} };
    const live = this.live;
    const dones = this.gens.map((g, i) => {
      const addresses = spec.addresses.length >= G ? spec.addresses.filter((_, j) => j % G === i) : spec.addresses;
      const rs: RunSpec = {
        label: spec.label, port: spec.port, addresses, rate: spec.rate > 0 ? Math.max(1, Math.round(spec.rate / G)) : 0, seconds: spec.seconds,
        inflight: spec.inflight, timeoutMs: spec.timeoutMs,
      };
      g.onTick = (t) => {
        live.started += t.started;
        live.finished += t.finished;
        live.skipped += t.skipped;
        live.inflight.set(g.pid, t.inflight);
        addOutcomes(live.outcomes, t.outcomes);
        perSecond[t.second - 1] = (perSecond[t.second - 1] ?? 0) + t.finished;
      };
      const p = this.wait<DoneMessage>(g, 'done', (spec.seconds + 30) * 1000 + spec.timeoutMs);
      g.child.send({ type: 'run', phase: rs });
      return p;
    });
    const all = await Promise.all(dones);
    for (const g of this.gens) g.onTick = null;
    const outcomes: Record<string, Record<string, number>> = {};
    for (const d of all) addOutcomes(outcomes, d.outcomes);
    const byOutcome: Record<string, number> = {};
    for (const outs of Object.values(outcomes)) for (const [o, n] of Object.entries(outs)) byOutcome[o] = (byOutcome[o] ?? 0) + n;
    const seconds = Math.max(...all.map((d) => d.seconds));
    const finished = all.reduce((n, d) => n + d.finished, 0);
    return {
      label: spec.label,
      seconds: +seconds.toFixed(3),
      started: all.reduce((n, d) => n + d.started, 0),
      finished,
      skipped: all.reduce((n, d) => n + d.skipped, 0),
      abandoned: all.reduce((n, d) => n + d.abandoned, 0),
      perSec: Math.round(finished / seconds),
      outcomes,
      byOutcome: Object.fromEntries(Object.entries(byOutcome).sort((a, b) => b[1] - a[1])),
      // The generators' percentiles, the worst of them (each generator sees its share of the same traffic).
      latencyMs: { p50: Math.max(...all.map((d) => d.latencyMs.p50)), p99: Math.max(...all.map((d) => d.latencyMs.p99)), max: Math.max(...all.map((d) => d.latencyMs.max)) },
      generatorCpuUs: all.reduce((n, d) => n + d.cpuUs, 0),
      perSecond: Array.from(perSecond, (v) => v ?? 0),
    };
  }

  /** End the running phase early (each generator then waits for its open attempts, bounded). */
  stopPhase(): void {
    for (const g of this.gens) if (g.child.connected) g.child.send({ type: 'stop' });
  }

  kill(): void {
    for (const g of this.gens) if (g.child.exitCode === null && g.child.signalCode === null) g.child.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    for (const g of this.gens) {
      if (g.child.exitCode !== null || g.child.signalCode !== null) continue;
      g.child.kill('SIGTERM');
    }
    const t = setTimeout(() => this.kill(), 5_000);
    await Promise.all(this.gens.map((g) => g.exited));
    clearTimeout(t);
  }
}
