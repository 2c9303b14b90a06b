/**
 * One configuration schema: every field has a type, a default, an environment variable and a doc
 * line. Sources, later wins: defaults < config file (JSON, `--config` or LATCHKEY_CONFIG) <
 * environment (LATCHKEY_<FIELD>) < command-line flags (--field-name value). Unknown keys in the file
 * or flags and bad values stop start-up with LK_CONFIG_UNKNOWN_KEY / LK_CONFIG_INVALID_VALUE.
 * docs/operations.md lists the same fields; test/unit/config.test.ts checks they agree.
 */
import fs from 'node:fs';
import os from 'node:os';
import { LatchkeyError } from '../errors.js';

type FieldType = 'string' | 'int' | 'bool' | 'stringList' | 'json';

interface FieldSpec<T> {
  type: FieldType;
  default: T;
  env: string;
  doc: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** A string field's values must match (with `patternDoc` in the error). */
  pattern?: RegExp;
  patternDoc?: string;
}

function field<T>(spec: FieldSpec<T>): FieldSpec<T> {
  return spec;
}

export const configSchema = {
  host: field<string>({ type: 'string', default: '0.0.0.0', env: 'LATCHKEY_HOST', doc: 'Address the endpoint gateway (WebSocket /ep/v1) binds to.' }),
  port: field<number>({ type: 'int', default: 9443, env: 'LATCHKEY_PORT', min: 0, max: 65535, doc: 'Port of the endpoint gateway; 0 picks a free port (printed at start).' }),
  adminHost: field<string>({ type: 'string', default: '127.0.0.1', env: 'LATCHKEY_ADMIN_HOST', doc: 'Address the admin listener (/healthz, /metrics, admin API) binds to; loopback by default.' }),
  adminPort: field<number>({ type: 'int', default: 9444, env: 'LATCHKEY_ADMIN_PORT', min: 0, max: 65535, doc: 'Port of the admin listener; 0 picks a free port.' }),
  dataDir: field<string>({ type: 'string', default: './data', env: 'LATCHKEY_DATA_DIR', doc: 'Directory of the embedded store and the server key ring (created if missing).' }),
  redisUrl: field<string>({ type: 'string', default: '', env: 'LATCHKEY_REDIS_URL', doc: 'Redis shared by the nodes of a cluster for cache, bus and node registry (empty: in-process, one node). Forms: redis://[user:pass@]host[:port][/db], rediss://... (TLS), redis-cluster://host1:port1,host2:port2,... (Redis Cluster seed nodes; sharded pub/sub, Redis 7+), redis-sentinel://host1:port1,host2:port2/MASTER[/db] (the master named MASTER by those Sentinels); see docs/operations.md "Redis topologies".' }),
  cassandraContactPoints: field<string[]>({ type: 'stringList', default: [], env: 'LATCHKEY_CASSANDRA_CONTACT_POINTS', doc: 'Comma-separated Cassandra contact points; empty: embedded LMDB store in dataDir.' }),
  cassandraLocalDc: field<string>({ type: 'string', default: 'datacenter1', env: 'LATCHKEY_CASSANDRA_LOCAL_DC', doc: 'Local data centre name for the Cassandra load-balancing policy.' }),
  cassandraKeyspace: field<string>({ type: 'string', default: 'latchkey', env: 'LATCHKEY_CASSANDRA_KEYSPACE', doc: 'Cassandra keyspace (created with SimpleStrategy RF 1 if missing; create it yourself for production).' }),
  cassandraUsername: field<string>({ type: 'string', default: '', env: 'LATCHKEY_CASSANDRA_USERNAME', doc: 'Cassandra user name; empty: no authentication.' }),
  cassandraPassword: field<string>({ type: 'string', default: '', env: 'LATCHKEY_CASSANDRA_PASSWORD', doc: 'Cassandra password (prefer the environment variable over the config file).' }),
  logLevel: field<string>({ type: 'string', default: 'info', env: 'LATCHKEY_LOG_LEVEL', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], doc: 'pino log level.' }),
  processes: field<string>({ type: 'string', default: 'auto', env: 'LATCHKEY_PROCESSES', pattern: /^(auto|[1-9][0-9]{0,2})$/, patternDoc: 'auto or a whole number 1-999', doc: 'Gateway processes of this node, sharing its endpoint port (the kernel spreads connections over them); auto: one per CPU; 1: a single process, no primary. See docs/operations.md, "Processes".' }),
  cryptoThreads: field<number>({ type: 'int', default: 0, env: 'LATCHKEY_CRYPTO_THREADS', min: 0, max: 256, doc: 'Worker threads for RSA work, per process; 0: one per available CPU minus one for the event loop (at least one), or one per gateway process when processes > 1.' }),
  allocator: field<string>({ type: 'string', default: 'auto', env: 'LATCHKEY_ALLOCATOR', pattern: /^(auto|system|jemalloc)$/, patternDoc: 'auto, system or jemalloc', doc: 'malloc of the gateway processes of a multi-process node: jemalloc (loaded with LD_PRELOAD, purging freed memory in the background) keeps less memory per idle session after many handshakes; auto: jemalloc when libjemalloc.so.2 is installed, else the system malloc. See docs/operations.md, "Processes".' }),
  gatewayNice: field<number>({ type: 'int', default: 5, env: 'LATCHKEY_GATEWAY_NICE', min: 0, max: 19, doc: 'Nice value of each gateway process of a multi-process node (Linux; set on its threads once it listens, and so on the threads it starts later; threads already nicer, such as the crypto workers at cryptoNice, keep theirs; it starts at the primary\'s, so that a process restarted into a reconnect storm comes up first): the primary, which answers every gateway\'s cache and directory requests, keeps its turn when the gateways have more work than cores (a reconnect storm). 0: same priority as the primary.' }),
  cryptoNice: field<number>({ type: 'int', default: 10, env: 'LATCHKEY_CRYPTO_NICE', min: 0, max: 19, doc: 'Nice value of the crypto worker threads (Linux): RSA yields the core to the event loop that serves live sessions, and still uses idle cores fully; 0: same priority as the loop.' }),
  cryptoMaxQueue: field<number>({ type: 'int', default: 65_536, env: 'LATCHKEY_CRYPTO_MAX_QUEUE', min: 1, max: 1_000_000, doc: 'Most handshakes waiting for a crypto worker (a memory bound, ~1 KB each); past it new ones are refused with REFUSE_SERVER_UNAVAILABLE. cryptoMaxQueueWaitMs usually refuses first.' }),
  cryptoMaxQueueWaitMs: field<number>({ type: 'int', default: 4000, env: 'LATCHKEY_CRYPTO_MAX_QUEUE_WAIT_MS', min: 0, max: 120_000, doc: 'A handshake that would wait longer than this for a crypto worker (queue ahead of it / measured handshakes per second) is refused at once with REFUSE_SERVER_UNAVAILABLE (LK_SERVER_BUSY), so endpoints back off instead of timing out; keep it well under the endpoints\' CONNACK timeout (SDK: 10 s). 0: only cryptoMaxQueue bounds the queue.' }),
  cryptoMaxBatch: field<number>({ type: 'int', default: 32, env: 'LATCHKEY_CRYPTO_MAX_BATCH', min: 1, max: 256, doc: 'Most handshakes a busy crypto worker takes in one task: larger batches cost less CPU per handshake under load, and add up to (batch x ~0.7 ms) of queueing to the last one.' }),
  handshakeWindowSec: field<number>({ type: 'int', default: 120, env: 'LATCHKEY_HANDSHAKE_WINDOW_SEC', min: 5, max: 3600, doc: 'Accepted clock skew of CONNECT timestamps, seconds either side; nonces are remembered twice as long.' }),
  handshakeTimeoutMs: field<number>({ type: 'int', default: 10_000, env: 'LATCHKEY_HANDSHAKE_TIMEOUT_MS', min: 100, max: 120_000, doc: 'A socket that has not sent a CONNECT within this time is closed (LK_HS_TIMEOUT).' }),
  replayCacheMax: field<number>({ type: 'int', default: 1_000_000, env: 'LATCHKEY_REPLAY_CACHE_MAX', min: 1000, max: 100_000_000, doc: 'Most CONNECT nonces remembered; when full, new handshakes are refused with LK_SERVER_BUSY rather than forgetting nonces early.' }),
  maxFrameBytes: field<number>({ type: 'int', default: 64 * 1024, env: 'LATCHKEY_MAX_FRAME_BYTES', min: 1024, max: 16 * 1024 * 1024, doc: 'Largest frame accepted (bytes); larger frames end the session with LK_FRAME_TOO_LARGE.' }),
  maxBackpressureBytes: field<number>({ type: 'int', default: 1024 * 1024, env: 'LATCHKEY_MAX_BACKPRESSURE_BYTES', min: 16 * 1024, max: 256 * 1024 * 1024, doc: 'Bytes queued towards one endpoint before it is disconnected as a slow consumer.' }),
  eventMaxBufferedBytes: field<number>({ type: 'int', default: 256 * 1024, env: 'LATCHKEY_EVENT_MAX_BUFFERED_BYTES', min: 1024, max: 256 * 1024 * 1024, doc: 'Slow-receiver policy: an event for an endpoint whose socket already buffers more than this is dropped for it (counted in latchkey_events_dropped_total{reason="slow_receiver"}; the endpoint sees a gap in seqNum). Keep it below maxBackpressureBytes.' }),
    keepAliveMaxSec: field<number>({ type: 'int', default: 600, env: 'LATCHKEY_KEEP_ALIVE_MAX_SEC', min: 10, max: 600, doc: 'Largest keepalive an endpoint may ask for; the server closes a session silent for 1.5x its keepalive.' }),
  keepAliveDefaultSec: field<number>({ type: 'int', default: 60, env: 'LATCHKEY_KEEP_ALIVE_DEFAULT_SEC', min: 5, max: 600, doc: 'Keepalive used when CONNECT asks for 0.' }),
  credentialsCacheTtlMs: field<number>({ type: 'int', default: 60_000, env: 'LATCHKEY_CREDENTIALS_CACHE_TTL_MS', min: 0, max: 86_400_000, doc: 'How long a credential status stays cached (changes made through latchkey update the cache at once). With the embedded store and a cache outside the process (a multi-process node, or redisUrl), the store-backed credentials services read the local store instead and cache nothing; plugin services are still cached.' }),
  negativeCacheTtlMs: field<number>({ type: 'int', default: 5_000, env: 'LATCHKEY_NEGATIVE_CACHE_TTL_MS', min: 0, max: 3_600_000, doc: 'How long "unknown application" / "unknown credentials" results stay cached.' }),
  credentialsPlugins: field<Record<string, unknown>>({ type: 'json', default: {}, env: 'LATCHKEY_CREDENTIALS_PLUGINS', doc: 'Custom credentials services: {"name": {"module": "/abs/path.mjs", "config": {...}}}; each module exports a plugin descriptor of kind credentials (docs/operations.md, "Plugins"); applications name them in credentialsService.' }),
  ownerVerifierPlugins: field<Record<string, unknown>>({ type: 'json', default: {}, env: 'LATCHKEY_OWNER_VERIFIER_PLUGINS', doc: 'Custom owner verifier types: {"typeName": {"module": "/abs/path.mjs"}} (the older {"typeName": "/abs/path.mjs"} still loads, deprecated); each module exports a plugin descriptor of kind ownerVerifier whose configSchema (an Avro record) is that of a verifier\'s jsonConfiguration and whose create(config, {log}) returns {verify, close?}. Checked at start-up (LK_PLUGIN_*; names of built-in types refused); admins then create verifiers with that pluginTypeName.' }),
  seedFile: field<string>({ type: 'string', default: '', env: 'LATCHKEY_SEED_FILE', doc: 'JSON file of tenants, applications, credentials and registrations applied at start (idempotent).' }),
  nodeId: field<string>({ type: 'string', default: '', env: 'LATCHKEY_NODE_ID', doc: 'This node\'s id in the node registry and bootstrap lists (access point id = a hash of it); empty: a random id per start.' }),
  publicUrl: field<string>({ type: 'string', default: '', env: 'LATCHKEY_PUBLIC_URL', doc: 'WebSocket URL endpoints use to reach this node (bootstrap lists carry it), e.g. wss://node1.example.com/ep/v1; empty: ws://<host>:<port>/ep/v1 (127.0.0.1 when host is a wildcard; set it in any real deployment).' }),
  nodePriority: field<number>({ type: 'int', default: 0, env: 'LATCHKEY_NODE_PRIORITY', min: 0, max: 1000, doc: 'Bootstrap priority of this node (priority-weighted strategy): endpoints try lower values first.' }),
  nodeWeight: field<number>({ type: 'int', default: 100, env: 'LATCHKEY_NODE_WEIGHT', min: 0, max: 1_000_000, doc: 'Bootstrap weight of this node among nodes of equal priority (weighted random choice by endpoints).' }),
  nodeCapacity: field<number>({ type: 'int', default: 100_000, env: 'LATCHKEY_NODE_CAPACITY', min: 1, max: 100_000_000, doc: 'Sessions this node is sized for; load = open sessions / capacity (bootstrap lists, least-loaded strategy).' }),
  nodeHeartbeatMs: field<number>({ type: 'int', default: 2_000, env: 'LATCHKEY_NODE_HEARTBEAT_MS', min: 100, max: 60_000, doc: 'How often this node announces itself to the node registry and re-reads it; a node silent for 3 heartbeats drops out of bootstrap lists.' }),
  ticketKeyFile: field<string>({ type: 'string', default: '', env: 'LATCHKEY_TICKET_KEY_FILE', doc: 'Resumption ticket master secret (32 random bytes, base64); ticket keys are derived from it per ticketKeyRotateSec. Empty: <dataDir>/tickets/ticket-master.key, created at first start. All nodes of a cluster need the same file (a ticket from one node resumes on another); never give it to endpoints.' }),
  ticketLifetimeSec: field<number>({ type: 'int', default: 86_400, env: 'LATCHKEY_TICKET_LIFETIME_SEC', min: 0, max: 30 * 86_400, doc: 'How long a resumption ticket may be used after its session gave it (docs/protocol.md 4.6). 0: resumption off (RESUME refused with LK_RESUME_DISABLED, TICKETREQ answered with an empty ticket).' }),
  ticketKeyRotateSec: field<number>({ type: 'int', default: 3_600, env: 'LATCHKEY_TICKET_KEY_ROTATE_SEC', min: 60, max: 30 * 86_400, doc: 'A new ticket key every this many seconds (derived from the master secret, so every node switches at the same moment); a key stays valid while a ticket it sealed can be: its period plus ticketLifetimeSec.' }),
  bootstrapKeyFile: field<string>({ type: 'string', default: '', env: 'LATCHKEY_BOOTSTRAP_KEY_FILE', doc: 'PEM RSA-2048 private key that signs bootstrap lists (not an operations key); empty: <dataDir>/bootstrap/bootstrap-key.pem, created at first start. All nodes of a cluster need the same key.' }),
  bootstrapListTtlSec: field<number>({ type: 'int', default: 600, env: 'LATCHKEY_BOOTSTRAP_LIST_TTL_SEC', min: 10, max: 7 * 86_400, doc: 'Lifetime of a signed access point list; endpoints resolve again when it expires.' }),
  bootstrapStrategy: field<string>({ type: 'string', default: 'priority-weighted', env: 'LATCHKEY_BOOTSTRAP_STRATEGY', doc: 'How bootstrap lists order nodes: priority-weighted (configured nodePriority/nodeWeight), least-loaded, or custom (bootstrapStrategyPlugin).' }),
  bootstrapStrategyPlugin: field<Record<string, unknown>>({ type: 'json', default: {}, env: 'LATCHKEY_BOOTSTRAP_STRATEGY_PLUGIN', doc: 'With bootstrapStrategy=custom: {"module": "/abs/path.mjs", "config": {...}}; the module exports a plugin descriptor of kind bootstrapStrategy whose create(config, {log}) returns { place(nodes, { appId }) } -> [{ nodeId, priority, weight }].' }),
  // --- protection (docs/operations.md "Limits and bans"); 0 turns a rate limit off ---
  maxConnections: field<number>({ type: 'int', default: 0, env: 'LATCHKEY_MAX_CONNECTIONS', min: 0, max: 10_000_000, doc: 'Most endpoint connections this process holds; more are refused at the upgrade (HTTP 503 LK_CONN_LIMIT). 0: the open-file limit minus connectionFdReserve, so admin, health and store keep file descriptors.' }),
  maxPendingHandshakes: field<number>({ type: 'int', default: 4096, env: 'LATCHKEY_MAX_PENDING_HANDSHAKES', min: 0, max: 10_000_000, doc: 'Most sockets of this process whose handshake has not ended (no CONNECT or RESUME read yet, or waiting for its CONNACK), whatever its handshake rate; more are refused at the upgrade with LK_SERVER_BUSY and a return time (docs/protocol.md 1.1), so a reconnect storm cannot hand a process more sockets than it reads a first frame from within handshakeTimeoutMs. 0: no fixed bound (handshakeQueueTargetMs still applies).' }),
  handshakeQueueTargetMs: field<number>({ type: 'int', default: 2_000, env: 'LATCHKEY_HANDSHAKE_QUEUE_TARGET_MS', min: 0, max: 60_000, doc: 'Storm pacing: a process takes at most (the handshakes per second it has shown it can do in the last 30 s: src/protection/pacing.ts) x this many handshakes in progress (at least 64, at most maxPendingHandshakes), so that one it admits ends well inside the endpoint\'s 10 s attempt timeout; each endpoint refused meanwhile is given a return time, spaced at the pace the process serves (docs/operations.md "Reconnect storms"). 0: only maxPendingHandshakes bounds it.' }),
  busyRetryMaxSec: field<number>({ type: 'int', default: 300, env: 'LATCHKEY_BUSY_RETRY_MAX_SEC', min: 1, max: 3_600, doc: 'Longest return time a busy refusal (LK_SERVER_BUSY at the upgrade) hands an endpoint; the appointments of a storm larger than this many seconds of handshakes (at the rate the process estimated when it refused) are spread over it, and those the process cannot serve then get a later one. Longer: fewer refusals per endpoint; shorter: an estimate made low in a storm\'s first seconds costs less idle time, but at 250,000 endpoints 60 s cost ~4 refusals per endpoint and twice the attempts that timed out (docs/performance.md).' }),
  connectionFdReserve: field<number>({ type: 'int', default: 1024, env: 'LATCHKEY_CONNECTION_FD_RESERVE', min: 64, max: 1_000_000, doc: 'File descriptors kept free of endpoint connections when maxConnections is 0 (admin listener, store, Redis, logs, workers).' }),
  ipConnectRatePerSec: field<number>({ type: 'int', default: 100, env: 'LATCHKEY_IP_CONNECT_RATE_PER_SEC', min: 0, max: 1_000_000, doc: 'New WebSocket connections per second one IP address may open (token bucket refill; 0: no limit); beyond it the upgrade gets HTTP 429 LK_CONN_RATE_LIMITED with Retry-After.' }),
  ipConnectBurst: field<number>({ type: 'int', default: 1000, env: 'LATCHKEY_IP_CONNECT_BURST', min: 1, max: 10_000_000, doc: 'Token bucket size of ipConnectRatePerSec: connections one address may open at once (a NAT of devices reconnecting after an outage).' }),
  keyHandshakesPerMin: field<number>({ type: 'int', default: 30, env: 'LATCHKEY_KEY_HANDSHAKES_PER_MIN', min: 0, max: 1_000_000, doc: 'Handshakes per minute one key hash may start (bucket of the same size; 0: no limit); beyond it CONNACK LK_HS_RATE_LIMITED, before any RSA work.' }),
  flappingMaxCount: field<number>({ type: 'int', default: 15, env: 'LATCHKEY_FLAPPING_MAX_COUNT', min: 0, max: 1_000_000, doc: 'Flapping detection (as EMQX): a key hash that verified this many handshakes within flappingWindowSec is banned for flappingBanSec at its next one, before RSA work; while its handshakes in the crypto pool would reach the count, more are refused with LK_HS_RATE_LIMITED (0: off).' }),
  flappingWindowSec: field<number>({ type: 'int', default: 60, env: 'LATCHKEY_FLAPPING_WINDOW_SEC', min: 1, max: 86_400, doc: 'Window of flapping detection and of the failed-handshake count per address.' }),
  flappingBanSec: field<number>({ type: 'int', default: 300, env: 'LATCHKEY_FLAPPING_BAN_SEC', min: 1, max: 30 * 86_400, doc: 'Length of a ban set by flapping detection or by ipMaxFailedHandshakes.' }),
  ipMaxFailedHandshakes: field<number>({ type: 'int', default: 100, env: 'LATCHKEY_IP_MAX_FAILED_HANDSHAKES', min: 0, max: 10_000_000, doc: 'An address whose handshakes are refused more than this many times within flappingWindowSec (bad signature, replay, unknown application or credentials, stale, malformed) is banned for flappingBanSec (0: off). An endpoint backing off as docs/protocol.md says makes a few tries a minute, so 100 leaves room for a NAT of misconfigured devices while a flood is cut off within its first 100 tries per address. Loopback is not exempt.' }),
  attackRefusalsPerSec: field<number>({ type: 'int', default: 500, env: 'LATCHKEY_ATTACK_REFUSALS_PER_SEC', min: 0, max: 10_000_000, doc: 'Under-attack mode: while this process refuses more attempts per second than this (handshakes, and upgrades of banned or too fast addresses; all addresses together, this second or the one before), an address is banned after ipMaxFailedHandshakesUnderAttack refusals instead of ipMaxFailedHandshakes, and an address with no handshake accepted in flappingWindowSec waits handshakeProbationMs before its first RSA work (0: off).' }),
  ipMaxFailedHandshakesUnderAttack: field<number>({ type: 'int', default: 10, env: 'LATCHKEY_IP_MAX_FAILED_HANDSHAKES_UNDER_ATTACK', min: 1, max: 10_000_000, doc: 'The per-address refused-handshake threshold while under attack (attackRefusalsPerSec).' }),
  handshakeProbationMs: field<number>({ type: 'int', default: 200, env: 'LATCHKEY_HANDSHAKE_PROBATION_MS', min: 0, max: 10_000, doc: 'Probation before RSA work: a handshake that passed every cheap check, from an address with a handshake refused in the last handshakeProbationMs, waits until the address has gone that long without one (at most 5 x handshakeProbationMs), and is refused with LK_BANNED without any RSA operation if the address is banned meanwhile; under attack (attackRefusalsPerSec) an address with no handshake accepted in flappingWindowSec waits handshakeProbationMs once even before its first refusal. A flood mixing valid handshakes (fresh keys in a trustful application) with junk is then banned before its valid ones cost a decrypt; an endpoint behind a NAT with a failing neighbour waits at most 5 x this once (0: off).' }),
  sessionMessagesPerSec: field<number>({ type: 'int', default: 2000, env: 'LATCHKEY_SESSION_MESSAGES_PER_SEC', min: 0, max: 10_000_000, doc: 'Frames per second one session may send (bucket of 2 s; 0: no limit); beyond it DISCONNECT LK_SESSION_RATE_LIMITED.' }),
  sessionBytesPerSec: field<number>({ type: 'int', default: 4 * 1024 * 1024, env: 'LATCHKEY_SESSION_BYTES_PER_SEC', min: 0, max: 1024 * 1024 * 1024, doc: 'Frame bytes per second one session may send (bucket of 2 s; 0: no limit); beyond it DISCONNECT LK_SESSION_RATE_LIMITED.' }),
  badSignatureMemory: field<number>({ type: 'int', default: 100_000, env: 'LATCHKEY_BAD_SIGNATURE_MEMORY', min: 0, max: 10_000_000, doc: 'CONNECTs whose signature failed that are remembered (a digest each, ~100 B) for 2 x handshakeWindowSec, so a replayed forged CONNECT is refused with LK_HS_BAD_SIGNATURE without another RSA verify (0: off).' }),
  trustfulNewCredentialsPerSec: field<number>({ type: 'int', default: 100, env: 'LATCHKEY_TRUSTFUL_NEW_CREDENTIALS_PER_SEC', min: 0, max: 1_000_000, doc: 'New credentials records a trustful application may create per second on this process (bucket of 10 s; 0: no limit); beyond it CONNACK LK_CRED_RATE_LIMITED before any RSA work.' }),
  handshakeTurnBudgetUs: field<number>({ type: 'int', default: 1000, env: 'LATCHKEY_HANDSHAKE_TURN_BUDGET_US', min: 0, max: 1_000_000, doc: 'CONNECTs are handled in event-loop turns of at most this much synchronous handshake work (microseconds), with socket polling in between, so a burst of new connections delays frames of established sessions by about one turn (src/session/handshake-gate.ts). 0: each CONNECT at once, in the callback that brought it.' }),
  handshakeStallTimeoutMs: field<number>({ type: 'int', default: 30_000, env: 'LATCHKEY_HANDSHAKE_STALL_TIMEOUT_MS', min: 1000, max: 600_000, doc: 'A session still handshaking this long after its CONNECT (a backing service hangs) is ended with LK_HS_STALLED.' }),
  controlPollMs: field<number>({ type: 'int', default: 2_000, env: 'LATCHKEY_CONTROL_POLL_MS', min: 100, max: 60_000, doc: 'How often a node reads the store\'s session control log (revocations, kicks, bans): the bound on how late a revocation reaches a session on another node when the bus lost it.' }),
    shutdownGraceMs: field<number>({ type: 'int', default: 5_000, env: 'LATCHKEY_SHUTDOWN_GRACE_MS', min: 0, max: 600_000, doc: 'On SIGTERM/SIGINT, time allowed for sessions to receive DISCONNECT before the process exits.' }),
} as const;

