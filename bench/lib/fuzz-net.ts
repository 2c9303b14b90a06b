/**
 * The fuzzer's raw sockets: WebSocket framing written by hand over `net.Socket` (so masks,
 * fragments, RSV bits, opcodes and lengths are whatever the generator says, including what RFC 6455
 * forbids a client), a reader for the server's frames, and a raw HTTP/1.1 exchange (any bytes out,
 * the answers parsed back). Every wait is bounded; loopback only. Each connection records the bytes
 * it wrote (capped) so an input that crashed or hung the server can be saved and replayed.
 */
import net from 'node:net';

/** Bytes a connection wrote, in write order (one chunk per write), for crash/hang reports and replay. */
export interface Recording {
  /** Stream and index, e.g. "ws-pre#1234": with the run seed it names the generator input. */
  id: string;
  /** Generator category (what kind of input this is); crashes quarantine their category. */
  tag: string;
  target: 'gateway' | 'admin';
  /** The first chunk is an HTTP upgrade request to wait a 101 for (replay). */
  upgrade: boolean;
  chunks: Buffer[];
  bytes: number;
  /** More was written than kept (RECORD_CAP). */
  truncated: boolean;
  startedAt: number;
  /** Steps taken, for the report ("CONNECT accepted", "close 4523"...). */
  notes: string[];
}

export const RECORD_CAP = 1024 * 1024; // 1 MiB per connection: enough for any crash input, bounded memory

export function newRecording(id: string, tag: string, target: Recording['target'], upgrade: boolean): Recording {
  return { id, tag, target, upgrade, chunks: [], bytes: 0, truncated: false, startedAt: Date.now(), notes: [] };
}

export function record(rec: Recording, buf: Buffer): void {
  if (rec.bytes + buf.length > RECORD_CAP) {
    rec.truncated = true;
    return;
  }
  rec.chunks.push(buf);
  rec.bytes += buf.length;
}

// ---- WebSocket frames (client side) ----

export interface WsFrameSpec {
  opcode: number;
  payload: Uint8Array;
  /** FIN bit; false = a fragment that more frames continue. Default true. */
  fin?: boolean;
  /** RSV1..3 as a 3-bit number (RSV1 = 4). Default 0. */
  rsv?: number;
  /** 4-byte masking key; null sends the frame unmasked (a client MUST mask). Default all-zero key. */
  mask?: Uint8Array | null;
  /** 'min' (default) or a forced 16/64-bit length field (non-minimal encodings). */
  lenForm?: 'min' | '16' | '64';
  /** The header announces this length instead of the payload's (truncated or over-long frames). */
  declaredLen?: bigint;
}

const ZERO_MASK = new Uint8Array(4);

export function wsFrame(s: WsFrameSpec): Buffer {
  const payload = s.payload;
  const len = s.declaredLen ?? BigInt(payload.byteLength);
  const form = s.lenForm ?? 'min';
  const use64 = form === '64' || (form === 'min' && len > 0xffffn);
  const use16 = !use64 && (form === '16' || (form === 'min' && len > 125n));
  const mask = s.mask === undefined ? ZERO_MASK : s.mask;
  const head = 2 + (use64 ? 8 : use16 ? 2 : 0) + (mask ? 4 : 0);
  const out = Buffer.allocUnsafe(head + payload.byteLength);
  out[0] = ((s.fin ?? true) ? 0x80 : 0) | (((s.rsv ?? 0) & 7) << 4) | (s.opcode & 0x0f);
  const maskBit = mask ? 0x80 : 0;
  let pos = 2;
  if (use64) {
    out[1] = maskBit | 127;
    out.writeBigUInt64BE(BigInt.asUintN(64, len), 2);
    pos = 10;
  } else if (use16) {
    out[1] = maskBit | 126;
    out.writeUInt16BE(Number(len & 0xffffn), 2);
    pos = 4;
  } else {
    out[1] = maskBit | Number(len & 0x7fn);
  }
  if (mask) {
    out.set(mask.subarray(0, 4), pos);
    pos += 4;
    const allZero = mask[0] === 0 && mask[1] === 0 && mask[2] === 0 && mask[3] === 0;
    if (allZero) out.set(payload, pos);
    else for (let i = 0; i < payload.byteLength; i++) out[pos + i] = payload[i]! ^ mask[i & 3]!;
  } else {
    out.set(payload, pos);
  }
  return out;
}

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

export function closePayload(code: number, reason = ''): Buffer {
  const r = Buffer.from(reason, 'utf8');
  const b = Buffer.allocUnsafe(2 + r.length);
  b.writeUInt16BE(code & 0xffff, 0);
  r.copy(b, 2);
  return b;
}

