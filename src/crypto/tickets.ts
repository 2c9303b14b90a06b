/**
 * Resumption tickets (docs/protocol.md 4.6): what a session gives its endpoint so that the next
 * session opens without any RSA operation. A ticket is opaque to endpoints; only servers that hold
 * the same ticket master secret can open it.
 *
 * Keys: the master secret (32 random bytes, a file every node and process of a cluster shares, like
 * the bootstrap key; created at first start) never leaves the server. Ticket keys are derived from
 * it per epoch of `rotateMs`: key(E) = HKDF-SHA-256(master, salt = "", info = "latchkey/1 ticket key"
 * || uint32be(E), 32). New tickets use the current epoch's key; a key stays valid as long as a ticket
 * it sealed can be (its epoch's end + lifetimeMs), so several keys are valid at once and each retires
 * by itself, on every node alike, without any coordination. Replacing the master file retires every
 * ticket at once (endpoints fall back to a full handshake).
 *
 * Format (version 1): 01 || uint32be(epoch) || iv(12) || AES-256-GCM(key(epoch), iv,
 * aad = "latchkey/1 ticket" || 01 || uint32be(epoch), plaintext) || tag(16), plaintext =
 * id(16) || uint64be(issuedAt ms) || keyHash(32) || resumptionSecret(32) || uint8(len) || appId (UTF-8).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const VERSION = 1;
const HEADER = 5;
const IV = 12;
const TAG = 16;
const AAD_LABEL = Buffer.from('latchkey/1 ticket', 'latin1');
const KEY_INFO = Buffer.from('latchkey/1 ticket key', 'latin1');
/** Longest ticket (appId up to 255 bytes): refused unread above this. */
export const MAX_TICKET_BYTES = HEADER + IV + 16 + 8 + 32 + 32 + 1 + 255 + TAG;

export interface TicketContents {
  /** Random; a ticket is good for one resumption (the replay cache remembers used ids). */
  id: Buffer;
  issuedAt: number;
  appId: string;
  keyHash: Buffer;
  resumption: Buffer;
}

export type TicketRefusal = 'LK_TICKET_INVALID' | 'LK_TICKET_EXPIRED' | 'LK_TICKET_KEY_RETIRED';

export interface TicketOptions {
  /** How long a ticket may be used after it was issued. */
  lifetimeMs: number;
  /** Length of a ticket key's epoch: a new key every rotateMs. */
  rotateMs: number;
  now?: () => number;
}

export class TicketSealer {
  private readonly keys = new Map<number, Buffer>();
  private readonly now: () => number;

  constructor(
    private readonly master: Buffer,
    private readonly o: TicketOptions,
  ) {
    if (master.length !== 32) throw new RangeError('ticket master secret must be 32 bytes');
    this.now = o.now ?? Date.now;
  }

  /** Read the master secret from `file`, creating it (32 random bytes, base64, mode 0600) if missing. */
  static loadOrCreateMaster(file: string): { master: Buffer; created: boolean } {
    try {
      const text = fs.readFileSync(file, 'utf8').trim();
      const master = Buffer.from(text, 'base64');
      if (master.length !== 32) throw new Error(`${file}: not 32 base64 bytes`);
      return { master, created: false };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const master = crypto.randomBytes(32);
    try {
      fs.writeFileSync(file, `${master.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another process of the node created it first: use theirs.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return TicketSealer.loadOrCreateMaster(file);
      throw err;
    }
    return { master, created: true };
  }

  get lifetimeMs(): number {
    return this.o.lifetimeMs;
  }

  private epochOf(t: number): number {
    return Math.floor(t / this.o.rotateMs);
  }

  private key(epoch: number): Buffer {
    let k = this.keys.get(epoch);
    if (!k) {
      const info = Buffer.alloc(KEY_INFO.length + 4);
      KEY_INFO.copy(info);
      info.writeUInt32BE(epoch >>> 0, KEY_INFO.length);
      k = Buffer.from(crypto.hkdfSync('sha256', this.master, Buffer.alloc(0), info, 32));
      if (this.keys.size > 64) this.keys.clear();
      this.keys.set(epoch, k);
    }
    return k;
  }

  seal(c: { appId: string; keyHash: Uint8Array; resumption: Uint8Array }): Buffer {
    const now = this.now();
    const epoch = this.epochOf(now);
    const app = Buffer.from(c.appId, 'utf8');
    if (app.length > 255 || c.keyHash.length !== 32 || c.resumption.length !== 32) throw new RangeError('ticket contents out of range');
    const plain = Buffer.alloc(16 + 8 + 32 + 32 + 1 + app.length);
    crypto.randomFillSync(plain, 0, 16);
    plain.writeBigUInt64BE(BigInt(now), 16);
    plain.set(c.keyHash, 24);
    plain.set(c.resumption, 56);
    plain[88] = app.length;
    app.copy(plain, 89);
    const header = Buffer.alloc(HEADER);
    header[0] = VERSION;
    header.writeUInt32BE(epoch >>> 0, 1);
    const iv = crypto.randomBytes(IV);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.key(epoch), iv);
    cipher.setAAD(Buffer.concat([AAD_LABEL, header]));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    plain.fill(0);
    return Buffer.concat([header, iv, body, cipher.getAuthTag()]);
  }

  /** Open a ticket: its contents, or why not (never throws on any input). */
  open(ticket: Uint8Array): { ok: true; contents: TicketContents } | { ok: false; code: TicketRefusal } {
    if (ticket.length < HEADER + IV + 89 + TAG || ticket.length > MAX_TICKET_BYTES || ticket[0] !== VERSION) return { ok: false, code: 'LK_TICKET_INVALID' };
    const t = Buffer.from(ticket.buffer, ticket.byteOffset, ticket.byteLength);
    const epoch = t.readUInt32BE(1);
    const now = this.now();
    // Sealed in the future (beyond a minute of clock skew between nodes): not ours.
    if (epoch > this.epochOf(now + 60_000)) return { ok: false, code: 'LK_TICKET_INVALID' };
    if ((epoch + 1) * this.o.rotateMs + this.o.lifetimeMs < now) return { ok: false, code: 'LK_TICKET_KEY_RETIRED' };
    let plain: Buffer;
    try {
      const decipher = crypto.createDecipheriv('aes-256-gcm', this.key(epoch), t.subarray(HEADER, HEADER + IV));
      decipher.setAAD(Buffer.concat([AAD_LABEL, t.subarray(0, HEADER)]));
      decipher.setAuthTag(t.subarray(t.length - TAG));
      plain = Buffer.concat([decipher.update(t.subarray(HEADER + IV, t.length - TAG)), decipher.final()]);
    } catch {
      return { ok: false, code: 'LK_TICKET_INVALID' };
    }
    const appLen = plain[88]!;
    if (plain.length !== 89 + appLen) return { ok: false, code: 'LK_TICKET_INVALID' };
    const issuedAt = Number(plain.readBigUInt64BE(16));
    if (now - issuedAt > this.o.lifetimeMs) return { ok: false, code: 'LK_TICKET_EXPIRED' };
    return {
      ok: true,
      contents: {
        id: plain.subarray(0, 16),
        issuedAt,
        keyHash: plain.subarray(24, 56),
        resumption: plain.subarray(56, 88),
        appId: plain.subarray(89).toString('utf8'),
      },
    };
  }
}
