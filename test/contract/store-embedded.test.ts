/**
 * EmbeddedStore (LMDB): the Store contract in a fresh temp directory, plus what only a multi-process
 * backend can show: several OS processes binding the same credentials through one data directory.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedStore } from '../../src/store/store-embedded.js';
import { storeContract, uid } from './store.contract.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

let dir: string | undefined;
async function dataDir(): Promise<string> {
  dir ??= await mkdtemp(join(tmpdir(), 'latchkey-store-'));
  return dir;
}
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

storeContract('embedded', async () => EmbeddedStore.open(await dataDir()));

describe('EmbeddedStore across processes', () => {
  const CHILDREN = 3;
  const CREDENTIALS = 30;
  const compiled = join(root, 'dist/src/store/store-embedded.js');
  // The backend is store-embedded.ts and what it imports: its area modules and the shared checks.
  const newestSource = (): number =>
    Math.max(
      statSync(join(root, 'src/store/store-embedded.ts')).mtimeMs,
      ...['src/store/embedded', 'src/store/common'].flatMap((d) => readdirSync(join(root, d)).map((f) => statSync(join(root, d, f)).mtimeMs)),
    );
  const childScript = join(root, 'test/helpers/store-bind-child.mjs');

  let shared: string;
  let store: EmbeddedStore;
  beforeAll(async () => {
    // The children import dist/; `npm test` builds it in pretest. Refuse to test stale output.
    if (!existsSync(compiled) || statSync(compiled).mtimeMs < newestSource()) {
      throw new Error(`${compiled} is missing or older than its source: run \`npm run build\` first`);
    }
    shared = await mkdtemp(join(tmpdir(), 'latchkey-store-mp-'));
    store = await EmbeddedStore.open(shared);
  });
  afterAll(async () => {
    await store?.close();
    if (shared) await rm(shared, { recursive: true, force: true });
  });

  it('lets exactly one process bind each credentials id', { timeout: 30_000 }, async () => {
    const tenant = await store.createTenant({ id: uid('t'), name: 'mp', createdAt: Date.now() });
    const app = await store.createApplication({
      id: uid('a'),
      tenantId: tenant.id,
      name: 'mp',
      appToken: uid('tok'),
      credentialsService: 'internal',
      profileSchema: null,
      createdAt: Date.now(),
    });
    const credIds: string[] = [];
    for (let i = 0; i < CREDENTIALS; i++) credIds.push((await store.provisionCredentials(app.id, uid('c'), null)).credentialsId);

    const children = Array.from({ length: CHILDREN }, (_, i) =>
      runChild(spawn(process.execPath, [childScript, shared, app.id, `ep-proc-${i}`, ...credIds], { stdio: 'pipe' })),
    );
    try {
      // Barrier: start binding only when every child has opened the store.
      await withTimeout(Promise.all(children.map((c) => c.ready)), 15_000, 'children did not open the store');
      for (const c of children) c.proc.stdin.write('go\n');
      const outputs = await withTimeout(Promise.all(children.map((c) => c.result)), 15_000, 'children did not finish');

      for (const id of credIds) {
        const winners = outputs.filter((o) => o.results[id]?.ok);
        expect(winners, id).toHaveLength(1);
        for (const o of outputs) if (!o.results[id]?.ok) expect(o.results[id]?.reason, id).toBe('IN_USE');
        expect(await store.getCredentials(app.id, id)).toMatchObject({ status: 'IN_USE', endpointId: winners[0]!.endpointId });
      }
    } finally {
      for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    }
  });
});

interface ChildOutput {
  endpointId: string;
  results: Record<string, { ok: boolean; reason: string | null }>;
}

function runChild(proc: ChildProcessWithoutNullStreams): { proc: ChildProcessWithoutNullStreams; ready: Promise<void>; result: Promise<ChildOutput> } {
  let out = '';
  let err = '';
  let onReady: () => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    if (out.startsWith('ready\n')) onReady();
  });
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const result = new Promise<ChildOutput>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) reject(new Error(`child exited with ${code}: ${err || out}`));
      else resolve(JSON.parse(last) as ChildOutput);
    });
  });
  // A child that dies before "ready" must fail the barrier, not hang it.
  result.catch(() => undefined);
  return { proc, ready: Promise.race([ready, result.then(() => undefined)]), result };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
