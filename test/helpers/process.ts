/**
 * Run the real CLI (`node dist/src/main.js`) as child processes: the server as the operator runs it
 * and the provisioning commands. Every wait is bounded; servers are killed when the test ends.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './root.js';

export { ROOT };
const MAIN = path.join(ROOT, 'dist/src/main.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function cliJson<T>(args: string[], env: Record<string, string> = {}): T {
  const r = cli([...args, '--json'], env);
  if (r.status !== 0) throw new Error(`latchkey ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  adminPort: number;
  logs: string[];
  /** The server's stderr alone, as received (chunks; join with '' for the text). Also in `logs`. */
  stderr: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Lines kept of a server's output: the first LOG_HEAD (start-up: root key, listening) and the most
 * recent rest. A bench's node can log millions of lines in a storm; keeping all of them once ended a
 * run with "Invalid string length" when its exit was reported.
 */
const LOG_MAX = 20_000;
const LOG_HEAD = 2_000;

function keep(lines: string[], line: string): void {
  if (lines.length >= LOG_MAX) lines.splice(LOG_HEAD, 1);
  lines.push(line);
}

/** The last `n` kept lines, for an error message. */
function tail(lines: string[], n = 200): string {
  return (lines.length > n ? ['...', ...lines.slice(-n)] : lines).join('\n');
}

export async function startServerProcess(env: Record<string, string>, timeoutMs = 20_000, nodeArgs: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...nodeArgs, MAIN, 'serve'], {
    // One process unless the test asks for more: most suites test a process's own behaviour (exit codes,
    // logs); node-processes.test.ts runs the multi-process node. A bench may ask through the environment.
    env: { ...process.env, LATCHKEY_HOST: '127.0.0.1', LATCHKEY_PORT: '0', LATCHKEY_ADMIN_PORT: '0', LATCHKEY_PROCESSES: process.env.LATCHKEY_PROCESSES ?? '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const stderr: string[] = [];
  let buf = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen within ${timeoutMs} ms:\n${tail(logs)}`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        keep(logs, line);
        try {
          const j = JSON.parse(line) as { msg?: string; port?: number; adminPort?: number };
          if (j.msg === 'listening') {
            clearTimeout(timer);
            resolve({ port: j.port!, adminPort: j.adminPort! });
          }
        } catch {
          // not JSON
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      const text = d.toString();
      keep(logs, text);
      keep(stderr, text);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${tail(logs)}`));
    });
  });
  const { port, adminPort } = await ready;
  return {
    child,
    port,
    adminPort,
    logs,
    stderr,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
