/**
 * Readers for bench/flood: Prometheus text from the server's GET /metrics (parsed into series and
 * differenced between phases), and machine-wide CPU from /proc/stat (to say how much of the two
 * shared cores went to the server, the generators, the kernel's softirq work and everything else).
 */
import fs from 'node:fs';

/** One scrape: series key `name{label="v",...}` (labels as printed) -> value, and the parsed form. */
export interface Scrape {
  at: number;
  series: Array<{ name: string; labels: Record<string, string>; value: number }>;
  /** Metric names announced by a `# TYPE` line: a labelled counter has no series until first counted. */
  declared: Set<string>;
}

export function parsePrometheus(text: string): Scrape {
  const series: Scrape['series'] = [];
  const declared = new Set<string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) /.exec(line);
    if (t) declared.add(t[1]!);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2]) for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    series.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { at: Date.now(), series, declared };
}

function matches(labels: Record<string, string>, filter: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(filter)) if (labels[k] !== v) return false;
  return true;
}

/** Sum of the series of `name` matching `filter`; null when the server does not export that metric. */
export function metricSum(s: Scrape, name: string, filter: Record<string, string> = {}): number | null {
  let found = s.declared.has(name);
  let sum = 0;
  for (const x of s.series) {
    if (x.name !== name) continue;
    found = true;
    if (matches(x.labels, filter)) sum += x.value;
  }
  return found ? sum : null;
}

/** The series of `name` summed by the value of `label`; null when the server does not export that metric. */
export function metricBy(s: Scrape, name: string, label: string): Record<string, number> | null {
  let found = s.declared.has(name);
  const out: Record<string, number> = {};
  for (const x of s.series) {
    if (x.name !== name) continue;
    found = true;
    const k = x.labels[label] ?? '';
    out[k] = (out[k] ?? 0) + x.value;
  }
  return found ? out : null;
}

/** after - before, for a metricSum; null if either side lacks the metric. */
export function metricDelta(before: Scrape, after: Scrape, name: string, filter: Record<string, string> = {}): number | null {
  const a = metricSum(before, name, filter);
  const b = metricSum(after, name, filter);
  return a === null || b === null ? null : b - a;
}

/** after - before by label, zero entries dropped; null if the metric is absent. */
export function metricDeltaBy(before: Scrape, after: Scrape, name: string, label: string): Record<string, number> | null {
  const a = metricBy(before, name, label);
  const b = metricBy(after, name, label);
  if (a === null || b === null) return null;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) {
    const d = v - (a[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** Machine-wide CPU ticks (USER_HZ, 100/s on Linux) from the first line of /proc/stat. */
export interface MachineTicks {
  user: number;
  system: number;
  softirq: number;
  irq: number;
  steal: number;
  idle: number;
}

export function machineTicks(): MachineTicks {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return { user: f[0]! + f[1]!, system: f[2]!, idle: f[3]! + (f[4] ?? 0), irq: f[5] ?? 0, softirq: f[6] ?? 0, steal: f[7] ?? 0 };
}

/** CPU µs per category between two readings. */
export function machineDeltaUs(a: MachineTicks, b: MachineTicks): { busyUs: number; userUs: number; systemUs: number; softirqUs: number; stealUs: number; idleUs: number } {
  const us = (k: keyof MachineTicks): number => ((b[k] - a[k]) * 1e6) / 100;
  return {
    busyUs: us('user') + us('system') + us('irq') + us('softirq'),
    userUs: us('user'),
    systemUs: us('system'),
    softirqUs: us('softirq') + us('irq'),
    stealUs: us('steal'),
    idleUs: us('idle'),
  };
}
