/**
 * The box's RSA private-operation ceiling for bench/sessions: RSA-OAEP-SHA256 private decrypts of a
 * 64-byte secret with node:crypto (what every handshake costs the server: src/crypto/session-crypto.ts
 * RSA_OAEP), one worker thread per core, all at once, for `seconds` after a short warm-up. The
 * result, decrypts per second of the whole machine, is what no server on this box can pass: its
 * handshakes per second are compared to it, and a reconnect storm of N sessions cannot end sooner
 * than N / ceiling.
 *
 * The worker is this same module (started with workerData.sessionsRsa set).
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { RSA_OAEP } from '../../src/crypto/session-crypto.js';

interface RsaJob {
  sessionsRsa: true;
  privatePem: string;
  ciphertext: Uint8Array;
  warmupMs: number;
  runMs: number;
}

export interface RsaCeiling {
  opsPerSec: number;
  threads: number;
  seconds: number;
  perThreadOpsPerSec: number[];
  /** Wall µs per decrypt on one thread with every core busy (median over the threads). */
  usPerOp: number;
}

export async function rsaCeiling(seconds: number, threads = os.availableParallelism()): Promise<RsaCeiling> {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ciphertext = crypto.publicEncrypt({ key: publicKey, ...RSA_OAEP }, crypto.randomBytes(64));
  const job: RsaJob = { sessionsRsa: true, privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), ciphertext, warmupMs: 500, runMs: seconds * 1000 };
  const results = await Promise.all(
    Array.from({ length: threads }, () => new Promise<{ ops: number; ms: number }>((resolve, reject) => {
      const w = new Worker(new URL(import.meta.url), { workerData: job });
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code) => (code !== 0 ? reject(new Error(`RSA ceiling worker exited ${code}`)) : undefined));
    })),
  );
  const per = results.map((r) => (r.ops * 1000) / r.ms);
  const us = per.map((v) => 1e6 / Math.max(1e-9, v)).sort((a, b) => a - b);
  return {
    opsPerSec: Math.round(per.reduce((a, b) => a + b, 0)),
    threads,
    seconds,
    perThreadOpsPerSec: per.map((v) => Math.round(v)),
    usPerOp: +us[Math.floor(us.length / 2)]!.toFixed(1),
  };
}

function runWorker(job: RsaJob): void {
  const key = crypto.createPrivateKey(job.privatePem);
  const ct = Buffer.from(job.ciphertext);
  const opts = { key, ...RSA_OAEP };
  // Every thread starts timing at the same moment after its warm-up, so all cores are busy throughout.
  const warmEnd = performance.now() + job.warmupMs;
  while (performance.now() < warmEnd) crypto.privateDecrypt(opts, ct);
  const t0 = performance.now();
  const end = t0 + job.runMs;
  let ops = 0;
  while (performance.now() < end) {
    crypto.privateDecrypt(opts, ct);
    ops++;
  }
  parentPort!.postMessage({ ops, ms: performance.now() - t0 });
}

if (!isMainThread && (workerData as RsaJob | null)?.sessionsRsa) runWorker(workerData as RsaJob);
