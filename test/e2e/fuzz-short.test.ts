/**
 * The protocol fuzzer (bench/lib/fuzz-run.ts, the code `npm run fuzz` runs) in its short form:
 * ~20,000 WebSocket frames and ~1,000 HTTP requests against a real `latchkey serve` process, with
 * a fixed seed. The server must not crash, hang or keep a session after every connection closed.
 * A failure prints the input that did it (hex) and the server's stack; `npm run fuzz -- --seed
 * <seed> --replay-id <id>` replays it. No timing assertions: the run is bounded in time and the
 * counts only have to show that the fuzzer ran.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_OPTIONS, runFuzz, type FuzzResult } from '../../bench/lib/fuzz-run.js';
import { endpointKeys } from '../../bench/lib/keys.js';

const SEED = 20_260_101;
const crashDir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-fuzz-short-'));

afterAll(() => {
  fs.rmSync(crashDir, { recursive: true, force: true });
});

function describeFindings(r: FuzzResult): string {
  return r.findings
    .filter((f) => f.kind !== 'unexpected')
    .map((f) => {
      const hex = f.chunksHex.join('');
      return `${f.kind}: ${f.what}\n  input ${f.id} (${f.tag}): ${hex.length > 3000 ? hex.slice(0, 3000) + '...' : hex}\n  ${f.notes.slice(0, 3).join('\n  ')}\n  replay: ${f.replay}\n  server: ${f.serverOutput ?? ''}`;
    })
    .join('\n\n');
}

describe('fuzz (short)', () => {
  it('survives ~20,000 fuzzed frames and ~1,000 junk HTTP requests: no crash, hang or leaked session', async () => {
    const sessionWorkers = 6;
    // The bench's key cache (bench/.cache, generated if missing): a failure's replay hint then
    // works with `npm run fuzz` as printed.
    const keys = await endpointKeys(sessionWorkers + 4, 'fuzz-short');
    const log: string[] = [];
    const r = await runFuzz({
      ...DEFAULT_OPTIONS,
      seed: SEED,
      frames: 20_000,
      http: 1_000,
      maxSeconds: 45,
      wsConcurrency: 24,
      sessionWorkers,
      httpConcurrency: 6,
      keys,
      settleMs: 15_000,
      // One crash is enough to fail; its triage still names the input (bounded).
      maxCrashes: 1,
      triageMs: 30_000,
      crashDir,
      log: (l) => log.push(l),
    });
    const summary = `frames ${r.frames}, http ${r.httpRequests}, crashes ${r.crashes}, hangs ${r.hangs}, leaked ${r.leakedSessions}, stopped by ${r.stoppedBy}, unexpected ${JSON.stringify(r.unexpectedCodes)}\n${describeFindings(r)}`;
    expect(r.crashes, summary).toBe(0);
    expect(r.hangs, summary).toBe(0);
    expect(r.leakedSessions, summary).toBe(0);
    expect(r.fuzzerErrors, log.filter((l) => l.startsWith('fuzzer error')).join('\n')).toBe(0);
    // The fuzzer really ran (counts, not rates).
    expect(r.frames).toBeGreaterThan(1000);
    expect(r.httpRequests).toBeGreaterThan(100);
    expect(r.handshakesAccepted).toBeGreaterThan(0);
  }, 180_000);
});