export interface ServerFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Incremental reader of the server's frames. A frame over `maxBytes` is a protocol error of the server. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  error: string | null = null;
  constructor(private readonly maxBytes = 16 * 1024 * 1024) {}

  push(data: Buffer, onFrame: (f: ServerFrame) => void): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    while (this.buf.length >= 2 && !this.error) {
      const b0 = this.buf[0]!;
      const b1 = this.buf[1]!;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        const big = this.buf.readBigUInt64BE(2);
        if (big > BigInt(this.maxBytes)) {
          this.error = `server frame announces ${big} bytes`;
          return;
        }
        len = Number(big);
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      if (masked) off += 4;
      if (this.buf.length < off + len) return;
      let payload = this.buf.subarray(off, off + len);
      if (masked) {
        const key = this.buf.subarray(off - 4, off);
        payload = Buffer.from(payload);
        for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i & 3]!;
      }
      this.buf = this.buf.subarray(off + len);
      onFrame({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload });
    }
  }
}

export function upgradeRequest(path: string, headers: Record<string, string>): Buffer {
  let s = `GET ${path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(headers)) s += `${k}: ${v}\r\n`;
  return Buffer.from(s + '\r\n', 'latin1');
}

export const STANDARD_UPGRADE_HEADERS: Record<string, string> = {
  Host: '127.0.0.1',
  Upgrade: 'websocket',
  Connection: 'Upgrade',
  'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Version': '13',
  'Sec-WebSocket-Protocol': 'latchkey.v1',
};

type Waiter = { pred: () => boolean; resolve: (ok: boolean) => void; timer: NodeJS.Timeout };

/**
 * One client connection to the WebSocket gateway. Server frames go to `onFrame`; waits resolve
 * on any progress (data or close) or time out. After a server close frame the connection ends
 * its side (a well-behaved client) and is destroyed if the server has not closed within 2 s.
 */
export class WsConn {
  readonly sock: net.Socket;
  /** HTTP status of the upgrade answer; null before it arrived. */
  status: number | null = null;
  closed = false;
  /** Close code of the server's close frame: undefined without one, null for an empty close frame. */
  serverClose: number | null | undefined = undefined;
  connectError: string | null = null;
  framesWritten = 0;
  private head: Buffer = Buffer.alloc(0);
  private readonly reader = new FrameReader();
  private waiters: Waiter[] = [];
  private readonly connected: Promise<boolean>;
  readonly closedP: Promise<void>;

  constructor(
    port: number,
    readonly rec: Recording,
    private readonly onFrame: (f: ServerFrame) => void,
  ) {
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.setNoDelay(true);
    this.connected = new Promise((resolve) => {
      this.sock.once('connect', () => resolve(true));
      this.sock.once('error', (err) => {
        this.connectError = err.message;
        resolve(false);
      });
      // destroy() before the connection completes emits neither 'connect' nor 'error'.
      this.sock.once('close', () => resolve(false));
    });
    this.closedP = new Promise((resolve) =>
      this.sock.once('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      }),
    );
    this.sock.on('error', () => undefined);
    this.sock.on('data', (d: Buffer) => this.onData(d));
  }

  get readerError(): string | null {
    return this.reader.error;
  }

  private onData(d: Buffer): void {
    if (this.status === null) {
      this.head = this.head.length ? Buffer.concat([this.head, d]) : d;
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.head.length > 64 * 1024) this.sock.destroy();
        return;
      }
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(this.head.subarray(0, 16).toString('latin1'));
      this.status = m ? Number(m[1]) : 0;
      const rest = this.head.subarray(end + 4);
      this.head = Buffer.alloc(0);
      if (this.status !== 101) {
        this.wake();
        return;
      }
      d = rest;
    } else if (this.status !== 101) {
      return; // body of a refused upgrade
    }
    if (d.length > 0) {
      this.reader.push(d, (f) => {
        if (f.opcode === OP.CLOSE) {
          this.serverClose = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
          this.sock.end();
          setTimeout(() => this.sock.destroy(), 2000).unref();
        }
        this.onFrame(f);
      });
      if (this.reader.error) this.sock.destroy();
    }
    this.wake();
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (this.closed || w.pred()) {
        clearTimeout(w.timer);
        w.resolve(w.pred());
      } else still.push(w);
    }
    this.waiters = still;
  }

  /** Resolves true once `pred` holds, false on timeout or close without it. */
  waitFor(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const w: Waiter = {
        pred,
        resolve,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          resolve(pred());
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  /** TCP connect, then the upgrade request; resolves with the HTTP status, 'timeout' or 'closed'. */
  async upgrade(request: Buffer, timeoutMs: number): Promise<number | 'timeout' | 'closed'> {
    if (!(await this.connected)) return 'closed';
    this.write(request, 0);
    const ok = await this.waitFor(() => this.status !== null, timeoutMs);
    if (ok) return this.status!;
    return this.closed ? 'closed' : 'timeout';
  }

  write(buf: Buffer, frames: number): void {
    if (this.closed || this.sock.destroyed) return;
    record(this.rec, buf);
    this.framesWritten += frames;
    this.sock.write(buf);
  }

  /** Wait for the server to close the connection. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    return this.waitFor(() => this.closed, timeoutMs);
  }

  destroy(): void {
    this.sock.destroy();
  }
}

// ---- raw HTTP ----

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface HttpOutcome {
  answers: HttpAnswer[];
  /** 'answered': every expected answer arrived; otherwise how the exchange ended. */
  end: 'answered' | 'closed' | 'timeout' | 'refused';
  ms: number;
}

/**
 * Write `chunks` (one or more requests, possibly malformed) and read up to `expect` answers.
 * `heads[i]` says answer i belongs to a HEAD request (no body). Ends when all expected answers
 * arrived, the server closed, or `timeoutMs` passed; with `halfCloseMs`, the client's side is
 * closed (FIN) after that long.
 */
export function httpExchange(port: number, rec: Recording, chunks: Buffer[], expect: number, heads: boolean[], timeoutMs: number, halfCloseMs: number | null = null): Promise<HttpOutcome> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    const answers: HttpAnswer[] = [];
    let buf: Buffer = Buffer.alloc(0);
    let connected = false;
    let finished = false;
    const finish = (end: HttpOutcome['end']): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ answers, end, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    if (halfCloseMs !== null) setTimeout(() => !finished && sock.end(), halfCloseMs).unref();
    sock.on('connect', () => {
      connected = true;
      // Pieces go out 2 ms apart: written back to back, the kernel would often merge them.
      const writeFrom = (i: number): void => {
        if (finished || i >= chunks.length) return;
        record(rec, chunks[i]!);
        sock.write(chunks[i]!);
        if (i + 1 < chunks.length) setTimeout(() => writeFrom(i + 1), 2);
      };
      writeFrom(0);
    });
    const parse = (atClose: boolean): void => {
      for (;;) {
        if (answers.length >= expect) return finish('answered');
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
        const status = m ? Number(m[1]) : 0;
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        const rest = buf.subarray(end + 4);
        if (status >= 100 && status < 200 && status !== 101) {
          // An interim answer (100 Continue): the real one follows.
          buf = rest;
          continue;
        }
        const noBody = heads[answers.length] === true || status === 204 || status === 304 || (status >= 100 && status < 200);
        let body: Buffer;
        let consumed: number;
        if (noBody) {
          body = Buffer.alloc(0);
          consumed = 0;
        } else if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
          const r = dechunk(rest);
          if (!r) {
            if (atClose) answers.push({ status, headers, body: rest });
            return;
          }
          body = r.body;
          consumed = r.consumed;
        } else if (headers['content-length'] !== undefined) {
          const n = Number(headers['content-length']);
          if (!Number.isFinite(n) || n < 0 || rest.length < n) {
            if (atClose) answers.push({ status, headers, body: rest });
            return;
          }
          body = rest.subarray(0, n);
          consumed = n;
        } else {
          // Body until close.
          if (!atClose) return;
          body = rest;
          consumed = rest.length;
        }
        answers.push({ status, headers, body: Buffer.from(body) });
        buf = rest.subarray(consumed);
      }
    };
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (buf.length > 8 * 1024 * 1024) return finish('closed');
      parse(false);
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      parse(true);
      finish(answers.length >= expect ? 'answered' : connected ? 'closed' : 'refused');
    });
  });
}

function dechunk(b: Buffer): { body: Buffer; consumed: number } | null {
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', pos);
    if (eol < 0) return null;
    const n = parseInt(b.subarray(pos, eol).toString('latin1'), 16);
    if (!Number.isFinite(n) || n < 0) return null;
    pos = eol + 2;
    if (n === 0) {
      const end = b.indexOf('\r\n', pos);
      if (end < 0) return null;
      return { body: Buffer.concat(parts), consumed: end + 2 };
    }
    if (b.length < pos + n + 2) return null;
    parts.push(b.subarray(pos, pos + n));
    pos += n + 2;
  }
}
