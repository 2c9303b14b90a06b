/**
 * CassandraStore: the Store on an Apache Cassandra cluster (2.2 or later). See store.ts for the
 * contract.
 *
 * CQL is limited to what Cassandra 2.2+ all accept: no materialized views, SASI, GROUP BY,
 * PER PARTITION LIMIT or duration columns. Index tables are written by this code.
 *
 * Consistency:
 * - Plain reads and writes use LOCAL_QUORUM: a read overlaps every acknowledged write of the local
 *   data center (including the commit phase of a lightweight transaction, which is written at the
 *   request consistency), without waiting for remote data centers.
 * - Every decision that must be exactly-once (tenant/application/token/credentials/API key
 *   creation, bind, revoke, API key deletion, endpoint attach/move/detach, access token claims and
 *   rotations, every verifier and notification queue change) is a lightweight transaction (Paxos)
 *   with serial
 *   consistency LOCAL_SERIAL by default: Paxos among the local DC's replicas only, so a remote DC
 *   outage does not stop connects. This is linearizable among latchkey nodes that use the same
 *   local DC. If nodes in SEVERAL data centers serve the same applications, open with
 *   `serialConsistency: 'SERIAL'`: LOCAL_SERIAL in two DCs would let each DC bind the same
 *   credentials once.
 * - Reads that decide the answer after a lost race or an unknown outcome use the serial consistency
 *   too: a serial read completes any Paxos round in flight, so it sees the winner.
 * - A lightweight transaction that times out (server write timeout of type CAS, or the driver's
 *   read timeout), or whose connection closed after it was sent, may or may not have applied
 *   (outcomeUnknown, in cassandra/lwt.ts, lists the errors that prove it did not). It is never
 *   retried blindly: a serial read decides, by the row's `write_id`, a random UUID each inserting
 *   call writes and no record exposes.
 *
 * Layout: this file connects and wires; cassandra/ holds one module per store area (tenancy,
 * credentials, registration, api-keys, ownership, verifiers, notifications, protection), each a
 * set of functions taking the store's CassandraContext (context.ts), and their shared plumbing:
 * schema.ts (tables, and their creation when several nodes start together), cql.ts (every
 * statement), lwt.ts (lightweight transactions and unknown outcomes), rows.ts (row mappers) and
 * partitions.ts (the bucket keys). Each module's comment explains the design of its tables.
 */
