/**
 * The fuzzer's report: bench/results/fuzz-latest.json (everything) and fuzz-latest.md (the table a
 * reader wants: counts, RSS, findings, unexpected codes, the full code histogram), with the machine
 * line and how busy the machine was during the run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { machineLine, type MachineInfo } from './machine.js';
import type { FuzzResult } from './fuzz-run.js';

/** Machine-wide CPU ticks from /proc/stat: busy (user, nice, system, irq, softirq), steal, total. */
export function machineTicks(): { busy: number; steal: number; total: number } {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { busy: f[0]! + f[1]! + f[2]! + f[5]! + f[6]!, steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
  } catch {
    return { busy: 0, steal: 0, total: 0 };
  }
}

export interface Busy {
  /** Machine-wide busy CPU over the run, percent of all cores. */
  machineBusyPercent: number;
  /** Busy CPU that was neither the server nor the fuzzer, percent of all cores (other load on the VM). */
  otherBusyPercent: number;
  stealPercent: number;
  loadAvgBefore: number[];
  loadAvgAfter: number[];
}

export function busyBetween(t0: ReturnType<typeof machineTicks>, t1: ReturnType<typeof machineTicks>, serverCpuS: number, clientCpuS: number, load0: number[]): Busy {
  const total = t1.total - t0.total;
  const pct = (ticks: number): number => (total > 0 ? +((100 * ticks) / total).toFixed(1) : 0);
  const ownTicks = (serverCpuS + clientCpuS) * 100; // USER_HZ is 100 on Linux
  return {
    machineBusyPercent: pct(t1.busy - t0.busy),
    otherBusyPercent: Math.max(0, pct(t1.busy - t0.busy - ownTicks)),
    stealPercent: pct(t1.steal - t0.steal),
    loadAvgBefore: load0.map((x) => +x.toFixed(2)),
    loadAvgAfter: os.loadavg().map((x) => +x.toFixed(2)),
  };
}

const MiB = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;

export function reportMarkdown(r: FuzzResult, machine: MachineInfo, busy: Busy, settings: Record<string, unknown>): string {
  const lines = [
    '# bench/fuzz',
    '',
    machineLine(machine),
    '',
    `machine busy ${busy.machineBusyPercent}% of all cores during the run (other than server and fuzzer: ${busy.otherBusyPercent}%, steal ${busy.stealPercent}%), load average ${busy.loadAvgBefore.join(' ')} -> ${busy.loadAvgAfter.join(' ')}`,
    '',
    `settings: \`${JSON.stringify(settings)}\``,
    '',
    '| metric | value |',
    '|---|---|',
    `| frames (WebSocket frames sent) | ${r.frames} |`,
    `| httpRequests | ${r.httpRequests} |`,
    `| connections (WebSocket) | ${r.connections} |`,
    `| handshakes accepted | ${r.handshakesAccepted} |`,
    `| crashes | ${r.crashes} |`,
    `| hangs | ${r.hangs} |`,
    `| leakedSessions (sockets ${r.socketsAfter ?? '-'}, sessionsOpen ${r.sessionsOpenAfter ?? '-'} after settling) | ${r.leakedSessions} |`,
    `| unexpected codes (total) | ${Object.values(r.unexpectedCodes).reduce((a, b) => a + b, 0)} |`,
    `| server RSS before / after / peak | ${MiB(r.rssBeforeBytes)} / ${MiB(r.rssAfterBytes)} / ${MiB(r.rssPeakBytes)} |`,
    `| server V8 heap used before / after (/metrics) | ${r.heapUsedBeforeBytes === null ? '-' : MiB(r.heapUsedBeforeBytes)} / ${r.heapUsedAfterBytes === null ? '-' : MiB(r.heapUsedAfterBytes)} |`,
    `| fuzzing time / whole run | ${r.fuzzSeconds.toFixed(1)} s / ${r.durationSeconds.toFixed(1)} s |`,
    `| frames/s | ${Math.round(r.frames / Math.max(0.001, r.fuzzSeconds))} |`,
    `| server CPU / fuzzer CPU | ${r.serverCpuSeconds.toFixed(1)} s / ${r.clientCpuSeconds.toFixed(1)} s |`,
    `| server restarts (after crashes) | ${r.serverRestarts} |`,
    `| quarantined input categories | ${r.quarantined.join(', ') || '-'} |`,
    `| stopped by | ${r.stoppedBy} |`,
    `| fuzzer errors (bugs of the fuzzer, not findings) | ${r.fuzzerErrors} |`,
    `| answers not counted (seen while the server was dying) | ${r.droppedCodes} |`,
    '',
  ];
  if (Object.keys(r.hangsByKey).length) {
    lines.push('## Hangs by target and input category', '', '| category | hangs |', '|---|---|');
    for (const [k, v] of Object.entries(r.hangsByKey)) lines.push(`| ${k} | ${v} |`);
    lines.push('');
  }
  const important = r.findings.filter((f) => f.kind !== 'unexpected');
  lines.push('## Crashes, hangs, leaks', '');
  if (important.length === 0) lines.push('none', '');
  for (const f of important) {
    const hex = f.chunksHex.join('');
    lines.push(`### ${f.kind}: ${f.what}`, '', `input \`${f.id}\` (${f.tag}, ${f.target} port${f.reproduced !== undefined ? `, reproduced alone: ${f.reproduced}` : ''}); replay: ${f.replay}`, '');
    if (hex) lines.push('```', hex.length > 4000 ? `${hex.slice(0, 4000)}... (${hex.length / 2} bytes)` : hex, '```', '');
    if (f.serverOutput) lines.push('server output:', '', '```', f.serverOutput, '```', '');
    if (f.notes.length) lines.push(`notes: ${f.notes.slice(0, 10).join('; ')}`, '');
  }
  lines.push('## Unexpected codes', '');
  const unexpected = Object.entries(r.unexpectedCodes);
  if (unexpected.length === 0) lines.push('none', '');
  else {
    lines.push('| key | count | first input |', '|---|---|---|');
    for (const [k, v] of unexpected) {
      const f = r.findings.find((x) => x.kind === 'unexpected' && x.what.startsWith(k));
      lines.push(`| ${k} | ${v} | ${f ? `${f.id} (${f.tag})` : '-'} |`);
    }
    lines.push('');
  }
  lines.push('## Everything the server answered', '', '| key | count |', '|---|---|');
  for (const [k, v] of Object.entries(r.codes)) lines.push(`| ${k} | ${v} |`);
  lines.push('');
  return lines.join('\n');
}

export function writeReport(dir: string, r: FuzzResult, machine: MachineInfo, busy: Busy, settings: Record<string, unknown>): void {
  fs.mkdirSync(dir, { recursive: true });
  const json = { bench: 'fuzz', machine, busy, settings, ...r };
  fs.writeFileSync(path.join(dir, 'fuzz-latest.json'), JSON.stringify(json, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'fuzz-latest.md'), reportMarkdown(r, machine, busy, settings));
}
