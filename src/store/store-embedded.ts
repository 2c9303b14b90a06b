/**
 * EmbeddedStore: the Store on LMDB (lmdb-js), the default backend. See store.ts for the contract.
 *
 * Durability and concurrency:
 * - Every read-modify-write runs in one LMDB write transaction (`root.transaction`). LMDB holds a
 *   single writer lock across every process that opens the environment, and the callback reads
 *   through the write transaction, so each check-then-write is linearizable across processes.
 * - Sync stays on (lmdb-js default: overlappingSync on Linux). A commit is visible to other
 *   processes before it is on disk; every write method resolves only after `root.flushed`, so an
 *   acknowledged write (a bind above all) survives power loss. Without that wait a bind could be
 *   rolled back after its endpoint was told it owns the credentials, and a second endpoint could
 *   then take them.
 * - Transaction callbacks check everything first and write last. lmdb-js batches several async
 *   transaction callbacks into one LMDB transaction and does NOT roll back a callback that throws
 *   after writing, so a callback may throw only before its first put.
 * - Reads outside transactions call `resetReadTxn()` first: lmdb-js otherwise reuses one read
 *   snapshot for an event turn, which may predate a write another process already acknowledged.
 *
 * Layout: one environment file `<dir>/store.lmdb` (+ `-lock`), one named database per record kind,
 * binary keys built by {@link key}: every id but the last is length-prefixed, the last is raw
 * UTF-8, so keys sharing a leading id are contiguous and ordered by the last id byte-wise (which
 * is code-point order, and equal to JS string order for the ASCII ids latchkey uses).
 *
 * Ownership: `endpoint_owners` (appId, keyHash) -> OwnerAttachment is the record; `owner_endpoints`
 * (tenantId, ownerExternalId, endpoint digest) -> OwnerAttachment indexes it by owner. The endpoint
 * part of the index key is a SHA-256 digest of key(appId, keyHash), so the key stays short with
 * four ids of up to 500 bytes; listOwnerEndpoints sorts the (small) owner range in memory. Every
 * attach, move and detach changes both in one write transaction, so a moved endpoint is never
 * listed under its old owner.
 *
 * Endpoint access tokens: `access_tokens` (tenantId, base64url token hash) -> the endpoint and
 * expiry, and `endpoint_access_tokens` (appId, keyHash) -> the endpoint's current token (with its
 * tenant), so a rotation removes the old index entry in the same transaction that adds the new one.
 *
 * Owner verifiers: `verifiers` (appId, verifierToken) -> VerifierRecord, so an application's
 * verifiers are one range ordered by token; `default_verifiers` appId -> token. deleteVerifier and
 * setDefaultVerifier check and change both in one write transaction, so the default never names a
 * missing verifier.
 *
 * Notification queues: `notifications` (appId, keyHash, seq as 16 zero-padded decimal digits) ->
 * PendingNotification, so an endpoint's queue is one range in seq order; `notification_seqs`
 * (appId, keyHash) -> the last seq handed out. An enqueue reads and bumps the counter, appends and
 * drops the oldest entries beyond `max` in one write transaction, so concurrent enqueues (from any
 * process) never share a seq. The counter is never removed, so acknowledged seqs are not reused.
 *
 * Bans and the session control log: `bans` (kind, value) -> BanRecord, read whole by
 * listBans; `control_log` (at as 8 big-endian bytes, then the id) -> ControlEntry, so a range read
 * from `since` is in `at` order with ties in id order. Each append removes up to 64 entries older
 * than CONTROL_LOG_RETENTION_MS; expired bans are removed only when MAX_BANS is reached.
 *
 * New databases were added without a format bump: they start empty in an existing directory, and
 * no existing key or value changed shape.
 *
 * Values are msgpack (lmdb-js default) without shared structures, so every value describes itself
 * and no structure table has to stay in sync between processes. msgpack binary decodes to a fresh
 * Buffer (lmdb-js sets copyBuffers); records are nonetheless rebuilt field by field on the way in
 * and out so no caller object is ever stored or returned by reference.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { LatchkeyError } from '../errors.js';
import {
  CONTROL_LOG_RETENTION_MS,
  EXPIRED_BAN_GRACE_MS,
  MAX_BANS,
  banActive,
  banKey,
  checkBan,
  checkControl,
  compareBans,
  controlSince,
  copyBan,
  copyControl,
} from './protection-common.js';
import type {
  BanKind,
  BanRecord,
  ControlEntry,
  ApiKeyRecord,
  Application,
  BindResult,
  ConditionalAttachResult,
  CredentialsListOptions,
  CredentialsRecord,
  EndpointAccessTokenRecord,
  EndpointRecord,
  OwnerAttachment,
  Page,
  PendingNotification,
  ProvisionOptions,
  RegistrationRecord,
  Store,
  Tenant,
  VerifierRecord,
} from './store.js';
import {
  validId,
  checkId,
  validKeyHash,
  checkEventClasses,
  checkKeyHash,
  checkLimit,
  checkCredentialsList,
  CredentialsPager,
  encodeCursor,
  decodeCursor,
  copyTenant,
  copyApplication,
  copyCredentials,
  copyRegistration,
  copyEndpoint,
  copyApiKey,
  checkApiKey,
  checkAttach,
  checkAccessToken,
  validTokenHash,
  compareAttachments,
  copyOwnerAttachment,
  copyAccessToken,
  checkVerifier,
  copyVerifier,
  checkEnqueue,
  checkAck,
  copyNotification,
  storeError,
} from './store-common.js';

/** On-disk layout version, stored under `meta/format`; bump when key or value shapes change. */
const FORMAT = 1;

