/**
 * The README's quick start, as a new user runs it: a server started like `npm start` (the real CLI,
 * every process of the node, the embedded defaults in a fresh data directory), then each example in
 * examples/ as its own Node process with nothing but the values the server printed at start (its
 * "try: export ..." line, the first root API key for the owner verifier, `latchkey bootstrap-key`
 * for the bootstrap key). The examples import 'latchkey/sdk' through the package's own exports.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/harness.js';
import { cli, ROOT, startServerProcess, type ServerProcess } from '../helpers/process.js';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `node examples/<file>` with only `env` (and PATH): nothing of this test's environment leaks in. */
function example(file: string, env: Record<string, string>, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join('examples', file)], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`examples/${file} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** The README's fenced blocks of `lang`. */
function readmeBlocks(lang: string): string[] {
  const md = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  return [...md.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
}

/** `npx latchkey ARGS` of a README line (its comment dropped), run in `cwd` as the built CLI. */
function readmeCli(line: string, cwd: string, env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const args = line.replace(/#.*$/, '').trim().split(/\s+/).slice(2);
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/src/main.js'), ...args], { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `KEY=value KEY=value` of the start-up print's "try: export" line. */
function exportsOf(text: string): Record<string, string> {
  const line = /^ {2}try: export (.+)$/m.exec(text)?.[1];
  if (!line) throw new Error(`no "try: export" line in the start-up print:\n${text}`);
  return Object.fromEntries(line.split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

let server: ServerProcess;
let dataDir: string;
let printed: string;
let sdkEnv: Record<string, string>;

beforeAll(async () => {
  dataDir = path.join(tempDir('latchkey-examples-'), 'data');
  // As `npm start`: one gateway process per CPU (the primary prints), embedded store, fresh data.
  server = await startServerProcess({ LATCHKEY_DATA_DIR: dataDir, LATCHKEY_PROCESSES: 'auto' }, 40_000);
  // The human-readable print follows the listening line on stderr, then (a first start) the root
  // API key: wait for the last line of both.
  const deadline = Date.now() + 10_000;
  const done = (t: string): boolean => t.includes('node examples/connect.mjs') && t.includes('or sign in at');
  while (!done(server.stderr.join('')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  printed = server.stderr.join('');
  sdkEnv = exportsOf(printed);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('examples/ against a server started like npm start', () => {
  it('the server prints the endpoint, admin and UI URLs, the server key id and SPKI, the bootstrap key and the app token', () => {
    expect(printed).toMatch(/endpoint URL {7}ws:\/\/127\.0\.0\.1:\d+\/ep\/v1/);
    expect(printed).toMatch(/Administration UI {2}http:\/\/127\.0\.0\.1:\d+\/ui\//);
    expect(printed).toMatch(/bootstrap URL {6}http:\/\/127\.0\.0\.1:\d+/);
    expect(Object.keys(sdkEnv).sort()).toEqual(['LATCHKEY_SDK_APP_TOKEN', 'LATCHKEY_SDK_SERVER_KEY_ID', 'LATCHKEY_SDK_SERVER_KEY_SPKI', 'LATCHKEY_SDK_URL']);
    expect(sdkEnv.LATCHKEY_SDK_URL).toBe(`ws://127.0.0.1:${server.port}/ep/v1`);
    expect(Buffer.from(sdkEnv.LATCHKEY_SDK_SERVER_KEY_SPKI!, 'base64').length).toBeGreaterThan(290);
    const listening = server.logs.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return null; } }).find((j) => j?.msg === 'listening')!;
    expect(listening).toMatchObject({ serverKeyId: sdkEnv.LATCHKEY_SDK_SERVER_KEY_ID, serverKeySpki: sdkEnv.LATCHKEY_SDK_SERVER_KEY_SPKI, appToken: sdkEnv.LATCHKEY_SDK_APP_TOKEN, uiUrl: `http://127.0.0.1:${server.adminPort}/ui/` });
  });

  for (const file of ['connect.mjs', 'register.mjs']) {
    it(`${file} runs with the printed values`, async () => {
      const r = await example(file, sdkEnv);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(file === 'connect.mjs' ? /connected: endpoint .* session/ : /profile update: SUCCESS/);
    }, 40_000);
  }

  it('attach.mjs and events.mjs run once the README adds a trustful owner verifier with the printed API key', async () => {
    const before = await example('attach.mjs', sdkEnv);
    expect(before.status).toBe(1);
    expect(before.stderr).toMatch(/NO_VERIFIER_CONFIGURED/);
    const apiKey = /first root admin API key[^\n]*\n {2}(\S+)/.exec(printed)?.[1];
    expect(apiKey).toBeDefined();
    const v = cli(['admin', 'verifiers', 'create', '--app', 'default', '--type', 'trustful', '--default', 'yes'], { LATCHKEY_API_KEY: apiKey!, LATCHKEY_ADMIN_URL: `http://127.0.0.1:${server.adminPort}` });
    expect(v.status, v.stderr).toBe(0);
    for (const file of ['attach.mjs', 'events.mjs']) {
      const r = await example(file, sdkEnv);
      expect(r.status, `${file}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  }, 60_000);

  it('bootstrap.mjs runs with the bootstrap URL and the PEM `latchkey bootstrap-key` writes', async () => {
    const k = cli(['bootstrap-key'], { LATCHKEY_DATA_DIR: dataDir });
    expect(k.status, k.stderr).toBe(0);
    expect(k.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
    const file = path.join(path.dirname(dataDir), 'bootstrap.pub.pem');
    fs.writeFileSync(file, k.stdout);
    const bootstrapUrl = /bootstrap URL {6}(\S+)/.exec(printed)![1]!;
    const r = await example('bootstrap.mjs', { LATCHKEY_SDK_BOOTSTRAP_URL: bootstrapUrl, LATCHKEY_SDK_BOOTSTRAP_KEY: file, LATCHKEY_SDK_APP_TOKEN: sdkEnv.LATCHKEY_SDK_APP_TOKEN! });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/connected to ws:\/\/127\.0\.0\.1:\d+\/ep\/v1/);
  }, 40_000);

  it('a bootstrap key file that is not PEM is LK_SDK_BAD_KEY, not an InvalidCharacterError', async () => {
    const file = path.join(path.dirname(dataDir), 'not-a-key.pem');
    fs.writeFileSync(file, 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n');
    const r = await example('bootstrap.mjs', { LATCHKEY_SDK_BOOTSTRAP_URL: 'http://127.0.0.1:1', LATCHKEY_SDK_BOOTSTRAP_KEY: file, LATCHKEY_SDK_APP_TOKEN: 'x' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/LK_SDK_BAD_KEY: bootstrap\.publicKey: not a PEM public key/);
  });

  it("the README's provisioning commands and SDK snippet run verbatim", async () => {
    const steps = readmeBlocks('sh').find((b) => b.includes('credentials provision'))!;
    const snippet = readmeBlocks('js').find((b) => b.includes("from 'latchkey/sdk'") && b.includes('ep1.key.pem'))!;
    expect(steps && snippet).toBeTruthy();
    // Inside the checkout, as the README says (a file outside the package cannot import latchkey/sdk
    // without installing it); test/artifacts is ignored by git.
    fs.mkdirSync(path.join(ROOT, 'test/artifacts'), { recursive: true });
    const dir = fs.mkdtempSync(path.join(ROOT, 'test/artifacts/readme-'));
    try {
      let appToken = '';
      for (const line of steps.split('\n').filter((l) => l.startsWith('npx latchkey '))) {
        const r = readmeCli(line, dir, { LATCHKEY_DATA_DIR: dataDir });
        expect(r.status, `${line}\n${r.stderr}`).toBe(0);
        if (line.includes('app create')) {
          const [head, row] = r.stdout.trim().split('\n').map((l) => l.split(/\s{2,}/));
          appToken = row![head!.indexOf('APPTOKEN')]!;
        }
      }
      expect(appToken).not.toBe('');
      fs.writeFileSync(path.join(dir, 'quickstart.mjs'), snippet);
      const r = await new Promise<Run>((resolve, reject) => {
        const child = spawn(process.execPath, ['quickstart.mjs'], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...sdkEnv, LATCHKEY_SDK_APP_TOKEN: appToken }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (status) => resolve({ status, stdout, stderr }));
      });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/connected; ping \d+ ms/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('admin server-keys list shows the id and SPKI the server printed', () => {
    const apiKey = /first root admin API key[^\n]*\n {2}(\S+)/.exec(printed)![1]!;
    const r = cli(['admin', 'server-keys', 'list'], { LATCHKEY_API_KEY: apiKey, LATCHKEY_ADMIN_URL: `http://127.0.0.1:${server.adminPort}` });
    expect(r.status, r.stderr).toBe(0);
    const row = r.stdout.split('\n').find((l) => l.startsWith(sdkEnv.LATCHKEY_SDK_SERVER_KEY_ID!))!;
    expect(row.split(/\s+/)).toEqual([sdkEnv.LATCHKEY_SDK_SERVER_KEY_ID, 'active', expect.any(String), sdkEnv.LATCHKEY_SDK_SERVER_KEY_SPKI]);
  });
});
