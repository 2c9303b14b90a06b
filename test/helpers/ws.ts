/**
 * A raw WebSocket for tests (undici's WHATWG WebSocket): send arbitrary bytes, collect every frame
 * and the close event, with bounded waits so a broken server fails the test instead of hanging it.
 */
import { WebSocket } from 'undici';
import { decodeFrame, type Frame } from '../../src/protocol/frames.js';

export interface RawSocket {
  ws: WebSocket;
  frames: Buffer[];
  closed: Promise<{ code: number; reason: string }>;
  send(bytes: Uint8Array | string): void;
  /** Wait for the n-th frame (0-based) to arrive. */
  frame(n: number, timeoutMs?: number): Promise<Buffer>;
  decoded(n: number, timeoutMs?: number): Promise<Frame>;
  close(): void;
}

export async function openRaw(url: string, timeoutMs = 5000): Promise<RawSocket> {
  const ws = new WebSocket(url, 'latchkey.v1');
  ws.binaryType = 'arraybuffer';
  const frames: Buffer[] = [];
  const waiters: Array<() => void> = [];
  let resolveClosed!: (v: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((r) => (resolveClosed = r));
  ws.onmessage = (ev) => {
    frames.push(Buffer.from(ev.data as ArrayBuffer));
    for (const w of waiters.splice(0)) w();
  };
  ws.onclose = (ev) => {
    resolveClosed({ code: ev.code, reason: ev.reason });
    for (const w of waiters.splice(0)) w();
  };
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('open timeout')), timeoutMs);
    ws.onopen = () => {
      clearTimeout(t);
      resolve();
    };
    ws.onerror = () => {
      clearTimeout(t);
      reject(new Error('websocket error'));
    };
  });
  const frame = async (n: number, t = 5000): Promise<Buffer> => {
    const deadline = Date.now() + t;
    while (frames.length <= n) {
      if (ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed after ${frames.length} frames`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for frame ${n}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
    return frames[n]!;
  };
  return {
    ws,
    frames,
    closed,
    send: (b) => ws.send(b),
    frame,
    decoded: async (n, t) => {
      const d = decodeFrame(await frame(n, t));
      if (!d.ok) throw new Error(`undecodable frame: ${d.code}`);
      return d.value;
    },
    close: () => ws.close(),
  };
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms)))]).finally(() => clearTimeout(t));
}
