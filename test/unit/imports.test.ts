/**
 * The layer rules of CONTRIBUTING.md ("Layout and layers"), checked on the source: every relative
 * import of a file under src/ goes to its own folder or to a folder of a lower layer (arrows point
 * down), there is no import cycle between files, the SDK imports nothing of the server (only its own
 * files and the browser-safe wire schemas), and the Administration UI nothing but its own files and
 * the SDK (both run in browsers).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/root.js';

const SRC = path.join(ROOT, 'src');

/** Layer of each top-level folder or file of src/ (1 = ground). Keep in step with CONTRIBUTING.md. */
export const LAYERS: Record<string, number> = {
  'errors.ts': 1, 'fatal.ts': 1, 'metrics.ts': 1,
  protocol: 2, plugins: 2, config: 2, net: 2, redis: 2,
  crypto: 3, sdk: 3, store: 3, bus: 3, cluster: 3,
  ui: 4, tenancy: 4, events: 4, protection: 4, ipc: 4,
  registration: 5, cache: 5,
  ownership: 6, credentials: 6,
  session: 7,
  bootstrap: 8, control: 8,
  transport: 9, 'backends.ts': 9,
  admin: 10,
  'server.ts': 11,
  node: 12,
  cli: 13,
  'main.ts': 14,
};

function sources(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (/\.ts$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative imports (and re-exports) of a file, type-only ones included, as absolute .ts paths. */
function imports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'(\.{1,2}\/[^']+)'|import\(\s*'(\.{1,2}\/[^']+)'\s*\)/gm)) {
    const spec = (m[1] ?? m[2])!;
    const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
    if (fs.existsSync(target)) out.push(target);
  }
  return out;
}

const top = (file: string): string => path.relative(SRC, file).split(path.sep)[0]!;

const files = sources(SRC);
const graph = new Map(files.map((f) => [f, imports(f)]));
const rel = (f: string): string => path.relative(ROOT, f);

/** What the SDK may take from the server's tree: data and types only, no Node API. */
const BROWSER_SAFE_PROTOCOL = ['src/protocol/wire-schemas.ts', 'src/protocol/wire-types.ts', 'src/protocol/constants.ts'];

function upward(g: Map<string, string[]>): string[] {
  const up: string[] = [];
  for (const [f, deps] of g) {
    for (const d of deps) {
      const a = top(f);
      const b = top(d);
      if (a !== b && !(LAYERS[b]! < LAYERS[a]!)) up.push(`${rel(f)} (layer ${LAYERS[a]}) -> ${rel(d)} (layer ${LAYERS[b]})`);
    }
  }
  return up;
}

describe('layers and imports', () => {
  it('every top-level folder and file of src/ has a layer', () => {
    const tops = [...new Set(files.map(top))].sort();
    expect(tops.filter((t) => LAYERS[t] === undefined)).toEqual([]);
  });

  it('arrows point down: an import goes to its own folder or to a lower layer', () => {
    expect(upward(graph)).toEqual([]);
  });

  it('the check catches an upward import (a made-up errors.ts -> server.ts)', () => {
    const fake = new Map(graph);
    fake.set(path.join(SRC, 'errors.ts'), [path.join(SRC, 'server.ts')]);
    expect(upward(fake)).toEqual(['src/errors.ts (layer 1) -> src/server.ts (layer 11)']);
  });

  it('no import cycle between files', () => {
    const state = new Map<string, 1 | 2>();
    const cycles: string[] = [];
    const stack: string[] = [];
    const visit = (f: string): void => {
      state.set(f, 1);
      stack.push(f);
      for (const d of graph.get(f) ?? []) {
        if (state.get(d) === 1) cycles.push([...stack.slice(stack.indexOf(d)), d].map(rel).join(' -> '));
        else if (!state.has(d)) visit(d);
      }
      stack.pop();
      state.set(f, 2);
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it('the SDK imports only its own files, the wire schemas and the protocol constants; the UI only its own files and the SDK (browser code)', () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      for (const d of deps) {
        if (top(f) === 'sdk' && top(d) !== 'sdk' && !BROWSER_SAFE_PROTOCOL.includes(rel(d))) bad.push(`${rel(f)} -> ${rel(d)}`);
        if (top(f) === 'ui' && top(d) !== 'ui' && top(d) !== 'sdk') bad.push(`${rel(f)} -> ${rel(d)}`);
      }
    }
    expect(bad).toEqual([]);
  });

});
