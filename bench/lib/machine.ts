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

/**
 * CPU µs of a process by thread role: 'main' (the event loop), 'crypto' (threads whose nice value
 * is above the main thread's: latchkey's crypto workers run at cryptoNice, 10 by default) and
 * 'other' (V8's GC and compiler helpers, libuv's pool, the inspector). Zeros once it has exited.
 */
export function threadRoleCpuUs(pid: number): { main: number; crypto: number; other: number } {
  const out = { main: 0, crypto: 0, other: 0 };
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  const rows: Array<{ tid: string; us: number; nice: number }> = [];
  for (const tid of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      rows.push({ tid, us: ((Number(f[11]) + Number(f[12])) * 1e6) / 100, nice: Number(f[16]) });
    } catch {
      // thread exited
    }
  }
  const mainNice = rows.find((r) => r.tid === String(pid))?.nice ?? 0;
  for (const r of rows) {
    if (r.tid === String(pid)) out.main += r.us;
    else if (r.nice > mainNice) out.crypto += r.us;
    else out.other += r.us;
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

/**
 * Where a process's resident memory is, from /proc/<pid>/smaps: MiB resident in the main malloc
 * heap (brk), in glibc's per-thread arenas (anonymous mappings on 64 MiB boundaries), in other
 * anonymous mappings (V8's heap pages, WebAssembly memories, large mallocs, thread stacks), and in
 * file mappings (code, and LMDB's data file, whose pages every process that reads them counts
 * again); plus PSS, which divides shared pages among the processes sharing them.
 */
export interface SmapsBreakdown {
  rssMiB: number;
  pssMiB: number;
  brkMiB: number;
  arenasMiB: number;
  otherAnonMiB: number;
  fileMiB: number;
}

export function smapsBreakdown(pid: number): SmapsBreakdown | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return null;
  }
  const kib = { rss: 0, pss: 0, brk: 0, arenas: 0, otherAnon: 0, file: 0 };
  let cat: 'brk' | 'arenas' | 'otherAnon' | 'file' | 'special' = 'special';
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const name = m[2]!.trim();
      if (name === '[heap]') cat = 'brk';
      else if (name === '') cat = parseInt(m[1]!, 16) % (64 * 1048576) === 0 ? 'arenas' : 'otherAnon';
      else if (name.startsWith('[')) cat = name === '[stack]' ? 'otherAnon' : 'special';
      else cat = 'file';
      continue;
    }
    if (line.startsWith('Rss:')) {
      const v = Number(line.split(/\s+/)[1]);
      kib.rss += v;
      if (cat !== 'special') kib[cat] += v;
    } else if (line.startsWith('Pss:')) {
      kib.pss += Number(line.split(/\s+/)[1]);
    }
  }
  const mb = (k: number): number => Math.round((k / 1024) * 100) / 100;
  return { rssMiB: mb(kib.rss), pssMiB: mb(kib.pss), brkMiB: mb(kib.brk), arenasMiB: mb(kib.arenas), otherAnonMiB: mb(kib.otherAnon), fileMiB: mb(kib.file) };
}
