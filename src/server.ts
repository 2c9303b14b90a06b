/**
 * build(config): wires every component of a node together, in dependency order, from the
 * configuration. Backends (store, cache, bus, node registry) are chosen in backends.ts; plugins
 * (credentials services, owner verifiers, bootstrap strategy) are loaded here. Each choice is
 * logged at start-up.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import { isLocalStore, openDirectory, openBus, openCache, openNodeRegistry, openStore } from './backends.js';
import type { NodeLink } from './ipc/link.js';
import type { Cache } from './cache/cache.js';
import type { Bus } from './bus/bus.js';
import { Revocation } from './control/revocation.js';
import { SessionControl } from './control/session-control.js';
import { startProtection } from './protection/protection.js';
import { OwnershipService } from './ownership/ownership.js';
import { loadCustomVerifierTypes } from './ownership/verifiers/registry.js';
import { EventRelay } from './events/relay.js';
import type { Config } from './config/config.js';
import { CREDENTIALS_SERVICE_METHODS, CredentialsGate, StoreCredentialsService, type CredentialsService } from './credentials/credentials.js';
import { KeyRing } from './crypto/keyring.js';
import { CryptoPool } from './crypto/pool.js';
import { frameCipherKind } from './crypto/frame-cipher.js';
import { LatchkeyError } from './errors.js';
import { instrument, Stats } from './metrics.js';
import { loadPlugin } from './plugins/plugin.js';
import { parsePluginMap } from './plugins/spec.js';
import { RegistrationService } from './registration/registration.js';
import { Handshaker } from './session/handshake.js';
import { ClusterRouting } from './control/routing.js';
import { TicketSealer } from './crypto/tickets.js';
import { HandshakeGate } from './session/handshake-gate.js';
import { SessionRegistry } from './session/registry.js';
import { ReplayCache } from './session/replay.js';
import type { Store } from './store/store.js';
import { ApplicationDirectory } from './tenancy/applications.js';
import { applySeed, createApplication, createTenant } from './tenancy/provision.js';
import { ENDPOINT_PATH, Gateway } from './transport/gateway.js';
import { MetricsHandler } from './transport/metrics-route.js';
import { mountHttp } from './transport/http-uws.js';
import { BootstrapKey } from './bootstrap/key.js';
import { drain, drainAndDisconnect } from './bootstrap/drain.js';
import { accessPointId } from './bootstrap/nodes.js';
import { BOOTSTRAP_PATH, BootstrapService, MAX_BOOTSTRAP_REQUEST_BYTES, SUPPORTED_PROTOCOL_VERSIONS } from './bootstrap/service.js';
import { loadStrategy } from './bootstrap/strategy.js';
import { ApiKeyAuthenticator, newApiKey } from './admin/auth.js';
import { AdminRouter } from './admin/http.js';
import { openapiDocument } from './admin/openapi.js';
import { adminRoutes, localLiveSessions, type LiveSessions, type LiveSessionView } from './admin/routes.js';
import { defaultUiDir, UiHandler } from './admin/ui-static.js';

/** Built-in and configured credentials services by name. */
export async function loadCredentialsServices(config: Config, store: Store, log: Logger): Promise<Map<string, CredentialsService>> {
  const services = new Map<string, CredentialsService>([
    ['trustful', new StoreCredentialsService(store, true)],
    ['internal', new StoreCredentialsService(store, false)],
  ]);
  for (const [name, spec] of parsePluginMap('credentialsPlugins', config.credentialsPlugins, log)) {
    if (services.has(name)) throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `credentials plugin name ${name} is reserved`);
    const { instance, plugin } = await loadPlugin<CredentialsService>('credentials', spec, {
      configuredAs: name,
      ctx: { store, log: log.child({ plugin: name }) },
      requiredMethods: CREDENTIALS_SERVICE_METHODS,
    });
    services.set(name, instance);
    log.info({ plugin: name, module: plugin.module, pluginName: plugin.descriptor.name, apiVersion: plugin.descriptor.apiVersion }, 'credentials plugin loaded');
  }
  return services;
}

