/**
 * Load generator of bench/sessions: a child process (forked by bench/lib/sessions-fleet.ts, never
 * imported) that holds one slice of the bench's sessions, at most ~18,000 (the open-file limit is
 * 20,000 per process and cannot be raised). Commands and reports: bench/lib/sessions-ipc.ts.
 *
 * Cheap per session on purpose: the generators share the two cores with the server they measure.
 * A session is a raw `net` socket (fixed upgrade request, zero mask key, hand-rolled framing, as
 * bench/lib/raw-ws.ts) plus a few numbers in typed arrays indexed by the slice position: state,
 * backoff attempt, connect time, outstanding ping. Nothing is decrypted: after CONNACK the session
 * only exchanges PINGREQ / PINGRESP, which are plaintext frames (docs/protocol.md 5.5). Every
 * `confirmEvery`-th session checks its CONNACK confirmation (the only place the session keys are
 * needed), to show the accepted sessions are real ones.
 *
 * Source addresses: each socket binds its loopback source address and port (net.connect
 * localAddress: 127.0.0.2 and up, never 127.0.0.1; localPort from this generator's own cursor over
 * 1025-32767 for that address) so that one address carries at most ~9,000 sessions. The port is
 * chosen here because bind(address, 0) makes the kernel search its bind table for a free port:
 * measured at 250,000 sockets, that search took the generators to 89 % system CPU and ~200
 * connects/s. The ports stay below the ephemeral range (32768-60999): a port bound explicitly on
 * any address is one the kernel no longer picks for an ordinary connect() on any address, so
 * cycling over the ephemeral range left the machine's other programs (the bench's own /healthz
 * and /metrics fetches) with EADDRNOTAVAIL. A port another socket holds (EADDRINUSE: a listener
 * of another program) is skipped at once. Failed attempts are reset
 * (RST) rather than closed, so they leave no TIME_WAIT behind.
 *
 * CONNECTs are signed before the phase that sends them (`sign`), as bench/handshake does, so the
 * ramp and the storm measure the server, not the generators' RSA signing (~300 µs a CONNECT). Each
 * is timestamped when the coordinator expects it to be sent; one that is further than
 * RESIGN_AFTER_MS (the bench's wide handshake window less a minute, sessions-ipc.ts) from now when it is due, or whose nonce may have been spent, is signed
 * again on the spot and counted (`resigned`).
 *
 * Reconnects mirror the SDK (src/sdk/client.ts `scheduleReconnect`): after an unexpected close of
 * a session, a failed connection or a retryable refusal, wait a random delay in
 * [0, min(30 s, 500 ms * 2^attempt)] ("full jitter") and try again; a session that lasted 30 s
 * resets the attempt count; terminal refusals (REFUSE_BAD_PROTOCOL, REFUSE_ID_REJECT,
 * REFUSE_BAD_CREDENTIALS, REFUSE_VERIFICATION_FAILED) stop the session; no CONNACK within
 * `attemptTimeoutMs` (the SDK's 10 s) fails the attempt. One difference: a CONNECT refused with
 * LK_HS_STALE_TIMESTAMP (terminal for the SDK, whose clock is its own) is re-signed and retried,
 * since here only the pre-signing could make it stale.
 *
 * Resumption (cfg.resume; docs/protocol.md 4.6): a session accepted after a CONNECT while its
 * endpoint holds no ticket sends TICKETREQ at once (as the SDK does right after CONNACK) and keeps
 * the TICKET with that session's resumption secret (32 bytes per session in one slab; the key
 * schedule runs for every signed CONNECT, ~15 µs, to know it). A `sign` of kind 'resume' prepares
 * a RESUME (an HMAC and an Avro encoding, no RSA) for every endpoint holding a ticket and a CONNECT
 * for the others; a RESUME whose attempt failed is prepared again on the spot (cheap, counted in
 * `resumesOnSpot`). A RESUME refused with LK_TICKET_* or LK_RESUME_* forgets the ticket and falls
 * back to a CONNECT at once (no backoff: the server did no expensive work), as the SDK does; the
 * other refusals are handled as for a CONNECT (REFUSE_BAD_CREDENTIALS of a ticket refusal is not
 * terminal here, as it is not for the SDK). A resumed session keeps the ticket it used (still
 * valid until its lifetime) and asks for none.
 *
 * Keepalive: every established session sends PINGREQ once per `keepAliveSec`, in one of
 * keepAliveSec x 10 slots of 100 ms (slot = position mod slots), so the pings are spread evenly.
 * Round trips go into a 2 %-bucket histogram, handed over and reset at each `mark`.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { deriveSessionKeys, resumeInput, resumeProof, RSA_OAEP, RSA_PSS, signatureInput } from '../../src/crypto/session-crypto.js';
import { pacedRetryAfterMs } from '../../src/sdk/reconnect.js';
import { decodeFrame, encodeConnect, encodeConnectBody, encodeResume, encodeResumeBody, encodeTicketReq } from '../../src/protocol/frames.js';
import { loadPrimePool } from './bulk-keys.js';
import { processRssBytes } from './machine.js';
import { maskedFrame } from './raw-ws.js';
import { bulkPrivateKey, bulkSpki, keyHashOf } from './sessions-keys.js';
import { BACK_TIME_UNIT_MS, histAdd, newHist, RESIGN_AFTER_MS, STABLE_SESSION_MS, type ConnectCommand, type FromGen, type GenConfig, type SignCommand, type Tick, type ToGen } from './sessions-ipc.js';

const cfg = JSON.parse(process.env.SESSIONS_GEN ?? 'null') as GenConfig | null;
if (!cfg || !process.send) {
  process.stderr.write('sessions-gen: a child process of bench/sessions (needs SESSIONS_GEN and an IPC channel)\n');
  process.exit(2);
}
for (const a of cfg.addresses) {
  if (!/^127\.\d+\.\d+\.\d+$/.test(a) || a === '127.0.0.1') throw new Error(`sessions-gen: source address ${a} is not 127.0.0.2 or above`);
}

const send = (m: FromGen): void => {
  process.send!(m);
};

// --- per-session state (index j = global index - cfg.from) ---

const S = cfg.to - cfg.from;
const IDLE = 0;
const CONNECTING = 1; // TCP + upgrade
const HANDSHAKING = 2; // CONNECT sent
const ESTABLISHED = 3;
const WAITING = 4; // backoff timer
const FAILED = 5; // terminal refusal

const sockets: Array<net.Socket | null> = new Array<net.Socket | null>(S).fill(null);
const state = new Uint8Array(S);
const attempt = new Uint8Array(S);
/** Date.now() when the session was accepted. */
const connectedAt = new Float64Array(S);
/** performance.now() when the current attempt started. */
const attemptAt = new Float64Array(S);
/** performance.now() of the outstanding PINGREQ, 0 when none. */
const pingAt = new Float64Array(S);
/** After `arm`: 1 = held at arm and not back yet, 2 = accepted again since. */
const backFlag = new Uint8Array(S);
/** Pre-signed CONNECT (WebSocket frame, masked) for the next attempt, and its timestamp. */
const frames: Array<Buffer | null> = new Array<Buffer | null>(S).fill(null);
const frameTs = new Float64Array(S);
/** The CONNECT of the current attempt reached the server (its nonce may be spent). */
const sent = new Uint8Array(S);
/** How often frames[j] was sent: more than once is a retry after a refusal that released its nonce. */
const sends = new Uint8Array(S);
const timers: Array<NodeJS.Timeout | null> = new Array<NodeJS.Timeout | null>(S).fill(null);
/** What frames[j] is: a CONNECT (0) or a RESUME (1). */
const KIND_CONNECT = 0;
const KIND_RESUME = 1;
const frameKind = new Uint8Array(S);
/** Resumption secrets (32 bytes per session): of the CONNECT in frames[j], of the session open now, of the ticket held. */
const SECRET = 32;
const frameSecret = Buffer.alloc(cfg.resume ? S * SECRET : 0);
const sessionSecret = Buffer.alloc(cfg.resume ? S * SECRET : 0);
const ticketSecret = Buffer.alloc(cfg.resume ? S * SECRET : 0);
/** The endpoint's newest ticket (docs/protocol.md 4.6), or null. */
const tickets: Array<Buffer | null> = new Array<Buffer | null>(cfg.resume ? S : 0).fill(null);
/** 'resume' after a sign of that kind: attempts made on the spot prepare a RESUME when the endpoint holds a ticket. */
let signKind: 'connect' | 'resume' = 'connect';
/** Expected CONNACK confirmations of the sampled sessions. */
const confirmations = new Map<number, Buffer>();
/** Bytes of a frame or response head split across reads (rare: server frames are tiny). */
const partial = new Map<number, Buffer>();

