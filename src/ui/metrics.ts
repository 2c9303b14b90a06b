/**
 * The Prometheus text format (GET /metrics on the admin listener), as far as the live view needs
 * it: sample lines `name{labels} value`, summed per metric name over the labels that match.
 */
export type Samples = Map<string, Array<{ labels: Record<string, string>; value: number }>>;

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c));
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    let list = out.get(m[1]!);
    if (!list) out.set(m[1]!, (list = []));
    list.push({ labels, value });
  }
  return out;
}

/** Sum of a metric's samples whose labels include `match` (0 when the metric is absent). */
export function total(s: Samples, name: string, match: Record<string, string> = {}): number {
  let sum = 0;
  for (const x of s.get(name) ?? []) {
    if (Object.entries(match).every(([k, v]) => x.labels[k] === v)) sum += x.value;
  }
  return sum;
}
