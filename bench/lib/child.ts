/**
 * Start a floor server script (dist/bench/lib/*-server.js) as a child process and wait for its
 * {"msg":"listening","port":N} line. Every wait is bounded; stop() escalates to SIGKILL. The
 * child's stdin is a pipe it watches: if this process dies without stopping it, the child exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../../test/helpers/root.js';

export interface FloorProcess {
  child: ChildProcess;
  port: number;
  stop(): Promise<number | null>;
}

export async function startFloorProcess(script: string, env: Record<string, string> = {}, timeoutMs = 10_000, nodeArgs: string[] = []): Promise<FloorProcess> {
  const child = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'dist/bench/lib', script)], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let buf = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not listen within ${timeoutMs} ms:\n${logs.join('')}`));
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
      reject(new Error(`${script} exited with ${code}:\n${logs.join('')}`));
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
