/**
 * CryptoPool tickets (src/crypto/pool.ts): a handshake whose session went away costs no RSA
 * decrypt, whether it was still queued or already in a worker's batch. Runs the real workers
 * (dist/src/crypto/worker.js, built by `npm test`'s pretest).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ABANDONED_UNSENT, CryptoPool, CryptoTicket } from '../../src/crypto/pool.js';
import { KeyRing } from '../../src/crypto/keyring.js';
import { base64url } from '../../src/crypto/keys.js';
import { RSA_OAEP, RSA_PSS, signatureInput } from '../../src/crypto/session-crypto.js';
import type { HandshakeTask } from '../../src/crypto/worker.js';
import { makeEndpointKey } from '../helpers/wire-client.js';

let dir: string;
let ring: KeyRing;
let pool: CryptoPool;
const key = makeEndpointKey();

/** A handshake that verifies and decrypts (the body bytes are arbitrary: the worker signs over them as given). */
function task(): HandshakeTask {
  const sigInput = signatureInput(crypto.randomBytes(64));
  return {
    keyHash: base64url(key.keyHashRaw),
    publicKey: key.spki,
    sigInput,
    signature: crypto.sign('sha256', sigInput, { key: key.privateKey, ...RSA_PSS }),
    wrappedSecret: crypto.publicEncrypt({ key: crypto.createPublicKey({ key: ring.active.spkiDer, format: 'der', type: 'spki' }), ...RSA_OAEP }, crypto.randomBytes(64)),
    serverKeyId: ring.active.id,
  };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-pool-'));
  ring = await KeyRing.loadOrCreate(dir);
  pool = new CryptoPool({ keyDir: dir, threads: 1, maxQueue: 1000, maxBatch: 32 });
});

afterAll(async () => {
  await pool.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('CryptoPool tickets', () => {
  it('runs a handshake whose ticket stays open', async () => {
    const out = await pool.handshake(task(), new CryptoTicket());
    expect(out.ok).toBe(true);
  });

  it('drops a handshake cancelled before a worker took it, without a worker task', async () => {
    const batches = pool.batchesRun;
    const t = new CryptoTicket();
    const p = pool.handshake(task(), t);
    t.cancel();
    expect(await p).toBe(ABANDONED_UNSENT);
    expect(pool.batchesRun).toBe(batches);
  });

  it('skips the decrypt of handshakes cancelled while their batch runs', async () => {
    // One batch of 128 on a single worker: 124 handshakes ahead of the four cancelled ones (a verify
    // and a decrypt each, ~0.3-1 ms) give the cancellation tens of milliseconds to reach the worker
    // through shared memory, even with the main thread descheduled on a loaded machine (with 20
    // ahead, ~5 ms on a fast box, a full parallel test run lost the race once).
    const big = new CryptoPool({ keyDir: dir, threads: 1, maxQueue: 1000, maxBatch: 128 });
    try {
      const tasks = Array.from({ length: 128 }, () => task());
      // Occupy the single worker so the next 128 wait and leave together as one batch.
      const blocker = big.handshake(task());
      await new Promise((r) => setImmediate(r));
      const tickets = tasks.map(() => new CryptoTicket());
      // Cancel the last four in the same synchronous step that hands the batch to piscina, just
      // after the postMessage: only shared memory can carry that to the worker.
      const piscina = (big as unknown as { pool: { run: (...a: unknown[]) => Promise<unknown> } }).pool;
      const run = piscina.run.bind(piscina);
      let dispatched = 0;
      piscina.run = (...a: unknown[]) => {
        const p = run(...a);
        if (++dispatched === 1) for (const t of tickets.slice(124)) t.cancel();
        return p;
      };
      const outs = tasks.map((x, i) => big.handshake(x, tickets[i]));
      await blocker;
      const results = await Promise.all(outs);
      expect(dispatched).toBe(1);
      expect(results.slice(0, 124).every((o) => o.ok)).toBe(true);
      for (const o of results.slice(124)) {
        expect(o).not.toBe(ABANDONED_UNSENT);
        expect(o).toMatchObject({ ok: false, code: 'LK_HS_ABANDONED' });
      }
    } finally {
      await big.close();
    }
  });
});

describe('CryptoPool admission by expected wait', () => {
  it('refuses with LK_SERVER_BUSY once a new handshake would wait longer than maxWaitMs, and queues below it', async () => {
    const p = new CryptoPool({ keyDir: dir, threads: 1, maxQueue: 100_000, maxWaitMs: 200, maxBatch: 32 });
    try {
      // Keep the pool busy for 0.8 s (40 handshakes in flight, well inside the bound) so it measures its rate.
      const until = performance.now() + 800;
      const keepBusy = async (): Promise<void> => {
        while (performance.now() < until) await p.handshake(task());
      };
      await Promise.all(Array.from({ length: 40 }, keepBusy));
      const rate = p.measuredRate;
      expect(rate).toBeGreaterThan(50);
      // Queue far more than 200 ms of work at once: the ones past ~rate x 0.2 s are refused.
      const n = Math.ceil(rate * 2);
      const outs = await Promise.allSettled(Array.from({ length: n }, () => p.handshake(task())));
      const busy = outs.filter((o) => o.status === 'rejected' && (o.reason as { code?: string }).code === 'LK_SERVER_BUSY').length;
      const ran = outs.filter((o) => o.status === 'fulfilled').length;
      expect(busy + ran).toBe(n);
      expect(busy).toBeGreaterThan(0);
      // Accepted: at least the batch a worker takes in one round, at most what fits in the wait bound (with slack for the moving estimate).
      expect(ran).toBeGreaterThanOrEqual(32);
      expect(ran).toBeLessThan(n * 0.6);
    } finally {
      await p.close();
    }
  }, 60_000);

  it('with maxWaitMs 0 only maxQueue bounds the queue', async () => {
    const p = new CryptoPool({ keyDir: dir, threads: 1, maxQueue: 40, maxWaitMs: 0, maxBatch: 32 });
    try {
      const outs = await Promise.allSettled(Array.from({ length: 60 }, () => p.handshake(task())));
      const busy = outs.filter((o) => o.status === 'rejected' && (o.reason as { code?: string }).code === 'LK_SERVER_BUSY').length;
      // The first handshake leaves for the worker only on the next turn: 40 wait, 20 are refused.
      expect(busy).toBe(20);
    } finally {
      await p.close();
    }
  }, 60_000);
});
