/**
 * A deliberately cheap WebSocket client for load generation: one `net` socket, a fixed upgrade
 * request, hand-rolled framing. The load generator shares the machine's cores with the server; a
 * heavyweight client (undici's WebSocket costs several times the server's per-connection work)
 * would starve the server and the bench would measure the client. Loopback only.
 */
import net from 'node:net';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** Client frame with a zero masking key: RFC 6455 requires a mask, not a random one, of non-browsers. */
export function maskedFrame(opcode: number, payload: Uint8Array): Buffer {
  const len = payload.byteLength;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  out.writeUInt32BE(0, head);
  out.set(payload, head + 4);
  return out;
}

const CLOSE_1000 = maskedFrame(0x8, Buffer.from([0x03, 0xe8]));

export interface RawOutcome {
  /** First binary message from the server, or null. */
  message: Buffer | null;
  ms: number;
  error: string | null;
  /** With keepOpen: close the still-open session (WebSocket close 1000) and wait for the socket to end. */
  close: () => Promise<void>;
  /** With keepOpen: send one more binary message on the open session (false once it is closed). */
  send: (payload: Uint8Array) => boolean;
}

/** Observers of a session kept open (keepOpen) after its first binary message. */
export interface RawSessionHooks {
  /**
   * Every later WebSocket message from the server (binary 0x2, close 0x8, ping 0x9, ...), with
   * performance.now() taken when its bytes arrived. The payload is a copy.
   */
  onFrame?: (opcode: number, payload: Buffer, at: number) => void;
  /** The socket closed (by either side, after the first binary message), with performance.now(). */
  onClose?: (at: number) => void;
}

/**
 * Open, send `frame` as one binary message, wait for the first binary reply. Then close at once,
 * or with `keepOpen` leave the session open (as an endpoint's persistent session) until close();
 * `hooks` then observe the server's later messages and the close (e.g. a DISCONNECT). Server
 * frames are unmasked and unfragmented (the latchkey gateway sends each message in one frame).
 */
export function rawExchange(port: number, path: string, frame: Buffer, timeoutMs = 15_000, keepOpen = false, hooks: RawSessionHooks = {}): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let upgraded = false;
    let done: RawOutcome | null = null;
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    const close = async (): Promise<void> => {
      if (!sock.destroyed) sock.end(CLOSE_1000);
      const t = setTimeout(() => sock.destroy(), 5000);
      await closed;
      clearTimeout(t);
    };
    const send = (payload: Uint8Array): boolean => {
      if (sock.destroyed || !sock.writable) return false;
      sock.write(maskedFrame(0x2, payload));
      return true;
    };
    const finish = (o: Omit<RawOutcome, 'close' | 'send'>): void => {
      if (done) return;
      done = { ...o, close, send };
      clearTimeout(timer);
      if (!o.message) sock.destroy();
      else if (keepOpen) resolve(done);
      else sock.end(CLOSE_1000);
    };
    const timer = setTimeout(() => finish({ message: null, ms: performance.now() - t0, error: 'timeout' }), timeoutMs);
    sock.on('connect', () => {
      sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: latchkey.v1\r\n\r\n`);
    });
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : (d as Buffer<ArrayBuffer>);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.subarray(0, 12).toString().includes(' 101')) return finish({ message: null, ms: performance.now() - t0, error: 'no 101' });
        upgraded = true;
        buf = buf.subarray(end + 4);
        sock.write(maskedFrame(0x2, frame));
      }
      while (buf.length >= 2) {
        const opcode = buf[0]! & 0x0f;
        let len = buf[1]! & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        const payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (!done) {
          if (opcode === 0x2) finish({ message: Buffer.from(payload), ms: performance.now() - t0, error: null });
          else finish({ message: null, ms: performance.now() - t0, error: `opcode ${opcode}` });
        } else if (keepOpen && done.message && hooks.onFrame) {
          hooks.onFrame(opcode, Buffer.from(payload), performance.now());
        }
      }
    });
    sock.on('error', (err) => finish({ message: null, ms: performance.now() - t0, error: err.message }));
    sock.on('close', () => {
      const at = performance.now();
      const established = done?.message != null;
      finish({ message: null, ms: at - t0, error: 'closed' });
      resolve(done!);
      if (established && keepOpen) hooks.onClose?.(at);
    });
  });
}
