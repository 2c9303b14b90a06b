/**
 * The plain uWS echo server (bench/lib/echo-server.ts) as a child process: the floor of
 * bench/events. Every wait is bounded; stop() escalates to SIGKILL (bench/lib/child.ts).
 */
import { startFloorProcess, type FloorProcess } from './child.js';

export type EchoProcess = FloorProcess;

export function startEchoProcess(timeoutMs = 10_000, nodeArgs: string[] = []): Promise<EchoProcess> {
  return startFloorProcess('echo-server.js', {}, timeoutMs, nodeArgs);
}
