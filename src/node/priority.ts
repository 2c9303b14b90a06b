/**
 * Nice values per process (Linux). A nice value belongs to a thread, and a thread starts with its
 * creator's, so lowering a process means setting every thread it has now; threads it starts later
 * inherit the main thread's. Raising a nice value needs no privilege. Used for the gateway
 * processes (gatewayNice, node/gateway-process.ts) and by bench/sessions for its generators.
 */
import fs from 'node:fs';
import os from 'node:os';

/**
 * Set every thread of process `pid` (default: this one) to `nice` at least (a thread already
 * nicer, such as a crypto worker at cryptoNice, keeps its own); returns how many were set (0 where
 * /proc is missing).
 */
export function setProcessNice(nice: number, pid: number | 'self' = 'self'): number {
  if (!(nice > 0)) return 0;
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  let n = 0;
  for (const t of tids) {
    try {
      if (os.getPriority(Number(t)) >= nice) continue;
      os.setPriority(Number(t), nice);
      n++;
    } catch {
      // a thread that ended meanwhile
    }
  }
  return n;
}
