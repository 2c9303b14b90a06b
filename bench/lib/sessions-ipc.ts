/**
 * What bench/sessions (the coordinator) and its load generators (bench/lib/sessions-gen.ts, child
 * processes forked with an IPC channel and advanced serialization) say to each other, and the
 * round-trip histogram both sides use. One module both import, so the message shapes are written
 * once.
 *
 *   coordinator -> generator                 generator -> coordinator
 *   (fork env: slice, addresses, keys)       progress { what, done, of }  while deriving / signing
 *                                            ready                        keys derived
 *   sign { kind, ... }                       signed { ms, cpuUs, connects, resumes }
 *   connect { ports, concurrency, ... }      tick { ... } once a second, from start to exit
 *   mark                                     marked { hist, ... }   (RTT histogram since the last mark)
 *   arm                                      armed { held }         (reconnects counted from here)
 *   backtimes                                backtimes { hist }     (time from the arm to each session's return, BACK_TIME_UNIT_MS units)
 *   drop                                     dropped { left }
 *   exit
 */

/** Fixed at fork time (environment variable SESSIONS_GEN, JSON). */
export interface GenConfig {
  id: number;
  /** Global session (and key) indices [from, to). */
  from: number;
  to: number;
  /** Loopback source addresses; session j of the slice binds addresses[j % length]. */
  addresses: string[];
  /** Primes of the cached bulk-key pool to load (bench/lib/bulk-keys.ts). 0: floor only, no keys. */
  primes: number;
  appToken: string;
  keepAliveSec: number;
  /** No CONNACK (or 101 in floor mode) this long after an attempt started: the attempt failed (the SDK's timeoutMs). */
  attemptTimeoutMs: number;
  /** Check the CONNACK confirmation of every n-th session (the others are counted without it). */
  confirmEvery: number;
  /**
   * Resumption (docs/protocol.md 4.6): a session accepted after a CONNECT while its endpoint holds
   * no ticket sends TICKETREQ and keeps the TICKET with that session's resumption secret.
   */
  resume: boolean;
}

export interface SignCommand {
  t: 'sign';
  /**
   * 'connect': a signed CONNECT for every session (RSA on the generator). 'resume': a RESUME for
   * every session whose endpoint holds a ticket (an HMAC, no RSA), a signed CONNECT for the others;
   * attempts made on the spot later follow the same rule, and a refused RESUME (LK_TICKET_*,
   * LK_RESUME_*) forgets the ticket and falls back to a CONNECT at once, as the SDK does.
   */
  kind: 'connect' | 'resume';
  label: string;
  serverKeyId: string;
  serverSpki: Buffer;
  /**
   * CONNECT timestamp of local session j: baseTs + j * stepMs (ms since the epoch). The server
   * accepts |now - timestamp| <= BENCH_HANDSHAKE_WINDOW_SEC; the coordinator plans the timestamps at the time it expects
   * each CONNECT to be sent, and a CONNECT further than RESIGN_AFTER_MS from now when it is due is
   * signed again on the spot (counted in `resigned`).
   */
  baseTs: number;
  stepMs: number;
}

export interface ConnectCommand {
  t: 'connect';
  /** Phase number: ticks carry the number of the last connect, so a tick of the phase before is never added in. */
  seq: number;
  /** Server ports; session with global index i connects to ports[i % length]. */
  ports: number[];
  /** Attempts in flight at most while ramping (retries after a backoff come on top, as the SDK's would). */
  concurrency: number;
  /** false: the floor (a plain uWS server): upgrade only, no CONNECT; PINGREQ comes back as an echo. */
  handshake: boolean;
}

export type ToGen = SignCommand | ConnectCommand | { t: 'mark' } | { t: 'arm' } | { t: 'backtimes' } | { t: 'drop' } | { t: 'exit' };

