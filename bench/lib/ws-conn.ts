/**
 * A persistent raw-socket WebSocket connection for load generation that sends as well as receives
 * (bench/lib/raw-ws.ts does one exchange; this one keeps talking). Same rules: one `net` socket,
 * a fixed upgrade request, a zero masking key, no fragmentation, loopback only. Cheap on purpose:
 * the load generator shares the cores with the server it measures.
 *
 * Two ways to read:
 * - `next(timeoutMs)`: await the next message (a copy); for set-up exchanges.
 * - `handle(onMessage, onChunk)`: a callback per message with a *view* valid only during the call,
 *   then `onChunk` once per received chunk (after its complete messages): where a load generator
 *   refills its send window, so that many sends share one write.
 */
import net from 'node:net';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const EMPTY = Buffer.alloc(0);

/** Server frames larger than this end the connection (a load generator never expects them). */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Header bytes of a masked client frame of `len` payload bytes (including the 4-byte mask). */
function headBytes(len: number): number {
  return (len < 126 ? 2 : len < 65536 ? 4 : 10) + 4;
}

/** Write a masked frame (zero mask key: RFC 6455 requires a mask, not a random one, of non-browsers) at `off`; returns the end. */
function writeFrame(out: Buffer, off: number, opcode: number, payload: Uint8Array): number {
  const len = payload.byteLength;
  out[off] = 0x80 | opcode;
  if (len < 126) {
    out[off + 1] = 0x80 | len;
    off += 2;
  } else if (len < 65536) {
    out[off + 1] = 0x80 | 126;
    out.writeUInt16BE(len, off + 2);
    off += 4;
  } else {
    out[off + 1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), off + 2);
    off += 10;
  }
  out.writeUInt32BE(0, off);
  off += 4;
  out.set(payload, off);
  return off + len;
}

export type MessageHandler = (opcode: number, payload: Buffer) => void;

export class WsConnection {
  /** Messages received while no handler is installed (copies), for next(). */
  private readonly queue: Array<{ opcode: number; payload: Buffer }> = [];
  private waiter: (() => void) | null = null;
  private onMessage: MessageHandler | null = null;
  private onChunk: (() => void) | null = null;
  private buf: Buffer = EMPTY;
  private closedAt: number | null = null;
  private readonly closedP: Promise<void>;
  /** Why the connection ended, if it did (socket error, peer close, protocol problem). */
  endReason: string | null = null;
  bytesIn = 0;
  bytesOut = 0;

  private constructor(private readonly sock: net.Socket) {
    this.closedP = new Promise<void>((resolve) =>
      sock.once('close', () => {
        this.closedAt = performance.now();
        this.endReason ??= 'closed';
        this.wake();
        resolve();
      }),
    );
    sock.on('error', (err) => {
      this.endReason ??= `socket error: ${err.message}`;
    });
  }

  get closed(): boolean {
    return this.closedAt !== null;
  }

