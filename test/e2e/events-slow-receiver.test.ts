/**
 * The slow-receiver policy with a real slow reader: the receiving endpoint runs in a child process
 * that the test stops (SIGSTOP), so its socket and then the server's send buffer fill. The server
 * must drop events for it (counted) instead of buffering without bound, keep the session (memory
 * stays under the hard backpressure limit, so no LK_SLOW_CONSUMER), and the receiver, once it
 * reads again, sees exactly how many it missed through the gap in seqNum.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, generateEndpointKeys } from '../../src/sdk/index.js';
import { startHarness, trustfulDefaultVerifier, type Harness } from '../helpers/harness.js';
import { ROOT } from '../helpers/root.js';
import type { Application } from '../../src/store/store.js';

const BULK = 'org.example.Bulk';
const BUFFER_BOUND = 64 * 1024;
let h: Harness;
let app: Application;
let child: ChildProcessWithoutNullStreams | null = null;

beforeAll(async () => {
  h = await startHarness({ eventMaxBufferedBytes: BUFFER_BOUND, maxBackpressureBytes: 1024 * 1024 });
  app = await h.app();
  await trustfulDefaultVerifier(h, app.id);
});
afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  await h?.close();
});

describe('slow receiver', () => {
  it('events for a receiver that stopped reading are dropped and counted; the session and its memory stay bounded', async () => {
    child = spawn(process.execPath, [
      path.join(ROOT, 'test/fixtures/events/slow-receiver.mjs'),
      `ws://127.0.0.1:${h.server.port}`, app.appToken, h.serverKeyId, Buffer.from(h.serverSpki).toString('base64'), 'grace', BULK,
    ]);
    const lines = readline.createInterface({ input: child.stdout });
    const next = (): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('child did not answer')), 15_000);
        lines.once('line', (l) => {
          clearTimeout(t);
          resolve(JSON.parse(l) as Record<string, unknown>);
        });
      });
    const ready = await next();
    expect(ready).toMatchObject({ ready: true, attached: { ok: true } });

    const k = await generateEndpointKeys();
    const sender = new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken: app.appToken, serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys: k });
    expect((await sender.connect({ profile: new TextEncoder().encode('{}') })).ok).toBe(true);
    expect(await sender.attachUser('grace', 'token')).toEqual({ ok: true });

    child.kill('SIGSTOP');
    const stats = h.server.stats;
    const payload = new Uint8Array(8 * 1024).fill(7);
    let sent = 0;
    const deadline = Date.now() + 30_000;
    // Bounded: stop once drops are well under way, at 8000 events (64 MiB), or after 30 s.
    while (sent < 8000 && Date.now() < deadline && (stats.eventsDropped.get('slow_receiver') ?? 0) < 200) {
      await sender.sendEvent(BULK, payload);
      sent++;
      if (sent % 50 === 0) await sender.ping(); // let the server read (the sender is not the slow one)
    }
    await sender.ping();
    const dropped = stats.eventsDropped.get('slow_receiver') ?? 0;
    expect(dropped, `drops after ${sent} events`).toBeGreaterThanOrEqual(200);
    expect(stats.sessionsEnded.get('LK_SLOW_CONSUMER') ?? 0).toBe(0);

    child.kill('SIGCONT');
    // One more event once it reads again: it arrives, and the gap before it accounts for every drop.
    await new Promise((r) => setTimeout(r, 200));
    const deadline2 = Date.now() + 15_000;
    let report: Record<string, unknown> = {};
    await sender.sendEvent(BULK, new Uint8Array(1));
    sent++;
    while (Date.now() < deadline2) {
      child.stdin.write('report\n');
      report = await next();
      if (report.lastSeq === sent - 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(report).toMatchObject({ lastSeq: sent - 1, disconnected: null });
    expect(report.missed).toBe(dropped);
    expect(report.received).toBe(sent - dropped);
    child.stdin.write('exit\n');
    await sender.close();
  }, 60_000);
});
