/**
 * Frame codec. One binary WebSocket message carries exactly one frame:
 *
 *   byte 0      frame type (Kaa's Kaatcp numbers): CONNECT 0x01, CONNACK 0x02, PINGREQ 0x0C,
 *               PINGRESP 0x0D, DISCONNECT 0x0E, SYNC 0x0F; latchkey's resumption (docs/protocol.md
 *               4.6): RESUME 0x10, TICKETREQ 0x11, TICKET 0x12
 *   bytes 1..   the Avro binary encoding of the frame's record (schemas.ts); PINGREQ/PINGRESP have
 *               no body. Trailing bytes after the record are an error.
 *
 * Decoding never throws: malformed input yields a LatchkeyError code so the session can answer
 * with DISCONNECT BAD_REQUEST.
 */
import type { ErrorCode } from '../errors.js';
import {
  types,
  type Connack,
  type Connect,
  type ConnectBody,
  type Disconnect,
  type Resume,
  type ResumeBody,
  type SyncFrame,
  type Ticket,
  type SyncRequest,
  type SyncResponse,
  type WireEvent,
} from './schemas.js';
import type avro from 'avsc';
import { FRAME_TYPE } from './constants.js';

export const FrameType = FRAME_TYPE;
export type FrameTypeName = keyof typeof FrameType;

export type Frame =
  | { type: 'CONNECT'; connect: Connect }
  | { type: 'CONNACK'; connack: Connack }
  | { type: 'PINGREQ' }
  | { type: 'PINGRESP' }
  | { type: 'DISCONNECT'; disconnect: Disconnect }
  | { type: 'SYNC'; sync: SyncFrame }
  | { type: 'RESUME'; resume: Resume }
  | { type: 'TICKETREQ' }
  | { type: 'TICKET'; ticket: Ticket };

export type Decoded<T> = { ok: true; value: T } | { ok: false; code: ErrorCode };

/** Decode exactly one Avro record filling `buf[offset..]`. */
export function decodeExact<T>(type: avro.Type, buf: Buffer, offset = 0): Decoded<T> {
  try {
    const res = type.decode(buf, offset);
    if (res.offset !== buf.length) return { ok: false, code: 'LK_FRAME_MALFORMED' };
    return { ok: true, value: res.value as T };
  } catch {
    return { ok: false, code: 'LK_FRAME_MALFORMED' };
  }
}

const PINGREQ_FRAME = Buffer.from([FrameType.PINGREQ]);
const PINGRESP_FRAME = Buffer.from([FrameType.PINGRESP]);
const TICKETREQ_FRAME = Buffer.from([FrameType.TICKETREQ]);

export function decodeFrame(buf: Buffer): Decoded<Frame> {
  if (buf.length === 0) return { ok: false, code: 'LK_FRAME_EMPTY' };
  switch (buf[0]) {
    case FrameType.CONNECT: {
      const r = decodeExact<Connect>(types.connect, buf, 1);
      return r.ok ? { ok: true, value: { type: 'CONNECT', connect: r.value } } : r;
    }
    case FrameType.CONNACK: {
      const r = decodeExact<Connack>(types.connack, buf, 1);
      return r.ok ? { ok: true, value: { type: 'CONNACK', connack: r.value } } : r;
    }
    case FrameType.SYNC: {
      const r = decodeExact<SyncFrame>(types.sync, buf, 1);
      if (!r.ok) return r;
      if (!Number.isSafeInteger(r.value.counter) || r.value.counter < 0) return { ok: false, code: 'LK_FRAME_BAD_COUNTER' };
      return { ok: true, value: { type: 'SYNC', sync: r.value } };
    }
    case FrameType.DISCONNECT: {
      const r = decodeExact<Disconnect>(types.disconnect, buf, 1);
      return r.ok ? { ok: true, value: { type: 'DISCONNECT', disconnect: r.value } } : r;
    }
    case FrameType.RESUME: {
      const r = decodeExact<Resume>(types.resume, buf, 1);
      return r.ok ? { ok: true, value: { type: 'RESUME', resume: r.value } } : r;
    }
    case FrameType.TICKET: {
      const r = decodeExact<Ticket>(types.ticket, buf, 1);
      return r.ok ? { ok: true, value: { type: 'TICKET', ticket: r.value } } : r;
    }
    case FrameType.TICKETREQ:
      return buf.length === 1 ? { ok: true, value: { type: 'TICKETREQ' } } : { ok: false, code: 'LK_FRAME_MALFORMED' };
    case FrameType.PINGREQ:
      return buf.length === 1 ? { ok: true, value: { type: 'PINGREQ' } } : { ok: false, code: 'LK_FRAME_MALFORMED' };
    case FrameType.PINGRESP:
      return buf.length === 1 ? { ok: true, value: { type: 'PINGRESP' } } : { ok: false, code: 'LK_FRAME_MALFORMED' };
    default:
      return { ok: false, code: 'LK_FRAME_UNKNOWN_TYPE' };
  }
}

function withType(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = type;
  body.copy(out, 1);
  return out;
}

export function encodeConnect(c: Connect): Buffer {
  return withType(FrameType.CONNECT, types.connect.toBuffer(c));
}
export function encodeConnack(c: Connack): Buffer {
  return withType(FrameType.CONNACK, types.connack.toBuffer(c));
}
/** Avro zig-zag varint of a non-negative safe integer at `pos`; returns the next position. */
function writeVarLong(buf: Buffer, pos: number, n: number): number {
  let z = n * 2; // zig-zag of n >= 0; exact up to 2^53 in float arithmetic
  while (z >= 0x80) {
    buf[pos++] = (z % 0x80) | 0x80;
    z = Math.floor(z / 0x80);
  }
  buf[pos++] = z;
  return pos;
}