/**
 * Longest id accepted, in UTF-8 bytes. Composite keys hold two ids plus a 2-byte length, so 500
 * keeps every key under LMDB's 1978-byte key limit (lmdb-js build).
 */


interface Dbs {
  meta: Database<unknown, Buffer>;
  /** (kind, value) -> BanRecord. */
  bans: Database<BanRecord, Buffer>;
  /** at (8 bytes, big-endian ms) + id (UUID text) -> ControlEntry: the log in time order. */
  controlLog: Database<ControlEntry, Buffer>;
  tenants: Database<Tenant, Buffer>;
  applications: Database<Application, Buffer>;
  /** appToken -> application id. */
  appTokens: Database<string, Buffer>;
  /** (tenantId, appId) -> application id. */
  tenantApps: Database<string, Buffer>;
  /** (appId, credentialsId) -> CredentialsRecord. */
  credentials: Database<CredentialsRecord, Buffer>;
  /** (appId, credentialsId) -> RegistrationRecord. */
  registrations: Database<RegistrationRecord, Buffer>;
  /** (appId, keyHash) -> EndpointRecord. */
  endpoints: Database<EndpointRecord, Buffer>;
  /** API key id -> ApiKeyRecord. */
  apiKeys: Database<ApiKeyRecord, Buffer>;
  /** (scope, keyId) -> key id; scope is the tenant id, or '' for root keys (tenant ids are never empty). */
  scopeApiKeys: Database<string, Buffer>;
  /** (appId, keyHash) -> the endpoint's owner. */
  endpointOwners: Database<OwnerAttachment, Buffer>;
  /** (tenantId, ownerExternalId, endpoint digest) -> the same OwnerAttachment: see {@link ownerIndexKey}. */
  ownerEndpoints: Database<OwnerAttachment, Buffer>;
  /** (tenantId, base64url token hash) -> the endpoint whose current token it is. */
  accessTokens: Database<TokenIndexRow, Buffer>;
  /** (appId, keyHash) -> the endpoint's current access token. */
  endpointAccessTokens: Database<StoredAccessToken, Buffer>;
  /** (appId, verifierToken) -> VerifierRecord. */
  verifiers: Database<VerifierRecord, Buffer>;
  /** appId -> token of the application's default verifier. */
  defaultVerifiers: Database<string, Buffer>;
  /** (appId, keyHash, seq digits) -> PendingNotification: see {@link notificationKey}. */
  notifications: Database<PendingNotification, Buffer>;
  /** (appId, keyHash) -> the last notification seq handed out for the endpoint. */
  notificationSeqs: Database<number, Buffer>;
  /** (appId, keyHash) -> the event classes the endpoint listens to. */
  eventClasses: Database<string[], Buffer>;
}

/** Value of `access_tokens`. */
interface TokenIndexRow {
  appId: string;
  keyHash: string;
  expiresAt: number;
}

/** Value of `endpoint_access_tokens`: the record plus the tenant its index entry lives under. */
interface StoredAccessToken extends EndpointAccessTokenRecord {
  tenantId: string;
}

