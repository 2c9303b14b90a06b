/**
 * Metrics of a node. The hot path touches plain numbers and Maps (an increment is a property write);
 * the Prometheus registry (prom-client) reads them when /metrics is scraped, through collect()
 * callbacks. Latency histograms are observed directly (one bucket increment per observation).
 *
 * Exposed on the admin listener: GET /metrics (Prometheus text format) and, summarised, /healthz.
 */
import client from 'prom-client';

export class Stats {
  sessionsOpen = 0;
  handshakesAccepted = 0;
  /** Of the accepted handshakes, those resumed from a ticket (no RSA; docs/protocol.md 4.6). */
  handshakesResumed = 0;
  /** Resumption tickets given (TICKETREQ answered with a ticket). */
  ticketsIssued = 0;
  readonly handshakesRefused = new Map<string, number>();
  readonly sessionsEnded = new Map<string, number>();
  syncRequests = 0;
  /** Events accepted from senders (after duplicate and owner checks). */
  eventsReceived = 0;
  /** Event deliveries written to a receiver's socket (one event to three listeners counts three). */
  eventsDelivered = 0;
  /** Events or deliveries dropped, by reason (see docs/protocol.md, events). */
  readonly eventsDropped = new Map<string, number>();
  /** uWS callbacks whose handler threw (answered 500 / socket closed with LK_INTERNAL), by place. */
  readonly handlerErrors = new Map<string, number>();
  /** Cluster messages sent, by route: node (to the node(s) holding the session or owner), broadcast, none (no live holder). */
  readonly clusterMessages = new Map<string, number>();
  /** Cluster directory calls that failed (Redis unavailable), by call; the message then went by broadcast. */
  readonly directoryErrors = new Map<string, number>();
  /** WebSocket upgrades refused before any session existed, by code (bans, rates, connection cap). */
  readonly connectionsRefused = new Map<string, number>();
  /** RSA decrypts whose handshake was not accepted after all, by why (a refusal code, or closed). */
  readonly rsaDecryptsUnused = new Map<string, number>();
  /** RSA work done for handshakes (signature verifies, secret decrypts), whoever asked. */
  rsaVerifies = 0;
  rsaDecrypts = 0;
  /** Bans set automatically or by an operator, by reason (flapping, failed-handshakes, admin). */
  readonly bansAdded = new Map<string, number>();
  /** Set by server.ts: active bans by kind, and the session control log's state. */
  bansActive: () => Record<string, number> = () => ({});
  control: () => { appliedFromLog: number; outbox: number } = () => ({ appliedFromLog: 0, outbox: 0 });
  /** Set by server.ts: crypto pool queue depth and batching, read at scrape time. */
  cryptoQueue: () => number = () => 0;
  cryptoTasks: () => { handshakes: number; batches: number } = () => ({ handshakes: 0, batches: 0 });

  readonly registry = new client.Registry();
  readonly handshakeSeconds: client.Histogram<'result'>;
  readonly buildInfo: client.Gauge<'version' | 'node_version' | 'node_id'>;
  readonly storeSeconds: client.Histogram<'op'>;
  readonly cacheSeconds: client.Histogram<'op'>;
  readonly backendErrors: client.Counter<'backend' | 'op'>;