const keys: crypto.KeyObject[] = [];
const hashes: Buffer[] = [];

let ports: number[] = [];
let handshake = true;
let concurrency = 1;
let nextStart = 0;
let dropping = false;
let armed = false;
let heldAtArm = 0;
/** Date.now() at the last arm, and the time from it to each held session's return (BACK_TIME_UNIT_MS units, 2 % buckets). */
let armAt = 0;
let backHist = newHist();

let serverKeyId = '';
let serverKey: crypto.KeyObject | null = null;

const t: Tick = {
  t: 'tick', id: cfg.id, seq: 0, at: 0, established: 0, attempts: 0, inflight: 0, accepted: 0, failures: {}, terminal: 0, lost: 0,
  back: 0, firstBackAt: 0, allBackAt: 0, lastAcceptAt: 0, pingsSent: 0, pongs: 0, pingTimeouts: 0, resigned: 0, confirmationsChecked: 0, confirmationsBad: 0,
  errors: {}, cpuUs: 0, rssBytes: 0, resumesOnSpot: 0, acceptedResumed: 0, resumeFallbacks: 0, ticketsAsked: 0, ticketsReceived: 0, ticketsHeld: 0, pacedWaitMs: 0,
};
let hist = newHist();
let histSamples = 0;

const UPGRADE = Buffer.from(
  'GET /ep/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: latchkey.v1\r\n\r\n',
  'latin1',
);
const PINGREQ = maskedFrame(0x2, Buffer.from([0x0c]));
const TICKETREQ = maskedFrame(0x2, encodeTicketReq());
/** Refusals of a RESUME after which the SDK forgets the ticket and does a full CONNECT at once (docs/protocol.md 4.6). */
const RESUME_FALLBACK = new Set(['LK_RESUME_DISABLED', 'LK_TICKET_INVALID', 'LK_TICKET_EXPIRED', 'LK_TICKET_KEY_RETIRED', 'LK_TICKET_WRONG_APP', 'LK_RESUME_BAD_PROOF']);
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** CONNACK return codes the SDK does not retry (src/sdk/client.ts TERMINAL_REFUSALS). */
const TERMINAL_RETURN_CODES = new Set([2, 3, 5, 7]);
const RETURN_CODE_NAMES: Record<number, string> = {
  2: 'REFUSE_BAD_PROTOCOL', 3: 'REFUSE_ID_REJECT', 4: 'REFUSE_SERVER_UNAVAILABLE', 5: 'REFUSE_BAD_CREDENTIALS', 6: 'REFUSE_NO_AUTH', 7: 'REFUSE_VERIFICATION_FAILED',
};
/** Refusals given before the signature is verified: the nonce was released, the same CONNECT may go again (docs/protocol.md 4.2). */
const NONCE_KEPT = new Set(['LK_SERVER_BUSY', 'LK_SERVER_UNAVAILABLE', 'LK_HS_RATE_LIMITED']);
/** The SDK's backoff (src/sdk/client.ts): full jitter in [0, min(max, min * 2^attempt)]; a session that lasted STABLE_SESSION_MS resets it. */
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** The SDK's ping() gives up after its timeoutMs (10 s). */
const PING_TIMEOUT_MS = 10_000;