export interface Tick {
  t: 'tick';
  id: number;
  /** `seq` of the last connect command (0 before any). */
  seq: number;
  /** Date.now() */
  at: number;
  /** Sessions open now: CONNACK ACCEPTED (or 101 in floor mode) and not closed since. */
  established: number;
  /** Attempts started / in flight / accepted, cumulative. */
  attempts: number;
  inflight: number;
  accepted: number;
  /** Failed attempts by outcome (http:503, refused:REFUSE_SERVER_UNAVAILABLE/LK_SERVER_BUSY, error:ECONNREFUSED, timeout, closed), cumulative. */
  failures: Record<string, number>;
  /** Sessions that failed terminally (a refusal the SDK does not retry). */
  terminal: number;
  /** Established sessions that ended without us asking, cumulative. */
  lost: number;
  /** After `arm`: sessions accepted again since (each counted once). */
  back: number;
  /** After `arm`: Date.now() of the first session accepted again (the node takes handshakes again), else 0. */
  firstBackAt: number;
  /** After `arm`: Date.now() when `back` reached the sessions held at arm, else 0. */
  allBackAt: number;
  /** Date.now() of the last accepted handshake (0: none yet). */
  lastAcceptAt: number;
  pingsSent: number;
  pongs: number;
  pingTimeouts: number;
  /** CONNECTs signed on the spot (no pre-signed one, or it was stale or spent), cumulative. */
  resigned: number;
  /** RESUMEs prepared on the spot (cheap: no RSA), cumulative. */
  resumesOnSpot: number;
  /** Of `accepted`: sessions opened with RESUME. */
  acceptedResumed: number;
  /** RESUMEs refused with a code that forgets the ticket (LK_TICKET_*, LK_RESUME_*): the endpoint fell back to CONNECT. */
  resumeFallbacks: number;
  /** TICKETREQs sent and TICKETs received, cumulative; endpoints holding a ticket now. */
  ticketsAsked: number;
  ticketsReceived: number;
  ticketsHeld: number;
  /** Return times of paced refusals (failures 'paced:4003'), summed, ms, cumulative. */
  pacedWaitMs: number;
  confirmationsChecked: number;
  confirmationsBad: number;
  /** Socket errors at connect time by code (EADDRNOTAVAIL = ephemeral ports ran out), cumulative. */
  errors: Record<string, number>;
  cpuUs: number;
  rssBytes: number;
}

export type FromGen =
  | { t: 'progress'; id: number; what: string; done: number; of: number }
  | { t: 'ready'; id: number; ms: number }
  | { t: 'signed'; id: number; ms: number; cpuUs: number; connects: number; resumes: number }
  | Tick
  | { t: 'marked'; id: number; hist: Uint32Array; samples: number }
  | { t: 'armed'; id: number; held: number }
  | { t: 'backtimes'; id: number; hist: Uint32Array }
  | { t: 'dropped'; id: number; left: number }
  | { t: 'error'; id: number; message: string };

/**
 * The node under test accepts CONNECT timestamps this far from its clock (bench/sessions starts it
 * with LATCHKEY_HANDSHAKE_WINDOW_SEC=3600, the setting's maximum, instead of the default 120 s):
 * CONNECTs are signed before the ramp, and a ramp of 250,000 handshakes on this box lasts minutes,
 * so with the default window most pre-signed CONNECTs went stale and the generators signed them
 * again on the spot, on the cores the server measures on (229,578 of 250,000 in one run).
 */
export const BENCH_HANDSHAKE_WINDOW_SEC = 3600;

/** The SDK resets its reconnect backoff after a session that lasted this long (src/sdk/client.ts); the generators do the same. */
export const STABLE_SESSION_MS = 30_000;

/** A pre-signed CONNECT further than this from now when it is due is signed again (the window less a margin). */
export const RESIGN_AFTER_MS = BENCH_HANDSHAKE_WINDOW_SEC * 1000 - 60_000;

/**
 * Storm return times go into the same histogram in units of 100 ms (its range, 0.01 to ~10,270
 * units, is then 1 ms to ~17 min; 2 % buckets either way).
 */
export const BACK_TIME_UNIT_MS = 100;

// --- round-trip histogram: log buckets of 2 %, 0.01 ms to ~10 s ---

const H_MIN_MS = 0.01;
const H_STEP = Math.log(1.02);
export const H_BUCKETS = 700;

export function newHist(): Uint32Array {
  return new Uint32Array(H_BUCKETS);
}

export function histAdd(h: Uint32Array, ms: number): void {
  const b = ms <= H_MIN_MS ? 0 : Math.min(H_BUCKETS - 1, Math.ceil(Math.log(ms / H_MIN_MS) / H_STEP));
  h[b]!++;
}

export function histMerge(into: Uint32Array, h: Uint32Array): void {
  for (let i = 0; i < H_BUCKETS; i++) into[i]! += h[i]!;
}

export function histCount(h: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < H_BUCKETS; i++) n += h[i]!;
  return n;
}

/** The p-th percentile (upper edge of its bucket, so within 2 % above the true value); null when empty. */
export function histPercentile(h: Uint32Array, p: number): number | null {
  const n = histCount(h);
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  let seen = 0;
  for (let i = 0; i < H_BUCKETS; i++) {
    seen += h[i]!;
    if (seen >= rank) return H_MIN_MS * Math.exp(i * H_STEP);
  }
  return H_MIN_MS * Math.exp((H_BUCKETS - 1) * H_STEP);
}
