/** What every command prints: a table on stdout, or with --json the whole value as JSON. */
import { jsonReplacer } from '../transport/http.js';
import type { Parsed } from './args.js';

/** Print `value` as JSON (Buffers as base64) with --json, else `table` with upper-case headers. */
export function print(p: Parsed, value: unknown, table: Array<Record<string, unknown>>): void {
  if (p.bools.has('json')) {
    process.stdout.write(JSON.stringify(value, jsonReplacer, 2) + '\n');
    return;
  }
  if (table.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cols = Object.keys(table[0]!);
  const cell = (v: unknown): string => (v === null || v === undefined ? '-' : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...table.map((r) => cell(r[c]).length)));
  const line = (vals: string[]): string => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd() + '\n';
  process.stdout.write(line(cols.map((c) => c.toUpperCase())));
  for (const r of table) process.stdout.write(line(cols.map((c) => cell(r[c]))));
}