const count = (m: Record<string, number>, k: string): void => {
  m[k] = (m[k] ?? 0) + 1;
};

// --- CONNECT signing ---

function signFrame(j: number, at: number): Buffer {
  const ts = Math.round(at);
  const secret = crypto.randomBytes(64);
  const body = encodeConnectBody({
    protocolVersion: 1,
    appToken: cfg!.appToken,
    serverKeyId,
    keyHash: hashes[j]!,
    publicKey: null, // provisioned credentials carry it (docs/protocol.md 4.4)
    wrappedSecret: crypto.publicEncrypt({ key: serverKey!, ...RSA_OAEP }, secret),
    timestamp: ts,
    nonce: crypto.randomBytes(16),
    keepAliveSec: cfg!.keepAliveSec,
  });
  const sigInput = signatureInput(body);
  const signature = crypto.sign('sha256', sigInput, { key: keys[j]!, ...RSA_PSS });
  if (cfg!.resume || j % cfg!.confirmEvery === 0) {
    const k = deriveSessionKeys(secret, sigInput);
    if (j % cfg!.confirmEvery === 0) confirmations.set(j, Buffer.from(k.confirmation));
    if (cfg!.resume) frameSecret.set(k.resumption, j * SECRET);
  }
  frameTs[j] = ts;
  sends[j] = 0;
  frameKind[j] = KIND_CONNECT;
  return maskedFrame(0x2, encodeConnect({ body, signature, sync: null }));
}

