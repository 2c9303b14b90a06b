/**
 * Plumbing every long bench needs, once: a bounded worker pool, child processes stopped on every
 * exit path (SIGINT/SIGTERM included), and the server's first root admin API key read off stderr.
 */
import type { ServerProcess } from '../../test/helpers/process.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Run `task(i)` for i in [0, n) with `concurrency` workers, until done or `deadline` (Date.now()). Returns how many started. */
export async function pool(n: number, concurrency: number, deadline: number, task: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n && Date.now() < deadline) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return next;
}

/** Child processes of this bench; `stopChildrenOnSignal` kills them when the bench is interrupted. */
export const children = new Set<{ kill: () => void }>();

export function killChildren(): void {
  for (const c of children) c.kill();
  children.clear();
}

export function stopChildrenOnSignal(bench: string): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`${bench}: ${sig}: stopping the child processes\n`);
      killChildren();
      process.exit(130);
    });
  }
}

/** The root admin API key a server on a fresh data directory prints once on stderr. */
export async function waitForToken(server: ServerProcess, timeoutMs: number): Promise<string> {
  const until = Date.now() + timeoutMs;
  const re = /first root admin API key[^\n]*\n\s*(lk_[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43})\s/;
  for (;;) {
    const m = re.exec(server.stderr.join(''));
    if (m) return m[1]!;
    if (Date.now() > until) throw new Error(`no root admin API key on the server's stderr within ${timeoutMs} ms:\n${server.stderr.join('')}`);
    await sleep(20);
  }
}
