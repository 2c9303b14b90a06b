/**
 * The server under fuzz: `latchkey serve` as a child process on 127.0.0.1 with a fresh data dir
 * and a seed file (tenant `fuzz`; an internal application with every fuzz key provisioned, a
 * trustful one, and a trustful one with an Avro profile schema), the protection limits off so the
 * inputs reach the parsers, and a short handshake timeout so silent sockets end quickly. The same
 * data dir is reused when the server is restarted after a crash.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import avro from 'avsc';
import { startServerProcess, type ServerProcess } from '../../test/helpers/process.js';
import type { NodeEndpointKey } from '../../test/helpers/wire-client.js';
import type { ServerKey } from './fuzz-gen.js';

export const APPS = [
  { id: 'fuzz-int', appToken: 'fuzz-internal-token', credentialsService: 'internal' },
  { id: 'fuzz-tru', appToken: 'fuzz-trustful-token', credentialsService: 'trustful' },
  { id: 'fuzz-schema', appToken: 'fuzz-schema-token', credentialsService: 'trustful' },
] as const;

export const PROFILE_SCHEMA = { type: 'record', name: 'FuzzProfile', fields: [{ name: 'name', type: 'string' }, { name: 'n', type: 'int' }] } as const;
export const profileType = avro.Type.forSchema(PROFILE_SCHEMA as unknown as avro.Schema);

export interface FuzzServerSettings {
  handshakeTimeoutMs: number;
  nodeArgs: string[];
  /** Extra environment for the server (tests, experiments). */
  env: Record<string, string>;
}

export class FuzzServer {
  proc: ServerProcess | null = null;
  /** Incremented at every (re)start: results of an older generation are ignored. */
  generation = 0;
  rootKey = '';
  tenantKey: string | null = null;
  verifierTokens: string[] = [];
  server!: ServerKey;
  private readonly dir: string;
  private stopping = false;
  onExit: ((code: number | null, signal: NodeJS.Signals | null) => void) | null = null;

