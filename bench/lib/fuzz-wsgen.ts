/**
 * WebSocket-level input of the fuzzer: a latchkey message wrapped as frames (one masked binary
 * frame, or fragments with control frames between them), control frames the server must answer or
 * ignore, and RFC 6455 violations (unmasked, RSV bits, reserved opcodes, fragmented or oversize
 * control frames, broken fragment sequences, invalid UTF-8 text, lengths that lie or overflow).
 */
import { BAD_UTF8, badUtf8String } from './fuzz-mutate.js';
import { closePayload, OP, wsFrame, type WsFrameSpec } from './fuzz-net.js';
import type { Rng } from './fuzz-rng.js';

/** Bytes to write, and how many WebSocket frames they hold. */
export interface Wire {
  bytes: Buffer;
  frames: number;
  tag: string;
  /** Pings among the frames (each must get a pong while the connection lives). */
  pings: number;
  /** The bytes end inside a frame or a fragmented message: only the server's timeout ends it. */
  partial: boolean;
}

function maskFor(rng: Rng): Uint8Array | undefined {
  return rng.chance(0.7) ? rng.bytes(4) : undefined;
}

function frames(specs: WsFrameSpec[], tag: string, partial = false): Wire {
  let pings = 0;
  for (const s of specs) if (s.opcode === OP.PING && (s.fin ?? true) && (s.rsv ?? 0) === 0 && s.payload.byteLength <= 125) pings++;
  return { bytes: Buffer.concat(specs.map(wsFrame)), frames: specs.length, tag, pings, partial };
}

/** A ping or pong with a random payload (at most 125 bytes, as RFC 6455 allows). */
export function controlFrame(rng: Rng): WsFrameSpec {
  return { opcode: rng.chance(0.8) ? OP.PING : OP.PONG, payload: rng.bytes(rng.chance(0.5) ? rng.int(8) : rng.int(126)), mask: maskFor(rng) };
}

/** `n` valid control frames. */
export function controls(rng: Rng, n: number): Wire {
  return frames(Array.from({ length: n }, () => controlFrame(rng)), 'ws.control');
}

/**
 * One binary message carrying `msg`: usually one frame; sometimes split into fragments (empty
 * ones included) with pings and pongs between them, which RFC 6455 allows.
 */
export function wrapMessage(rng: Rng, msg: Buffer, fragmentP = 0.1): Wire {
  if (!rng.chance(fragmentP) || msg.length < 2) return frames([{ opcode: OP.BINARY, payload: msg, mask: maskFor(rng) }], 'ws.binary');
  const parts: WsFrameSpec[] = [];
  const n = Math.min(msg.length, rng.range(2, rng.chance(0.1) ? 64 : 6));
  const cuts = new Set<number>();
  while (cuts.size < n - 1) cuts.add(rng.range(1, msg.length - 1));
  const points = [0, ...[...cuts].sort((a, b) => a - b), msg.length];
  for (let i = 0; i + 1 < points.length; i++) {
    parts.push({ opcode: i === 0 ? OP.BINARY : OP.CONT, fin: i + 2 === points.length, payload: msg.subarray(points[i], points[i + 1]), mask: maskFor(rng) });
    if (rng.chance(0.2)) parts.push({ opcode: OP.CONT, fin: false, payload: Buffer.alloc(0), mask: maskFor(rng) });
    if (i + 2 < points.length && rng.chance(0.3)) parts.push(controlFrame(rng));
  }
  // An empty fragment right after the start must keep FIN=0 and the last one FIN=1: fix the order.
  const last = parts.map((p, i) => ((p.opcode === OP.CONT || p.opcode === OP.BINARY) ? i : -1)).filter((i) => i >= 0);
  for (const i of last) parts[i]!.fin = false;
  parts[last[last.length - 1]!]!.fin = true;
  return frames(parts, 'ws.fragmented');
}

const RESERVED_OPCODES = [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf];
const ODD_CLOSE_CODES = [0, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 2999, 3000, 4999, 5000, 65535];

/**
 * An RFC 6455 violation or oddity carrying (when it has a payload) `msg`. `oversizeP` is the
 * probability of the expensive cases (real payloads past maxFrameBytes).
 */