export type ConfigKey = keyof typeof configSchema;
export type Config = { -readonly [K in ConfigKey]: (typeof configSchema)[K]['default'] };

export function defaultConfig(): Config {
  const out: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(configSchema)) out[k] = structuredClone(spec.default);
  return out as Config;
}

function kebab(k: string): string {
  return k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** Flag name (`--admin-port`) of each field. */
export const flagNames: Record<string, ConfigKey> = Object.fromEntries(
  (Object.keys(configSchema) as ConfigKey[]).map((k) => [kebab(k), k]),
);

function coerce(key: ConfigKey, raw: unknown, source: string): unknown {
  const spec = configSchema[key] as FieldSpec<unknown>;
  const bad = (why: string): never => {
    throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `${key} from ${source}: ${why}`);
  };
  switch (spec.type) {
    case 'string': {
      if (typeof raw !== 'string') bad('expected a string');
      const s = raw as string;
      if (spec.choices && !spec.choices.includes(s)) bad(`expected one of ${spec.choices.join(', ')}`);
      if (spec.pattern && !spec.pattern.test(s)) bad(`expected ${spec.patternDoc ?? spec.pattern.source}`);
      return s;
    }
    case 'int': {
      const n = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n)) bad('expected an integer');
      const v = n as number;
      if (spec.min !== undefined && v < spec.min) bad(`must be >= ${spec.min}`);
      if (spec.max !== undefined && v > spec.max) bad(`must be <= ${spec.max}`);
      return v;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      return bad('expected true or false');
    }
    case 'stringList': {
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw.map((x: string) => x.trim()).filter(Boolean);
      if (typeof raw === 'string') return raw.split(',').map((x) => x.trim()).filter(Boolean);
      return bad('expected a comma-separated string or an array of strings');
    }
    case 'json': {
      let v = raw;
      if (typeof raw === 'string') {
        try {
          v = JSON.parse(raw);
        } catch {
          bad('expected JSON');
        }
      }
      if (v === null || typeof v !== 'object' || Array.isArray(v)) bad('expected a JSON object');
      return v;
    }
  }
}