export class EmbeddedStore implements Store {
  private closed = false;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly root: RootDatabase<unknown, Buffer>,
    private readonly dbs: Dbs,
  ) {}

  /**
   * Open (creating if needed) the store in `dir`. Several processes may open the same directory at
   * once; LMDB coordinates them through `store.lmdb-lock`.
   */
  static async open(dir: string): Promise<EmbeddedStore> {
    let root: RootDatabase<unknown, Buffer> | undefined;
    try {
      await mkdir(dir, { recursive: true });
      root = open<unknown, Buffer>({
        path: join(dir, 'store.lmdb'),
        noSubdir: true,
        maxDbs: 32,
        keyEncoding: 'binary',
      });
      const sub = <V>(name: string) => root!.openDB<V, Buffer>(name, { keyEncoding: 'binary' });
      const dbs: Dbs = {
        meta: sub('meta'),
        bans: sub('bans'),
        controlLog: sub('control_log'),
        tenants: sub('tenants'),
        applications: sub('applications'),
        appTokens: sub('app_tokens'),
        tenantApps: sub('tenant_apps'),
        credentials: sub('credentials'),
        registrations: sub('registrations'),
        endpoints: sub('endpoints'),
        apiKeys: sub('api_keys'),
        scopeApiKeys: sub('scope_api_keys'),
        endpointOwners: sub('endpoint_owners'),
        ownerEndpoints: sub('owner_endpoints'),
        accessTokens: sub('access_tokens'),
        endpointAccessTokens: sub('endpoint_access_tokens'),
        verifiers: sub('verifiers'),
        defaultVerifiers: sub('default_verifiers'),
        notifications: sub('notifications'),
        notificationSeqs: sub('notification_seqs'),
        eventClasses: sub('event_classes'),
      };
      const formatKey = key('format');
      const found = await root.transaction(() => {
        const current = dbs.meta.get(formatKey);
        if (current === undefined) dbs.meta.put(formatKey, FORMAT);
        return current ?? FORMAT;
      });
      if (found !== FORMAT) {
        throw new LatchkeyError('LK_STORE_UNAVAILABLE', `${dir}: on-disk format ${String(found)}, this build reads ${FORMAT}`);
      }
      await root.flushed;
      return new EmbeddedStore(root, dbs);
    } catch (err) {
      await root?.close().catch(() => undefined);
      throw storeError(err, `cannot open LMDB store in ${dir}`);
    }
  }

  // --- tenants ---

  async createTenant(tenant: Tenant): Promise<Tenant> {
    checkId('tenant id', tenant.id);
    const row = copyTenant(tenant);
    const k = key(row.id);
    await this.write(() => {
      if (this.dbs.tenants.doesExist(k)) throw new LatchkeyError('LK_CONFLICT', `tenant ${row.id} exists`);
      this.dbs.tenants.put(k, row);
    });
    return copyTenant(row);
  }

  async getTenant(id: string): Promise<Tenant | null> {
    if (!validId(id)) return null;
    return this.read(() => nullable(this.dbs.tenants.get(key(id)), copyTenant));
  }

  async listTenants(): Promise<Tenant[]> {
    return this.read(() => [...this.dbs.tenants.getRange({})].map((e) => copyTenant(e.value)));
  }

  // --- applications ---

  async createApplication(app: Application): Promise<Application> {
    checkId('application id', app.id);
    checkId('tenant id', app.tenantId);
    checkId('application token', app.appToken);
    const row = copyApplication(app);
    await this.write(() => {
      const { tenants, applications, appTokens, tenantApps } = this.dbs;
      if (!tenants.doesExist(key(row.tenantId))) throw new LatchkeyError('LK_TENANT_NOT_FOUND', row.tenantId);
      if (applications.doesExist(key(row.id))) throw new LatchkeyError('LK_CONFLICT', `application ${row.id} exists`);
      if (appTokens.doesExist(key(row.appToken))) throw new LatchkeyError('LK_APP_TOKEN_TAKEN', `application ${row.id}`);
      applications.put(key(row.id), row);
      appTokens.put(key(row.appToken), row.id);
      tenantApps.put(key(row.tenantId, row.id), row.id);
    });
    return copyApplication(row);
  }

  async getApplication(id: string): Promise<Application | null> {
    if (!validId(id)) return null;
    return this.read(() => nullable(this.dbs.applications.get(key(id)), copyApplication));
  }

  async getApplicationByToken(appToken: string): Promise<Application | null> {
    if (!validId(appToken)) return null;
    return this.read(() => {
      const appId = this.dbs.appTokens.get(key(appToken));
      if (appId === undefined) return null;
      return nullable(this.dbs.applications.get(key(appId)), copyApplication);
    });
  }

  async listApplications(tenantId: string): Promise<Application[]> {
    if (!validId(tenantId)) return [];
    return this.read(() => {
      const out: Application[] = [];
      for (const { value: appId } of this.dbs.tenantApps.getRange(prefixRange(tenantId))) {
        const app = this.dbs.applications.get(key(appId));
        if (app !== undefined) out.push(copyApplication(app));
      }
      return out;
    });
  }

  // --- credentials ---

  async provisionCredentials(appId: string, credentialsId: string, publicKey: Buffer | null, opts: ProvisionOptions = {}): Promise<CredentialsRecord> {
    checkId('application id', appId);
    checkId('credentials id', credentialsId);
    const now = Date.now();
    const row: CredentialsRecord = {
      appId,
      credentialsId,
      publicKey: publicKey === null ? null : Buffer.from(publicKey),
      status: 'AVAILABLE',
      endpointId: null,
      createdAt: now,
      updatedAt: now,
    };
    const k = key(appId, credentialsId);
    const profile = opts.serverProfileBody;
    await this.write(() => {
      if (!this.dbs.applications.doesExist(key(appId))) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
      if (this.dbs.credentials.doesExist(k)) throw new LatchkeyError('LK_CRED_EXISTS', credentialsId);
      // With a profile, the registration is written in the same transaction (ProvisionOptions).
      const previous = profile === undefined ? undefined : this.dbs.registrations.get(k);
      this.dbs.credentials.put(k, row);
      if (profile !== undefined) {
        this.dbs.registrations.put(k, { appId, credentialsId, serverProfileBody: profile, createdAt: previous?.createdAt ?? now, updatedAt: now });
      }
    });
    return copyCredentials(row);
  }

  async getCredentials(appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
    if (!validId(appId) || !validId(credentialsId)) return null;
    return this.read(() => nullable(this.dbs.credentials.get(key(appId, credentialsId)), copyCredentials));
  }

  async listCredentials(appId: string, opts: CredentialsListOptions): Promise<Page<CredentialsRecord>> {
    const { limit, after, status } = checkCredentialsList(opts);
    if (!validId(appId)) return { items: [], next: null };
    return this.read(() => {
      // The application's credentials are one contiguous key range ordered by credentials id:
      // no index needed. The range is read lazily, so a page reads at most the scan budget.
      const range = prefixRange(appId);
      const pager = new CredentialsPager(limit, status);
      const rows = this.dbs.credentials.getRange({
        start: after === null ? range.start : key(appId, after),
        exclusiveStart: after !== null,
        end: range.end,
      });
      for (const { value } of rows) {
        if (!pager.offer(value.credentialsId, value) || pager.done) break;
      }
      return pager.page();
    });
  }

  async bindCredentials(appId: string, credentialsId: string, endpointId: string, createWithKey?: Buffer): Promise<BindResult> {
    checkId('endpoint id', endpointId);
    if (!validId(appId) || !validId(credentialsId)) {
      if (createWithKey === undefined) return { ok: false, reason: 'UNKNOWN', record: null };
      checkId('application id', appId);
      checkId('credentials id', credentialsId);
    }
    const k = key(appId, credentialsId);
    // Fast path: a reconnecting endpoint finds its credentials already IN_USE by itself, and
    // IN_USE-by-another and REVOKED never change back, so those answers need no write lock.
    const seen = await this.read(() => this.dbs.credentials.get(k));
    if (seen !== undefined && seen.status !== 'AVAILABLE') return decideBound(seen, endpointId);
    if (seen === undefined && createWithKey === undefined) {
      return { ok: false, reason: 'UNKNOWN', record: null };
    }
    const key0 = createWithKey === undefined ? null : Buffer.from(createWithKey);
    return this.write((): BindResult => {
      const current = this.dbs.credentials.get(k);
      const now = Date.now();
      if (current === undefined) {
        if (key0 === null) return { ok: false, reason: 'UNKNOWN', record: null };
        if (!this.dbs.applications.doesExist(key(appId))) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
        const row: CredentialsRecord = {
          appId,
          credentialsId,
          publicKey: key0,
          status: 'IN_USE',
          endpointId,
          createdAt: now,
          updatedAt: now,
        };
        this.dbs.credentials.put(k, row);
        return { ok: true, record: copyCredentials(row), created: true };
      }
      if (current.status !== 'AVAILABLE') return decideBound(current, endpointId);
      const row: CredentialsRecord = { ...current, status: 'IN_USE', endpointId, updatedAt: now };
      this.dbs.credentials.put(k, row);
      return { ok: true, record: copyCredentials(row), created: false };
    });
  }

  async revokeCredentials(appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
    if (!validId(appId) || !validId(credentialsId)) return null;
    const k = key(appId, credentialsId);
    return this.write(() => {
      const current = this.dbs.credentials.get(k);
      if (current === undefined) return null;
      if (current.status === 'REVOKED') return copyCredentials(current);
      // endpointId is kept: it names the endpoint whose sessions must end.
      const row: CredentialsRecord = { ...current, status: 'REVOKED', updatedAt: Date.now() };
      this.dbs.credentials.put(k, row);
      return copyCredentials(row);
    });
  }

  // --- registrations ---

  async provisionRegistration(appId: string, credentialsId: string, serverProfileBody: string | null): Promise<RegistrationRecord> {
    checkId('application id', appId);
    checkId('credentials id', credentialsId);
    const k = key(appId, credentialsId);
    return this.write(() => {
      if (!this.dbs.applications.doesExist(key(appId))) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
      const now = Date.now();
      const previous = this.dbs.registrations.get(k);
      const row: RegistrationRecord = {
        appId,
        credentialsId,
        serverProfileBody,
        createdAt: previous?.createdAt ?? now,
        updatedAt: now,
      };
      this.dbs.registrations.put(k, row);
      return copyRegistration(row);
    });
  }

  async getRegistration(appId: string, credentialsId: string): Promise<RegistrationRecord | null> {
    if (!validId(appId) || !validId(credentialsId)) return null;
    return this.read(() => nullable(this.dbs.registrations.get(key(appId, credentialsId)), copyRegistration));
  }

  // --- endpoints ---

  async getEndpoint(appId: string, keyHash: string): Promise<EndpointRecord | null> {
    if (!validId(appId) || !validKeyHash(keyHash)) return null;
    return this.read(() => nullable(this.dbs.endpoints.get(key(appId, keyHash)), copyEndpoint));
  }

  async saveEndpoint(endpoint: EndpointRecord): Promise<EndpointRecord> {
    checkId('application id', endpoint.appId);
    checkKeyHash(endpoint.keyHash);
    const row = copyEndpoint(endpoint);
    await this.write(() => {
      this.dbs.endpoints.put(key(row.appId, row.keyHash), row);
    });
    return copyEndpoint(row);
  }

  async listEndpoints(appId: string, limit: number, cursor?: string | null): Promise<Page<EndpointRecord>> {
    checkLimit(limit);
    const after = cursor == null ? null : decodeCursor(cursor);
    if (!validId(appId)) return { items: [], next: null };
    return this.read(() => {
      const range = prefixRange(appId);
      const rows = [
        ...this.dbs.endpoints.getRange({
          start: after === null ? range.start : key(appId, after),
          exclusiveStart: after !== null,
          end: range.end,
          // One more than asked: tells whether a next page exists without a second query.
          limit: limit + 1,
        }),
      ];
      const items = rows.slice(0, limit).map((e) => copyEndpoint(e.value));
      const last = items[items.length - 1];
      return { items, next: rows.length > limit && last ? encodeCursor(last.keyHash) : null };
    });
  }

  // --- ownership ---

  async attachEndpointToOwner(tenantId: string, ownerExternalId: string, appId: string, keyHash: string): Promise<{ previousOwner: string | null }> {
    const out = await this.attach(tenantId, ownerExternalId, appId, keyHash, false);
    if (!out.ok) throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'unconditional attach was refused'); // unreachable
    return { previousOwner: out.previousOwner };
  }

  async attachEndpointIfUnownedOrSameOwner(tenantId: string, ownerExternalId: string, appId: string, keyHash: string): Promise<ConditionalAttachResult> {
    return this.attach(tenantId, ownerExternalId, appId, keyHash, true);
  }

  async getEndpointOwner(appId: string, keyHash: string): Promise<OwnerAttachment | null> {
    if (!validId(appId) || !validKeyHash(keyHash)) return null;
    return this.read(() => nullable(this.dbs.endpointOwners.get(key(appId, keyHash)), copyOwnerAttachment));
  }

  async detachEndpoint(appId: string, keyHash: string): Promise<string | null> {
    if (!validId(appId) || !validKeyHash(keyHash)) return null;
    const k = key(appId, keyHash);
    return this.write(() => {
      const current = this.dbs.endpointOwners.get(k);
      if (current === undefined) return null;
      this.dbs.endpointOwners.remove(k);
      this.dbs.ownerEndpoints.remove(ownerIndexKey(current));
      return current.ownerExternalId;
    });
  }

  async setEventClasses(appId: string, keyHash: string, classes: string[]): Promise<void> {
    checkEventClasses(appId, keyHash, classes);
    const list = [...classes];
    await this.write(() => {
      this.dbs.eventClasses.put(key(appId, keyHash), list);
    });
  }

  async getEventClasses(appId: string, keyHash: string): Promise<string[] | null> {
    if (!validId(appId) || !validKeyHash(keyHash)) return null;
    return this.read(() => {
      const v = this.dbs.eventClasses.get(key(appId, keyHash));
      return v === undefined ? null : [...v];
    });
  }

  async listOwnerEndpoints(tenantId: string, ownerExternalId: string): Promise<OwnerAttachment[]> {
    if (!validId(tenantId) || !validId(ownerExternalId)) return [];
    return this.read(() =>
      [...this.dbs.ownerEndpoints.getRange(prefixRange(tenantId, ownerExternalId))].map((e) => copyOwnerAttachment(e.value)).sort(compareAttachments),
    );
  }

  /**
   * Attach in one write transaction: the owner record and both index entries (old owner's removed,
   * new owner's added) change together. `conditional`: refuse an endpoint owned by someone else.
   */
  private async attach(
    tenantId: string,
    ownerExternalId: string,
    appId: string,
    keyHash: string,
    conditional: boolean,
  ): Promise<ConditionalAttachResult> {
    checkAttach(tenantId, ownerExternalId, appId, keyHash);
    const k = key(appId, keyHash);
    return this.write((): ConditionalAttachResult => {
      const app = this.dbs.applications.get(key(appId));
      if (app === undefined || app.tenantId !== tenantId) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
      const current = this.dbs.endpointOwners.get(k);
      if (current !== undefined) {
        if (current.tenantId === tenantId && current.ownerExternalId === ownerExternalId) return { ok: true, previousOwner: ownerExternalId };
        if (conditional) return { ok: false, currentOwner: current.ownerExternalId };
      }
      const row: OwnerAttachment = { tenantId, ownerExternalId, appId, keyHash, attachedAt: Date.now() };
      if (current !== undefined) this.dbs.ownerEndpoints.remove(ownerIndexKey(current));
      this.dbs.endpointOwners.put(k, row);
      this.dbs.ownerEndpoints.put(ownerIndexKey(row), row);
      return { ok: true, previousOwner: current?.ownerExternalId ?? null };
    });
  }

  // --- endpoint access tokens ---

  async setEndpointAccessToken(appId: string, keyHash: string, tokenHash: Buffer, expiresAt: number): Promise<void> {
    checkAccessToken(appId, keyHash, tokenHash, expiresAt);
    const hash = Buffer.from(tokenHash);
    const k = key(appId, keyHash);
    await this.write(() => {
      const { applications, accessTokens, endpointAccessTokens } = this.dbs;
      const now = Date.now();
      const app = applications.get(key(appId));
      if (app === undefined) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
      const tk = tokenKey(app.tenantId, hash);
      const holder = accessTokens.get(tk);
      const mine = (h: TokenIndexRow) => h.appId === appId && h.keyHash === keyHash;
      if (holder !== undefined && !mine(holder) && now < holder.expiresAt) {
        throw new LatchkeyError('LK_CONFLICT', 'another endpoint of the tenant holds this access token');
      }
      const previous = endpointAccessTokens.get(k);
      if (previous !== undefined) {
        const pk = tokenKey(previous.tenantId, Buffer.from(previous.tokenHash));
        // The old entry goes unless it is the one being set, or another endpoint took it over
        // after it expired (then it is that endpoint's now).
        const old = pk.equals(tk) ? undefined : accessTokens.get(pk);
        if (old !== undefined && mine(old)) accessTokens.remove(pk);
      }
      accessTokens.put(tk, { appId, keyHash, expiresAt });
      const row: StoredAccessToken = { ...copyAccessToken({ appId, keyHash, tokenHash: hash, expiresAt, updatedAt: now }), tenantId: app.tenantId };
      endpointAccessTokens.put(k, row);
    });
  }

  async findEndpointByAccessToken(tenantId: string, tokenHash: Buffer, now: number): Promise<{ appId: string; keyHash: string } | null> {
    if (!Number.isFinite(now)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'now must be a finite number');
    if (!validId(tenantId) || !validTokenHash(tokenHash)) return null;
    const hash = Buffer.from(tokenHash);
    return this.read(() => {
      const row = this.dbs.accessTokens.get(tokenKey(tenantId, hash));
      if (row === undefined || now >= row.expiresAt) return null;
      // Defensive: the entry must still be its endpoint's current token.
      const current = this.dbs.endpointAccessTokens.get(key(row.appId, row.keyHash));
      if (current === undefined || !Buffer.from(current.tokenHash).equals(hash)) return null;
      return { appId: row.appId, keyHash: row.keyHash };
    });
  }

  // --- owner verifiers ---

  async createVerifier(rec: VerifierRecord): Promise<VerifierRecord> {
    checkVerifier(rec);
    const row = copyVerifier(rec);
    const k = key(row.appId, row.verifierToken);
    await this.write(() => {
      if (!this.dbs.applications.doesExist(key(row.appId))) throw new LatchkeyError('LK_APP_NOT_FOUND', row.appId);
      if (this.dbs.verifiers.doesExist(k)) throw new LatchkeyError('LK_CONFLICT', `verifier ${row.verifierToken} exists`);
      this.dbs.verifiers.put(k, row);
    });
    return copyVerifier(row);
  }

  async getVerifier(appId: string, verifierToken: string): Promise<VerifierRecord | null> {
    if (!validId(appId) || !validId(verifierToken)) return null;
    return this.read(() => nullable(this.dbs.verifiers.get(key(appId, verifierToken)), copyVerifier));
  }

  async listVerifiers(appId: string): Promise<VerifierRecord[]> {
    if (!validId(appId)) return [];
    return this.read(() => [...this.dbs.verifiers.getRange(prefixRange(appId))].map((e) => copyVerifier(e.value)));
  }

  async updateVerifier(rec: VerifierRecord): Promise<VerifierRecord> {
    checkVerifier(rec);
    const k = key(rec.appId, rec.verifierToken);
    const next = copyVerifier(rec);
    return this.write(() => {
      const current = this.dbs.verifiers.get(k);
      if (current === undefined) throw new LatchkeyError('LK_NOT_FOUND', `verifier ${next.verifierToken}`);
      const row: VerifierRecord = { ...next, createdAt: current.createdAt };
      this.dbs.verifiers.put(k, row);
      return copyVerifier(row);
    });
  }

  async deleteVerifier(appId: string, verifierToken: string): Promise<boolean> {
    if (!validId(appId) || !validId(verifierToken)) return false;
    const k = key(appId, verifierToken);
    return this.write(() => {
      if (!this.dbs.verifiers.doesExist(k)) return false;
      this.dbs.verifiers.remove(k);
      if (this.dbs.defaultVerifiers.get(key(appId)) === verifierToken) this.dbs.defaultVerifiers.remove(key(appId));
      return true;
    });
  }

  async setDefaultVerifier(appId: string, verifierToken: string | null): Promise<void> {
    checkId('application id', appId);
    await this.write(() => {
      if (!this.dbs.applications.doesExist(key(appId))) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
      if (verifierToken === null) {
        this.dbs.defaultVerifiers.remove(key(appId));
        return;
      }
      if (!validId(verifierToken) || !this.dbs.verifiers.doesExist(key(appId, verifierToken))) {
        throw new LatchkeyError('LK_NOT_FOUND', `verifier ${String(verifierToken)}`);
      }
      this.dbs.defaultVerifiers.put(key(appId), verifierToken);
    });
  }

  async getDefaultVerifier(appId: string): Promise<string | null> {
    if (!validId(appId)) return null;
    return this.read(() => this.dbs.defaultVerifiers.get(key(appId)) ?? null);
  }

  // --- notification queues ---

  async enqueueNotification(appId: string, keyHash: string, payload: Buffer, max: number): Promise<{ seq: number; dropped: number }> {
    checkEnqueue(appId, keyHash, payload, max);
    const body = Buffer.from(payload);
    const createdAt = Date.now();
    const counter = key(appId, keyHash);
    return this.write(() => {
      const { notifications, notificationSeqs } = this.dbs;
      const seq = (notificationSeqs.get(counter) ?? 0) + 1;
      // One pass over the (at most `max`-long) queue: lmdb-js 3 breaks a getKeys iterator that
      // follows getKeysCount on the same database.
      const queued: number[] = [];
      for (const k of notifications.getKeys(prefixRange(appId, keyHash))) queued.push(seqOfKey(k));
      // Drop policy (store.ts): the oldest go so that the new entry fits within `max`.
      const oldest = queued.slice(0, Math.max(0, queued.length + 1 - max));
      notificationSeqs.put(counter, seq);
      notifications.put(notificationKey(appId, keyHash, seq), { seq, payload: body, createdAt });
      for (const old of oldest) notifications.remove(notificationKey(appId, keyHash, old));
      return { seq, dropped: oldest.length };
    });
  }

  async listNotifications(appId: string, keyHash: string, limit: number): Promise<PendingNotification[]> {
    checkLimit(limit);
    if (!validId(appId) || !validKeyHash(keyHash)) return [];
    return this.read(() => [...this.dbs.notifications.getRange({ ...prefixRange(appId, keyHash), limit })].map((e) => copyNotification(e.value)));
  }

  async ackNotifications(appId: string, keyHash: string, uptoSeq: number): Promise<void> {
    checkAck(appId, keyHash, uptoSeq);
    if (uptoSeq < 1) return; // seqs start at 1
    const range = prefixRange(appId, keyHash);
    // Exclusive end: the key of seq uptoSeq + 1 (at most 2^53, still 16 digits).
    const end = notificationKey(appId, keyHash, uptoSeq + 1);
    await this.write(() => {
      const acked: number[] = [];
      for (const k of this.dbs.notifications.getKeys({ start: range.start, end })) acked.push(seqOfKey(k));
      for (const seq of acked) this.dbs.notifications.remove(notificationKey(appId, keyHash, seq));
    });
  }

  // --- protection: bans and the session control log (store.ts ProtectionStore) ---

  async putBan(ban: BanRecord): Promise<BanRecord> {
    checkBan(ban);
    const row = copyBan(ban);
    const k = key(row.kind, row.value);
    await this.write(() => {
      if (!this.dbs.bans.doesExist(k) && this.dbs.bans.getCount() >= MAX_BANS) {
        // At the cap, bans long expired make room: automatic bans (flapping, failed handshakes)
        // expire by the thousand and would otherwise fill the cap for good. The scan (every ban)
        // runs only at the cap. Nothing is removed unless the new ban then fits, so this callback
        // still throws only before its first write (see the file comment).
        const cutoff = Date.now() - EXPIRED_BAN_GRACE_MS;
        const expired: Buffer[] = [];
        for (const { key: bk, value } of this.dbs.bans.getRange({})) {
          if (value.expiresAt !== null && value.expiresAt <= cutoff) expired.push(Buffer.from(bk));
        }
        if (this.dbs.bans.getCount() - expired.length >= MAX_BANS) throw new LatchkeyError('LK_BAD_ARGUMENT', `at most ${MAX_BANS} bans`);
        for (const bk of expired) this.dbs.bans.remove(bk);
      }
      this.dbs.bans.put(k, row);
    });
    return copyBan(row);
  }

  async deleteBan(kind: BanKind, value: string): Promise<boolean> {
    const v = banKey(kind, value);
    if (v === null) return false;
    const k = key(kind, v);
    return this.write(() => {
      if (!this.dbs.bans.doesExist(k)) return false;
      this.dbs.bans.remove(k);
      return true;
    });
  }

  async listBans(now: number): Promise<BanRecord[]> {
    const rows = await this.read(() => [...this.dbs.bans.getRange({})].map((e) => copyBan(e.value)));
    // Keys are ordered by kind length first (the length prefix): sort into kind, then value.
    return rows.filter((b) => banActive(b, now)).sort(compareBans);
  }

  async appendControl(entry: ControlEntry): Promise<void> {
    checkControl(entry);
    const row = copyControl(entry);
    const cutoff = controlKey(Math.max(0, Date.now() - CONTROL_LOG_RETENTION_MS), '');
    await this.write(() => {
      // Retention: the oldest entries go in the same transaction (a few at a time, so no append
      // ever pays for a large backlog).
      const old: Buffer[] = [];
      for (const k of this.dbs.controlLog.getKeys({ end: cutoff, limit: 64 })) old.push(Buffer.from(k));
      for (const k of old) this.dbs.controlLog.remove(k);
      this.dbs.controlLog.put(controlKey(row.at, row.id), row);
    });
  }

  async listControlSince(sinceMs: number, limit: number): Promise<ControlEntry[]> {
    const since = controlSince(sinceMs, limit);
    if (since === null) return [];
    const start = controlKey(since, '');
    return this.read(() => [...this.dbs.controlLog.getRange({ start, limit })].map((e) => copyControl(e.value)));
  }

  // --- admin API keys ---

  async createApiKey(apiKey: ApiKeyRecord): Promise<ApiKeyRecord> {
    checkApiKey(apiKey);
    const row = copyApiKey(apiKey);
    await this.write(() => {
      const { tenants, apiKeys, scopeApiKeys } = this.dbs;
      if (row.tenantId !== null && !tenants.doesExist(key(row.tenantId))) throw new LatchkeyError('LK_TENANT_NOT_FOUND', row.tenantId);
      if (apiKeys.doesExist(key(row.id))) throw new LatchkeyError('LK_CONFLICT', `API key ${row.id} exists`);
      apiKeys.put(key(row.id), row);
      scopeApiKeys.put(key(scopeOf(row.tenantId), row.id), row.id);
    });
    return copyApiKey(row);
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | null> {
    if (!validId(id)) return null;
    return this.read(() => nullable(this.dbs.apiKeys.get(key(id)), copyApiKey));
  }

  async listApiKeys(tenantId?: string | null): Promise<ApiKeyRecord[]> {
    if (tenantId === undefined) return this.read(() => [...this.dbs.apiKeys.getRange({})].map((e) => copyApiKey(e.value)));
    if (tenantId !== null && !validId(tenantId)) return [];
    return this.read(() => {
      const out: ApiKeyRecord[] = [];
      for (const { value: id } of this.dbs.scopeApiKeys.getRange(prefixRange(scopeOf(tenantId)))) {
        const row = this.dbs.apiKeys.get(key(id));
        if (row !== undefined) out.push(copyApiKey(row));
      }
      return out;
    });
  }

  async deleteApiKey(id: string): Promise<boolean> {
    if (!validId(id)) return false;
    return this.write(() => {
      const row = this.dbs.apiKeys.get(key(id));
      if (row === undefined) return false;
      this.dbs.apiKeys.remove(key(id));
      this.dbs.scopeApiKeys.remove(key(scopeOf(row.tenantId ?? null), id));
      return true;
    });
  }

  async countApiKeys(): Promise<number> {
    return this.read(() => this.dbs.apiKeys.getKeysCount());
  }

  async close(): Promise<void> {
    this.closed = true;
    this.closing ??= (async () => {
      try {
        await this.root.flushed;
        await this.root.close();
      } catch (err) {
        throw storeError(err, 'close failed');
      }
    })();
    return this.closing;
  }

  // --- plumbing ---

  private assertOpen(): void {
    if (this.closed) throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'store is closed');
  }

  /** Synchronous reads against a fresh snapshot; backend failures become LK_STORE_UNAVAILABLE. */
  private async read<T>(fn: () => T): Promise<T> {
    this.assertOpen();
    try {
      this.root.resetReadTxn();
      return fn();
    } catch (err) {
      throw storeError(err);
    }
  }

  /**
   * Run `fn` in an LMDB write transaction and resolve once the commit is durable. `fn` must be
   * synchronous and may throw (a LatchkeyError) only before its first put: see the file comment.
   */
  private async write<T>(fn: () => T): Promise<T> {
    this.assertOpen();
    let result: T;
    try {
      result = await this.root.transaction(fn);
      await this.root.flushed;
    } catch (err) {
      throw storeError(err);
    }
    return result;
  }
}