  constructor() {
    const r = this.registry;
    client.collectDefaultMetrics({ register: r, prefix: 'latchkey_process_' });
    const stats = this;
    new client.Gauge({
      name: 'latchkey_sessions_open', help: 'Established endpoint sessions on this node.', registers: [r],
      collect() {
        this.set(stats.sessionsOpen);
      },
    });
    new client.Counter({
      name: 'latchkey_handshakes_total', help: 'Handshakes by outcome: accepted (full, with RSA), resumed (from a ticket, no RSA), or the refusal code (full or resumed).', labelNames: ['result'], registers: [r],
      collect() {
        this.reset();
        this.inc({ result: 'accepted' }, stats.handshakesAccepted - stats.handshakesResumed);
        this.inc({ result: 'resumed' }, stats.handshakesResumed);
        for (const [code, n] of stats.handshakesRefused) this.inc({ result: code }, n);
      },
    });
    new client.Counter({
      name: 'latchkey_tickets_issued_total', help: 'Resumption tickets given to endpoints (TICKETREQ).', registers: [r],
      collect() {
        this.reset();
        this.inc(stats.ticketsIssued);
      },
    });
    new client.Counter({
      name: 'latchkey_sessions_ended_total', help: 'Sessions ended by the server or the endpoint, by code.', labelNames: ['code'], registers: [r],
      collect() {
        this.reset();
        for (const [code, n] of stats.sessionsEnded) this.inc({ code }, n);
      },
    });
    new client.Counter({
      name: 'latchkey_sync_requests_total', help: 'SyncRequests processed.', registers: [r],
      collect() {
        this.reset();
        this.inc(stats.syncRequests);
      },
    });
    new client.Counter({
      name: 'latchkey_events_received_total', help: 'Events accepted from sending endpoints.', registers: [r],
      collect() {
        this.reset();
        this.inc(stats.eventsReceived);
      },
    });
    new client.Counter({
      name: 'latchkey_events_delivered_total', help: 'Event deliveries to receiving endpoints on this node.', registers: [r],
      collect() {
        this.reset();
        this.inc(stats.eventsDelivered);
      },
    });
    new client.Counter({
      name: 'latchkey_events_dropped_total',
      help: 'Events or deliveries dropped: slow_receiver (receiver send buffer over eventMaxBufferedBytes), duplicate (seqNum not above the last), no_owner (sender not attached), invalid (bad class name, target or seqNum), error (a backend failed while the sender owner was read).',
      labelNames: ['reason'], registers: [r],
      collect() {
        this.reset();
        for (const [reason, n] of stats.eventsDropped) this.inc({ reason }, n);
      },
    });
    new client.Gauge({
      name: 'latchkey_crypto_queue_depth', help: 'Handshakes waiting for a crypto worker.', registers: [r],
      collect() {
        this.set(stats.cryptoQueue());
      },
    });
    new client.Counter({
      name: 'latchkey_crypto_handshakes_total', help: 'Handshakes handed to the crypto workers.', registers: [r],
      collect() {
        this.reset();
        this.inc(stats.cryptoTasks().handshakes);
      },
    });
    new client.Counter({
      name: 'latchkey_crypto_batches_total', help: 'Worker tasks (batches of handshakes) run.', registers: [r],
      collect() {
        this.reset();
        this.inc(stats.cryptoTasks().batches);
      },
    });
    mapCounter(r, 'latchkey_cluster_messages_total', 'Messages about one endpoint or owner sent to other nodes (takeover, revocation, kick, notification, owner change, event), by route: node (only to the nodes holding the session or sessions of the owner), broadcast (no cluster directory, or it was unavailable), none (no live holder: nothing sent).', 'route', this.clusterMessages);
    mapCounter(r, 'latchkey_directory_errors_total', 'Cluster directory calls (Redis) that failed, by call (claim, release, lookup, join, leave, members); lookups fell back to a broadcast.', 'call', this.directoryErrors);
    mapCounter(r, 'latchkey_handler_errors_total', 'uWS callbacks whose handler threw; answered 500 or closed with LK_INTERNAL instead of ending the process.', 'where', this.handlerErrors);
    mapCounter(r, 'latchkey_connections_refused_total', 'WebSocket upgrades refused before a session existed, by code (LK_BANNED, LK_CONN_RATE_LIMITED, LK_CONN_LIMIT).', 'code', this.connectionsRefused);
    mapCounter(r, 'latchkey_rsa_decrypts_unused_total', 'RSA decrypts spent on handshakes that were not accepted after all, by why: the refusal code that came after the decrypt (LK_BANNED: a ban landed while it ran; LK_CRED_RATE_LIMITED, LK_CRED_IN_USE, ...), or closed (the connection went, or a ban ended the session, while it ran). Each is a private-key operation a client made the server spend for nothing.', 'reason', this.rsaDecryptsUnused);
    mapCounter(r, 'latchkey_bans_added_total', 'Bans set, by reason: flapping, failed-handshakes (automatic), admin (API or CLI).', 'reason', this.bansAdded);
    new client.Counter({
      name: 'latchkey_rsa_operations_total', help: 'RSA-2048 operations run for handshakes: verify (endpoint signature) and decrypt (session secret, the expensive one).', labelNames: ['op'], registers: [r],
      collect() {
        this.reset();
        this.inc({ op: 'verify' }, stats.rsaVerifies);
        this.inc({ op: 'decrypt' }, stats.rsaDecrypts);
      },
    });
    new client.Gauge({
      name: 'latchkey_bans_active', help: 'Bans in force on this process, by kind (keyHash, ip, app).', labelNames: ['kind'], registers: [r],
      collect() {
        this.reset();
        for (const [kind, n] of Object.entries(stats.bansActive())) this.set({ kind }, n);
      },
    });
    new client.Counter({
      name: 'latchkey_control_applied_from_log_total', help: 'Revocations and kicks this node applied from the store\'s control log because the bus did not bring them first.', registers: [r],
      collect() {
        this.reset();
        this.inc(stats.control().appliedFromLog);
      },
    });
    new client.Gauge({
      name: 'latchkey_control_outbox', help: 'Revocations and kicks not yet written to the control log (store unreachable; retried every controlPollMs).', registers: [r],
      collect() {
        this.set(stats.control().outbox);
      },
    });
    this.buildInfo = new client.Gauge({ name: 'latchkey_build_info', help: 'Always 1; labels say what runs: latchkey version, Node.js version, node id.', labelNames: ['version', 'node_version', 'node_id'], registers: [r] });
    this.handshakeSeconds = new client.Histogram({
      name: 'latchkey_handshake_duration_seconds', help: 'CONNECT received to CONNACK sent.', labelNames: ['result'], registers: [r],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    });
    this.storeSeconds = new client.Histogram({
      name: 'latchkey_store_operation_duration_seconds', help: 'Store calls by method.', labelNames: ['op'], registers: [r],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    });
    this.cacheSeconds = new client.Histogram({
      name: 'latchkey_cache_operation_duration_seconds', help: 'Cache calls by method.', labelNames: ['op'], registers: [r],
      buckets: [0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1],
    });
    this.backendErrors = new client.Counter({ name: 'latchkey_backend_errors_total', help: 'Failed store/cache calls.', labelNames: ['backend', 'op'], registers: [r] });
  }

