/**
 * Plumbing of the embedded store: the LMDB environment, one named database per record kind (Dbs),
 * and the read and write helpers every area module runs its work through (EmbeddedContext).
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
 * keys as keys.ts builds them. New databases were added without a format bump: they start empty in
 * an existing directory, and no existing key or value changed shape.
 *
 * Values are msgpack (lmdb-js default) without shared structures, so every value describes itself
 * and no structure table has to stay in sync between processes. msgpack binary decodes to a fresh
 * Buffer (lmdb-js sets copyBuffers); records are nonetheless rebuilt field by field on the way in
 * and out so no caller object is ever stored or returned by reference.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { LatchkeyError } from '../../errors.js';
import type {
  ApiKeyRecord,
  Application,
  BanRecord,
  ControlEntry,
  CredentialsRecord,
  EndpointAccessTokenRecord,
  EndpointRecord,
  OwnerAttachment,
  PendingNotification,
  RegistrationRecord,
  Tenant,
  VerifierRecord,
} from '../store.js';
import { storeError } from '../common/values.js';
import { key } from './keys.js';

/** On-disk layout version, stored under `meta/format`; bump when key or value shapes change. */
const FORMAT = 1;

export interface Dbs {
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
  /** (tenantId, ownerExternalId, endpoint digest) -> the same OwnerAttachment: see ownerIndexKey (ownership.ts). */
  ownerEndpoints: Database<OwnerAttachment, Buffer>;
  /** (tenantId, base64url token hash) -> the endpoint whose current token it is. */
  accessTokens: Database<TokenIndexRow, Buffer>;
  /** (appId, keyHash) -> the endpoint's current access token. */
  endpointAccessTokens: Database<StoredAccessToken, Buffer>;
  /** (appId, verifierToken) -> VerifierRecord. */
  verifiers: Database<VerifierRecord, Buffer>;
  /** appId -> token of the application's default verifier. */
  defaultVerifiers: Database<string, Buffer>;
  /** (appId, keyHash, seq digits) -> PendingNotification: see notificationKey (notifications.ts). */
  notifications: Database<PendingNotification, Buffer>;
  /** (appId, keyHash) -> the last notification seq handed out for the endpoint. */
  notificationSeqs: Database<number, Buffer>;
  /** (appId, keyHash) -> the event classes the endpoint listens to. */
  eventClasses: Database<string[], Buffer>;
}

/** Value of `access_tokens`. */
export interface TokenIndexRow {
  appId: string;
  keyHash: string;
  expiresAt: number;
}

/** Value of `endpoint_access_tokens`: the record plus the tenant its index entry lives under. */
export interface StoredAccessToken extends EndpointAccessTokenRecord {
  tenantId: string;
}

/** What every area module works with: the databases and the transaction helpers. */
export interface EmbeddedContext {
  readonly dbs: Dbs;
  /** Synchronous reads against a fresh snapshot; backend failures become LK_STORE_UNAVAILABLE. */
  read<T>(fn: () => T): Promise<T>;
  /**
   * Run `fn` in an LMDB write transaction and resolve once the commit is durable. `fn` must be
   * synchronous and may throw (a LatchkeyError) only before its first put: see the file comment.
   */
  write<T>(fn: () => T): Promise<T>;
}

/** One open environment: the EmbeddedContext of one EmbeddedStore. */
export class Lmdb implements EmbeddedContext {
  private closed = false;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly root: RootDatabase<unknown, Buffer>,
    readonly dbs: Dbs,
  ) {}

  /**
   * Open (creating if needed) the environment in `dir`. Several processes may open the same
   * directory at once; LMDB coordinates them through `store.lmdb-lock`.
   */
  static async open(dir: string): Promise<Lmdb> {
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
      return new Lmdb(root, dbs);
    } catch (err) {
      await root?.close().catch(() => undefined);
      throw storeError(err, `cannot open LMDB store in ${dir}`);
    }
  }

  async read<T>(fn: () => T): Promise<T> {
    this.assertOpen();
    try {
      this.root.resetReadTxn();
      return fn();
    } catch (err) {
      throw storeError(err);
    }
  }

  async write<T>(fn: () => T): Promise<T> {
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

  /** Flush pending writes and close the environment. Idempotent; later reads and writes fail. */
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

  private assertOpen(): void {
    if (this.closed) throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'store is closed');
  }
}

/** A stored row copied out, or null: stored rows and returned records never share objects with callers. */
export function nullable<T>(row: T | undefined, copy: (row: T) => T): T | null {
  return row === undefined ? null : copy(row);
}
