/**
 * GET /readyz (admin listener, no key): 200 while the store, the cache and the bus all answer; 503
 * LK_NOT_READY naming each service's state while the private Redis (cache and bus) is killed, and
 * 200 again once it is back. /healthz (liveness) answers 200 throughout. HEAD answers the same
 * status without a body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { RedisProcess } from '../helpers/redis-process.js';

let redis: RedisProcess;
let h: Harness;

beforeAll(async () => {
  redis = await RedisProcess.start();
  h = await startHarness({ redisUrl: redis.url });
}, 30_000);
afterAll(async () => {
  await h?.close();
  await redis?.stop();
});

async function readyz(): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${h.adminUrl}/readyz`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

/** Ask until `status` comes back (a reconnecting client may take a few probes); the last answer. */
async function until(status: number, tries = 50): Promise<{ status: number; body: Record<string, unknown> }> {
  let last = await readyz();
  for (let i = 0; i < tries && last.status !== status; i++) {
    await new Promise((r) => setTimeout(r, 200));
    last = await readyz();
  }
  return last;
}

describe('GET /readyz', () => {
  it('is ready with every service up, not ready (503 LK_NOT_READY, per service) with Redis killed, ready again after it returns', async () => {
    expect(await readyz()).toEqual({ status: 200, body: { status: 'ready', store: 'ok', cache: 'ok', bus: 'ok' } });
    const head = await fetch(`${h.adminUrl}/readyz`, { method: 'HEAD' });
    expect([head.status, await head.text()]).toEqual([200, '']);

    await redis.stop();
    const down = await until(503);
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ code: 'LK_NOT_READY', status: 'not ready', store: 'ok' });
    expect(down.body.cache).not.toBe('ok');
    expect(down.body.bus).not.toBe('ok');
    expect(typeof down.body.cache).toBe('string');
    // Liveness is not readiness: the process still serves.
    expect((await fetch(`${h.adminUrl}/healthz`)).status).toBe(200);

    await redis.resume();
    expect(await until(200)).toEqual({ status: 200, body: { status: 'ready', store: 'ok', cache: 'ok', bus: 'ok' } });
  }, 60_000);
});