function decideBound(current: CredentialsRecord, endpointId: string): BindResult {
  const record = copyCredentials(current);
  if (current.status === 'REVOKED') return { ok: false, reason: 'REVOKED', record };
  if (current.endpointId === endpointId) return { ok: true, record, created: false };
  return { ok: false, reason: 'IN_USE', record };
}

// --- keys ---

/** Binary key: each id but the last as u16be length + UTF-8, then the last id's UTF-8. */
function key(...ids: string[]): Buffer {
  const parts: Buffer[] = [];
  ids.forEach((id, i) => {
    const bytes = Buffer.from(id, 'utf8');
    if (i < ids.length - 1) {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(bytes.length);
      parts.push(len);
    }
    parts.push(bytes);
  });
  return Buffer.concat(parts);
}

/** Key of a control log entry: time first (big-endian), so a range read returns time order. */
function controlKey(at: number, id: string): Buffer {
  const t = Buffer.alloc(8);
  t.writeBigUInt64BE(BigInt(at));
  return Buffer.concat([t, Buffer.from(id, 'utf8')]);
}

/** First id of a scopeApiKeys key: the tenant id, or '' (which no tenant id is) for root keys. */
function scopeOf(tenantId: string | null): string {
  return tenantId ?? '';
}

/**
 * Key of `owner_endpoints`: (tenantId, ownerExternalId, digest of key(appId, keyHash)). The digest
 * (43 base64url characters) keeps the key under LMDB's limit however long the four ids are.
 */