export interface LoadOptions {
  /** Parsed flags: field name (camelCase) -> raw string value. */
  flags?: Record<string, string>;
  env?: NodeJS.ProcessEnv;
  configFile?: string;
}

/** Build the effective configuration. Throws LatchkeyError with a LK_CONFIG_* code. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const cfg = defaultConfig() as Record<string, unknown>;
  const file = opts.configFile ?? env.LATCHKEY_CONFIG;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new LatchkeyError('LK_CONFIG_FILE_UNREADABLE', `${file}: ${(err as Error).message}`, { cause: err });
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new LatchkeyError('LK_CONFIG_FILE_UNREADABLE', `${file}: expected a JSON object`);
    }
    for (const [k, v] of Object.entries(parsed)) {
      if (!Object.hasOwn(configSchema, k)) throw new LatchkeyError('LK_CONFIG_UNKNOWN_KEY', `${k} in ${file}`);
      cfg[k] = coerce(k as ConfigKey, v, file);
    }
  }
  for (const [k, spec] of Object.entries(configSchema)) {
    const raw = env[spec.env];
    if (raw !== undefined && raw !== '') cfg[k] = coerce(k as ConfigKey, raw, spec.env);
  }
  for (const [k, v] of Object.entries(opts.flags ?? {})) {
    if (!Object.hasOwn(configSchema, k)) throw new LatchkeyError('LK_CONFIG_UNKNOWN_KEY', `--${kebab(k)}`);
    cfg[k] = coerce(k as ConfigKey, v, `--${kebab(k)}`);
  }
  const out = cfg as Config;
  if (out.keepAliveDefaultSec > out.keepAliveMaxSec) {
    throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `keepAliveDefaultSec (${out.keepAliveDefaultSec}) must not exceed keepAliveMaxSec (${out.keepAliveMaxSec})`);
  }
  return out;
}

/** The configuration with secrets masked, for logs. */
export function redactConfig(cfg: Config): Record<string, unknown> {
  return { ...cfg, cassandraPassword: cfg.cassandraPassword ? '***' : '', redisUrl: cfg.redisUrl.replace(/\/\/[^@/]*@/, '//***@') };
}

/** `processes` as a count: auto = one per CPU. */
export function processCount(config: Pick<Config, 'processes'>): number {
  return config.processes === 'auto' ? Math.max(1, os.availableParallelism()) : Number(config.processes);
}