  constructor(
    keys: NodeEndpointKey[],
    private readonly settings: FuzzServerSettings,
  ) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-fuzz-'));
    const seed = {
      tenants: [{ id: 'fuzz', name: 'fuzz' }],
      applications: APPS.map((a) => ({ id: a.id, tenantId: 'fuzz', name: a.id, appToken: a.appToken, credentialsService: a.credentialsService, ...(a.id === 'fuzz-schema' ? { profileSchema: PROFILE_SCHEMA } : {}) })),
      credentials: keys.map((k) => ({ appId: 'fuzz-int', publicKeyPem: k.publicKeyPem })),
    };
    fs.writeFileSync(path.join(this.dir, 'seed.json'), JSON.stringify(seed));
  }

  get port(): number {
    return this.proc!.port;
  }
  get adminPort(): number {
    return this.proc!.adminPort;
  }
  get pid(): number {
    return this.proc!.child.pid!;
  }
  get alive(): boolean {
    return this.proc !== null && this.proc.child.exitCode === null && this.proc.child.signalCode === null;
  }

  /** The server's stderr since its last start. */
  stderrText(): string {
    return this.proc ? this.proc.stderr.join('') : '';
  }

  /**
   * What the server said about its death: its stderr (an uncaught exception before the fatal
   * handler existed) and its LK_FATAL log line (the fatal handler logs the error, then exits 70).
   */
  crashOutput(): string {
    if (!this.proc) return '';
    const out: string[] = [];
    const err = this.proc.stderr.join('').replace(/latchkey: first root admin API key[\s\S]*?\/admin\/v1\/tenants\n/, '').trim();
    if (err) out.push(err);
    for (const l of this.proc.logs) {
      if (!l.startsWith('{') || !/"level":60|LK_FATAL/.test(l)) continue;
      try {
        const j = JSON.parse(l) as { msg?: string; err?: { type?: string; message?: string; stack?: string } };
        out.push(`${j.msg ?? ''}\n${j.err?.stack ?? `${j.err?.type ?? ''}: ${j.err?.message ?? ''}`}`);
      } catch {
        out.push(l);
      }
    }
    return out.join('\n');
  }

  /** Recent log lines that carry an error (JSON, stdout; warn level and above). */
  recentErrors(n = 5): string[] {
    if (!this.proc) return [];
    return this.proc.logs.filter((l) => l.startsWith('{') && /"level":(40|50|60)/.test(l) && l.includes('"err"')).slice(-n);
  }

  /** Bound the captured logs (the helper keeps every line). */
  trimLogs(): void {
    const p = this.proc;
    if (!p) return;
    if (p.logs.length > 4000) p.logs.splice(0, p.logs.length - 2000);
    if (p.stderr.length > 400) p.stderr.splice(0, p.stderr.length - 200);
  }

  async start(): Promise<void> {
    this.stopping = false;
    const env: Record<string, string> = {
      LATCHKEY_DATA_DIR: path.join(this.dir, 'data'),
      LATCHKEY_SEED_FILE: path.join(this.dir, 'seed.json'),
      // warn: failed syncs and handshakes log their error there (the cause of an LK_INTERNAL answer).
      LATCHKEY_LOG_LEVEL: 'warn',
      LATCHKEY_HANDSHAKE_TIMEOUT_MS: String(this.settings.handshakeTimeoutMs),
      // Protection off: the fuzzer must reach the parsers, not the rate limits and bans.
      LATCHKEY_IP_CONNECT_RATE_PER_SEC: '0',
      LATCHKEY_IP_MAX_FAILED_HANDSHAKES: '0',
      LATCHKEY_KEY_HANDSHAKES_PER_MIN: '0',
      LATCHKEY_FLAPPING_MAX_COUNT: '0',
      LATCHKEY_SHUTDOWN_GRACE_MS: '500',
      ...this.settings.env,
    };
    const proc = await startServerProcess(env, 30_000, ['--enable-source-maps', ...this.settings.nodeArgs]);
    this.proc = proc;
    this.generation++;
    proc.child.on('exit', (code, signal) => {
      if (!this.stopping) this.onExit?.(code, signal);
    });
    if (!this.rootKey) {
      // `serve` prints the key right after the listening line: wait for it (bounded).
      const re = /(lk_[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43})/;
      for (let i = 0; i < 100 && !re.test(proc.stderr.join('')); i++) await new Promise((r) => setTimeout(r, 50));
      const m = re.exec(proc.stderr.join(''));
      if (!m) throw new Error('the server printed no root API key on its first start');
      this.rootKey = m[1]!;
      const ring = JSON.parse(fs.readFileSync(path.join(this.dir, 'data/keys/keyring.json'), 'utf8')) as { keys: Array<{ id: string; status: string }> };
      const id = ring.keys.find((k) => k.status === 'active')!.id;
      this.server = { id, publicKey: crypto.createPublicKey(fs.readFileSync(path.join(this.dir, `data/keys/${id}.pub.pem`))) };
      await this.setup();
    }
  }

  /** A tenant API key and a default trustful owner verifier per application (owners make events flow). */
  private async setup(): Promise<void> {
    const k = await this.admin('POST', '/admin/v1/api-keys', { name: 'fuzz tenant key', tenantId: 'fuzz' });
    this.tenantKey = (k as { token?: string }).token ?? null;
    for (const a of APPS) {
      const v = await this.admin('POST', `/admin/v1/applications/${a.id}/verifiers`, { pluginTypeName: 'trustful', name: 'fuzz', isDefault: true });
      const t = (v as { verifierToken?: string }).verifierToken;
      if (t) this.verifierTokens.push(t);
    }
  }

  async admin(method: string, p: string, body?: unknown): Promise<unknown> {
    const r = await fetch(`http://127.0.0.1:${this.adminPort}${p}`, {
      method,
      headers: { authorization: `Bearer ${this.rootKey}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /** GET /healthz, or null if it does not answer within `timeoutMs`. */
  async health(timeoutMs = 5000): Promise<Record<string, unknown> | null> {
    if (!this.alive) return null;
    try {
      const r = await fetch(`http://127.0.0.1:${this.adminPort}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
      if (r.status !== 200) return null;
      return (await r.json()) as Record<string, unknown>;
    } catch {
      return null;
    }
  }

  /** A value of GET /metrics (Prometheus text), e.g. latchkey_process_nodejs_heap_size_used_bytes; null if absent. */
  async metric(name: string): Promise<number | null> {
    try {
      const r = await fetch(`http://127.0.0.1:${this.adminPort}/metrics`, { signal: AbortSignal.timeout(5000) });
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(await r.text());
      return m ? Number(m[1]) : null;
    } catch {
      return null;
    }
  }

  /** Kill a server that stopped answering (the exit handler reports it). */
  kill(): void {
    this.proc?.child.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.proc) await this.proc.stop('SIGTERM');
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