/** A RESUME of endpoint j from its ticket (docs/protocol.md 4.6): an HMAC, no RSA. */
function resumeFrame(j: number, at: number): Buffer {
  const ts = Math.round(at);
  const body = encodeResumeBody({ protocolVersion: 1, appToken: cfg!.appToken, keyHash: hashes[j]!, ticket: tickets[j]!, timestamp: ts, nonce: crypto.randomBytes(16), keepAliveSec: cfg!.keepAliveSec });
  const input = resumeInput(body);
  const secret = ticketSecret.subarray(j * SECRET, (j + 1) * SECRET);
  if (j % cfg!.confirmEvery === 0) confirmations.set(j, Buffer.from(deriveSessionKeys(secret, input).confirmation));
  frameTs[j] = ts;
  sends[j] = 0;
  frameKind[j] = KIND_RESUME;
  return maskedFrame(0x2, encodeResume({ body, proof: resumeProof(secret, input), sync: null }));
}

const resumable = (j: number): boolean => signKind === 'resume' && cfg!.resume && tickets[j] != null;

/** The frame to send now: the prepared one while it is fresh and unspent, else a new RESUME (endpoint holding a ticket, after a 'resume' sign) or CONNECT. */
function frameFor(j: number): Buffer {
  const now = Date.now();
  let f = frames[j];
  if (!f || Math.abs(now - frameTs[j]!) > RESIGN_AFTER_MS) {
    if (resumable(j)) {
      f = resumeFrame(j, now);
      t.resumesOnSpot++;
    } else {
      f = signFrame(j, now);
      t.resigned++;
    }
    frames[j] = f;
  }
  return f;
}

function forgetTicket(j: number): void {
  if (tickets[j]) t.ticketsHeld--;
  tickets[j] = null;
}

async function signAll(cmd: SignCommand): Promise<void> {
  serverKeyId = cmd.serverKeyId;
  serverKey = crypto.createPublicKey({ key: cmd.serverSpki, format: 'der', type: 'spki' });
  signKind = cmd.kind;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let lastReport = t0;
  let connects = 0;
  let resumes = 0;
  for (let j = 0; j < S; j++) {
    if (state[j] === FAILED) continue;
    const at = cmd.baseTs + j * cmd.stepMs;
    if (resumable(j)) {
      frames[j] = resumeFrame(j, at);
      resumes++;
    } else {
      frames[j] = signFrame(j, at);
      connects++;
    }
    if (j % 64 === 63) {
      await new Promise<void>((r) => setImmediate(r)); // let pings, ticks and IPC through
      if (performance.now() - lastReport >= 1000) {
        send({ t: 'progress', id: cfg!.id, what: `signing ${cmd.label} CONNECTs`, done: j + 1, of: S });
        lastReport = performance.now();
      }
    }
  }
  const c = process.cpuUsage(c0);
  send({ t: 'signed', id: cfg!.id, ms: performance.now() - t0, cpuUs: c.user + c.system, connects, resumes });
}

// --- sessions ---

const LOCAL_PORT_MIN = 1025;
const LOCAL_PORT_SPAN = 32768 - LOCAL_PORT_MIN;
/** Next source port to try, per source address (index into cfg.addresses). */
const portCursor: number[] = [];

function nextLocalPort(a: number): number {
  const c = (portCursor[a] ??= Math.floor(Math.random() * LOCAL_PORT_SPAN));
  portCursor[a] = (c + 1) % LOCAL_PORT_SPAN;
  return LOCAL_PORT_MIN + c;
}

