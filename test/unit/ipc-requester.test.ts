/**
 * ipc/messages.ts Requester: request/reply over a channel, and the age of its oldest unanswered
 * request, which a gateway process's admission reads (server.ts IPC_BUSY_MS) to refuse new
 * connections while the node primary is behind.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Requester, type Channel } from '../../src/ipc/messages.js';

afterEach(() => {
  vi.useRealTimers();
});

/** A channel that keeps what is sent, so the test answers (or not) by hand. */
function channel(): Channel & { sent: Array<{ id: number; op: string }> } {
  const sent: Array<{ id: number; op: string }> = [];
  return {
    sent,
    connected: true,
    send(m: unknown, cb?: (err: Error | null) => void): boolean {
      sent.push(m as { id: number; op: string });
      cb?.(null);
      return true;
    },
  };
}

describe('Requester', () => {
  it('reports how long its oldest unanswered request has waited, in send order, and 0 once all are answered', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const ch = channel();
    const r = new Requester<'cache.get'>(ch, 10_000);
    expect(r.oldestWaitMs()).toBe(0);
    const first = r.request<string>('cache.get', ['a']);
    vi.advanceTimersByTime(700);
    const second = r.request<string>('cache.get', ['b']);
    vi.advanceTimersByTime(600);
    expect(r.oldestWaitMs()).toBe(1300);
    r.settle({ id: ch.sent[0]!.id, value: 'A' });
    await expect(first).resolves.toBe('A');
    expect(r.oldestWaitMs()).toBe(600);
    r.settle({ id: ch.sent[1]!.id, value: 'B' });
    await expect(second).resolves.toBe('B');
    expect(r.oldestWaitMs()).toBe(0);
  });

  it('forgets a request that timed out (rejected with its op named), so it no longer counts as waiting', async () => {
    vi.useFakeTimers({ now: 5_000 });
    const r = new Requester<'cache.get'>(channel(), 2000);
    const p = r.request('cache.get', ['a']);
    const caught = p.catch((e: unknown) => e);
    vi.advanceTimersByTime(1999);
    expect(r.oldestWaitMs()).toBe(1999);
    vi.advanceTimersByTime(1);
    expect(await caught).toMatchObject({ code: 'LK_INTERNAL', message: expect.stringContaining('cache.get') });
    expect(r.oldestWaitMs()).toBe(0);
  });
});
