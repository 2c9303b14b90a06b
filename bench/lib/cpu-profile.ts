/**
 * Self time by function from a V8 CPU profile (node --cpu-prof), optionally within a window of the
 * profile's clock: where a server spent a bench phase. The benches that write
 * phaseWindowsMonotonicUs (bench/handshake) give the window on the same clock (CLOCK_MONOTONIC µs:
 * process.hrtime in the bench, V8's TimeTicks in the server).
 *
 *   node dist/bench/lib/cpu-profile.js FILE.cpuprofile [--from US --to US | --window RESULT.json:PHASE] [--top 30]
 *
 * Prints the share of samples by kind ((idle), (garbage collector), (program): native code V8 cannot
 * attribute to a JS frame, e.g. uWS, OpenSSL and syscalls called from C++; latchkey's src/; its
 * dependencies; node: internals) and the top functions by self time. Sampling: one stack every
 * --cpu-prof-interval (1 ms by default), so a phase of a few seconds is a few thousand samples.
 */
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTimeRow {
  name: string;
  where: string;
  kind: string;
  us: number;
  share: number;
}

export interface SelfTimeReport {
  samples: number;
  /** µs of samples in the window (idle included). */
  totalUs: number;
  /** µs not idle. */
  busyUs: number;
  byKind: Record<string, { us: number; share: number }>;
  top: SelfTimeRow[];
  /** Functions by total time (self + what they called; each function counted once per sample). */
  inclusive: SelfTimeRow[];
}

function kindOf(f: ProfileNode['callFrame']): string {
  const n = f.functionName;
  if (n === '(idle)') return 'idle';
  if (n === '(garbage collector)') return 'gc';
  if (n === '(program)' || n === '(root)') return 'native (program)';
  const u = f.url;
  if (!u) return 'native (program)';
  if (u.startsWith('node:')) return 'node internals';
  if (u.includes('/node_modules/')) return `dependency: ${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)?.[1] ?? '?'}`;
  if (u.includes('/dist/src/') || u.includes('/src/')) return 'latchkey';
  return 'other JS';
}

/** Self time per function within [fromUs, toUs] of the profile's clock (whole profile when omitted); shares are of busy (non-idle) time. */
export function selfTime(p: Profile, fromUs = -Infinity, toUs = Infinity, top = 30): SelfTimeReport {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let t = p.startTime;
  let samples = 0;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < fromUs || t > toUs) continue;
    // A sample stands for the time until the next one.
    const next = p.timeDeltas[i + 1] ?? 0;
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + next);
    samples++;
    total += next;
  }
  const keyOf = (f: ProfileNode['callFrame']): { key: string; where: string } => {
    const where = f.url ? `${f.url.replace(/^.*\/(dist\/|node_modules\/)/, '$1')}:${f.lineNumber + 1}` : '';
    return { key: `${f.functionName}|${where}`, where };
  };
  const incl = new Map<string, SelfTimeRow>();
  for (const [id, us] of self) {
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      if (f.functionName === '(root)') break;
      const { key, where } = keyOf(f);
      if (seen.has(key)) continue;
      seen.add(key);
      const r = incl.get(key) ?? { name: f.functionName || '(anonymous)', where, kind: kindOf(f), us: 0, share: 0 };
      r.us += us;
      incl.set(key, r);
    }
  }
  const rows = new Map<string, SelfTimeRow>();
  const kinds = new Map<string, number>();
  let idle = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const kind = kindOf(f);
    if (kind === 'idle') {
      idle += us;
      continue;
    }
    kinds.set(kind, (kinds.get(kind) ?? 0) + us);
    const { key, where } = keyOf(f);
    const r = rows.get(key) ?? { name: f.functionName || '(anonymous)', where, kind, us: 0, share: 0 };
    r.us += us;
    rows.set(key, r);
  }
  const busy = total - idle;
  const share = (us: number): number => +((100 * us) / Math.max(1, busy)).toFixed(1);
  const list = [...rows.values()].sort((a, b) => b.us - a.us).slice(0, top).map((r) => ({ ...r, us: Math.round(r.us), share: share(r.us) }));
  return {
    samples,
    totalUs: Math.round(total),
    busyUs: Math.round(busy),
    byKind: Object.fromEntries([...kinds].sort((a, b) => b[1] - a[1]).map(([k, us]) => [k, { us: Math.round(us), share: share(us) }])),
    top: list,
    inclusive: [...incl.values()].sort((a, b) => b.us - a.us).slice(0, top).map((r) => ({ ...r, us: Math.round(r.us), share: share(r.us) })),
  };
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: cpu-profile.js FILE.cpuprofile [--from US --to US | --window RESULT.json:PHASE] [--top N]');
  const opt = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  let from = opt('from') ? Number(opt('from')) : -Infinity;
  let to = opt('to') ? Number(opt('to')) : Infinity;
  const win = opt('window');
  if (win) {
    const at = win.lastIndexOf(':');
    const result = JSON.parse(fs.readFileSync(win.slice(0, at), 'utf8')) as { phaseWindowsMonotonicUs?: Record<string, [number, number]> };
    const w = result.phaseWindowsMonotonicUs?.[win.slice(at + 1)];
    if (!w) throw new Error(`no phase ${win.slice(at + 1)} in ${win.slice(0, at)}'s phaseWindowsMonotonicUs`);
    [from, to] = w;
  }
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const r = selfTime(p, from, to, Number(opt('top') ?? 30));
  if (r.samples === 0) throw new Error(`no samples in [${from}, ${to}]; the profile covers [${p.startTime}, ${p.endTime}]`);
  process.stdout.write(`${r.samples} samples, ${(r.totalUs / 1000).toFixed(0)} ms, busy ${(r.busyUs / 1000).toFixed(0)} ms (${((100 * r.busyUs) / Math.max(1, r.totalUs)).toFixed(0)}%)\n\nby kind (% of busy):\n`);
  for (const [k, v] of Object.entries(r.byKind)) process.stdout.write(`  ${v.share.toFixed(1).padStart(5)}%  ${(v.us / 1000).toFixed(1).padStart(8)} ms  ${k}\n`);
  process.stdout.write('\ntop functions by self time (% of busy):\n');
  for (const row of r.top) process.stdout.write(`  ${row.share.toFixed(1).padStart(5)}%  ${(row.us / 1000).toFixed(1).padStart(8)} ms  ${row.name}  ${row.where}\n`);
  process.stdout.write('\ntop functions by total time, self + callees (% of busy):\n');
  for (const row of r.inclusive) process.stdout.write(`  ${row.share.toFixed(1).padStart(5)}%  ${(row.us / 1000).toFixed(1).padStart(8)} ms  ${row.name}  ${row.where}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`cpu-profile: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
