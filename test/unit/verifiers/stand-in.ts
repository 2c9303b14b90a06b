/**
 * Local HTTP stand-ins for identity providers: node:http on 127.0.0.1, port 0. `answer` decides each
 * reply; the stand-in records requests and the most requests it ever had in flight at once.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';

export type Answer =
  | { status?: number; json?: unknown; text?: string; delayMs?: number }
  | 'hang'; // never answer: the client must time out

export interface SeenRequest {
  url: URL;
  headers: http.IncomingHttpHeaders;
}

export interface StandIn {
  /** http://127.0.0.1:<port> */
  readonly origin: string;
  readonly requests: SeenRequest[];
  readonly maxInFlight: number;
  answer: (req: SeenRequest) => Answer;
  close(): Promise<void>;
}

export async function startStandIn(answer: (req: SeenRequest) => Answer): Promise<StandIn> {
  const timers = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  const state = {
    origin: '',
    requests: [] as SeenRequest[],
    maxInFlight: 0,
    answer,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const seen = { url: new URL(req.url ?? '/', 'http://127.0.0.1'), headers: req.headers };
    state.requests.push(seen);
    inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, inFlight);
    const done = (): void => {
      inFlight--;
    };
    const a = state.answer(seen);
    if (a === 'hang') {
      res.on('close', done);
      return;
    }
    const reply = (): void => {
      const body = a.text ?? (a.json === undefined ? '' : JSON.stringify(a.json));
      res.writeHead(a.status ?? 200, { 'content-type': a.text === undefined ? 'application/json' : 'text/plain' });
      res.end(body);
      done();
    };
    if (a.delayMs) {
      const t = setTimeout(() => {
        timers.delete(t);
        reply();
      }, a.delayMs);
      timers.add(t);
    } else {
      reply();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

/** An origin on 127.0.0.1 where nothing listens (a port just released). */
export async function refusedOrigin(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

export const silentLog: Logger = pino({ level: 'silent' });

/** A logger that keeps its lines for assertions. */
export function capturingLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

export const nowSec = (): number => Math.floor(Date.now() / 1000);