export interface Server {
  readonly config: Config;
  readonly store: Store;
  readonly cache: Cache;
  readonly keyRing: KeyRing;
  readonly registry: SessionRegistry;
  readonly stats: Stats;
  readonly credentials: CredentialsGate;
  readonly apps: ApplicationDirectory;
  readonly gateway: Gateway;
  readonly pool: CryptoPool;
  readonly bus: Bus;
  /** Root API key token created at this start because none existed (printed once by `serve`), else null. */
  readonly firstApiKey: string | null;
  readonly revocation: Revocation;
  readonly bootstrap: BootstrapService;
  readonly bootstrapKey: BootstrapKey;
  readonly nodeId: string;
  readonly port: number;
  readonly adminPort: number;
  /** Graceful shutdown: drain (REDIRECT), DISCONNECT, then close everything. Idempotent. */
  close(): Promise<void>;
  /** After LK_FATAL: stop listening, end sessions without draining, close everything at once. */
  abort(): Promise<void>;
}

export const VERSION = '0.1.0';
/** A backing service that does not answer /readyz's probe within this is reported not ready. */
const READY_TIMEOUT_MS = 1000;

/**
 * With no API key in the store, create a root key and print it once (stderr and the log): the
 * operator's way in. Only the hash is stored; `latchkey admin create-key` makes more offline.
 */
async function ensureFirstApiKey(store: Store, log: Logger): Promise<string | null> {
  if ((await store.countApiKeys()) > 0) return null;
  const k = newApiKey(null, 'first root key');
  await store.createApiKey(k.record);
  log.warn({ apiKeyId: k.record.id }, 'no admin API key existed: created a root key (its token is printed once on stderr; store it now)');
  return k.token;
}

/** The first start on an empty store creates tenant "default" with a trustful application "default". */
async function ensureDefaultApplication(store: Store, services: string[], log: Logger): Promise<void> {
  if ((await store.listTenants()).length > 0) return;
  const tenant = await createTenant(store, { id: 'default', name: 'Default tenant' });
  const app = await createApplication(store, { id: 'default', tenantId: tenant.id, name: 'Default application', credentialsService: 'trustful' }, services);
  log.warn({ tenant: tenant.id, application: app.id, appToken: app.appToken, credentialsService: 'trustful' },
    'empty store: created tenant "default" with a trustful application "default" (any endpoint may connect with this app token)');
}

/**
 * The first-start work of a node, done once by the primary of a multi-process node before it
 * starts its gateway processes (which would otherwise race to create the key ring, the bootstrap
 * key and the first API key): the server key ring, the bootstrap key, the seed, the default
 * application and the first root API key. Returns that key's token if it was created now.
 */
export async function prepareNode(config: Config, log: Logger): Promise<{ firstApiKey: string | null }> {
  await KeyRing.loadOrCreate(path.resolve(config.dataDir, 'keys'));
  const bootstrapKeyFile = config.bootstrapKeyFile || path.resolve(config.dataDir, 'bootstrap', 'bootstrap-key.pem');
  const { key, created } = await BootstrapKey.loadOrCreate(bootstrapKeyFile);
  if (created) log.warn({ file: bootstrapKeyFile, keyId: key.id }, 'created the bootstrap signing key; give its public key to endpoints (latchkey bootstrap-key) and the same file to every node of a cluster');
  const store = await openStore(config, log);
  try {
    // Names only: plugins are loaded (and checked) by each gateway process.
    const services = ['trustful', 'internal', ...Object.keys(config.credentialsPlugins)];
    if (config.seedFile) log.info({ seed: config.seedFile, ...(await applySeed(store, config.seedFile, services)) }, 'seed applied');
    await ensureDefaultApplication(store, services, log);
    return { firstApiKey: await ensureFirstApiKey(store, log) };
  } finally {
    await store.close();
  }
}

/** This server is one gateway process of a multi-process node (node/primary.ts starts them). */
export interface NodeProcess {
  index: number;
  link: NodeLink;
}

/** A gateway process refuses new connections (a paced LK_SERVER_BUSY) while its oldest request to the node primary has waited longer than this. */
export const IPC_BUSY_MS = 1000;