function start(j: number): void {
  timers[j] = null;
  if (dropping || state[j] === FAILED) return;
  const port = ports[(cfg!.from + j) % ports.length]!;
  const a = j % cfg!.addresses.length;
  const sock = net.connect({ port, host: '127.0.0.1', localAddress: cfg!.addresses[a]!, localPort: nextLocalPort(a), noDelay: true });
  sockets[j] = sock;
  state[j] = CONNECTING;
  sent[j] = 0;
  attemptAt[j] = performance.now();
  t.attempts++;
  t.inflight++;
  let errCode = '';
  sock.on('connect', () => {
    if (sockets[j] === sock) sock.write(UPGRADE);
  });
  sock.on('data', (d: Buffer) => onData(j, sock, d));
  sock.on('error', (err: NodeJS.ErrnoException) => {
    errCode = err.code ?? 'error';
    if (err.code === 'EADDRINUSE' && state[j] === CONNECTING && sockets[j] === sock) {
      // That source port is taken (a socket of ours still on it, or a listener of another program): the next one, now.
      sockets[j] = null;
      t.inflight--;
      count(t.errors, 'EADDRINUSE (source port skipped)');
      start(j);
      return;
    }
    if (state[j] === CONNECTING && sockets[j] === sock) count(t.errors, errCode);
  });
  sock.on('close', () => onClose(j, sock, errCode));
}

/** Let go of the socket of session j at once: RST, so neither side keeps a TIME_WAIT. */
function reset(j: number): void {
  const s = sockets[j];
  sockets[j] = null;
  partial.delete(j);
  if (s && !s.destroyed) s.resetAndDestroy();
}

function onData(j: number, sock: net.Socket, d: Buffer): void {
  if (sockets[j] !== sock) return;
  const held = partial.get(j);
  let buf = held ? Buffer.concat([held, d]) : d;
  if (held) partial.delete(j);
  if (state[j] === CONNECTING) {
    const end = buf.indexOf(CRLFCRLF);
    if (end < 0) {
      if (buf.length > 16 * 1024) return fail(j, 'bad-response-head', false);
      partial.set(j, Buffer.from(buf));
      return;
    }
    const status = buf.subarray(9, 12).toString('latin1');
    if (status !== '101') return fail(j, `http:${status}`, false);
    buf = buf.subarray(end + 4);
    // A paced refusal (docs/protocol.md 1.1) closes right after the 101: nothing to send then.
    if (handshake && buf[0] === 0x88) {
      // handled as a close below, in state CONNECTING
    } else if (handshake) {
      state[j] = HANDSHAKING;
      const f = frameFor(j);
      if (sends[j]! < 255) sends[j]!++;
      sock.write(f);
      sent[j] = 1;
    } else {
      established(j); // the floor: an upgraded socket is the whole session
    }
  }
  let off = 0;
  while (buf.length - off >= 2) {
    const opcode = buf[off]! & 0x0f;
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
    if (buf.length < p + len) break;
    const payload = buf.subarray(p, p + len);
    off = p + len;
    if (opcode === 0x2 && len > 0) onMessage(j, payload);
    else if (opcode === 0x8) {
      // The server closes (a refusal or an ended session); its reason is in the DISCONNECT/CONNACK
      // before, or (a paced refusal, before any frame was read: nothing spent) a return time.
      const code = len >= 2 ? payload.readUInt16BE(0) : 0;
      const paced = len > 2 ? pacedRetryAfterMs(code, payload.subarray(2).toString('utf8')) : null;
      if (paced !== null && (state[j] === HANDSHAKING || state[j] === CONNECTING)) {
        t.pacedWaitMs += paced;
        return fail(j, `paced:${code}`, false, false, false, paced);
      }
      if (state[j] === HANDSHAKING || state[j] === CONNECTING) return fail(j, `close:${code}`, true);
      reset(j);
      if (state[j] === ESTABLISHED) lostSession(j);
      return;
    }
    if (sockets[j] !== sock) return; // the message ended the session
  }
  if (off < buf.length) partial.set(j, Buffer.from(buf.subarray(off)));
}

