/** Storm pacing (src/protection/pacing.ts): the queue bound follows the handshake rate; refusals get spaced return times. */
import { describe, expect, it } from 'vitest';
import { MIN_DELAY_MS, MIN_PENDING, MIN_RATE, Pacer } from '../../src/protection/pacing.js';

function pacer(over: { queueTargetMs?: number; maxDelayMs?: number } = {}) {
  let t = 1_000_000;
  const p = new Pacer({ queueTargetMs: 2_000, maxDelayMs: 300_000, now: () => t, random: () => 0.5, ...over });
  return { p, advance: (ms: number) => (t += ms), establish: (n: number) => { for (let i = 0; i < n; i++) p.established(); } };
}

describe('Pacer', () => {
  it('bounds handshakes in progress by its best recent second x the queue target, within [MIN_PENDING, maxPending]', () => {
    const { p, advance, establish } = pacer();
    // No history: the floor rate.
    expect(p.rate()).toBe(MIN_RATE);
    expect(p.pendingLimit(4096)).toBe(MIN_RATE * 2);
    expect(p.pendingLimit(50)).toBe(50);
    establish(600);
    // The current second counts at once (a restarted process must not wait a second to open up).
    expect(p.rate()).toBe(600);
    expect(p.pendingLimit(4096)).toBe(1200);
    advance(1000);
    establish(150);
    advance(1000);
    // The best second of the window, not the mean: appointments paced at it stay paced at it.
    expect(p.rate()).toBe(600);
    // After 30 s the best second has left the window.
    advance(30_000);
    expect(p.rate()).toBe(MIN_RATE);
    expect(new Pacer({ queueTargetMs: 0, maxDelayMs: 1000 }).pendingLimit(4096)).toBe(4096);
    expect(new Pacer({ queueTargetMs: 0, maxDelayMs: 1000 }).pendingLimit(0)).toBe(0);
    expect(new Pacer({ queueTargetMs: 100, maxDelayMs: 1000 }).pendingLimit(0)).toBe(MIN_PENDING);
  });

  it('hands out return times spaced at the rate, from 1 s on, jittered within each slot', () => {
    const { p, establish } = pacer();
    establish(800);
    // slot = 1000 / 800 = 1.25 ms; random() = 0.5 puts each in the middle of its slot.
    const d = Array.from({ length: 4 }, () => p.appointment());
    expect(d).toEqual([0, 1, 2, 3].map((i) => Math.round(MIN_DELAY_MS + 1.25 * i + 0.625)));
    // 10,000 refusals at that rate reach 1 + 12.5 s.
    for (let i = 0; i < 10_000; i++) p.appointment();
    expect(p.appointment()).toBeGreaterThan(13_000);
  });

  it('spreads appointments past maxDelayMs over [1 s, maxDelayMs] instead of piling them at the cap', () => {
    const { p } = pacer({ maxDelayMs: 10_000 });
    // MIN_RATE: 100 appointments a second; 10 s of them, then more.
    const d = Array.from({ length: 2_000 }, () => p.appointment());
    expect(Math.max(...d)).toBeLessThanOrEqual(10_000);
    const past = d.slice(1_000);
    expect(past.every((x) => x >= MIN_DELAY_MS && x <= 10_000)).toBe(true);
    // random() = 0.5: the middle of the range.
    expect(past[500]).toBe(Math.round(MIN_DELAY_MS + 0.5 * (10_000 - MIN_DELAY_MS)));
  });
});

describe('Pacer CPU estimate', () => {
  it('paces at what its share of the CPU allows per handshake, not only at what it established', () => {
    let t = 1_000_000;
    let cpu = 0;
    const p = new Pacer({ queueTargetMs: 2_000, maxDelayMs: 300_000, cpuShare: 0.5, cpuUs: () => cpu, now: () => t, random: () => 0.5 });
    p.rate(); // starts the first second's CPU reading
    // 200 handshakes in a second for 100 ms of CPU: 500 µs each; half a core allows 1,000/s.
    for (let i = 0; i < 200; i++) p.established();
    cpu += 100_000;
    t += 1000;
    expect(p.rate()).toBe(1000);
    expect(p.pendingLimit(4096)).toBe(2000);
    // Too few in a second to judge (MIN_SAMPLE): the estimate stands.
    for (let i = 0; i < 5; i++) p.established();
    cpu += 400_000;
    t += 1000;
    expect(p.rate()).toBe(1000);
    // A dearer second (refusals took the CPU: 2 ms a handshake) does not lower it: the best second counts.
    for (let i = 0; i < 100; i++) p.established();
    cpu += 200_000;
    t += 1000;
    expect(p.rate()).toBe(1000);
    // It lapses after 30 s like the best second; the floor is then 700/s per core of the share.
    t += 30_000;
    expect(p.rate()).toBe(350);
    expect(new Pacer({ queueTargetMs: 1, maxDelayMs: 1, cpuShare: 2 }).rate()).toBe(1400);
    // No share: no CPU estimate, the fixed floor.
    const q = new Pacer({ queueTargetMs: 2_000, maxDelayMs: 300_000, cpuUs: () => cpu, now: () => t });
    for (let i = 0; i < 200; i++) q.established();
    cpu += 1_000;
    t += 1000;
    expect(q.rate()).toBe(200);
  });
});