function ownerIndexKey(o: OwnerAttachment): Buffer {
  const digest = createHash('sha256').update(key(o.appId, o.keyHash)).digest('base64url');
  return key(o.tenantId, o.ownerExternalId, digest);
}

/** Key of `access_tokens`: (tenantId, base64url token hash). */
function tokenKey(tenantId: string, tokenHash: Buffer): Buffer {
  return key(tenantId, tokenHash.toString('base64url'));
}

/** Digits of a seq in a notification key: Number.MAX_SAFE_INTEGER + 1 has 16. */
const SEQ_DIGITS = 16;

/**
 * Key of `notifications`: (appId, keyHash, seq as SEQ_DIGITS zero-padded decimal digits), so the
 * keys of one endpoint are contiguous and ordered by seq.
 */
function notificationKey(appId: string, keyHash: string, seq: number): Buffer {
  return key(appId, keyHash, String(seq).padStart(SEQ_DIGITS, '0'));
}

/** The seq at the end of a `notifications` key (parsed at once: lmdb-js may reuse key buffers). */
function seqOfKey(k: Uint8Array): number {
  return Number(Buffer.from(k.subarray(k.length - SEQ_DIGITS)).toString('latin1'));
}

/** Range over every key whose leading ids are `ids`, i.e. keys starting with key(...ids, ''). */
function prefixRange(...ids: string[]): { start: Buffer; end: Buffer } {
  const start = key(...ids, '');
  // UTF-8 never contains 0xff and the length prefix is < 0xffff, so bumping the last byte yields
  // the smallest key greater than every key with this prefix.
  const end = Buffer.from(start);
  end[end.length - 1] += 1;
  return { start, end };
}








// --- copies: stored rows and returned records never share objects with callers ---

function nullable<T>(row: T | undefined, copy: (row: T) => T): T | null {
  return row === undefined ? null : copy(row);
}