import { Client, types } from 'cassandra-driver';
import { LatchkeyError } from '../errors.js';
import type {
  ApiKeyRecord,
  Application,
  BanKind,
  BanRecord,
  BindResult,
  ConditionalAttachResult,
  ControlEntry,
  CredentialsListOptions,
  CredentialsRecord,
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
import { storeError } from './common/values.js';
import * as apiKeys from './cassandra/api-keys.js';
import { statementOptions, type CassandraContext } from './cassandra/context.js';
import * as credentials from './cassandra/credentials.js';
import { queries } from './cassandra/cql.js';
import * as notifications from './cassandra/notifications.js';
import * as ownership from './cassandra/ownership.js';
import * as protection from './cassandra/protection.js';
import * as registration from './cassandra/registration.js';
import { createSchema } from './cassandra/schema.js';
import * as tenancy from './cassandra/tenancy.js';
import * as verifiers from './cassandra/verifiers.js';

const { consistencies } = types;

export interface CassandraStoreOptions {
  contactPoints: string[];
  localDataCenter: string;
  keyspace: string;
  /** CQL replication map for CREATE KEYSPACE; default SimpleStrategy, replication factor 1. */
  replication?: string;
  username?: string;
  password?: string;
  /** Paxos scope of lightweight transactions: see the file comment. Default LOCAL_SERIAL. */
  serialConsistency?: 'LOCAL_SERIAL' | 'SERIAL';
}

export class CassandraStore implements Store {
  private closing: Promise<void> | null = null;
  private readonly cx: CassandraContext;

  private constructor(
    private readonly client: Client,
    keyspace: string,
    serial: number,
  ) {
    this.cx = {
      client,
      q: queries(keyspace),
      ...statementOptions(serial),
      knownBuckets: new Set<string>(),
      guard: (fn) => this.guard(fn),
    };
  }

  static async open(opts: CassandraStoreOptions): Promise<CassandraStore> {
    if (!/^[A-Za-z][A-Za-z0-9_]{0,47}$/.test(opts.keyspace)) {
      throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `Cassandra keyspace name ${JSON.stringify(opts.keyspace)}`);
    }
    if (opts.contactPoints.length === 0) throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', 'no Cassandra contact points');
    const serial = opts.serialConsistency === 'SERIAL' ? consistencies.serial : consistencies.localSerial;
    const client = new Client({
      contactPoints: opts.contactPoints,
      localDataCenter: opts.localDataCenter,
      ...(opts.username !== undefined ? { credentials: { username: opts.username, password: opts.password ?? '' } } : {}),
      queryOptions: { consistency: consistencies.localQuorum, serialConsistency: serial, prepare: true },
    });
    try {
      await client.connect();
      await createSchema(client, opts.keyspace, opts.replication);
      return new CassandraStore(client, opts.keyspace, serial);
    } catch (err) {
      await client.shutdown().catch(() => undefined);
      throw storeError(err, 'cannot open Cassandra store');
    }
  }

  // --- tenancy ---

  createTenant(tenant: Tenant): Promise<Tenant> {
    return tenancy.createTenant(this.cx, tenant);
  }

  getTenant(id: string): Promise<Tenant | null> {
    return tenancy.getTenant(this.cx, id);
  }

  listTenants(): Promise<Tenant[]> {
    return tenancy.listTenants(this.cx);
  }

  createApplication(app: Application): Promise<Application> {
    return tenancy.createApplication(this.cx, app);
  }

  getApplication(id: string): Promise<Application | null> {
    return tenancy.getApplication(this.cx, id);
  }

  getApplicationByToken(appToken: string): Promise<Application | null> {
    return tenancy.getApplicationByToken(this.cx, appToken);
  }

  listApplications(tenantId: string): Promise<Application[]> {
    return tenancy.listApplications(this.cx, tenantId);
  }

  // --- credentials ---

  provisionCredentials(appId: string, credentialsId: string, publicKey: Buffer | null, opts?: ProvisionOptions): Promise<CredentialsRecord> {
    return credentials.provisionCredentials(this.cx, appId, credentialsId, publicKey, opts);
  }

  getCredentials(appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
    return credentials.getCredentials(this.cx, appId, credentialsId);
  }

  listCredentials(appId: string, opts: CredentialsListOptions): Promise<Page<CredentialsRecord>> {
    return credentials.listCredentials(this.cx, appId, opts);
  }

  bindCredentials(appId: string, credentialsId: string, endpointId: string, createWithKey?: Buffer): Promise<BindResult> {
    return credentials.bindCredentials(this.cx, appId, credentialsId, endpointId, createWithKey);
  }

  revokeCredentials(appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
    return credentials.revokeCredentials(this.cx, appId, credentialsId);
  }

  // --- registration: server-side profiles and endpoints ---

  provisionRegistration(appId: string, credentialsId: string, serverProfileBody: string | null): Promise<RegistrationRecord> {
    return registration.provisionRegistration(this.cx, appId, credentialsId, serverProfileBody);
  }

  getRegistration(appId: string, credentialsId: string): Promise<RegistrationRecord | null> {
    return registration.getRegistration(this.cx, appId, credentialsId);
  }

  getEndpoint(appId: string, keyHash: string): Promise<EndpointRecord | null> {
    return registration.getEndpoint(this.cx, appId, keyHash);
  }

  saveEndpoint(endpoint: EndpointRecord): Promise<EndpointRecord> {
    return registration.saveEndpoint(this.cx, endpoint);
  }

  listEndpoints(appId: string, limit: number, cursor?: string | null): Promise<Page<EndpointRecord>> {
    return registration.listEndpoints(this.cx, appId, limit, cursor);
  }

  // --- admin API keys ---

  createApiKey(apiKey: ApiKeyRecord): Promise<ApiKeyRecord> {
    return apiKeys.createApiKey(this.cx, apiKey);
  }

  getApiKey(id: string): Promise<ApiKeyRecord | null> {
    return apiKeys.getApiKey(this.cx, id);
  }

  listApiKeys(tenantId?: string | null): Promise<ApiKeyRecord[]> {
    return apiKeys.listApiKeys(this.cx, tenantId);
  }

  deleteApiKey(id: string): Promise<boolean> {
    return apiKeys.deleteApiKey(this.cx, id);
  }

  countApiKeys(): Promise<number> {
    return apiKeys.countApiKeys(this.cx);
  }

  // --- ownership: owners, event classes, endpoint access tokens ---

  attachEndpointToOwner(tenantId: string, ownerExternalId: string, appId: string, keyHash: string): Promise<{ previousOwner: string | null }> {
    return ownership.attachEndpointToOwner(this.cx, tenantId, ownerExternalId, appId, keyHash);
  }

  attachEndpointIfUnownedOrSameOwner(tenantId: string, ownerExternalId: string, appId: string, keyHash: string): Promise<ConditionalAttachResult> {
    return ownership.attachEndpointIfUnownedOrSameOwner(this.cx, tenantId, ownerExternalId, appId, keyHash);
  }

  getEndpointOwner(appId: string, keyHash: string): Promise<OwnerAttachment | null> {
    return ownership.getEndpointOwner(this.cx, appId, keyHash);
  }

  detachEndpoint(appId: string, keyHash: string): Promise<string | null> {
    return ownership.detachEndpoint(this.cx, appId, keyHash);
  }

  listOwnerEndpoints(tenantId: string, ownerExternalId: string): Promise<OwnerAttachment[]> {
    return ownership.listOwnerEndpoints(this.cx, tenantId, ownerExternalId);
  }

  setEventClasses(appId: string, keyHash: string, classes: string[]): Promise<void> {
    return ownership.setEventClasses(this.cx, appId, keyHash, classes);
  }

  getEventClasses(appId: string, keyHash: string): Promise<string[] | null> {
    return ownership.getEventClasses(this.cx, appId, keyHash);
  }

  setEndpointAccessToken(appId: string, keyHash: string, tokenHash: Buffer, expiresAt: number): Promise<void> {
    return ownership.setEndpointAccessToken(this.cx, appId, keyHash, tokenHash, expiresAt);
  }

  findEndpointByAccessToken(tenantId: string, tokenHash: Buffer, now: number): Promise<{ appId: string; keyHash: string } | null> {
    return ownership.findEndpointByAccessToken(this.cx, tenantId, tokenHash, now);
  }

  // --- owner verifiers ---

  createVerifier(rec: VerifierRecord): Promise<VerifierRecord> {
    return verifiers.createVerifier(this.cx, rec);
  }

  getVerifier(appId: string, verifierToken: string): Promise<VerifierRecord | null> {
    return verifiers.getVerifier(this.cx, appId, verifierToken);
  }

  listVerifiers(appId: string): Promise<VerifierRecord[]> {
    return verifiers.listVerifiers(this.cx, appId);
  }

  updateVerifier(rec: VerifierRecord): Promise<VerifierRecord> {
    return verifiers.updateVerifier(this.cx, rec);
  }

  deleteVerifier(appId: string, verifierToken: string): Promise<boolean> {
    return verifiers.deleteVerifier(this.cx, appId, verifierToken);
  }

  setDefaultVerifier(appId: string, verifierToken: string | null): Promise<void> {
    return verifiers.setDefaultVerifier(this.cx, appId, verifierToken);
  }

  getDefaultVerifier(appId: string): Promise<string | null> {
    return verifiers.getDefaultVerifier(this.cx, appId);
  }

  // --- notification queues ---

  enqueueNotification(appId: string, keyHash: string, payload: Buffer, max: number): Promise<{ seq: number; dropped: number }> {
    return notifications.enqueueNotification(this.cx, appId, keyHash, payload, max);
  }

  listNotifications(appId: string, keyHash: string, limit: number): Promise<PendingNotification[]> {
    return notifications.listNotifications(this.cx, appId, keyHash, limit);
  }

  ackNotifications(appId: string, keyHash: string, uptoSeq: number): Promise<void> {
    return notifications.ackNotifications(this.cx, appId, keyHash, uptoSeq);
  }

  // --- protection: bans and the session control log ---

  putBan(ban: BanRecord): Promise<BanRecord> {
    return protection.putBan(this.cx, ban);
  }

  deleteBan(kind: BanKind, value: string): Promise<boolean> {
    return protection.deleteBan(this.cx, kind, value);
  }

  listBans(now: number): Promise<BanRecord[]> {
    return protection.listBans(this.cx, now);
  }

  appendControl(entry: ControlEntry): Promise<void> {
    return protection.appendControl(this.cx, entry);
  }

  listControlSince(sinceMs: number, limit: number): Promise<ControlEntry[]> {
    return protection.listControlSince(this.cx, sinceMs, limit);
  }

  async close(): Promise<void> {
    this.closing ??= this.client.shutdown().catch((err: unknown) => {
      throw storeError(err, 'close failed');
    });
    return this.closing;
  }

  /** Every area call runs in this (CassandraContext.guard). */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closing) throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'store is closed');
    try {
      return await fn();
    } catch (err) {
      throw storeError(err);
    }
  }
}
