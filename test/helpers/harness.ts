/**
 * In-process server for tests: build(config) on loopback, ports picked by the OS, a fresh data
 * directory, silent logs. Real parts throughout (uWS, piscina workers, LMDB).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { defaultConfig, type Config } from '../../src/config/config.js';
import { build, type Server } from '../../src/server.js';
import { createApplication, createTenant } from '../../src/tenancy/provision.js';
import type { Application } from '../../src/store/store.js';
import { prepareConnect, type NodeEndpointKey } from './wire-client.js';
import { openRaw, withTimeout } from './ws.js';

export interface Harness {
  server: Server;
  dataDir: string;
  url: string;
  serverKeyId: string;
  serverSpki: Buffer;
  /** Base URL of the admin listener and the root API key created at start. */
  adminUrl: string;
  rootKey: string;
  close(opts?: { keepData?: boolean }): Promise<void>;
  app(input?: { credentialsService?: string; profileSchema?: string | null }): Promise<Application>;
}

/** Send one CONNECT for `key` to the harness and return the CONNACK return code (-1 if none); closes. */
export async function connackCode(h: Harness, appToken: string, key: NodeEndpointKey): Promise<number> {
  const s = await openRaw(h.url);
  s.send(prepareConnect({ appToken, serverKeyId: h.serverKeyId, serverPublicKey: h.serverSpki, key }).frame);
  const f = await s.decoded(0);
  s.close();
  await withTimeout(s.closed, 3000, 'close');
  return f.type === 'CONNACK' ? f.connack.returnCode : -1;
}

export function tempDir(prefix = 'latchkey-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startHarness(overrides: Partial<Config> = {}, dataDir = tempDir()): Promise<Harness> {
  const config: Config = {
    ...defaultConfig(),
    host: '127.0.0.1',
    port: 0,
    adminHost: '127.0.0.1',
    adminPort: 0,
    dataDir,
    logLevel: 'silent',
    cryptoThreads: 1,
    ...overrides,
  };
  const log = pino({ level: process.env.LATCHKEY_TEST_LOG ?? 'silent' });
  const server = await build(config, log);
  let n = 0;
  return {
    server,
    dataDir,
    url: `ws://127.0.0.1:${server.port}/ep/v1`,
    serverKeyId: server.keyRing.active.id,
    serverSpki: server.keyRing.active.spkiDer,
    adminUrl: `http://127.0.0.1:${server.adminPort}`,
    rootKey: server.firstApiKey ?? '',
    async close(opts) {
      await server.close();
      if (!opts?.keepData) fs.rmSync(dataDir, { recursive: true, force: true });
    },
    async app(input = {}) {
      const suffix = `${process.pid}-${Date.now()}-${n++}`;
      const tenantId = `t-${suffix}`;
      await createTenant(server.store, { id: tenantId, name: tenantId });
      return createApplication(
        server.store,
        { id: `a-${suffix}`, tenantId, name: `app ${suffix}`, credentialsService: input.credentialsService ?? 'trustful', profileSchema: input.profileSchema ?? null },
        ['trustful', 'internal', ...Object.keys(config.credentialsPlugins)],
      );
    },
  };
}

/** One admin API call with the harness's root key; JSON in and out. */
export async function adminApi(h: Harness, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${h.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${h.rootKey}`, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Give an application a trustful default owner verifier through the admin API; returns its verifier token. */
export async function trustfulDefaultVerifier(h: Harness, appId: string): Promise<string> {
  const v = await adminApi(h, 'POST', `/admin/v1/applications/${appId}/verifiers`, { pluginTypeName: 'trustful', name: 'dev', jsonConfiguration: {}, isDefault: true });
  if (v.status !== 201) throw new Error(`creating a trustful verifier answered ${v.status}: ${JSON.stringify(v.body)}`);
  return v.body.verifierToken as string;
}