  /**
   * Connect to 127.0.0.1:`port`, upgrade on `path` (offering `protocol` if given), resolve once the
   * server answered 101. Rejects on timeout, error or another status.
   */
  static open(port: number, path: string, timeoutMs: number, protocol?: string): Promise<WsConnection> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.setNoDelay(true);
      const conn = new WsConnection(sock);
      let head: Buffer = Buffer.alloc(0);
      let settled = false;
      const fail = (why: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        reject(new Error(`WebSocket upgrade to 127.0.0.1:${port}${path} failed: ${why}`));
      };
      const timer = setTimeout(() => fail('timeout'), timeoutMs);
      sock.once('error', (err) => fail(err.message));
      sock.once('close', () => fail('closed'));
      sock.on('connect', () => {
        sock.write(
          `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
            (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
            '\r\n',
        );
      });
      const onHead = (d: Buffer): void => {
        head = head.length ? Buffer.concat([head, d]) : d;
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > 16 * 1024) fail('response head too long');
          return;
        }
        if (!head.subarray(0, 12).toString('latin1').includes(' 101')) return fail(`status: ${head.subarray(0, head.indexOf('\r\n')).toString('latin1')}`);
        settled = true;
        clearTimeout(timer);
        sock.off('data', onHead);
        sock.on('data', (chunk: Buffer) => conn.onData(chunk));
        resolve(conn);
        const rest = head.subarray(end + 4);
        if (rest.length) conn.onData(rest);
      };
      sock.on('data', onHead);
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private onData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    const buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 2) {
      const b0 = buf[off]!;
      const opcode = b0 & 0x0f;
      if ((b0 & 0x80) === 0 || (buf[off + 1]! & 0x80) !== 0) {
        // Fragmented or masked server frames: not what a WebSocket server sends us here.
        this.endReason = 'unexpected fragmented or masked frame from the server';
        this.sock.destroy();
        return;
      }
      let len = buf[off + 1]! & 0x7f;
      let p = off + 2;
      if (len === 126) {
        if (buf.length - off < 4) break;
        len = buf.readUInt16BE(off + 2);
        p = off + 4;
      } else if (len === 127) {
        if (buf.length - off < 10) break;
        len = Number(buf.readBigUInt64BE(off + 2));
        p = off + 10;
      }
      if (len > MAX_MESSAGE_BYTES) {
        this.endReason = `server message of ${len} bytes`;
        this.sock.destroy();
        return;
      }
      if (buf.length < p + len) break;
      const payload = buf.subarray(p, p + len);
      off = p + len;
      if (this.onMessage) this.onMessage(opcode, payload);
      else {
        this.queue.push({ opcode, payload: Buffer.from(payload) });
        this.wake();
      }
    }
    // Keep only the incomplete tail (a copy, so the chunk it came from can be collected).
    this.buf = off >= buf.length ? EMPTY : Buffer.from(buf.subarray(off));
    this.onChunk?.();
  }

  /** The next message (a copy) when no handler is installed; rejects on timeout or close. */
  async next(timeoutMs: number): Promise<{ opcode: number; payload: Buffer }> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      const m = this.queue.shift();
      if (m) return m;
      if (this.closed) throw new Error(`connection ended while waiting for a message (${this.endReason})`);
      const left = until - performance.now();
      if (left <= 0) throw new Error(`no message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /**
   * Deliver messages to `onMessage` (payload views valid during the call only) from now on, then
   * call `onChunk` after each received chunk. Messages already queued are handed over first.
   * null for both returns to queueing for next().
   */
  handle(onMessage: MessageHandler | null, onChunk: (() => void) | null = null): void {
    this.onMessage = onMessage;
    this.onChunk = onChunk;
    if (onMessage) {
      for (const m of this.queue.splice(0)) onMessage(m.opcode, m.payload);
      onChunk?.();
    }
  }

  /** Send one binary message. False when the socket is gone. */
  send(payload: Uint8Array): boolean {
    return this.sendMany([payload]);
  }

  /** Send binary messages in one socket write. False when the socket is gone. */
  sendMany(payloads: readonly Uint8Array[], count = payloads.length): boolean {
    if (this.sock.destroyed || count === 0) return !this.sock.destroyed;
    let total = 0;
    for (let i = 0; i < count; i++) total += headBytes(payloads[i]!.byteLength) + payloads[i]!.byteLength;
    const out = Buffer.allocUnsafe(total);
    let off = 0;
    for (let i = 0; i < count; i++) off = writeFrame(out, off, 0x2, payloads[i]!);
    this.bytesOut += total;
    this.sock.write(out);
    return true;
  }

  /** Bytes handed to the socket and not yet written to the kernel. */
  get writeQueueBytes(): number {
    return this.sock.writableLength;
  }

  /** WebSocket close 1000, then wait (bounded) for the socket to end; destroys it after `timeoutMs`. */
  async close(timeoutMs = 5000): Promise<void> {
    if (!this.sock.destroyed) {
      const close = Buffer.allocUnsafe(8);
      writeFrame(close, 0, 0x8, Buffer.from([0x03, 0xe8]));
      this.sock.end(close);
    }
    const t = setTimeout(() => this.sock.destroy(), timeoutMs);
    await this.closedP;
    clearTimeout(t);
  }

  /** Drop the socket at once. */
  destroy(): void {
    this.sock.destroy();
  }
}