function onMessage(j: number, payload: Buffer): void {
  const type = payload[0];
  if (type === 0x0d || (type === 0x0c && !handshake)) {
    // PINGRESP (the floor echoes the PINGREQ itself)
    if (pingAt[j]! > 0) {
      histAdd(hist, performance.now() - pingAt[j]!);
      histSamples++;
      pingAt[j] = 0;
      t.pongs++;
    }
    return;
  }
  if (type === 0x12) {
    // TICKET (docs/protocol.md 4.6): kept with the secret of the session that asked.
    const f = decodeFrame(Buffer.from(payload));
    if (!cfg!.resume || !f.ok || f.value.type !== 'TICKET') return;
    t.ticketsReceived++;
    if (f.value.ticket.ticket.length === 0) return; // resumption off on the server
    if (!tickets[j]) t.ticketsHeld++;
    tickets[j] = Buffer.from(f.value.ticket.ticket);
    sessionSecret.copy(ticketSecret, j * SECRET, j * SECRET, (j + 1) * SECRET);
    return;
  }
  if (type === 0x02 && state[j] === HANDSHAKING) {
    const f = decodeFrame(Buffer.from(payload));
    if (!f.ok || f.value.type !== 'CONNACK') return fail(j, 'bad-connack', true);
    const ack = f.value.connack;
    const resumed = frameKind[j] === KIND_RESUME;
    if (ack.returnCode === 1) {
      const want = confirmations.get(j);
      if (want) {
        t.confirmationsChecked++;
        if (!ack.confirmation || !crypto.timingSafeEqual(Buffer.from(ack.confirmation), want)) t.confirmationsBad++;
        confirmations.delete(j);
      }
      frames[j] = null; // spent
      if (resumed) t.acceptedResumed++;
      else if (cfg!.resume) frameSecret.copy(sessionSecret, j * SECRET, j * SECRET, (j + 1) * SECRET);
      established(j);
      if (cfg!.resume && !resumed && !tickets[j] && sockets[j]) {
        sockets[j]!.write(TICKETREQ);
        t.ticketsAsked++;
      }
      return;
    }
    const name = RETURN_CODE_NAMES[ack.returnCode] ?? `code${ack.returnCode}`;
    const code = ack.errorCode ?? '';
    if (resumed) {
      // A RESUME is cheap to prepare again: never send the same one twice.
      frames[j] = null;
      if (RESUME_FALLBACK.has(code)) {
        forgetTicket(j);
        t.resumeFallbacks++;
        return fail(j, `refused:${name}/${code} (RESUME: fell back to CONNECT)`, false, false, true);
      }
      if (code === 'LK_HS_STALE_TIMESTAMP' || code === 'LK_HS_REPLAYED_NONCE') return fail(j, `refused:${name}/${code} (RESUME)`, false, false);
      return fail(j, `refused:${name}/${code} (RESUME)`, false, TERMINAL_RETURN_CODES.has(ack.returnCode));
    }
    const kept = ack.returnCode === 4 && NONCE_KEPT.has(code);
    if (!kept) frames[j] = null; // else the same CONNECT may go again
    if (code === 'LK_HS_STALE_TIMESTAMP') return fail(j, `refused:${name}/${code}`, false, false);
    // A CONNECT sent again after a refusal that released its nonce: the SDK never does this (it
    // signs every attempt), so a replay refusal here is ours to retry, counted apart. A
    // multi-process node releases nonces through its primary, asynchronously.
    if (code === 'LK_HS_REPLAYED_NONCE' && sends[j]! > 1) return fail(j, `refused:${name}/${code} (CONNECT sent again)`, false, false);
    return fail(j, `refused:${name}/${code}`, false, TERMINAL_RETURN_CODES.has(ack.returnCode));
  }
  // DISCONNECT (0x0e) and anything else: the server ends the session next; nothing to decrypt.
}

function established(j: number): void {
  t.inflight--;
  t.accepted++;
  t.established++;
  state[j] = ESTABLISHED;
  connectedAt[j] = Date.now();
  t.lastAcceptAt = connectedAt[j]!;
  pingAt[j] = 0;
  if (armed && backFlag[j] === 1) {
    backFlag[j] = 2;
    t.back++;
    histAdd(backHist, (connectedAt[j]! - armAt) / BACK_TIME_UNIT_MS);
    if (t.firstBackAt === 0) t.firstBackAt = t.lastAcceptAt;
    if (t.back >= heldAtArm && t.allBackAt === 0) {
      t.allBackAt = t.lastAcceptAt;
      sendTick(); // the storm's end, at once
    }
  }
  pump();
}