/**
 * 0x0F || Avro(Sync{counter, ciphertext}), written directly (one pooled allocation, no
 * intermediate buffers: this runs once per frame sent). test/unit/frames.test.ts checks it against
 * avsc byte for byte.
 */
export function encodeSync(s: SyncFrame): Buffer {
  const len = s.ciphertext.length;
  if (!Number.isSafeInteger(s.counter) || s.counter < 0) throw new RangeError('counter out of range');
  const out = Buffer.allocUnsafe(1 + 8 + 5 + len);
  out[0] = FrameType.SYNC;
  let pos = writeVarLong(out, 1, s.counter);
  pos = writeVarLong(out, pos, len);
  out.set(s.ciphertext, pos);
  return out.subarray(0, pos + len);
}
export function encodeDisconnect(d: Disconnect): Buffer {
  return withType(FrameType.DISCONNECT, types.disconnect.toBuffer(d));
}
export function encodeResume(r: Resume): Buffer {
  return withType(FrameType.RESUME, types.resume.toBuffer(r));
}
export function encodeTicket(t: Ticket): Buffer {
  return withType(FrameType.TICKET, types.ticket.toBuffer(t));
}
export function encodeTicketReq(): Buffer {
  return TICKETREQ_FRAME;
}
export function encodeResumeBody(b: ResumeBody): Buffer {
  return types.resumeBody.toBuffer(b);
}
export function decodeResumeBody(buf: Buffer): Decoded<ResumeBody> {
  return decodeExact<ResumeBody>(types.resumeBody, buf);
}
export function encodePingReq(): Buffer {
  return PINGREQ_FRAME;
}
export function encodePingResp(): Buffer {
  return PINGRESP_FRAME;
}

export function encodeConnectBody(b: ConnectBody): Buffer {
  return types.connectBody.toBuffer(b);
}
export function decodeConnectBody(buf: Buffer): Decoded<ConnectBody> {
  return decodeExact<ConnectBody>(types.connectBody, buf, 0);
}
export function encodeSyncRequest(r: SyncRequest): Buffer {
  return types.syncRequest.toBuffer(r);
}
export function decodeSyncRequest(buf: Buffer): Decoded<SyncRequest> {
  const r = decodeExact<SyncRequest>(types.syncRequest, buf, 0);
  return r.ok ? r : { ok: false, code: 'LK_SYNC_MALFORMED' };
}
export function encodeSyncResponse(r: SyncResponse): Buffer {
  return types.syncResponse.toBuffer(r);
}

let scratch = Buffer.allocUnsafe(64 * 1024);
/**
 * Like encodeSyncResponse, into a shared scratch buffer: the result is only valid until the next
 * call. For a caller that consumes it at once (Session.seal encrypts it), it saves an allocation
 * and a zero-fill per frame.
 */
export function encodeSyncResponseTransient(r: SyncResponse): Buffer {
  let end = types.syncResponse.encode(r, scratch, 0) as number;
  if (end < 0) {
    // avsc says how much more it needs as -(missing bytes).
    scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end));
    end = types.syncResponse.encode(r, scratch, 0) as number;
  }
  return scratch.subarray(0, end);
}
/**
 * A relayed event's push, SyncResponse{requestId -1, SUCCESS, eventSyncResponse{events: [ev]}},
 * written by hand into the shared scratch buffer (valid until the next call; the caller seals it at
 * once). The hot path of event relay: ~5x cheaper than avsc's generic writer.
 * test/unit/frames.test.ts checks it against avsc byte for byte.
 */
export function encodeEventPushTransient(ev: WireEvent): Buffer {
  if (!Number.isInteger(ev.seqNum) || ev.seqNum < 0 || ev.seqNum > 0x7fffffff) throw new RangeError('seqNum out of int range');
  const data = ev.eventData;
  const need = 64 + 3 * ev.eventClassFQN.length + (data ? data.length : 0) + (ev.source ? 3 * ev.source.length : 0) + (ev.target ? 3 * ev.target.length : 0);
  if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
  const b = scratch;
  // requestId -1, status SUCCESS, errorCode/profile/user null, eventSyncResponse present,
  // eventListenersResponses null, events present, one array block of 1 item.
  b[0] = 0x01; b[1] = 0; b[2] = 0; b[3] = 0; b[4] = 0; b[5] = 0x02; b[6] = 0; b[7] = 0x02; b[8] = 0x02;
  let pos = writeVarLong(b, 9, ev.seqNum);
  pos = writeString(b, pos, ev.eventClassFQN);
  if (data) {
    b[pos++] = 0x02;
    pos = writeVarLong(b, pos, data.length);
    b.set(data, pos);
    pos += data.length;
  } else b[pos++] = 0;
  for (const opt of [ev.source, ev.target]) {
    if (opt === null) b[pos++] = 0;
    else {
      b[pos++] = 0x02;
      pos = writeString(b, pos, opt);
    }
  }
  b[pos++] = 0; // end of the events array
  b[pos++] = 0; // redirectSyncResponse null
  return b.subarray(0, pos);
}

function writeString(b: Buffer, pos: number, s: string): number {
  const len = Buffer.byteLength(s, 'utf8');
  pos = writeVarLong(b, pos, len);
  b.write(s, pos, len, 'utf8');
  return pos + len;
}

export function decodeSyncResponse(buf: Buffer): Decoded<SyncResponse> {
  return decodeExact<SyncResponse>(types.syncResponse, buf, 0);
}