export function wsJunk(rng: Rng, msg: Buffer, maxFrameBytes: number, oversizeP = 0.01): Wire {
  const m = maskFor(rng);
  if (rng.chance(oversizeP)) {
    // A real payload past maxFrameBytes (LK_FRAME_TOO_LARGE), or past 4x (the transport's cut).
    const len = rng.chance(0.7) ? rng.range(maxFrameBytes + 1, maxFrameBytes * 4) : maxFrameBytes * 4 + rng.range(1, 4096);
    const payload = Buffer.alloc(len, rng.int(256));
    msg.copy(payload, 0, 0, Math.min(msg.length, len));
    return frames([{ opcode: OP.BINARY, payload, mask: m }], len > maxFrameBytes * 4 ? 'ws.overHardLimit' : 'ws.tooLarge');
  }
  const c = rng.int(22);
  switch (c) {
    case 0:
      return frames([{ opcode: OP.BINARY, payload: msg, mask: null }], 'ws.unmasked');
    case 1:
      return frames([{ opcode: rng.pick([OP.BINARY, OP.PING, OP.TEXT]), rsv: rng.range(1, 7), payload: msg.subarray(0, 100), mask: m }], 'ws.rsv');
    case 2:
      return frames([{ opcode: rng.pick(RESERVED_OPCODES), payload: msg.subarray(0, rng.int(200)), mask: m }], 'ws.reservedOpcode');
    case 3:
      return frames([{ opcode: rng.pick([OP.PING, OP.PONG]), payload: rng.bytes(rng.range(126, 300)), mask: m }], 'ws.controlTooLong');
    case 4:
      return frames([{ opcode: OP.PING, fin: false, payload: rng.bytes(rng.int(20)), mask: m }, { opcode: OP.CONT, payload: rng.bytes(rng.int(20)), mask: m }], 'ws.fragmentedControl');
    case 5:
      return frames([{ opcode: OP.CONT, fin: rng.chance(0.5), payload: msg, mask: m }], 'ws.continuationFirst');
    case 6:
      return frames([{ opcode: OP.BINARY, fin: false, payload: msg.subarray(0, 10), mask: m }, { opcode: rng.pick([OP.BINARY, OP.TEXT]), payload: msg.subarray(10), mask: m }], 'ws.newMessageInFragments');
    case 7:
      return frames([{ opcode: OP.BINARY, fin: false, payload: msg.subarray(0, Math.max(1, msg.length >> 1)), mask: m }, controlFrame(rng)], 'ws.unfinishedFragments', true);
    case 8:
      return frames([{ opcode: OP.TEXT, payload: Buffer.from(rng.pick(['{"type":"CONNECT"}', 'hello', '', '\u{1f600}'.repeat(rng.int(40))]), 'utf8'), mask: m }], 'ws.text');
    case 9:
      return frames([{ opcode: OP.TEXT, payload: badUtf8String(rng), mask: m }], 'ws.textBadUtf8');
    case 10: {
      // a valid UTF-8 character split across two text fragments
      const s = Buffer.from('ab\u{1f600}cd', 'utf8');
      return frames([{ opcode: OP.TEXT, fin: false, payload: s.subarray(0, 4), mask: m }, { opcode: OP.CONT, payload: s.subarray(4), mask: m }], 'ws.textSplitUtf8');
    }
    case 11:
      return frames([{ opcode: OP.TEXT, fin: false, payload: Buffer.from('ok'), mask: m }, { opcode: OP.CONT, payload: rng.pick(BAD_UTF8), mask: m }], 'ws.textFragmentBadUtf8');
    case 12:
      // announces 2^32..2^63 bytes and sends a few: the server must cut it off, not wait or allocate
      return frames([{ opcode: OP.BINARY, payload: rng.bytes(rng.int(64)), declaredLen: BigInt(rng.pick([2 ** 32, 2 ** 40, 2 ** 53])) + BigInt(rng.int(1000)), mask: m }], 'ws.hugeLength', true);
    case 13:
      return frames([{ opcode: OP.BINARY, payload: rng.bytes(rng.int(16)), declaredLen: (1n << 63n) + BigInt(rng.int(1000)), mask: m }], 'ws.lengthMsbSet', true);
    case 14:
      return frames([{ opcode: OP.BINARY, payload: msg, lenForm: rng.pick(['16', '64'] as const), mask: m }], 'ws.nonMinimalLength');
    case 15:
      // announces more than it sends, under the limits: only the server's timeout ends it
      return frames([{ opcode: OP.BINARY, payload: msg.subarray(0, msg.length >> 1), declaredLen: BigInt(msg.length + rng.range(1, 1000)), mask: m }], 'ws.truncatedFrame', true);
    case 16:
      return frames([{ opcode: OP.CLOSE, payload: rng.bytes(1), mask: m }], 'ws.closeOneByte');
    case 17:
      return frames([{ opcode: OP.CLOSE, payload: closePayload(rng.pick(ODD_CLOSE_CODES), rng.chance(0.5) ? 'bye' : ''), mask: m }], 'ws.closeOddCode');
    case 18:
      return frames([{ opcode: OP.CLOSE, payload: Buffer.concat([closePayload(1000), badUtf8String(rng)]), mask: m }], 'ws.closeBadUtf8');
    case 19:
      return frames([{ opcode: OP.CLOSE, payload: Buffer.concat([closePayload(1000), Buffer.alloc(123, 0x61)]), mask: m }], 'ws.closeLongReason');
    case 20: {
      // many tiny fragments of one message
      const specs: WsFrameSpec[] = [];
      const n = Math.min(msg.length, rng.range(8, 64));
      const step = Math.max(1, Math.ceil(msg.length / n));
      for (let i = 0; i < msg.length; i += step) specs.push({ opcode: i === 0 ? OP.BINARY : OP.CONT, fin: i + step >= msg.length, payload: msg.subarray(i, i + step), mask: m });
      if (specs.length === 0) specs.push({ opcode: OP.BINARY, payload: Buffer.alloc(0), mask: m });
      return frames(specs, 'ws.tinyFragments');
    }
    default:
      // bytes that are not a frame at all (counted as one)
      return { bytes: rng.bytes(rng.range(1, 64)), frames: 1, tag: 'ws.garbage', pings: 0, partial: true };
  }
}