export async function build(config: Config, baseLog: Logger, proc: NodeProcess | null = null): Promise<Server> {
  const nodeId = config.nodeId || crypto.randomUUID();
  const link = proc?.link ?? null;
  // Who sent a bus message (components skip their own): the processes of one node are distinct senders.
  const busOrigin = proc ? `${nodeId}#${proc.index}` : nodeId;
  // Every log line of this node names it (a cluster's logs are read together).
  const log = baseLog.child({ node: nodeId });
  const closers: Array<() => Promise<void> | void> = [];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch (err) {
        log.error({ err }, 'error while closing');
      }
    }
  };
  let bootstrap: BootstrapService | null = null;
  try {
    const stats = new Stats();
    stats.buildInfo.set({ version: VERSION, node_version: process.version, node_id: nodeId }, 1);
    const rawStore = await openStore(config, log);
    closers.push(() => rawStore.close());
    const rawCache = await openCache(config, log, link);
    closers.push(() => rawCache.close());
    // Every store and cache call is timed for /metrics (latchkey_store_/cache_operation_duration_seconds).
    const store = instrument(rawStore, stats.storeSeconds, stats.backendErrors, 'store');
    const cache = instrument(rawCache, stats.cacheSeconds, stats.backendErrors, 'cache');
    const keyRing = await KeyRing.loadOrCreate(path.resolve(config.dataDir, 'keys'));
    log.info({ keys: keyRing.list().map((k) => ({ id: k.id, status: k.status })) }, 'server key ring loaded');
    const services = await loadCredentialsServices(config, store, log);
    // A gateway process of a multi-process node finds this done by its primary (prepareNode).
    if (!proc) {
      if (config.seedFile) log.info({ seed: config.seedFile, ...(await applySeed(store, config.seedFile, [...services.keys()])) }, 'seed applied');
      await ensureDefaultApplication(store, [...services.keys()], log);
    }

    const apps = new ApplicationDirectory(store, config.credentialsCacheTtlMs, config.negativeCacheTtlMs);
    const credentials = new CredentialsGate(services, cache, {
      // Embedded store with a cache outside this process (IPC or Redis): the store is the cheaper read.
      storeDirect: isLocalStore(rawStore) && (link !== null || config.redisUrl !== ''),
      ttlMs: config.credentialsCacheTtlMs,
      negativeTtlMs: config.negativeCacheTtlMs,
      onCacheError: (err) => log.warn({ err }, 'cache unavailable; using the store'),
    });
    const pool = new CryptoPool({ keyDir: keyRing.dir, threads: config.cryptoThreads, maxQueue: config.cryptoMaxQueue, maxWaitMs: config.cryptoMaxQueueWaitMs, maxBatch: config.cryptoMaxBatch, nice: config.cryptoNice });
    closers.push(() => pool.close());
    stats.cryptoQueue = () => pool.queueSize;
    stats.cryptoTasks = () => ({ handshakes: pool.tasksRun, batches: pool.batchesRun });
    // With Redis configured (a cluster), nonces are also claimed cluster-wide; with several
    // processes on one node, node-wide (the primary's cache).
    const replay = await ReplayCache.create({
      ttlMs: config.handshakeWindowSec * 2000,
      max: config.replayCacheMax,
      shared: config.redisUrl || link ? cache : null,
      onSharedError: (err) => log.warn({ err }, 'shared replay check unavailable; local check only'),
    });
    // Load and self-check the frame AEAD kernel now (~8 ms once) rather than in the first session.
    const frameCipher = frameCipherKind();
    log.info({ frameCipher }, frameCipher === 'wasm' ? 'frame AEAD: WebAssembly GHASH kernel' : 'frame AEAD: node:crypto (WebAssembly kernel not loaded)');
    const registration = new RegistrationService(store, apps);
    const registry = new SessionRegistry(stats, config.handshakeTimeoutMs, config.handshakeStallTimeoutMs);
    closers.push(() => registry.close());
    if (link) {
      // Takeover across the node's processes: the primary keeps who holds each endpoint.
      registry.addDirectory({
        claimed: (s) => link.notify({ lk: 'claim', key: s.endpointKey!, at: s.establishedAt ?? Date.now() }),
        released: (s) => link.notify({ lk: 'release', key: s.endpointKey! }),
      });
      link.on({ replace: (key, at) => registry.replacedElsewhere(key, at) });
    }
    const bus = await openBus(config, log, link, nodeId, proc?.index ?? 0);
    closers.push(() => bus.close());
    // Cross-node takeover and routing of per-endpoint messages and events (control/routing.ts).
    const directory = await openDirectory(config, log, nodeId, proc?.index ?? 0);
    closers.push(() => directory.close());
    const routing = new ClusterRouting({ directory, bus, registry, node: nodeId, process: proc?.index ?? 0, stats, log });
    await routing.start();
    closers.push(() => routing.close());
    // Bans, caps and rates: the cheapest refusals, before parsing and RSA (protection/admission.ts).
    const protection = await startProtection({
      config, store, bus, stats, log, nodeId: busOrigin,
      bannedSessions: {
        atAddresses: (match) => registry.endAtAddresses(match, 'LK_BANNED'),
        where: (match) => registry.endWhere((s) => match({ appId: s.app?.id ?? null, keyHash: s.claimedKeyHash }), 'LK_BANNED'),
      },
    });
    closers.push(() => protection.close());
    const { admission } = protection;
    // Refused at the upgrade while a handshake now would only wait: the crypto queue is past its
    // wait bound, or (a gateway process of a multi-process node) the primary, which answers every
    // handshake's cache and directory requests, is IPC_BUSY_MS behind. Without the second, a storm
    // of resumed handshakes on 14 processes took the node to 0 accepted per second: every answer
    // came after its request had timed out (docs/performance.md, bench/sessions).
    admission.setHandshakeBacklog(link ? () => pool.overloaded() || link.oldestWaitMs() > IPC_BUSY_MS : () => pool.overloaded());
    // Resumption tickets (docs/protocol.md 4.6): keys derived from one master secret every node shares.
    let tickets: TicketSealer | null = null;
    if (config.ticketLifetimeSec > 0) {
      const ticketFile = config.ticketKeyFile || path.resolve(config.dataDir, 'tickets', 'ticket-master.key');
      const { master, created } = TicketSealer.loadOrCreateMaster(ticketFile);
      if (created) log.warn({ file: ticketFile }, 'created the resumption ticket master secret; give the same file to every node of a cluster');
      tickets = new TicketSealer(master, { lifetimeMs: config.ticketLifetimeSec * 1000, rotateMs: config.ticketKeyRotateSec * 1000 });
    }
    const handshaker = new Handshaker({ apps, keyRing, replay, credentials, registration, pool, admission, stats, windowMs: config.handshakeWindowSec * 1000, tickets, log });
    // Revocations and kicks: applied here at once, written to the store's control log, published on
    // the bus; every node also polls the log (control/session-control.ts).
    const control = new SessionControl({
      store, bus, registry, log, pollMs: config.controlPollMs,
      invalidate: (appId, keyHash) => credentials.invalidateOrThrow(appId, keyHash),
      toHolder: (appId, keyHash, topic, msg) => routing.toHolder(appId, keyHash, topic, msg),
    });
    await control.start();
    stats.control = () => ({ appliedFromLog: control.appliedFromLog, outbox: control.outboxSize });
    closers.push(() => control.close());
    const revocation = new Revocation(credentials, control);
    // Custom owner verifier modules are checked now: a broken one stops start-up (LK_PLUGIN_*).
    const customVerifiers = await loadCustomVerifierTypes(config.ownerVerifierPlugins, log);
    const events = new EventRelay({ store, bus, stats, log, nodeId: busOrigin, maxBufferedBytes: config.eventMaxBufferedBytes, directory });
    await events.start();
    closers.push(() => events.close());
    // Ownership reaches this node's live sessions through these (its bus messages, owner changes).
    const ownership = new OwnershipService(store, bus, log, cache, {
      id: busOrigin,
      ownerChanged: (appId, keyHash, owner) => {
        const s = registry.byEndpointKey(appId, keyHash);
        if (s) events.setOwner(s, owner);
      },
      deliverPending: (appId, keyHash) => registry.byEndpointKey(appId, keyHash)?.deliverPending(),
      tell: (appId, keyHash, msg) => routing.toHolder(appId, keyHash, 'sessions', msg),
    }, customVerifiers.modules);
    await ownership.start();
    closers.push(() => ownership.close());
    const bootstrapKeyFile = config.bootstrapKeyFile || path.resolve(config.dataDir, 'bootstrap', 'bootstrap-key.pem');
    const { key: bootstrapKey, created: bootstrapKeyCreated } = await BootstrapKey.loadOrCreate(bootstrapKeyFile);
    if (bootstrapKeyCreated) log.warn({ file: bootstrapKeyFile, keyId: bootstrapKey.id }, 'created the bootstrap signing key; give its public key to endpoints (latchkey bootstrap-key) and the same file to every node of a cluster');
    const nodeRegistry = await openNodeRegistry(config, log);
    closers.push(() => nodeRegistry.close());
    const strategy = await loadStrategy(config.bootstrapStrategy, config.bootstrapStrategyPlugin, log);
    const firstApiKey = proc ? null : await ensureFirstApiKey(store, log);
    let openapi: unknown = null;
    /**
     * Readiness: each backing service answers a cheap call within READY_TIMEOUT_MS. Liveness
     * (/healthz) stays separate: a node whose Redis is down is alive (it serves from the store) but
     * a load balancer may prefer another one.
     */
    const readiness = async (): Promise<Record<'store' | 'cache' | 'bus', 'ok' | string>> => {
      const probe = async (fn: () => Promise<unknown>): Promise<string> => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([fn(), new Promise((_r, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)))]);
          return 'ok';
        } catch (err) {
          return (err as Error).message || 'failed';
        } finally {
          clearTimeout(timer);
        }
      };
      const [s, c, b] = await Promise.all([probe(() => rawStore.getTenant('readyz')), probe(() => rawCache.get('readyz')), probe(() => bus.ping())]);
      return { store: s, cache: c, bus: b };
    };
    // A multi-process node answers from every process: online from the primary's directory.
    const liveSessions: LiveSessions = link
      ? { online: (appId, keyHashes) => link.request<boolean[]>('node.online', appId, keyHashes), list: (appId) => link.request<LiveSessionView[]>('node.sessions', appId) }
      : localLiveSessions(registry);
    const locate = async (appId: string, keyHash: string): Promise<{ node: string; process: number | null; sessionId: string; establishedAt: number } | null> => {
      const at = await routing.locate(appId, keyHash);
      if (at) return { node: at.node, process: at.process, sessionId: at.session, establishedAt: at.since };
      if (routing.shared || !link) return null;
      // One node without Redis: another process of it may hold the session (the primary knows which).
      const s = (await liveSessions.list(appId)).find((v) => v.keyHash === keyHash);
      return s && s.establishedAt !== null ? { node: nodeId, process: null, sessionId: s.sessionId, establishedAt: s.establishedAt } : null;
    };
    const routes = adminRoutes({ store, apps, credentials, revocation, control, bans: protection.bans, readiness, liveSessions, locate, keyRing, bus, ownership,
      node: {
        info: () => {
          const me = bootstrap!.self();
          return { ...me, accessPointId: accessPointId(me.id), draining: bootstrap!.isDraining, bootstrapKeyId: bootstrapKey.id, frameCipher };
        },
        // A multi-process node drains as one: the primary has every process drain (node/primary.ts).
        drain: () => (link ? link.request<number>('node.drain') : drain(bootstrap!, registry, log)),
      }, customVerifiers, log, credentialsServices: () => [...services.keys()], openapi: () => openapi });
    openapi = openapiDocument(routes, VERSION);
    const adminRouter = new AdminRouter(routes, new ApiKeyAuthenticator(store), log, { registry: stats.registry });
    const health = (): Record<string, unknown> => ({ ...stats.snapshot(), draining: bootstrap?.isDraining ?? false, sockets: registry.size, cryptoQueue: pool.queueSize, cryptoThreads: pool.threads, cryptoHandshakes: pool.tasksRun, cryptoBatches: pool.batchesRun, replayCache: replay.size, eventMembers: events.members, frameCipher });
    // The primary asks each process for its part of the node's /healthz.
    const local = link ? localLiveSessions(registry) : liveSessions;
    link?.on({
      request: (op, args) =>
        op === 'health'
          ? { index: proc!.index, pid: process.pid, rssBytes: process.memoryUsage.rss(), ...health() }
          : op === 'drain'
            ? drain(bootstrap!, registry, log)
            : local.list(args[0] as string).then((items) => items.map((i) => ({ ...i, process: proc!.index }))),
    });
    const gateway = new Gateway({
      host: config.host,
      port: config.port,
      adminHost: config.adminHost,
      adminPort: config.adminPort,
      maxFrameBytes: config.maxFrameBytes,
      maxBackpressureBytes: config.maxBackpressureBytes,
      registry,
      sessionHost: {
        handshaker,
        ownership,
        events,
        registration,
        registry,
        admission,
        tickets,
        handshakeGate: new HandshakeGate(config.handshakeTurnBudgetUs / 1000, (err) => log.error({ err }, 'handshake job failed')),
        stats,
        log,
        limits: {
          maxFrameBytes: config.maxFrameBytes,
          keepAliveDefaultSec: config.keepAliveDefaultSec,
          keepAliveMaxSec: config.keepAliveMaxSec,
          maxPendingSyncs: 32,
          messagesPerSec: config.sessionMessagesPerSec,
          bytesPerSec: config.sessionBytesPerSec,
        },
      },
      admission,
      onHandlerError: (where) => stats.count(stats.handlerErrors, where),
      onTransportCut: (code) => stats.ended(code),
      bootstrap: {
        path: BOOTSTRAP_PATH,
        maxBodyBytes: MAX_BOOTSTRAP_REQUEST_BYTES,
        resolve: (body) => (bootstrap ? bootstrap.resolve(body) : { status: 503, contentType: 'application/json', body: JSON.stringify({ code: 'LK_SERVER_UNAVAILABLE', message: 'starting' }) }),
      },
      shareEndpointPort: proc !== null,
      noAdminListener: proc !== null && proc.index !== 0,
      ...(link ? { processes: () => link.request<unknown[]>('node.health') } : {}),
      mountAdmin: (app) => {
        mountHttp(app, new MetricsHandler(stats.registry, log, link ? () => link.request<string>('node.metrics') : undefined), { log, onHandlerError: () => stats.count(stats.handlerErrors, 'admin.metrics') });
        mountHttp(app, adminRouter, { log, onHandlerError: () => stats.count(stats.handlerErrors, 'admin.api') });
        mountHttp(app, new UiHandler(defaultUiDir(), log), { log, onHandlerError: () => stats.count(stats.handlerErrors, 'admin.api') });
      },
      health,
      log,
    });
    await gateway.start();
    closers.push(() => gateway.stopListening());
    const publicUrl = config.publicUrl || `ws://${config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host}:${gateway.port}${ENDPOINT_PATH}`;
    if (!config.publicUrl && (config.host === '0.0.0.0' || config.host === '::')) log.info({ publicUrl }, 'publicUrl not set: bootstrap lists name this node by a loopback URL; set LATCHKEY_PUBLIC_URL for endpoints on other hosts');
    bootstrap = new BootstrapService({
      registry: nodeRegistry,
      apps,
      key: bootstrapKey,
      strategy,
      listTtlMs: config.bootstrapListTtlSec * 1000,
      refreshMs: config.nodeHeartbeatMs,
      log,
      self: () => ({
        id: nodeId,
        url: publicUrl,
        serverKeyId: keyRing.active.id,
        serverPublicKey: Buffer.from(keyRing.active.spkiDer).toString('base64'),
        priority: config.nodePriority,
        weight: config.nodeWeight,
        // A multi-process node announces the node's sessions (the primary counts them), not this process's.
        sessions: link?.nodeSessionCount ?? stats.sessionsOpen,
        capacity: config.nodeCapacity,
        protocolVersions: [...SUPPORTED_PROTOCOL_VERSIONS],
      }),
    });
    await bootstrap.start();
    const bootstrapRef = bootstrap;
    closers.push(() => bootstrapRef.stop());

    let closing: Promise<void> | null = null;
    const close = (): Promise<void> => {
      closing ??= (async () => {
        gateway.stopListening();
        // Out of the bootstrap lists, endpoints told to move (REDIRECT), the rest DISCONNECTed.
        await drainAndDisconnect(bootstrapRef, registry, config.shutdownGraceMs, log);
        await closeAll();
      })();
      return closing;
    };
    const abort = (): Promise<void> => {
      closing ??= (async () => {
        gateway.stopListening();
        registry.endAll('LK_SERVER_SHUTDOWN');
        await closeAll();
      })();
      return closing;
    };
    return { config, store, cache, keyRing, registry, stats, credentials, apps, gateway, pool, bus, revocation, bootstrap: bootstrapRef, bootstrapKey, nodeId, firstApiKey, port: gateway.port, adminPort: gateway.adminPort, close, abort };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
