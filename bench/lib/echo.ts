/**
 * Start and stop the plain uWS echo server (bench/lib/echo-server.ts) as a child process: the floor
 * of bench/events. Every wait is bounded; stop() escalates to SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../../test/helpers/root.js';

const SCRIPT = path.join(ROOT, 'dist/bench/lib/echo-server.js');

export interface EchoProcess {
  child: ChildProcess;
  port: number;
  stop(): Promise<number | null>;
}

export async function startEchoProcess(timeoutMs = 10_000, nodeArgs: string[] = []): Promise<EchoProcess> {
  // stdin is a pipe the child watches: if this process dies without stopping it, the child exits.
  const child = spawn(process.execPath, [...nodeArgs, SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let buf = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`echo server did not listen within ${timeoutMs} ms:\n${logs.join('')}`));
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line + '\n');
        try {
          const j = JSON.parse(line) as { msg?: string; port?: number };
          if (j.msg === 'listening' && typeof j.port === 'number') {
            clearTimeout(timer);
            resolve(j.port);
          }
        } catch {
          // not JSON
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`echo server exited with ${code}:\n${logs.join('')}`));
    });
  });
  return {
    child,
    port,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