/**
 * Attempt j failed with `outcome`. `spent`: the CONNECT reached the server with no answer (its
 * nonce may be spent: sign a new one). Retry with the SDK's backoff unless `terminal`; `now`:
 * retry at once (a RESUME's fallback to CONNECT).
 */
function fail(j: number, outcome: string, spent: boolean, terminal = false, now = false, retryAfterMs?: number): void {
  count(t.failures, outcome);
  if (spent) frames[j] = null;
  reset(j);
  t.inflight--;
  if (terminal) {
    state[j] = FAILED;
    t.terminal++;
  } else if (now && !dropping) {
    state[j] = WAITING;
    timers[j] = setTimeout(start, 0, j);
  } else schedule(j, retryAfterMs);
  pump();
}

function lostSession(j: number): void {
  t.established--;
  t.lost++;
  state[j] = IDLE;
  pingAt[j] = 0;
  if (dropping || !handshake) return; // the floor does not reconnect
  // The SDK: a session that lasted resets the backoff; then reconnect after a random delay.
  if (Date.now() - connectedAt[j]! >= STABLE_SESSION_MS) attempt[j] = 0;
  schedule(j);
}

/** The SDK's Reconnector.schedule: a paced refusal's return time (+5 % jitter, no backoff step), else the next backoff delay. */
function schedule(j: number, retryAfterMs?: number): void {
  if (dropping) return;
  state[j] = WAITING;
  if (retryAfterMs !== undefined) {
    timers[j] = setTimeout(start, retryAfterMs * (1 + 0.05 * Math.random()), j);
    return;
  }
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(attempt[j]!, 30));
  if (attempt[j]! < 255) attempt[j]!++;
  timers[j] = setTimeout(start, Math.random() * ceiling, j);
}

function onClose(j: number, sock: net.Socket, errCode: string): void {
  if (sockets[j] !== sock) return; // we let go of it already
  const st = state[j];
  if (st === CONNECTING || st === HANDSHAKING) {
    // fail() lets go of the socket (already closed) and schedules the retry.
    return fail(j, errCode ? `error:${errCode}` : st === HANDSHAKING ? 'closed-after-connect' : 'closed', st === HANDSHAKING && sent[j] === 1);
  }
  sockets[j] = null;
  partial.delete(j);
  if (st === ESTABLISHED) lostSession(j);
}

/** Start sessions of the slice in order while fewer than `concurrency` attempts are in flight. */
function pump(): void {
  while (!dropping && nextStart < S && t.inflight < concurrency) {
    const j = nextStart++;
    if (state[j] === IDLE) start(j);
  }
}

// --- keepalive and attempt timeouts ---

let slots = 1;
let slotPos = 0;
let slotClock = 0;

function keepaliveTick(): void {
  const now = performance.now();
  // Catch up on every 100 ms slot since the last tick (a tick can come late under load).
  const due = Math.floor((now - slotClock) / 100);
  for (let k = 0; k < Math.min(due, slots); k++) {
    for (let j = slotPos; j < S; j += slots) {
      if (state[j] !== ESTABLISHED) continue;
      if (pingAt[j]! > 0) {
        if (now - pingAt[j]! < PING_TIMEOUT_MS) continue;
        t.pingTimeouts++;
      }
      const s = sockets[j];
      if (!s) continue;
      s.write(PINGREQ);
      pingAt[j] = now;
      t.pingsSent++;
    }
    slotPos = (slotPos + 1) % slots;
  }
  if (due > 0) slotClock += due * 100;
}

function timeoutSweep(): void {
  const now = performance.now();
  for (let j = 0; j < S; j++) {
    const st = state[j];
    if ((st === CONNECTING || st === HANDSHAKING) && now - attemptAt[j]! > cfg!.attemptTimeoutMs) fail(j, 'timeout', st === HANDSHAKING && sent[j] === 1);
  }
}

function sendTick(): void {
  t.at = Date.now();
  const c = process.cpuUsage();
  t.cpuUs = c.user + c.system;
  try {
    t.rssBytes = processRssBytes(process.pid);
  } catch {
    t.rssBytes = 0;
  }
  send({ ...t, failures: { ...t.failures }, errors: { ...t.errors } });
}

// --- commands ---

