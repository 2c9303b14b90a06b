/**
 * No request can kill a process, and a process that must die does not linger (issue 9):
 * - a uWS callback that throws closes that one socket (LK_INTERNAL) or answers 500, counted, and
 *   the server goes on serving;
 * - an error that escapes every handler (here: a credentials plugin throwing from a timer) in the
 *   middle of a burst of admin writes makes the real process exit promptly with code 70 and its
 *   ports free, instead of the zombie seen before (alive, ports held, serving nothing).
 */
import crypto from 'node:crypto';
import uWS from 'uWebSockets.js';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { FATAL_EXIT_CODE } from '../../src/fatal.js';
import { Stats } from '../../src/metrics.js';
import { Gateway } from '../../src/transport/gateway.js';
import type { SessionHost } from '../../src/session/session.js';
import type { SessionRegistry } from '../../src/session/registry.js';
import { startServerProcess, ROOT, type ServerProcess } from '../helpers/process.js';
import { makeEndpointKey, prepareConnect } from '../helpers/wire-client.js';
import { openRaw, withTimeout } from '../helpers/ws.js';
import { tempDir } from '../helpers/harness.js';
import { freePort } from '../helpers/ports.js';

describe('guarded uWS callbacks', () => {
  it('a throwing WebSocket callback closes that socket with LK_INTERNAL; a throwing HTTP route answers 500; the server keeps serving', async () => {
    const stats = new Stats();
    const registry = { opened: () => { throw new Error('forced failure in open'); }, closed: () => undefined } as unknown as SessionRegistry;
    const gw = new Gateway({
      host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0, maxFrameBytes: 1024, maxBackpressureBytes: 1 << 20,
      sessionHost: { registry: { closed: () => undefined } } as unknown as SessionHost, registry, health: () => ({}), log: pino({ level: 'silent' }),
      onHandlerError: (where) => stats.count(stats.handlerErrors, where),
      mountAdmin: (app, guard) => app.get('/boom', guard('test.boom', () => { throw new Error('forced failure in a route'); })),
    });
    await gw.start();
    try {
      for (let i = 0; i < 3; i++) {
        const ws = await openRaw(`ws://127.0.0.1:${gw.port}/ep/v1`);
        expect((await withTimeout(ws.closed, 3000, 'close')).code).toBe(4011);
        const r = await fetch(`http://127.0.0.1:${gw.adminPort}/boom`);
        expect(r.status).toBe(500);
        expect(((await r.json()) as { code: string }).code).toBe('LK_INTERNAL');
      }
      expect((await fetch(`http://127.0.0.1:${gw.adminPort}/healthz`)).status).toBe(200);
      expect(Object.fromEntries(stats.handlerErrors)).toEqual({ 'ws.open': 3, 'test.boom': 3 });
    } finally {
      gw.stopListening();
    }
  });
});

describe('an error that escapes every handler', () => {
  let server: ServerProcess | null = null;
  afterAll(async () => {
    await server?.stop('SIGKILL');
  });

  it('during a burst of admin writes: the process exits with code 70 and frees both ports', async () => {
    const dataDir = tempDir();
    // Fixed ports, as in production: a listener on port 0 does not set SO_REUSEADDR in uWS, and
    // then its own TIME_WAIT connections would keep a restart off the port for a minute.
    server = await startServerProcess({
      LATCHKEY_PORT: String(await freePort()),
      LATCHKEY_ADMIN_PORT: String(await freePort()),
      LATCHKEY_DATA_DIR: dataDir,
      LATCHKEY_CRYPTO_THREADS: '1',
      LATCHKEY_CREDENTIALS_PLUGINS: JSON.stringify({ faulty: { module: path.join(ROOT, 'test/fixtures/plugins/faulty.mjs'), config: { mode: 'throw-later' } } }),
      LATCHKEY_SEED_FILE: path.join(ROOT, 'test/fixtures/faulty-seed.json'),
    });
    const s = server;
    const token = /lk_[A-Za-z0-9_.-]+/.exec(s.stderr.join(''))![0];
    const exited = new Promise<number | null>((resolve) => s.child.once('exit', (code) => resolve(code)));
    // Each POST provisions new credentials: distinct keys, so every request is a store write.
    const pems = Array.from({ length: 24 }, () => makeEndpointKey().publicKeyPem);
    let writing = true;
    const burst = async (): Promise<void> => {
      for (let i = 0; writing && i < 500; i++) {
        await fetch(`http://127.0.0.1:${s.adminPort}/admin/v1/applications/writes/credentials`, {
          method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ publicKey: pems[i % pems.length] }),
        }).catch(() => undefined);
      }
    };
    const writers = Array.from({ length: 16 }, burst);
    await new Promise((r) => setTimeout(r, 300));
    // An endpoint of the faulty application: its credentials lookup throws from a timer.
    const ws = await openRaw(`ws://127.0.0.1:${s.port}/ep/v1`);
    const serverKey = await (await fetch(`http://127.0.0.1:${s.adminPort}/admin/v1/server-keys`, { headers: { authorization: `Bearer ${token}` } })).json() as { items: Array<{ id: string; status: string; publicKey: string }> };
    const active = serverKey.items.find((k) => k.status === 'active')!;
    ws.send(prepareConnect({ appToken: 'faulty-app-token-0001', serverKeyId: active.id, serverPublicKey: crypto.createPublicKey(active.publicKey), key: makeEndpointKey() }).frame);
    const code = await withTimeout(exited, 10_000, 'process exit after LK_FATAL');
    writing = false;
    await Promise.all(writers);
    expect(code).toBe(FATAL_EXIT_CODE);
    expect(s.logs.join('\n')).toContain('LK_FATAL');
    // A restarted server (uWS, as latchkey listens) can take both ports at once.
    for (const port of [s.port, s.adminPort]) {
      const sock = await new Promise<uWS.us_listen_socket | false>((resolve) => uWS.App().listen('127.0.0.1', port, resolve));
      expect(sock, `port ${port} free`).toBeTruthy();
      if (sock) uWS.us_listen_socket_close(sock);
    }
  }, 40_000);
});
