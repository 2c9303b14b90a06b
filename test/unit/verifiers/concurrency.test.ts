/**
 * max_parallel_connections bounds the requests a verifier has at its provider at once: the stand-in
 * delays every answer and records the most requests it had in flight.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createVerifier, type OwnerVerifier } from '../../../src/ownership/verifiers/registry.js';
import { nowSec, silentLog, startStandIn, type StandIn } from './stand-in.js';

const USER = '42';
const DELAY_MS = 30;

/** One stand-in that answers as each provider would for a valid token of USER. */
const PROVIDERS = {
  facebook: {
    config: (origin: string) => ({ app_id: '1', app_secret: 's', graph_url: origin }),
    answer: () => ({ app_id: '1', is_valid: true, user_id: USER, expires_at: nowSec() + 60 }),
    wrap: (data: unknown) => ({ data }),
    token: 'fb',
  },
  google: {
    config: (origin: string) => ({ audience: ['c'], tokeninfo_url: `${origin}/tokeninfo` }),
    answer: () => ({ aud: 'c', sub: USER, exp: String(nowSec() + 60) }),
    wrap: (x: unknown) => x,
    token: 'g',
  },
  twitter: {
    config: (origin: string) => ({ consumer_key: 'k', consumer_secret: 's', verify_url: `${origin}/1.1/account/verify_credentials.json` }),
    answer: () => ({ id_str: USER }),
    wrap: (x: unknown) => x,
    token: 't:s',
  },
} as const;

describe('max_parallel_connections', () => {
  let server: StandIn | undefined;
  let verifier: OwnerVerifier | undefined;
  afterEach(async () => {
    await verifier?.close();
    await server?.close();
  });

  const cases: Array<[keyof typeof PROVIDERS, number]> = [['facebook', 2], ['google', 2], ['twitter', 2], ['google', 1], ['google', 5]];
  it.each(cases)('%s with max_parallel_connections=%i: 20 concurrent verifications never exceed it', async (name, max) => {
    const p = PROVIDERS[name];
    server = await startStandIn(() => ({ json: p.wrap(p.answer()), delayMs: DELAY_MS }));
    verifier = await createVerifier(name, { ...p.config(server.origin), max_parallel_connections: max, request_timeout_ms: 5000 }, { log: silentLog });
    const results = await Promise.all(Array.from({ length: 20 }, () => verifier!.verify(USER, p.token)));
    expect(results.filter((r) => r.ok)).toHaveLength(20);
    expect(server.requests).toHaveLength(20);
    expect(server.maxInFlight).toBeLessThanOrEqual(max);
    expect(server.maxInFlight).toBe(max); // the bound is reached, so calls do run in parallel
  });

  it('time spent waiting for a free connection counts against request_timeout_ms', async () => {
    server = await startStandIn(() => ({ json: PROVIDERS.google.answer(), delayMs: 150 }));
    verifier = await createVerifier('google', { ...PROVIDERS.google.config(server.origin), max_parallel_connections: 1, request_timeout_ms: 250 }, { log: silentLog });
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: 4 }, () => verifier!.verify(USER, 'g')));
    expect(results[0]).toEqual({ ok: true });
    expect(results.slice(1).every((r) => !r.ok && r.code === 'CONNECTION_ERROR')).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(server.maxInFlight).toBe(1);
  });
});