  count(map: Map<string, number>, key: string, n = 1): void {
    map.set(key, (map.get(key) ?? 0) + n);
  }
  refused(code: string): void {
    this.handshakesRefused.set(code, (this.handshakesRefused.get(code) ?? 0) + 1);
  }
  ended(code: string): void {
    this.sessionsEnded.set(code, (this.sessionsEnded.get(code) ?? 0) + 1);
  }
  eventDropped(reason: 'slow_receiver' | 'duplicate' | 'no_owner' | 'invalid' | 'error', n = 1): void {
    this.eventsDropped.set(reason, (this.eventsDropped.get(reason) ?? 0) + n);
  }
  snapshot(): Record<string, unknown> {
    return {
      sessionsOpen: this.sessionsOpen,
      handshakesAccepted: this.handshakesAccepted,
      handshakesRefused: Object.fromEntries(this.handshakesRefused),
      sessionsEnded: Object.fromEntries(this.sessionsEnded),
      syncRequests: this.syncRequests,
      eventsReceived: this.eventsReceived,
      eventsDelivered: this.eventsDelivered,
      eventsDropped: Object.fromEntries(this.eventsDropped),
    };
  }
}

/** A counter whose values live in a Map of the hot path (label value -> count), read at scrape time. */
function mapCounter(r: client.Registry, name: string, help: string, label: string, map: Map<string, number>): void {
  new client.Counter({
    name, help, labelNames: [label], registers: [r],
    collect() {
      this.reset();
      for (const [v, n] of map) this.inc({ [label]: v }, n);
    },
  });
}

/**
 * Wrap every async method of a backend so its latency (and failures) land in a histogram. The
 * wrapper adds one closure call and two hrtime reads per call (well under a microsecond).
 */
export function instrument<T extends object>(target: T, histogram: client.Histogram<'op'>, errors: client.Counter<'backend' | 'op'>, backend: string): T {
  // Keyed by the function itself, so a method replaced on the target later is wrapped afresh.
  const wrapped = new WeakMap<object, unknown>();
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value = Reflect.get(obj, prop, receiver) as unknown;
      if (typeof value !== 'function' || prop === 'constructor') return value;
      let w = wrapped.get(value);
      if (!w) {
        const op = String(prop);
        w = function (this: unknown, ...args: unknown[]) {
          const t0 = process.hrtime.bigint();
          const out = (value as (...a: unknown[]) => unknown).apply(obj, args);
          if (out instanceof Promise) {
            return out.then(
              (v) => {
                histogram.observe({ op }, Number(process.hrtime.bigint() - t0) / 1e9);
                return v;
              },
              (err: unknown) => {
                errors.inc({ backend, op });
                throw err;
              },
            );
          }
          return out;
        };
        wrapped.set(value, w);
      }
      return w;
    },
  });
}
