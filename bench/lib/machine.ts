/** The machine line every bench prints first and stores with its results. */
import os from 'node:os';
import fs from 'node:fs';

export interface MachineInfo {
  cpu: string;
  cores: number;
  memGiB: number;
  node: string;
  platform: string;
  date: string;
}

export function machineInfo(): MachineInfo {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
  };
}

export function machineLine(m: MachineInfo): string {
  return `machine: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, node ${m.node}, ${m.platform}`;
}

/** CPU time (user + system, µs) used so far by a process and all its threads, from /proc. */
export function processCpuUs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[11] = utime, fields[12] = stime (clock ticks); field numbering starts at state = index 0.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / 100; // USER_HZ is 100 on Linux
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** CPU µs per thread name (comm) of a process: where the server spends its time. */
export function threadCpuUs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const us = ((Number(f[11]) + Number(f[12])) * 1e6) / 100;
      // Worker, V8 and libuv threads are all named 'node'; keep them apart by thread id.
      const key = tid === String(pid) ? 'main' : `${name}-${tid}`;
      out.set(key, (out.get(key) ?? 0) + us);
    } catch {
      // thread exited
    }
  }
  return out;
}

export function diffThreads(a: Map<string, number>, b: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of b) out[k] = v - (a.get(k) ?? 0);
  return out;
}

/** Resident set size of a process, bytes (/proc/<pid>/status VmRSS). */
export function processRssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}
