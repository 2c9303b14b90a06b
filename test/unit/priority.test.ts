/**
 * setProcessNice (src/node/priority.ts): every thread of a process gets at least the nice value;
 * a thread already nicer (a crypto worker at cryptoNice) keeps its own. Runs in a child process so
 * the test runner's own priority is not touched. Linux only (/proc).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/root.js';

const script = `
const os = require('node:os');
const fs = require('node:fs');
const { Worker } = require('node:worker_threads');
const nices = () => fs.readdirSync('/proc/self/task').map((t) => Number(fs.readFileSync('/proc/self/task/' + t + '/stat', 'utf8').split(') ')[1].split(' ')[16]));
const w = new Worker("require('node:os').setPriority(0, 9); require('node:worker_threads').parentPort.postMessage(0); setInterval(() => {}, 1000);", { eval: true });
w.once('message', async () => {
  const { setProcessNice } = await import(process.argv[1]);
  const set = setProcessNice(5);
  const after = nices();
  console.log(JSON.stringify({ set, main: os.getPriority(), after }));
  process.exit(0);
});
`;

describe.skipIf(!fs.existsSync('/proc/self/task'))('setProcessNice', () => {
  it('raises every thread to the nice value and leaves a nicer thread at its own', () => {
    const mod = path.join(ROOT, 'dist/src/node/priority.js');
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script, mod], { encoding: 'utf8', timeout: 20_000 })) as { set: number; main: number; after: number[] };
    expect(out.main).toBe(5);
    // The worker stayed at 9; every other thread is at 5, none below.
    expect(out.after.filter((n) => n === 9)).toHaveLength(1);
    expect(out.after.every((n) => n === 5 || n === 9)).toBe(true);
    expect(out.set).toBe(out.after.length - 1);
  });
});
