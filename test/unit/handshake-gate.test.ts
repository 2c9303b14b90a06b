import { describe, expect, it } from 'vitest';
import { HandshakeGate } from '../../src/session/handshake-gate.js';

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('HandshakeGate', () => {
  it('runs every job once, in arrival order, and none in the callback that queued it', async () => {
    const gate = new HandshakeGate(1, (err) => { throw err; });
    const ran: number[] = [];
    for (let i = 0; i < 50; i++) gate.run(() => ran.push(i));
    expect(ran).toEqual([]);
    expect(gate.waiting).toBe(50);
    for (let t = 0; t < 200 && ran.length < 50; t++) await nextTurn();
    expect(ran).toEqual([...Array(50).keys()]);
    expect(gate.waiting).toBe(0);
  });

  it('a turn counts what its jobs run as microtasks, and other callbacks run between turns', async () => {
    let fake = 0;
    const gate = new HandshakeGate(1, (err) => { throw err; }, () => fake);
    const order: string[] = [];
    // Each job costs 0.1 ms synchronously and 0.4 ms in a microtask after its first await.
    for (let i = 0; i < 40; i++) {
      gate.run(() => {
        fake += 0.1;
        order.push('job');
        void Promise.resolve().then(() => { fake += 0.4; });
      });
    }
    let polls = 0;
    const poll = (): void => { polls++; order.push('poll'); };
    for (let t = 0; t < 100 && gate.waiting > 0; t++) {
      await nextTurn();
      poll();
    }
    expect(gate.waiting).toBe(0);
    // 0.5 ms per job, 1 ms per turn: 2 jobs a turn once the gate has measured the first turns.
    expect(gate.jobsPerTurn).toBe(2);
    expect(polls).toBeGreaterThanOrEqual(15);
    const runs = order.join(' ').split('poll').map((s) => s.trim().split(' ').filter(Boolean).length);
    expect(Math.max(...runs.slice(3))).toBeLessThanOrEqual(2);
  });

  it('a job that throws is reported and the others still run; budget 0 runs each job at once', async () => {
    const errors: unknown[] = [];
    const gate = new HandshakeGate(1, (err) => errors.push(err));
    const ran: number[] = [];
    gate.run(() => { throw new Error('boom'); });
    gate.run(() => ran.push(1));
    for (let t = 0; t < 10 && ran.length === 0; t++) await nextTurn();
    expect(errors).toHaveLength(1);
    expect(ran).toEqual([1]);
    const direct = new HandshakeGate(0, (err) => errors.push(err));
    direct.run(() => ran.push(2));
    expect(ran).toEqual([1, 2]);
  });
});