function connect(cmd: ConnectCommand): void {
  ports = cmd.ports;
  t.seq = cmd.seq;
  handshake = cmd.handshake;
  concurrency = Math.max(1, cmd.concurrency);
  dropping = false;
  armed = false;
  nextStart = 0;
  // Counters are per connect phase (the floor, then latchkey).
  Object.assign(t, { established: 0, attempts: 0, inflight: 0, accepted: 0, failures: {}, terminal: 0, lost: 0, back: 0, firstBackAt: 0, allBackAt: 0, lastAcceptAt: 0 });
  Object.assign(t, { pingsSent: 0, pongs: 0, pingTimeouts: 0, resigned: 0, confirmationsChecked: 0, confirmationsBad: 0, errors: {} });
  Object.assign(t, { resumesOnSpot: 0, acceptedResumed: 0, resumeFallbacks: 0, ticketsAsked: 0, ticketsReceived: 0, ticketsHeld: 0, pacedWaitMs: 0 });
  tickets.fill(null); // a new phase talks to a new server
  signKind = 'connect';
  state.fill(IDLE, 0, S);
  attempt.fill(0);
  backFlag.fill(0);
  sendTick();
  pump();
}

async function drop(): Promise<void> {
  dropping = true;
  for (let j = 0; j < S; j++) {
    const tm = timers[j];
    if (tm) clearTimeout(tm);
    timers[j] = null;
    if (state[j] === ESTABLISHED) t.established--;
    else if (state[j] === CONNECTING || state[j] === HANDSHAKING) t.inflight--;
    if (state[j] !== FAILED) state[j] = IDLE;
    reset(j);
    pingAt[j] = 0;
    if (j % 2048 === 2047) await new Promise<void>((r) => setImmediate(r));
  }
  send({ t: 'dropped', id: cfg!.id, left: sockets.filter((s) => s !== null).length });
}

async function deriveKeys(): Promise<void> {
  if (cfg!.primes === 0) return;
  const pool = loadPrimePool(cfg!.primes);
  let last = performance.now();
  for (let j = 0; j < S; j++) {
    const i = cfg!.from + j;
    keys.push(bulkPrivateKey(pool, i));
    hashes.push(keyHashOf(bulkSpki(pool, i)));
    if (j % 256 === 255) {
      await new Promise<void>((r) => setImmediate(r));
      if (performance.now() - last >= 1000) {
        send({ t: 'progress', id: cfg!.id, what: 'deriving keys', done: j + 1, of: S });
        last = performance.now();
      }
    }
  }
}

process.on('message', (m: ToGen) => {
  switch (m.t) {
    case 'sign':
      void signAll(m).catch((err: unknown) => send({ t: 'error', id: cfg!.id, message: (err as Error).stack ?? String(err) }));
      return;
    case 'connect':
      connect(m);
      return;
    case 'mark':
      send({ t: 'marked', id: cfg!.id, hist, samples: histSamples });
      hist = newHist();
      histSamples = 0;
      return;
    case 'arm':
      armed = true;
      armAt = Date.now();
      backHist = newHist();
      heldAtArm = t.established;
      t.back = 0;
      t.firstBackAt = 0;
      t.allBackAt = 0;
      for (let j = 0; j < S; j++) backFlag[j] = state[j] === ESTABLISHED ? 1 : 0;
      if (heldAtArm === 0) t.allBackAt = Date.now(); // nothing to wait for here
      send({ t: 'armed', id: cfg!.id, held: heldAtArm });
      return;
    case 'backtimes':
      send({ t: 'backtimes', id: cfg!.id, hist: backHist });
      return;
    case 'drop':
      void drop();
      return;
    case 'exit':
      dropping = true;
      for (let j = 0; j < S; j++) reset(j);
      process.exit(0);
  }
});
// The coordinator went away without stopping us: let go of everything.
process.on('disconnect', () => {
  for (let j = 0; j < S; j++) reset(j);
  process.exit(0);
});

async function main(): Promise<void> {
  const t0 = performance.now();
  await deriveKeys();
  slots = Math.max(1, cfg!.keepAliveSec * 10);
  slotClock = performance.now();
  setInterval(keepaliveTick, 100);
  setInterval(timeoutSweep, 250);
  setInterval(sendTick, 1000);
  send({ t: 'ready', id: cfg!.id, ms: performance.now() - t0 });
}

main().catch((err: unknown) => {
  send({ t: 'error', id: cfg!.id, message: (err as Error).stack ?? String(err) });
  process.exit(1);
});
