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
 *   (outcomeUnknown lists the errors that prove it did not). It is never retried blindly: a serial read decides,
 *   by the row's `write_id`, a random UUID each inserting call writes and no record exposes.
 *
 * Schema (created idempotently by open(); keyspace and tables use IF NOT EXISTS):
 *   tenants(id)                                   tenants
 *   applications(id)                              applications
 *   applications_by_token(app_token)              token claims: app_id, claimed_at, write_id
 *   applications_by_tenant((tenant_id), app_id)   one partition per tenant, ordered by app id
 *   credentials((app_id, credentials_id))         one partition per credentials: Paxos contention
 *                                                 stays per credentials id, never per application;
 *                                                 server_profile_body and registered_at: a
 *                                                 server-side profile provisioned WITH the
 *                                                 credentials (see "Provisioning with a profile")
 *   credentials_by_app((app_id, bucket), credentials_id)
 *                                                 index for listCredentials: 65 partitions per
 *                                                 application (bucket: see credentialsBucket),
 *                                                 ordered by credentials id within each
 *   registrations((app_id, credentials_id))
 *   app_endpoints((app_id, bucket), key_hash)     bucket = the first two characters of the
 *                                                 base64url key hash (endpointBucket): 4,096
 *                                                 partitions per application, ordered by key hash
 *                                                 within each and across them (see "Endpoints")
 *   app_endpoint_buckets((app_id), bucket)        the buckets of an application that hold an
 *                                                 endpoint, so listEndpoints skips empty ones
 *   api_keys(id)                                  admin API keys (a small table: full scans list
 *                                                 and count them)
 *   api_keys_by_tenant((scope), key_id)           one partition per tenant ('tenant:<id>') plus
 *                                                 one for root keys ('root'), ordered by key id
 *   endpoint_owner((app_id, key_hash))            the endpoint's owner: tenant_id,
 *                                                 owner_external_id, attached_at, write_id (the
 *                                                 record; every change is a lightweight transaction)
 *   owner_endpoints((tenant_id, owner_external_id), app_id, key_hash)
 *                                                 index: one partition per owner, ordered by app id
 *                                                 then key hash
 *   endpoint_tokens((tenant_id, token_hash))      access token index: app_id, key_hash, expires_at,
 *                                                 write_id (the claim's id)
 *   endpoint_token_current((app_id, key_hash))    the endpoint's current token: tenant_id,
 *                                                 token_hash, expires_at, updated_at, write_id (=
 *                                                 the write_id of its endpoint_tokens claim)
 *   verifiers((app_id), verifier_token)           owner verifiers, one partition per application
 *                                                 ordered by token; static column default_token:
 *                                                 the application's default verifier
 *   notification_queue((app_id, key_hash), seq)   an endpoint's notification queue ordered by seq;
 *                                                 the row at seq 0 is its head: last_seq (the last
 *                                                 seq handed out) and head_seq (every seq up to it
 *                                                 is removed); notifications are seq 1 and up
 *   bans((bucket), kind, ban_value)               every ban in ONE partition (bucket = 0), ordered by
 *                                                 kind then value
 *   control_log((bucket), at, id)                 the session control log, one partition per hour
 *                                                 (bucket = floor(at / 1 h)), ordered by at then id
 *   schema_lock(name)                             the schema lease of open() (2.2 only: see below)
 *
 * Ownership across two tables (Cassandra has no multi-partition transactions):
 * - endpoint_owner is the truth; owner_endpoints is an index that may hold extra rows, never lack
 *   one for long. listOwnerEndpoints reads endpoint_owner for every index row and drops rows whose
 *   owner disagrees (as listApiKeys filters its scope index), so an extra row is never listed.
 * - An attach writes the new owner's index row BEFORE its lightweight transaction on
 *   endpoint_owner (a crash after the transaction cannot hide the endpoint from its new owner), and
 *   again after it (a concurrent mover may have removed it in between, see below). The transaction
 *   is conditional on the write_id it read (or IF NOT EXISTS), so of concurrent attaches of one
 *   endpoint each applies against exactly the owner it displaces; losers re-read serially and
 *   retry against the winner, so the last one to apply wins and every displaced owner is known to
 *   exactly one caller.
 * - After the transaction applies, the caller removes the displaced owner's index row, then re-reads
 *   endpoint_owner serially and writes the row back if that owner got the endpoint again meanwhile
 *   (its own before/after writes may have preceded the removal). Detach does the same. A crash or
 *   failure between the transaction and the removal leaves an extra row for the old owner:
 *   filtered out on listing, so the moved endpoint is never listed under the old owner even then
 *   (Kaa's bug). The removal is best effort for that reason. (Like deleteApiKey, the write-back
 *   relies on cell timestamps following real time, i.e. on synchronized clocks.)
 * - A conditional attach that loses removes its own pre-written row the same way.
 *
 * Access tokens: endpoint_tokens is claimed per (tenant, token hash) with lightweight transactions
 * (so two endpoints cannot publish one token); the claim's write_id is then made current in
 * endpoint_token_current, conditional on the previous current write_id, and the previous token's
 * claim is released (conditional on its write_id). A lookup answers only if the claim's write_id
 * is its endpoint's current one, so the old token stops resolving the moment the new one is
 * current, whether or not its release ran; claims that never became current are filtered the same
 * way and may be taken over.
 * Verifiers: the default is a static column of the application's verifier partition, and Paxos
 * serializes every lightweight transaction of one partition, so every verifier write is one and
 * each decides atomically with the default. Setting the default is conditional on the verifier
 * row's write_id (the row exists) and gives the row a new write_id; a delete is conditional on the
 * write_id it read, so a concurrent setDefault makes it retry; deleting the default verifier is a
 * conditional batch that removes the row and clears default_token (IF default_token = the token).
 *
 * Notification queues: every removal (ack or trim) takes the OLDEST entries, so an endpoint's live
 * entries are always the seqs head_seq + 1 .. last_seq of its partition, and the head row (seq 0)
 * says where they start. Reads never look below head_seq: the head is a point read, listing reads
 * `seq > head_seq`, and an enqueue or ack decides from the head alone (count = last_seq - head_seq)
 * without reading any entry. Removed entries are row tombstones until gc_grace_seconds pass and a
 * compaction drops them, all below head_seq, outside every slice read (the earlier design read
 * the queue from its start: enqueue + ack went from 13.8 to 29.4 ms over 3,000 cycles on one
 * endpoint against a 2.2 server, and Cassandra 3.x/4.x fail a read past 100,000 tombstones).
 * - An enqueue is one conditional batch on the endpoint's partition: the head moves from
 *   (last, head) to (last + 1, head + dropped) IF it still is (last, head) (IF NOT EXISTS for the
 *   first), the new row at seq last + 1, and the deletes of the `dropped` oldest rows (at most
 *   DROP_IN_BATCH of them; a larger trim, which needs `max` to shrink by that much, removes the
 *   rest right after in conditional batches of its own, rows that are already invisible). Of
 *   concurrent enqueues and acks exactly one applies per head state; losers re-read the head and
 *   retry with jittered backoff, at most SEQ_ATTEMPTS times. `dropped` counts exactly the entries
 *   this call's head move removed. last_seq never decreases, so acknowledged seqs are not reused.
 * - An ack moves head_seq up to min(uptoSeq, last_seq) in steps of ACK_CHUNK, each a conditional
 *   batch (IF head_seq = the value read) with the deletes of the rows it passes. Deletes are
 *   never plain writes: the rows were written by Paxos with ballot timestamps (increasing per
 *   partition), and a delete inside a later conditional batch is ordered after them whatever the
 *   client clocks say. A delete that was lost anyway (a leftover of an interrupted trim) leaves a
 *   live row below head_seq: stored, never listed.
 * - An enqueue whose outcome is unknown is decided by a serial read of its row's write_id; if a
 *   concurrent trim or ack removed the row before that read, it is retried: delivery is at least
 *   once in that corner.
 * - The table keeps tombstones one day (gc_grace_seconds), not ten: a replica that missed a delete
 *   and brings the row back after that can only bring back a row below head_seq, which no read
 *   returns (the head row itself is only ever updated, never deleted).
 *
 * Endpoints: app_endpoints is split by the first two key hash characters (4,096 buckets, the
 * base64url alphabet in byte order twice, so bucket order is key hash order). At about 1 KiB a
 * row (a 294-byte key, the profile, metadata), the 64 buckets of the earlier table passed the
 * usual 100 MB partition guideline at about 6M endpoints per application; 4,096 pass it at about
 * 400M. More buckets would make applications of a few thousand endpoints pay more directory rows
 * and round trips per page for no gain at the sizes latchkey serves.
 * app_endpoint_buckets lists the buckets that hold an endpoint (written before the first endpoint
 * row of a bucket; each process remembers the ones it wrote), so a small application does not cost
 * 4,096 reads per page. Endpoints are never deleted, so a listed bucket stays non-empty (a crash
 * between the two writes leaves an empty one, read and skipped). listEndpoints reads the listed
 * buckets in order from the cursor's, one at a time, each with LIMIT of what the page still needs:
 * at most limit + 1 endpoint rows per page (the extra row says whether a next page exists), at the
 * cost of one round trip per non-empty bucket the page spans (one or two for an application of
 * millions; up to the page size for one of a few thousand). The cursor is the last key hash, which
 * names its bucket. The earlier `endpoints` table (64 buckets) is no longer read or written.
 *
 * Provisioning with a profile: a server-side profile provisioned with the credentials (the admin
 * API's POST .../credentials with serverProfile) is written in the credentials row by the same
 * lightweight transaction that creates it (server_profile_body, registered_at): a conditional
 * batch cannot span the registrations table, and two writes would leave credentials without their
 * profile after a crash between them. getRegistration reads both rows and answers the newer of
 * the registrations row and the provisioned profile (by updated_at and registered_at, so like
 * every last-writer-wins here it relies on synchronized clocks); a provision refused with
 * LK_CRED_EXISTS writes neither.
 *
 * Bans and the session control log use no lightweight transactions: a ban put replaces the whole
 * row (create-or-replace, last writer wins) and a log entry is keyed by its own unique id, so every
 * write is a plain upsert the driver may retry (a retry writes the same row), like every read
 * (statementOptions). deleteBan reads, then deletes only a row it saw (no
 * tombstone for a missing ban): two concurrent deletes of one ban may both answer true, which is
 * informational only.
 * - bans is one partition because every process loads the whole list (listBans) at every poll: one
 *   single-partition read, filtered for `now` and sorted here (CQL orders text by UTF-8 bytes).
 *   A ban with an expiry is written with a TTL of expiresAt + EXPIRED_BAN_GRACE_MS, so the
 *   partition holds only bans in force (or lapsed within the grace); MAX_BANS is NOT enforced here,
 *   because counting the partition on every put would read all of it. Expired cells are tombstones
 *   to every read until compacted after gc_grace_seconds, so the table keeps them one day instead of
 *   ten: a replica that missed a deleteBan and is not repaired within a day may bring that ban back
 *   (it fails closed: delete it again). A permanent ban binds expires_at to null (one cell
 *   tombstone) so a replace drops an earlier expiry.
 * - control_log rows carry a TTL of CONTROL_LOG_RETENTION_MS. listControlSince reads the hour
 *   buckets from `since` (but no further back than the retention) up to the hour after the current
 *   one (a writer whose clock is ahead), CONTROL_FANOUT at a time in order, and stops once `limit`
 *   entries are read; an entry more than an hour ahead of the reader's clock is listed only once
 *   that clock catches up.
 * - TTLs are capped so no cell expires after 2038-01-19 (a 32-bit expiry in Cassandra before 5.0:
 *   newer 3.x versions refuse such writes, older ones expire them at once); past the cap a row is
 *   written without a TTL (a ban then ends by the expiresAt filter alone).
 *
 * Credentials listing: credentials_by_app holds ids only; the credentials row stays the truth. Its
 * row is written (a plain upsert) BEFORE the lightweight transaction that creates the credentials,
 * in provisionCredentials and in a trustful bind that creates them, so a crash in between cannot
 * hide created credentials from the list; an index row whose credentials never came to be is
 * dropped on listing, which reads every listed credentials row (their status is current). A
 * provision refused with LK_CRED_EXISTS still writes the row, so credentials created before this
 * index existed are listed once they are provisioned again; until then only getCredentials finds
 * them (the index is not backfilled by a scan).
 *
 * Schema creation when several nodes start together: open() creates only tables the cluster does
 * not have yet (restarts issue no DDL), and on Cassandra 3.0 or later creates each with a table id
 * derived from the keyspace and table name (tableId). Two coordinators creating one table at once
 * then create the SAME table: without it each picks its own id, the cluster keeps one, and what was
 * written through the other is lost at the next restart (CASSANDRA-9424; Palantir's AtlasDB made
 * its ids deterministic for the same reason). Cassandra 2.2 has no table id option and answers
 * such a race with "Column family ID mismatch" on both nodes (found against a 2.2 server), so there
 * (and on a cluster not yet all 3.0+) open() creates tables under a lease: a lightweight-transaction
 * row in schema_lock(name) with a TTL, one table at a time, waiting for schema agreement after each
 * (ensureSchema says what remains: the lock table's own creation). A keyspace dropped and created again gets the same table ids: TRUNCATE its tables
 * before dropping it, so a commit log replay cannot bring old rows back.
 */
import { createHash } from 'node:crypto';
import { Client, errors, types, type QueryOptions } from 'cassandra-driver';
import { LatchkeyError } from '../errors.js';
import type {
  BanKind,
  BanRecord,
  ControlEntry,
  ControlType,
  ApiKeyRecord,
  Application,
  BindResult,
  ConditionalAttachResult,
  CredentialStatus,
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
import {
  validId,
  checkId,
  validKeyHash,
  checkEventClasses,
  checkKeyHash,
  checkLimit,
  checkCredentialsList,
  credentialsScanBudget,
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
  checkVerifier,
  copyVerifier,
  checkEnqueue,
  checkAck,
  storeError,
} from './store-common.js';
import {
  CONTROL_LOG_RETENTION_MS,
  EXPIRED_BAN_GRACE_MS,
  banActive,
  banKey,
  checkBan,
  checkControl,
  compareBans,
  controlSince,
  copyBan,
} from './protection-common.js';

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

/** The base64url alphabet in ascending character order (= CQL text order for ASCII). */
const BUCKETS = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
/** Partitions of app_endpoints per application: two key hash characters (see the file comment). */
export const ENDPOINT_BUCKETS = BUCKETS.length * BUCKETS.length; // 4,096
/**
 * The app_endpoints bucket of a key hash: its first two characters as a number, in key hash order
 * (a one-character hash shares bucket `c-` with the hashes it sorts before). Exported for a test.
 */
export function endpointBucket(keyHash: string): number {
  const at = (i: number) => (i < keyHash.length ? Math.max(0, BUCKETS.indexOf(keyHash[i]!)) : 0);
  return at(0) * BUCKETS.length + at(1);
}
/** (application, bucket) pairs a process remembers having listed in app_endpoint_buckets. */
const KNOWN_BUCKETS_MAX = 100_000;
/** Directory rows listEndpoints fetches per round trip. */
const BUCKET_DIRECTORY_PAGE = 64;
/**
 * credentials_by_app buckets: 0 for ids whose first character sorts before '-', then bucket i + 1
 * for first characters from BUCKETS[i] up to (not including) BUCKETS[i + 1] ('z' and above: the
 * last). Monotone in the id, so buckets visited in order list ids in UTF-8 byte order (CQL text
 * order) for ids of any shape; a key hash's bucket is its first character, as for endpoints.
 */
const CRED_BUCKETS = BUCKETS.length + 1;
function credentialsBucket(id: string): number {
  const c = id.codePointAt(0) ?? 0;
  let b = 0;
  while (b < BUCKETS.length && c >= BUCKETS.charCodeAt(b)) b++;
  return b;
}
/** Bucket queries listCredentials runs at once while filling a page. */
const BUCKET_FANOUT = 8;
/** Row reads listApplications runs at once. */
const READ_FANOUT = 16;
/**
 * A token claim whose application row never appeared (the creator crashed between the two
 * lightweight transactions) may be taken over after this long. Creation takes two round trips and
 * the driver's read timeout is 12 s, so a live creator finishes well within 60 s.
 */
const CLAIM_STALE_MS = 60_000; // 60 s
/** Attempts at a lightweight transaction that keeps losing to concurrent changes. */
const MAX_ATTEMPTS = 5;
/**
 * Attempts at attaching an endpoint whose owner keeps changing under it: every concurrent attach
 * of one endpoint contends for the same row and one wins per round, so n attaches at once need up
 * to n - 1 lost rounds; between them each loser waits a jittered, growing delay (ATTACH_BACKOFF_MS)
 * so they do not keep colliding.
 */
const ATTACH_ATTEMPTS = 24;
const ATTACH_BACKOFF_MS = 4;
/**
 * Attempts at a notification enqueue or ack: every concurrent enqueue of one endpoint contends for
 * the same last_seq, and each round only one wins, so this is well above the concurrency expected
 * per endpoint (a few notifications at once).
 */
const SEQ_ATTEMPTS = 64;
/** Most rows one ack batch deletes (the head moves by at most this much per batch). */
const ACK_CHUNK = 64;
/** Most rows an enqueue's batch deletes; a larger trim removes the rest in batches after it. */
const DROP_IN_BATCH = 16;
/** seq of the head row of a notification queue (notifications are 1 and up). */
const HEAD_ROW = 0;
/** The one partition of `bans` (see the file comment). */
const BAN_PARTITION = 0;
/** Width of one control_log partition. */
const CONTROL_BUCKET_MS = 3_600_000; // 1 h
/** control_log buckets listControlSince reads at once: a routine poll (the current hour, the one after) is one round trip. */
const CONTROL_FANOUT = 4;
/** Largest TTL Cassandra accepts (20 years), in seconds. */
const MAX_TTL_SEC = 630_720_000;
/**
 * Last cell expiry Cassandra before 5.0 can store (2038-01-19, a signed 32-bit second count), less
 * a day for the difference between our clock and the replicas'.
 */
const MAX_EXPIRY_SEC = 2 ** 31 - 2 - 86_400;
/** LIMIT is a 32-bit int in CQL. */
const MAX_CQL_LIMIT = 2 ** 31 - 1;

const { consistencies } = types;

type CasOutcome = { applied: boolean } | 'unknown';

export class CassandraStore implements Store {
  private closing: Promise<void> | null = null;
  private readonly q: ReturnType<typeof queries>;
  /** Plain reads (see statementOptions). */
  private readonly READ: QueryOptions;
  /** Plain upserts and deletes. */
  private readonly UPSERT: QueryOptions;
  /** Lightweight transactions. */
  private readonly CAS: QueryOptions;
  /** Linearizable reads (complete any Paxos round in flight). */
  private readonly SERIAL_READ: QueryOptions;
  /** app_endpoint_buckets rows this process wrote, as `${bucket}:${appId}` (never deleted, so never stale). */
  private readonly knownBuckets = new Set<string>();

  private constructor(
    private readonly client: Client,
    keyspace: string,
    serial: number,
  ) {
    this.q = queries(keyspace);
    ({ READ: this.READ, UPSERT: this.UPSERT, CAS: this.CAS, SERIAL_READ: this.SERIAL_READ } = statementOptions(serial));
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
      // DDL is run unprepared: each statement runs once per open, and the keyspace name cannot be a
      // bind marker. The replication map is operator configuration, passed through as CQL.
      const replication = opts.replication ?? "{'class': 'SimpleStrategy', 'replication_factor': 1}";
      await client.execute(`CREATE KEYSPACE IF NOT EXISTS ${opts.keyspace} WITH replication = ${replication}`, [], { prepare: false });
      // Only missing tables, one at a time, under a lease on 2.2 (see the file comment); then the
      // columns a keyspace created by an older build lacks.
      await ensureSchema(client, opts.keyspace);
      await ensureColumns(client, opts.keyspace);
      return new CassandraStore(client, opts.keyspace, serial);
    } catch (err) {
      await client.shutdown().catch(() => undefined);
      throw storeError(err, 'cannot open Cassandra store');
    }
  }

  // --- tenants ---

  async createTenant(tenant: Tenant): Promise<Tenant> {
    checkId('tenant id', tenant.id);
    const row = copyTenant(tenant);
    const writeId = types.Uuid.random();
    return this.guard(async () => {
      const out = await this.cas(this.q.insertTenant, [row.id, row.name, new Date(row.createdAt), writeId]);
      const applied = out === 'unknown' ? await this.resolve(this.q.selectTenant, [row.id], writeId) : out.applied;
      if (!applied) throw new LatchkeyError('LK_CONFLICT', `tenant ${row.id} exists`);
      return copyTenant(row);
    });
  }

  async getTenant(id: string): Promise<Tenant | null> {
    if (!validId(id)) return null;
    return this.guard(() => this.readTenant(id, false));
  }

  async listTenants(): Promise<Tenant[]> {
    return this.guard(async () => {
      const out: Tenant[] = [];
      for await (const row of await this.client.execute(this.q.selectTenants, [], { ...this.READ, fetchSize: 1000 })) out.push(tenantFrom(row));
      return out.sort((a, b) => compare(a.id, b.id));
    });
  }

  // --- applications ---

  async createApplication(app: Application): Promise<Application> {
    checkId('application id', app.id);
    checkId('tenant id', app.tenantId);
    checkId('application token', app.appToken);
    const row = copyApplication(app);
    return this.guard(async () => {
      // Tenants are never deleted, so an existing tenant stays existing: no Paxos needed.
      if ((await this.readTenant(row.tenantId, false)) === null) throw new LatchkeyError('LK_TENANT_NOT_FOUND', row.tenantId);
      if ((await this.readApp(row.id, false)) !== null) throw new LatchkeyError('LK_CONFLICT', `application ${row.id} exists`);
      // Token first: a refused token leaves nothing behind. The app row second: if it loses
      // (same id created concurrently), our own claim is released again.
      const claim = await this.claimToken(row.appToken, row.id);
      // The tenant index row is written before the application row, so a crash in between cannot
      // hide a created application from listApplications; a row for an application that never
      // came to be (or belongs to another tenant) is filtered out on listing.
      await this.client.execute(this.q.insertTenantApp, [row.tenantId, row.id], this.UPSERT);
      const writeId = types.Uuid.random();
      const out = await this.cas(this.q.insertApp, [
        row.id,
        row.tenantId,
        row.name,
        row.appToken,
        row.credentialsService,
        row.profileSchema ?? types.unset,
        new Date(row.createdAt),
        writeId,
      ]);
      const applied = out === 'unknown' ? await this.resolve(this.q.selectApp, [row.id], writeId) : out.applied;
      if (!applied) {
        if (claim !== null) {
          await this.client
            .execute(this.q.releaseToken, [row.appToken, claim], this.CAS)
            .catch(() => undefined); // best effort: a leftover claim is taken over (see claimToken)
        }
        throw new LatchkeyError('LK_CONFLICT', `application ${row.id} exists`);
      }
      return copyApplication(row);
    });
  }

  async getApplication(id: string): Promise<Application | null> {
    if (!validId(id)) return null;
    return this.guard(() => this.readApp(id, false));
  }

  async getApplicationByToken(appToken: string): Promise<Application | null> {
    if (!validId(appToken)) return null;
    return this.guard(async () => {
      const claim = (await this.client.execute(this.q.selectToken, [appToken], this.READ)).first();
      if (!claim) return null;
      const app = await this.readApp(claim.get('app_id') as string, false);
      // A claim may point at an application still being created, or be a leftover of a failed
      // create; only an application that holds this token answers.
      return app !== null && app.appToken === appToken ? app : null;
    });
  }

  async listApplications(tenantId: string): Promise<Application[]> {
    if (!validId(tenantId)) return [];
    return this.guard(async () => {
      const ids: string[] = [];
      for await (const row of await this.client.execute(this.q.selectTenantApps, [tenantId], { ...this.READ, fetchSize: 1000 })) {
        ids.push(row.get('app_id') as string);
      }
      const apps = await mapLimit(ids, READ_FANOUT, (id) => this.readApp(id, false));
      return apps.filter((a): a is Application => a !== null && a.tenantId === tenantId);
    });
  }

  // --- credentials ---

  async provisionCredentials(appId: string, credentialsId: string, publicKey: Buffer | null, opts: ProvisionOptions = {}): Promise<CredentialsRecord> {
    checkId('application id', appId);
    checkId('credentials id', credentialsId);
    const profile = opts.serverProfileBody;
    const now = Date.now();
    const record: CredentialsRecord = {
      appId,
      credentialsId,
      publicKey: publicKey === null ? null : Buffer.from(publicKey),
      status: 'AVAILABLE',
      endpointId: null,
      createdAt: now,
      updatedAt: now,
    };
    const writeId = types.Uuid.random();
    return this.guard(async () => {
      if ((await this.readApp(appId, false)) === null) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
      await this.indexCredentials(appId, credentialsId);
      // Columns without a value are left unset rather than bound to null: no tombstones. A profile
      // provisioned with the credentials goes in the same transaction (see the file comment),
      // stamped after any registration it replaces, so readReg never sees a tie.
      const params = [appId, credentialsId, record.publicKey ?? types.unset, 'AVAILABLE', types.unset, new Date(now), new Date(now), writeId];
      let out: CasOutcome;
      if (profile === undefined) {
        out = await this.cas(this.q.insertCreds, params);
      } else {
        const replaced = await this.readReg(appId, credentialsId);
        const registeredAt = Math.max(now, (replaced?.updatedAt ?? 0) + 1);
        out = await this.cas(this.q.insertCredsRegistered, [...params, profile ?? types.unset, new Date(registeredAt)]);
      }
      const applied = out === 'unknown' ? await this.resolve(this.q.selectCreds, [appId, credentialsId], writeId) : out.applied;
      if (!applied) throw new LatchkeyError('LK_CRED_EXISTS', credentialsId);
      return copyCredentials(record);
    });
  }

  async getCredentials(appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
    if (!validId(appId) || !validId(credentialsId)) return null;
    return this.guard(() => this.readCreds(appId, credentialsId, false));
  }

  async listCredentials(appId: string, opts: CredentialsListOptions): Promise<Page<CredentialsRecord>> {
    const { limit, after, status } = checkCredentialsList(opts);
    if (!validId(appId)) return { items: [], next: null };
    return this.guard(async () => {
      // As listEndpoints: buckets in order from the cursor's, BUCKET_FANOUT at a time; then the
      // credentials rows of the ids in order, READ_FANOUT at a time, until the pager is done.
      const pager = new CredentialsPager(limit, status);
      const first = after === null ? 0 : credentialsBucket(after);
      const want = credentialsScanBudget(limit);
      for (let b = first; b < CRED_BUCKETS; b += BUCKET_FANOUT) {
        const batch = Array.from({ length: Math.min(BUCKET_FANOUT, CRED_BUCKETS - b) }, (_, j) => b + j);
        const ids = (await Promise.all(batch.map((bucket) => this.credentialIds(appId, bucket, bucket === first ? after : null, want)))).flat();
        for (let i = 0; i < ids.length; i += READ_FANOUT) {
          const chunk = ids.slice(i, i + READ_FANOUT);
          const records = await Promise.all(chunk.map((id) => this.readCreds(appId, id, false)));
          for (let j = 0; j < chunk.length; j++) {
            if (!pager.offer(chunk[j]!, records[j]!) || pager.done) return pager.page();
          }
        }
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
    const newKey = createWithKey === undefined ? null : Buffer.from(createWithKey);
    return this.guard(async () => {
      // Fast path (every reconnect): a LOCAL_QUORUM read. IN_USE and REVOKED answers from it are
      // safe because neither state ever returns to AVAILABLE.
      let current = await this.readCreds(appId, credentialsId, false);
      // "Missing" decides UNKNOWN; confirm it serially so credentials provisioned through another
      // coordinator a moment ago are not refused.
      if (current === null && newKey === null) current = await this.readCreds(appId, credentialsId, true);
      let appChecked = false;
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (current === null) {
          if (newKey === null) return { ok: false, reason: 'UNKNOWN', record: null };
          if (!appChecked) {
            if ((await this.readApp(appId, false)) === null) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
            await this.indexCredentials(appId, credentialsId);
            appChecked = true;
          }
          const now = Date.now();
          const writeId = types.Uuid.random();
          const record: CredentialsRecord = { appId, credentialsId, publicKey: newKey, status: 'IN_USE', endpointId, createdAt: now, updatedAt: now };
          const out = await this.cas(this.q.insertCreds, [appId, credentialsId, newKey, 'IN_USE', endpointId, new Date(now), new Date(now), writeId]);
          if (out !== 'unknown' && out.applied) return { ok: true, record: copyCredentials(record), created: true };
          const row = await this.serialRow(this.q.selectCreds, [appId, credentialsId]);
          current = row ? credsFrom(row) : null;
          if (row && sameId(row, writeId)) return decideBound(current!, endpointId, true); // ours, then revoked at worst
          continue;
        }
        if (current.status !== 'AVAILABLE') return decideBound(current, endpointId, false);
        const now = Date.now();
        const out = await this.cas(this.q.bindCreds, [endpointId, new Date(now), appId, credentialsId]);
        if (out !== 'unknown' && out.applied) {
          return { ok: true, record: copyCredentials({ ...current, status: 'IN_USE', endpointId, updatedAt: now }), created: false };
        }
        // Lost a race or unknown outcome: the serial read shows the winner (possibly us).
        current = await this.readCreds(appId, credentialsId, true);
      }
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', `credentials ${credentialsId} kept changing during bind`);
    });
  }

  async revokeCredentials(appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
    if (!validId(appId) || !validId(credentialsId)) return null;
    return this.guard(async () => {
      // Administrative and rare: serial reads throughout, so the answer reflects every bind.
      let current = await this.readCreds(appId, credentialsId, true);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (current === null) return null;
        if (current.status === 'REVOKED') return current;
        const now = Date.now();
        // Conditional on the status seen, so the returned record is exactly what was written;
        // endpoint_id is kept: it names the endpoint whose sessions must end.
        const out = await this.cas(this.q.revokeCreds, [new Date(now), appId, credentialsId, current.status]);
        if (out !== 'unknown' && out.applied) return copyCredentials({ ...current, status: 'REVOKED', updatedAt: now });
        current = await this.readCreds(appId, credentialsId, true);
      }
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', `credentials ${credentialsId} kept changing during revoke`);
    });
  }

  // --- registrations ---

  async provisionRegistration(appId: string, credentialsId: string, serverProfileBody: string | null): Promise<RegistrationRecord> {
    checkId('application id', appId);
    checkId('credentials id', credentialsId);
    return this.guard(async () => {
      if ((await this.readApp(appId, false)) === null) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
      // Last writer wins (an upsert); reading first keeps the original createdAt (two concurrent
      // first provisions can at worst disagree on it by their own latency) and stamps the new one
      // after what it replaces, a profile provisioned with the credentials included (readReg).
      const previous = await this.readReg(appId, credentialsId);
      const now = Math.max(Date.now(), (previous?.updatedAt ?? 0) + 1);
      const record: RegistrationRecord = { appId, credentialsId, serverProfileBody, createdAt: previous?.createdAt ?? now, updatedAt: now };
      await this.client.execute(
        this.q.upsertReg,
        [appId, credentialsId, serverProfileBody, new Date(record.createdAt), new Date(record.updatedAt)],
        this.UPSERT,
      );
      return copyRegistration(record);
    });
  }

  async getRegistration(appId: string, credentialsId: string): Promise<RegistrationRecord | null> {
    if (!validId(appId) || !validId(credentialsId)) return null;
    return this.guard(() => this.readReg(appId, credentialsId));
  }

  // --- endpoints ---

  async getEndpoint(appId: string, keyHash: string): Promise<EndpointRecord | null> {
    if (!validId(appId) || !validKeyHash(keyHash)) return null;
    return this.guard(async () => {
      const row = (await this.client.execute(this.q.selectEndpoint, [appId, endpointBucket(keyHash), keyHash], this.READ)).first();
      return row ? endpointFrom(row) : null;
    });
  }

  async saveEndpoint(endpoint: EndpointRecord): Promise<EndpointRecord> {
    checkId('application id', endpoint.appId);
    checkKeyHash(endpoint.keyHash);
    const e = copyEndpoint(endpoint);
    const bucket = endpointBucket(e.keyHash);
    return this.guard(async () => {
      // The bucket's directory row first (see the file comment, "Endpoints"): a crash after it
      // leaves an empty bucket listed, never an endpoint unlisted.
      const known = `${bucket}:${e.appId}`;
      if (!this.knownBuckets.has(known)) {
        await this.client.execute(this.q.insertEndpointBucket, [e.appId, bucket], this.UPSERT);
        if (this.knownBuckets.size >= KNOWN_BUCKETS_MAX) this.knownBuckets.clear();
        this.knownBuckets.add(known);
      }
      // Nulls are bound (not unset) on purpose: this replaces the whole record.
      await this.client.execute(
        this.q.upsertEndpoint,
        [
          e.appId,
          bucket,
          e.keyHash,
          e.credentialsId,
          e.publicKey,
          e.profileBody,
          e.profileHash,
          e.serverProfileBody,
          new Date(e.createdAt),
          new Date(e.updatedAt),
        ],
        this.UPSERT,
      );
      return copyEndpoint(e);
    });
  }

  async listEndpoints(appId: string, limit: number, cursor?: string | null): Promise<Page<EndpointRecord>> {
    checkLimit(limit);
    const after = cursor == null ? null : decodeCursor(cursor);
    if (!validId(appId)) return { items: [], next: null };
    return this.guard(async () => {
      // The non-empty buckets from the cursor's on, in order, one at a time, each asked for what
      // the page still lacks: at most limit + 1 rows (the extra one says whether a next page
      // exists). See the file comment, "Endpoints".
      const want = limit + 1;
      const first = after === null ? 0 : endpointBucket(after);
      const rows: EndpointRecord[] = [];
      const buckets = await this.client.execute(this.q.selectEndpointBuckets, [appId, first], { ...this.READ, fetchSize: BUCKET_DIRECTORY_PAGE });
      for await (const b of buckets) {
        const bucket = b.get('bucket') as number;
        rows.push(...(await this.bucketRows(appId, bucket, bucket === first ? after : null, want - rows.length)));
        if (rows.length >= want) break;
      }
      const items = rows.slice(0, limit);
      const last = items[items.length - 1];
      return { items, next: rows.length > limit && last ? encodeCursor(last.keyHash) : null };
    });
  }

  // --- ownership (see the file comment) ---

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
    return this.guard(async () => {
      const row = await this.ownerRow(appId, keyHash, false);
      return row ? ownerFrom(row) : null;
    });
  }

  async detachEndpoint(appId: string, keyHash: string): Promise<string | null> {
    if (!validId(appId) || !validKeyHash(keyHash)) return null;
    return this.guard(async () => {
      let row = await this.ownerRow(appId, keyHash, true);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (row === null) return null;
        const seen = row;
        // Conditional on the attachment seen, so the index row removed below is that owner's.
        const out = await this.cas(this.q.deleteOwner, [appId, keyHash, seen.get('write_id')]);
        let done = out !== 'unknown' && out.applied;
        if (!done) {
          row = await this.ownerRow(appId, keyHash, true);
          // Unknown outcome and no row left: count it as ours. A row with another write_id is a
          // newer attachment (ours did not apply, or applied before it): detach that one too.
          done = out === 'unknown' && row === null;
        }
        if (done) {
          const previous = ownerFrom(seen);
          await this.dropOwnerIndexRow(previous.tenantId, previous.ownerExternalId, appId, keyHash);
          return previous.ownerExternalId;
        }
      }
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', `owner of endpoint ${keyHash} kept changing during detach`);
    });
  }

  async setEventClasses(appId: string, keyHash: string, classes: string[]): Promise<void> {
    checkEventClasses(appId, keyHash, classes);
    // A whole-value overwrite (frozen list): idempotent, last writer wins; only the endpoint's own
    // session declares. An INSERT, not an UPDATE: cassandra-driver encodes an empty list as null
    // (encoder.js encodeList), and an UPDATE setting the only regular column to null leaves no
    // live cell, so a declaration cleared with [] read back as "never declared". An INSERT also
    // writes the row marker, which keeps the row alive with classes null; the read maps that to [].
    // Rows written by the earlier UPDATE with a non-empty list have a live classes cell and read
    // as before; a declaration that UPDATE cleared left no row and reads as undeclared until the
    // endpoint declares again.
    await this.guard(() => this.client.execute(this.q.upsertEventClasses, [appId, keyHash, [...classes]], this.UPSERT));
  }

  async getEventClasses(appId: string, keyHash: string): Promise<string[] | null> {
    if (!validId(appId) || !validKeyHash(keyHash)) return null;
    return this.guard(async () => {
      const row = (await this.client.execute(this.q.selectEventClasses, [appId, keyHash], this.READ)).first();
      if (!row) return null;
      // A live row with classes null is a declaration cleared with [] (see setEventClasses).
      return [...((row.get('classes') as string[] | null) ?? [])];
    });
  }

  async listOwnerEndpoints(tenantId: string, ownerExternalId: string): Promise<OwnerAttachment[]> {
    if (!validId(tenantId) || !validId(ownerExternalId)) return [];
    return this.guard(async () => {
      const keys: Array<[string, string]> = [];
      const rs = await this.client.execute(this.q.selectOwnerEndpoints, [tenantId, ownerExternalId], { ...this.READ, fetchSize: 1000 });
      for await (const row of rs) keys.push([row.get('app_id') as string, row.get('key_hash') as string]);
      const rows = await mapLimit(keys, READ_FANOUT, ([appId, keyHash]) => this.ownerRow(appId, keyHash, false));
      // Index rows left by a move, detach or lost conditional attach that did not finish cleaning
      // up name an endpoint whose endpoint_owner row disagrees: never listed.
      return rows
        .filter((r): r is types.Row => r !== null)
        .map(ownerFrom)
        .filter((o) => o.tenantId === tenantId && o.ownerExternalId === ownerExternalId)
        .sort(compareAttachments);
    });
  }

  /** Attach, moving from any previous owner; `conditional`: refuse an endpoint owned by another. */
  private async attach(
    tenantId: string,
    ownerExternalId: string,
    appId: string,
    keyHash: string,
    conditional: boolean,
  ): Promise<ConditionalAttachResult> {
    checkAttach(tenantId, ownerExternalId, appId, keyHash);
    return this.guard(async (): Promise<ConditionalAttachResult> => {
      // Application rows never change, so a LOCAL_QUORUM read decides the tenant for good.
      const app = await this.readApp(appId, false);
      if (app === null || app.tenantId !== tenantId) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
      const indexRow = [tenantId, ownerExternalId, appId, keyHash];
      let current = await this.ownerRow(appId, keyHash, true);
      const same = (row: types.Row) => row.get('tenant_id') === tenantId && row.get('owner_external_id') === ownerExternalId;
      // Answers that change nothing leave the index alone, except that a re-attach rewrites its own
      // (legitimate) index row, which repairs one lost to a partial failure.
      if (current !== null && same(current)) {
        await this.client.execute(this.q.insertOwnerEndpoint, indexRow, this.UPSERT);
        return { ok: true, previousOwner: ownerExternalId };
      }
      if (conditional && current !== null) return { ok: false, currentOwner: current.get('owner_external_id') as string };
      // Index row first (see the file comment).
      await this.client.execute(this.q.insertOwnerEndpoint, indexRow, this.UPSERT);
      for (let attempt = 0; attempt < ATTACH_ATTEMPTS; attempt++) {
        if (current !== null && same(current)) return { ok: true, previousOwner: ownerExternalId }; // a concurrent twin won
        if (conditional && current !== null) {
          await this.dropOwnerIndexRow(tenantId, ownerExternalId, appId, keyHash);
          return { ok: false, currentOwner: current.get('owner_external_id') as string };
        }
        const writeId = types.Uuid.random();
        const attachedAt = new Date();
        const out =
          current === null
            ? await this.cas(this.q.insertOwner, [appId, keyHash, tenantId, ownerExternalId, attachedAt, writeId])
            : await this.cas(this.q.moveOwner, [tenantId, ownerExternalId, attachedAt, writeId, appId, keyHash, current.get('write_id')]);
        let applied = out !== 'unknown' && out.applied;
        if (!applied) {
          const row = await this.ownerRow(appId, keyHash, true);
          // A serial read completes any round in flight: our write_id there means it applied.
          applied = out === 'unknown' && row !== null && sameId(row, writeId);
          if (!applied) {
            current = row;
            await new Promise((r) => setTimeout(r, Math.random() * ATTACH_BACKOFF_MS * (attempt + 1)));
            continue;
          }
        }
        if (current !== null) {
          const previous = ownerFrom(current);
          await this.dropOwnerIndexRow(previous.tenantId, previous.ownerExternalId, appId, keyHash);
        }
        await this.client.execute(this.q.insertOwnerEndpoint, indexRow, this.UPSERT);
        return { ok: true, previousOwner: current === null ? null : (current.get('owner_external_id') as string) };
      }
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', `owner of endpoint ${keyHash} kept changing during attach`);
    });
  }

  /**
   * Remove an owner's index row for an endpoint, then put it back if a serial read shows that owner
   * holds the endpoint after all (an attach to it raced with the removal: see the file comment).
   * Best effort, called once the endpoint_owner change has applied: a row left behind is filtered
   * out on listing, so a failure here must not turn an applied change into an error.
   */
  private async dropOwnerIndexRow(tenantId: string, ownerExternalId: string, appId: string, keyHash: string): Promise<void> {
    const indexRow = [tenantId, ownerExternalId, appId, keyHash];
    try {
      await this.client.execute(this.q.deleteOwnerEndpoint, indexRow, this.UPSERT);
      const now = await this.ownerRow(appId, keyHash, true);
      if (now !== null && now.get('tenant_id') === tenantId && now.get('owner_external_id') === ownerExternalId) {
        await this.client.execute(this.q.insertOwnerEndpoint, indexRow, this.UPSERT);
      }
    } catch {
      // See above.
    }
  }

  private async ownerRow(appId: string, keyHash: string, serial: boolean): Promise<types.Row | null> {
    return (await this.client.execute(this.q.selectOwner, [appId, keyHash], serial ? this.SERIAL_READ : this.READ)).first() ?? null;
  }

  // --- endpoint access tokens (see the file comment) ---

  async setEndpointAccessToken(appId: string, keyHash: string, tokenHash: Buffer, expiresAt: number): Promise<void> {
    checkAccessToken(appId, keyHash, tokenHash, expiresAt);
    const hash = Buffer.from(tokenHash);
    return this.guard(async () => {
      const app = await this.readApp(appId, false);
      if (app === null) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
      const tenantId = app.tenantId;
      const claim = await this.claimAccessToken(tenantId, hash, appId, keyHash, expiresAt);
      let current = await this.serialRow(this.q.selectTokenCurrent, [appId, keyHash]);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const now = new Date();
        const out =
          current === null
            ? await this.cas(this.q.insertTokenCurrent, [appId, keyHash, tenantId, hash, new Date(expiresAt), now, claim])
            : await this.cas(this.q.updateTokenCurrent, [tenantId, hash, new Date(expiresAt), now, claim, appId, keyHash, current.get('write_id')]);
        if (out === 'unknown' || !out.applied) {
          const row = await this.serialRow(this.q.selectTokenCurrent, [appId, keyHash]);
          // Unknown outcome and our claim is current: applied (by us or a concurrent set of the
          // same token, which writes the same claim).
          if (!(out === 'unknown' && row !== null && sameId(row, claim))) {
            current = row;
            continue;
          }
        }
        // Release the replaced token's claim unless it is the one just made current, or was taken
        // over (its write_id then differs). A claim left behind no longer resolves anyway.
        if (current !== null && !sameId(current, claim)) {
          await this.cas(this.q.releaseTokenIdx, [current.get('tenant_id'), current.get('token_hash'), current.get('write_id')]).catch(() => undefined);
        }
        return;
      }
      // Best effort: our claim never became current, so it resolves to nothing; free it for others.
      await this.cas(this.q.releaseTokenIdx, [tenantId, hash, claim]).catch(() => undefined);
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', `access token of endpoint ${keyHash} kept changing`);
    });
  }

  async findEndpointByAccessToken(tenantId: string, tokenHash: Buffer, now: number): Promise<{ appId: string; keyHash: string } | null> {
    if (!Number.isFinite(now)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'now must be a finite number');
    if (!validId(tenantId) || !validTokenHash(tokenHash)) return null;
    const hash = Buffer.from(tokenHash);
    return this.guard(async () => {
      const claim = (await this.client.execute(this.q.selectTokenIdx, [tenantId, hash], this.READ)).first();
      if (!claim || now >= ms(claim.get('expires_at'))) return null;
      const appId = claim.get('app_id') as string;
      const keyHash = claim.get('key_hash') as string;
      const current = (await this.client.execute(this.q.selectTokenCurrent, [appId, keyHash], this.READ)).first();
      // Only the endpoint's current claim resolves: a rotated-away or never-completed one does not.
      return current && sameRowId(current, claim) ? { appId, keyHash } : null;
    });
  }

  /**
   * Claim (tenantId, tokenHash) in endpoint_tokens for the endpoint and return the claim's
   * write_id: a new claim, the endpoint's existing claim of the same token (its expiry updated), or
   * a claim taken over from another endpoint whose token expired or is no longer its current one.
   * LK_CONFLICT if another endpoint's current, unexpired token has this hash.
   */
  private async claimAccessToken(tenantId: string, hash: Buffer, appId: string, keyHash: string, expiresAt: number): Promise<types.Uuid> {
    const writeId = types.Uuid.random();
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const holder = await this.serialRow(this.q.selectTokenIdx, [tenantId, hash]);
      let claim = writeId;
      let out: CasOutcome;
      if (holder === null) {
        out = await this.cas(this.q.claimTokenIdx, [tenantId, hash, appId, keyHash, new Date(expiresAt), writeId]);
      } else if (sameId(holder, writeId)) {
        return writeId; // an earlier attempt with an unknown outcome applied
      } else if (holder.get('app_id') === appId && holder.get('key_hash') === keyHash) {
        claim = holder.get('write_id') as types.Uuid;
        out = await this.cas(this.q.refreshTokenIdx, [new Date(expiresAt), tenantId, hash, claim]);
      } else {
        const holderCurrent = (await this.client.execute(this.q.selectTokenCurrent, [holder.get('app_id'), holder.get('key_hash')], this.READ)).first();
        if (Date.now() < ms(holder.get('expires_at')) && holderCurrent && sameRowId(holderCurrent, holder)) {
          throw new LatchkeyError('LK_CONFLICT', 'another endpoint of the tenant holds this access token');
        }
        out = await this.cas(this.q.takeTokenIdx, [appId, keyHash, new Date(expiresAt), writeId, tenantId, hash, holder.get('write_id')]);
      }
      // Not applied or unknown: the next serial read shows where the claim stands.
      if (out !== 'unknown' && out.applied) return claim;
    }
    throw new LatchkeyError('LK_STORE_UNAVAILABLE', `access token claim for endpoint ${keyHash} kept changing`);
  }

  // --- owner verifiers (see the file comment) ---

  async createVerifier(rec: VerifierRecord): Promise<VerifierRecord> {
    checkVerifier(rec);
    const row = copyVerifier(rec);
    const writeId = types.Uuid.random();
    return this.guard(async () => {
      // Applications are never deleted, so an existing application stays existing: no Paxos needed.
      if ((await this.readApp(row.appId, false)) === null) throw new LatchkeyError('LK_APP_NOT_FOUND', row.appId);
      const out = await this.cas(this.q.insertVerifier, [
        row.appId,
        row.verifierToken,
        row.pluginTypeName,
        row.name,
        row.description,
        row.jsonConfiguration,
        new Date(row.createdAt),
        new Date(row.updatedAt),
        writeId,
      ]);
      const applied = out === 'unknown' ? await this.resolve(this.q.selectVerifier, [row.appId, row.verifierToken], writeId) : out.applied;
      if (!applied) throw new LatchkeyError('LK_CONFLICT', `verifier ${row.verifierToken} exists`);
      return copyVerifier(row);
    });
  }

  async getVerifier(appId: string, verifierToken: string): Promise<VerifierRecord | null> {
    if (!validId(appId) || !validId(verifierToken)) return null;
    return this.guard(async () => {
      const row = await this.verifierRow(appId, verifierToken, false);
      return row ? verifierFrom(row) : null;
    });
  }

  async listVerifiers(appId: string): Promise<VerifierRecord[]> {
    if (!validId(appId)) return [];
    return this.guard(async () => {
      const out: VerifierRecord[] = [];
      for await (const row of await this.client.execute(this.q.selectVerifiers, [appId], { ...this.READ, fetchSize: 1000 })) {
        // A partition holding only its static default (no verifier rows) reads as one row of nulls.
        if (row.get('verifier_token') != null) out.push(verifierFrom(row));
      }
      return out;
    });
  }

  async updateVerifier(rec: VerifierRecord): Promise<VerifierRecord> {
    checkVerifier(rec);
    const next = copyVerifier(rec);
    const { appId, verifierToken } = next;
    return this.guard(async () => {
      let row = await this.verifierRow(appId, verifierToken, true);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (row === null) throw new LatchkeyError('LK_NOT_FOUND', `verifier ${verifierToken}`);
        const seen = row;
        const writeId = types.Uuid.random();
        const out = await this.cas(this.q.updateVerifier, [
          next.pluginTypeName,
          next.name,
          next.description,
          next.jsonConfiguration,
          new Date(next.updatedAt),
          writeId,
          appId,
          verifierToken,
          seen.get('write_id'),
        ]);
        if (out === 'unknown' || !out.applied) {
          row = await this.verifierRow(appId, verifierToken, true);
          if (!(out === 'unknown' && row !== null && sameId(row, writeId))) continue;
        }
        return copyVerifier({ ...next, createdAt: ms(seen.get('created_at')) });
      }
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', `verifier ${verifierToken} kept changing during update`);
    });
  }

  async deleteVerifier(appId: string, verifierToken: string): Promise<boolean> {
    if (!validId(appId) || !validId(verifierToken)) return false;
    return this.guard(async () => {
      let row = await this.verifierRow(appId, verifierToken, true);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (row === null) return false;
        const drop = { query: this.q.deleteVerifier, params: [appId, verifierToken, row.get('write_id')] };
        // The default verifier: remove it and clear the default in one conditional batch.
        const out =
          row.get('default_token') === verifierToken
            ? await this.casBatch([drop, { query: this.q.clearDefaultVerifier, params: [appId, verifierToken] }])
            : await this.cas(drop.query, drop.params);
        if (out !== 'unknown' && out.applied) return true;
        row = await this.verifierRow(appId, verifierToken, true);
        // Unknown outcome and no row left: count it as ours (as detachEndpoint).
        if (out === 'unknown' && row === null) return true;
      }
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', `verifier ${verifierToken} kept changing during delete`);
    });
  }

  async setDefaultVerifier(appId: string, verifierToken: string | null): Promise<void> {
    checkId('application id', appId);
    return this.guard(async () => {
      if ((await this.readApp(appId, false)) === null) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
      if (verifierToken === null) {
        let current = await this.defaultVerifier(appId, true);
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
          if (current === null) return;
          const out = await this.cas(this.q.clearDefaultVerifier, [appId, current]);
          if (out !== 'unknown' && out.applied) return;
          current = await this.defaultVerifier(appId, true);
        }
        throw new LatchkeyError('LK_STORE_UNAVAILABLE', `default verifier of application ${appId} kept changing`);
      }
      if (!validId(verifierToken)) throw new LatchkeyError('LK_NOT_FOUND', `verifier ${String(verifierToken)}`);
      let row = await this.verifierRow(appId, verifierToken, true);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (row === null) throw new LatchkeyError('LK_NOT_FOUND', `verifier ${verifierToken}`);
        if (row.get('default_token') === verifierToken) return;
        // Conditional on the row's write_id (the verifier exists) and giving it a new one, so a
        // delete that read the row before this change retries (see the file comment).
        const writeId = types.Uuid.random();
        const out = await this.cas(this.q.setDefaultVerifier, [verifierToken, writeId, appId, verifierToken, row.get('write_id')]);
        if (out !== 'unknown' && out.applied) return;
        row = await this.verifierRow(appId, verifierToken, true);
        if (out === 'unknown' && row !== null && sameId(row, writeId)) return;
      }
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', `default verifier of application ${appId} kept changing`);
    });
  }

  async getDefaultVerifier(appId: string): Promise<string | null> {
    if (!validId(appId)) return null;
    return this.guard(() => this.defaultVerifier(appId, false));
  }

  private async verifierRow(appId: string, verifierToken: string, serial: boolean): Promise<types.Row | null> {
    const row = (await this.client.execute(this.q.selectVerifier, [appId, verifierToken], serial ? this.SERIAL_READ : this.READ)).first();
    return row && row.get('verifier_token') != null ? row : null;
  }

  private async defaultVerifier(appId: string, serial: boolean): Promise<string | null> {
    const row = (await this.client.execute(this.q.selectDefaultVerifier, [appId], serial ? this.SERIAL_READ : this.READ)).first();
    return (row?.get('default_token') as string | null | undefined) ?? null;
  }

  // --- notification queues (see the file comment) ---

  async enqueueNotification(appId: string, keyHash: string, payload: Buffer, max: number): Promise<{ seq: number; dropped: number }> {
    checkEnqueue(appId, keyHash, payload, max);
    const body = Buffer.from(payload);
    const createdAt = new Date();
    const writeId = types.Uuid.random();
    return this.guard(async () => {
      for (let attempt = 0; attempt < SEQ_ATTEMPTS; attempt++) {
        if (attempt > 0) await backoff(attempt);
        // The serial read completes any enqueue or ack in flight, so the head is current.
        const head = await this.queueHead(appId, keyHash, true);
        const last = head?.last ?? 0;
        const first = head?.head ?? 0;
        // Drop policy (store.ts): the oldest go so that the new entry fits within `max`. The live
        // entries are exactly first + 1 .. last (see the file comment).
        const dropped = Math.max(0, last - first + 1 - max);
        const seq = last + 1;
        const inBatch = Math.min(dropped, DROP_IN_BATCH);
        const out = await this.casBatch([
          head === null
            ? { query: this.q.insertQueueHead, params: [appId, keyHash, HEAD_ROW, seq, first + dropped] }
            : { query: this.q.advanceQueueHead, params: [seq, first + dropped, appId, keyHash, HEAD_ROW, last, first] },
          { query: this.q.insertQueued, params: [appId, keyHash, seq, body, createdAt, writeId] },
          ...Array.from({ length: inBatch }, (_, i) => ({ query: this.q.deleteQueued, params: [appId, keyHash, first + 1 + i] })),
        ]);
        let applied = out !== 'unknown' && out.applied;
        if (out === 'unknown') {
          const row = await this.serialRow(this.q.selectQueuedWriteId, [appId, keyHash, seq]);
          applied = row !== null && sameId(row, writeId);
        }
        if (applied) {
          // Rows the batch had no room to delete are below the head already: never listed.
          if (dropped > inBatch) await this.purgeQueued(appId, keyHash, first + inBatch + 1, first + dropped);
          return { seq, dropped };
        }
      }
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', `notification queue of endpoint ${keyHash} kept changing during enqueue`);
    });
  }

  async listNotifications(appId: string, keyHash: string, limit: number): Promise<PendingNotification[]> {
    checkLimit(limit);
    if (!validId(appId) || !validKeyHash(keyHash)) return [];
    return this.guard(async () => {
      const head = await this.queueHead(appId, keyHash, false);
      if (head === null) return [];
      const n = Math.min(limit, MAX_CQL_LIMIT);
      const out: PendingNotification[] = [];
      // From just past the head: the removed entries (tombstones) are all below it.
      const rs = await this.client.execute(this.q.selectQueued, [appId, keyHash, head.head, n], { ...this.READ, fetchSize: Math.min(n, 1000) });
      for await (const row of rs) {
        out.push({ seq: long(row.get('seq')) ?? 0, payload: bytes(row.get('payload')) ?? Buffer.alloc(0), createdAt: ms(row.get('created_at')) });
      }
      return out;
    });
  }

  async ackNotifications(appId: string, keyHash: string, uptoSeq: number): Promise<void> {
    checkAck(appId, keyHash, uptoSeq);
    if (uptoSeq < 1) return; // seqs start at 1
    return this.guard(async () => {
      let head = await this.queueHead(appId, keyHash, true);
      for (let lost = 0; lost < SEQ_ATTEMPTS; ) {
        if (head === null) return; // nothing was ever queued
        const target = Math.min(uptoSeq, head.last);
        if (target <= head.head) return;
        const from = head.head;
        const step = Math.min(target, from + ACK_CHUNK);
        const out = await this.casBatch([
          { query: this.q.moveQueueHead, params: [step, appId, keyHash, HEAD_ROW, from] },
          ...Array.from({ length: step - from }, (_, i) => ({ query: this.q.deleteQueued, params: [appId, keyHash, from + 1 + i] })),
        ]);
        if (out !== 'unknown' && out.applied) {
          head = { last: head.last, head: step };
          continue;
        }
        // Not applied (a concurrent enqueue or ack moved the head) or unknown: the serial read
        // shows where the head is now.
        lost++;
        await backoff(lost);
        head = await this.queueHead(appId, keyHash, true);
      }
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', `notification queue of endpoint ${keyHash} kept changing during ack`);
    });
  }

  /** The head row of an endpoint's queue, or null if nothing was ever queued. A point read. */
  private async queueHead(appId: string, keyHash: string, serial: boolean): Promise<{ last: number; head: number } | null> {
    const row = (await this.client.execute(this.q.selectQueueHead, [appId, keyHash, HEAD_ROW], serial ? this.SERIAL_READ : this.READ)).first();
    if (!row) return null;
    return { last: long(row.get('last_seq')) ?? 0, head: long(row.get('head_seq')) ?? 0 };
  }

  /**
   * Delete the rows from..to of a queue, all already below its head (the rest of a large trim).
   * Conditional batches (IF EXISTS) of the rows a bounded read finds, so each delete is ordered
   * after the Paxos write of its row. Best effort: a row left behind is never listed.
   */
  private async purgeQueued(appId: string, keyHash: string, from: number, to: number): Promise<void> {
    try {
      for (let a = from; a <= to; a += ACK_CHUNK) {
        const b = Math.min(to, a + ACK_CHUNK - 1);
        const seqs: number[] = [];
        const rs = await this.client.execute(this.q.selectQueuedSeqsBetween, [appId, keyHash, a - 1, b], { ...this.READ, fetchSize: ACK_CHUNK });
        for await (const row of rs) seqs.push(long(row.get('seq')) ?? 0);
        if (seqs.length > 0) await this.casBatch(seqs.map((seq) => ({ query: this.q.deleteQueuedIfExists, params: [appId, keyHash, seq] })));
      }
    } catch {
      // See above.
    }
  }

  // --- admin API keys ---

  async createApiKey(apiKey: ApiKeyRecord): Promise<ApiKeyRecord> {
    checkApiKey(apiKey);
    const row = copyApiKey(apiKey);
    const scope = scopeOf(row.tenantId);
    const writeId = types.Uuid.random();
    return this.guard(async () => {
      // Tenants are never deleted, so an existing tenant stays existing: no Paxos needed.
      if (row.tenantId !== null && (await this.readTenant(row.tenantId, false)) === null) {
        throw new LatchkeyError('LK_TENANT_NOT_FOUND', row.tenantId);
      }
      // The scope index row is written before the key (a crash in between cannot hide a created
      // key from listApiKeys) and again after it (see deleteApiKey). A row left by a create that
      // lost, or by a key of another scope, is filtered out on listing.
      await this.client.execute(this.q.insertScopeKey, [scope, row.id], this.UPSERT);
      const out = await this.cas(this.q.insertApiKey, [row.id, row.tenantId ?? types.unset, row.secretHash, row.name, new Date(row.createdAt), writeId]);
      const applied = out === 'unknown' ? await this.resolve(this.q.selectApiKey, [row.id], writeId) : out.applied;
      if (!applied) throw new LatchkeyError('LK_CONFLICT', `API key ${row.id} exists`);
      await this.client.execute(this.q.insertScopeKey, [scope, row.id], this.UPSERT);
      return copyApiKey(row);
    });
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | null> {
    if (!validId(id)) return null;
    return this.guard(() => this.readApiKey(id, false));
  }

  async listApiKeys(tenantId?: string | null): Promise<ApiKeyRecord[]> {
    if (tenantId !== undefined && tenantId !== null && !validId(tenantId)) return [];
    return this.guard(async () => {
      if (tenantId === undefined) {
        const out: ApiKeyRecord[] = [];
        for await (const row of await this.client.execute(this.q.selectApiKeys, [], { ...this.READ, fetchSize: 1000 })) out.push(apiKeyFrom(row));
        return out.sort((a, b) => compare(a.id, b.id));
      }
      const ids: string[] = [];
      for await (const row of await this.client.execute(this.q.selectScopeKeys, [scopeOf(tenantId)], { ...this.READ, fetchSize: 1000 })) {
        ids.push(row.get('key_id') as string);
      }
      const keys = await mapLimit(ids, READ_FANOUT, (id) => this.readApiKey(id, false));
      return keys.filter((k): k is ApiKeyRecord => k !== null && k.tenantId === tenantId);
    });
  }

  async deleteApiKey(id: string): Promise<boolean> {
    if (!validId(id)) return false;
    return this.guard(async () => {
      // Administrative and rare: serial reads, and the delete is conditional on the incarnation
      // seen (its write_id), so the scope index row removed below is that key's.
      let row = await this.serialRow(this.q.selectApiKey, [id]);
      let deleted: ApiKeyRecord;
      for (let attempt = 0; ; attempt++) {
        if (row === null) return false;
        if (attempt === MAX_ATTEMPTS) throw new LatchkeyError('LK_STORE_UNAVAILABLE', `API key ${id} kept changing during delete`);
        const seen = row;
        const out = await this.cas(this.q.deleteApiKey, [id, seen.get('write_id')]);
        if (out !== 'unknown' && out.applied) {
          deleted = apiKeyFrom(seen);
          break;
        }
        row = await this.serialRow(this.q.selectApiKey, [id]);
        // Unknown outcome and the incarnation we saw is gone: count it as ours. (Only a concurrent
        // delete of the same key timing out can make two callers both see true.)
        if (out === 'unknown' && (row === null || !sameRowId(row, seen))) {
          deleted = apiKeyFrom(seen);
          break;
        }
      }
      const scope = scopeOf(deleted.tenantId);
      await this.client.execute(this.q.deleteScopeKey, [scope, id], this.UPSERT);
      // A key with the same id and scope created meanwhile wrote the index row before (and after)
      // its insert; if our removal came last, put the row back.
      const now = await this.readApiKey(id, true);
      if (now !== null && scopeOf(now.tenantId) === scope) await this.client.execute(this.q.insertScopeKey, [scope, id], this.UPSERT);
      return true;
    });
  }

  // --- protection: bans and the session control log (see the file comment) ---

  async putBan(ban: BanRecord): Promise<BanRecord> {
    checkBan(ban);
    const row = copyBan(ban);
    // Nulls are bound (not unset) on purpose: this replaces the whole ban, an earlier expiry too.
    const ttl = row.expiresAt === null ? 0 : ttlUntil(row.expiresAt + EXPIRED_BAN_GRACE_MS);
    return this.guard(async () => {
      const expiresAt = row.expiresAt === null ? null : new Date(row.expiresAt);
      await this.client.execute(
        this.q.upsertBan,
        [BAN_PARTITION, row.kind, row.value, row.reason, new Date(row.createdAt), expiresAt, row.createdBy, ttl],
        this.UPSERT,
      );
      return copyBan(row);
    });
  }

  async deleteBan(kind: BanKind, value: string): Promise<boolean> {
    const v = banKey(kind, value);
    if (v === null) return false;
    return this.guard(async () => {
      const found = (await this.client.execute(this.q.selectBan, [BAN_PARTITION, kind, v], this.READ)).first();
      if (!found) return false;
      await this.client.execute(this.q.deleteBan, [BAN_PARTITION, kind, v], this.UPSERT);
      return true;
    });
  }

  async listBans(now: number): Promise<BanRecord[]> {
    return this.guard(async () => {
      const out: BanRecord[] = [];
      for await (const row of await this.client.execute(this.q.selectBans, [BAN_PARTITION], { ...this.READ, fetchSize: 1000 })) {
        const b = banFrom(row);
        if (banActive(b, now)) out.push(b);
      }
      return out.sort(compareBans);
    });
  }

  async appendControl(entry: ControlEntry): Promise<void> {
    checkControl(entry);
    const e = { ...entry };
    const ttl = ttlUntil(Date.now() + CONTROL_LOG_RETENTION_MS);
    await this.guard(() =>
      this.client.execute(this.q.insertControl, [Math.floor(e.at / CONTROL_BUCKET_MS), e.at, e.id, e.type, e.appId, e.keyHash, ttl], this.UPSERT),
    );
  }

  async listControlSince(sinceMs: number, limit: number): Promise<ControlEntry[]> {
    const since = controlSince(sinceMs, limit);
    if (since === null) return [];
    return this.guard(async () => {
      const now = Date.now();
      // Older buckets hold only entries past the retention (expired or about to): not read.
      const first = Math.max(Math.floor(since / CONTROL_BUCKET_MS), Math.floor((now - CONTROL_LOG_RETENTION_MS) / CONTROL_BUCKET_MS));
      const last = Math.floor(now / CONTROL_BUCKET_MS) + 1;
      const out: ControlEntry[] = [];
      for (let b = first; b <= last && out.length < limit; b += CONTROL_FANOUT) {
        const need = limit - out.length;
        const buckets = Array.from({ length: Math.min(CONTROL_FANOUT, last - b + 1) }, (_, i) => b + i);
        const pages = await Promise.all(buckets.map((bucket) => this.controlRows(bucket, since, need)));
        for (const page of pages) out.push(...page);
      }
      return out.slice(0, limit);
    });
  }

  /** Entries of one control_log bucket with at >= since, in (at, id) order, at most `limit`. */
  private async controlRows(bucket: number, since: number, limit: number): Promise<ControlEntry[]> {
    const n = Math.min(limit, MAX_CQL_LIMIT);
    const rs = await this.client.execute(this.q.selectControl, [bucket, since, n], { ...this.READ, fetchSize: Math.min(n, 1000) });
    const out: ControlEntry[] = [];
    for await (const row of rs) out.push(controlFrom(row));
    return out;
  }

  async countApiKeys(): Promise<number> {
    return this.guard(async () => {
      // Paged instead of SELECT COUNT(*): no single request has to scan the table in time.
      let n = 0;
      for await (const _row of await this.client.execute(this.q.selectApiKeyIds, [], { ...this.READ, fetchSize: 1000 })) n++;
      return n;
    });
  }

  async close(): Promise<void> {
    this.closing ??= this.client.shutdown().catch((err: unknown) => {
      throw storeError(err, 'close failed');
    });
    return this.closing;
  }

  // --- plumbing ---

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closing) throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'store is closed');
    try {
      return await fn();
    } catch (err) {
      throw storeError(err);
    }
  }

  /** Run a lightweight transaction; 'unknown' when it may or may not have applied. */
  private async cas(query: string, params: unknown[]): Promise<CasOutcome> {
    try {
      const rs = await this.client.execute(query, params, this.CAS);
      return { applied: rs.wasApplied() };
    } catch (err) {
      if (outcomeUnknown(err)) return 'unknown';
      throw err;
    }
  }

  /**
   * Decide an unknown outcome with a serial read of the row `query` selects: applied if its
   * write_id is ours, not applied if the row is someone else's; LK_STORE_UNAVAILABLE if there is
   * no row (the transaction did not apply, and a conflict cannot be told from a failure then).
   */
  private async resolve(query: string, params: unknown[], writeId: types.Uuid): Promise<boolean> {
    const row = await this.serialRow(query, params);
    if (row === null) throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'lightweight transaction timed out and did not apply');
    return sameId(row, writeId);
  }

  /** Run a conditional batch (one partition); 'unknown' when it may or may not have applied. */
  private async casBatch(queries: Array<{ query: string; params: unknown[] }>): Promise<CasOutcome> {
    try {
      const rs = await this.client.batch(queries, this.CAS);
      return { applied: rs.wasApplied() };
    } catch (err) {
      if (outcomeUnknown(err)) return 'unknown';
      throw err;
    }
  }

  private async serialRow(query: string, params: unknown[]): Promise<types.Row | null> {
    return (await this.client.execute(query, params, this.SERIAL_READ)).first() ?? null;
  }

  /**
   * Claim `token` for application `appId`. Returns the claim's write_id if this call wrote the
   * claim (the caller releases it if the application insert loses), null if a claim by the same
   * application id was already there (a retried or concurrent create of that id; the application
   * insert decides). Throws LK_APP_TOKEN_TAKEN if another application holds it.
   */
  private async claimToken(token: string, appId: string): Promise<types.Uuid | null> {
    const writeId = types.Uuid.random();
    let out = await this.cas(this.q.claimToken, [token, appId, new Date(), writeId]);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (out !== 'unknown' && out.applied) return writeId;
      const holder = await this.serialRow(this.q.selectToken, [token]);
      if (!holder) {
        if (out === 'unknown') throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'token claim timed out and did not apply');
        out = await this.cas(this.q.claimToken, [token, appId, new Date(), writeId]); // released meanwhile
        continue;
      }
      if (sameId(holder, writeId)) return writeId;
      const holderId = holder.get('app_id') as string;
      if (holderId === appId) return null;
      const holderApp = await this.readApp(holderId, true);
      if (holderApp !== null && holderApp.appToken === token) throw new LatchkeyError('LK_APP_TOKEN_TAKEN', `application ${appId}`);
      // Application rows never change, so a holder whose row exists with another token left this
      // claim behind in a failed create; a holder with no row is either still being created
      // (leave it) or crashed between the two transactions (take over once stale).
      const stale = holderApp !== null || Date.now() - ms(holder.get('claimed_at')) > CLAIM_STALE_MS;
      if (!stale) throw new LatchkeyError('LK_APP_TOKEN_TAKEN', `application ${appId}`);
      out = await this.cas(this.q.takeOverToken, [appId, new Date(), writeId, token, holder.get('write_id')]);
    }
    throw new LatchkeyError('LK_STORE_UNAVAILABLE', `token claim for application ${appId} kept changing`);
  }

  /** Write the credentials_by_app row of a credentials id (before the credentials are created). */
  private async indexCredentials(appId: string, credentialsId: string): Promise<void> {
    await this.client.execute(this.q.insertCredsIndex, [appId, credentialsBucket(credentialsId), credentialsId], this.UPSERT);
  }

  private async credentialIds(appId: string, bucket: number, after: string | null, limit: number): Promise<string[]> {
    const opts = { ...this.READ, fetchSize: Math.min(limit, 1000) };
    const rs =
      after === null
        ? await this.client.execute(this.q.selectCredsIndex, [appId, bucket, limit], opts)
        : await this.client.execute(this.q.selectCredsIndexAfter, [appId, bucket, after, limit], opts);
    const out: string[] = [];
    for await (const row of rs) out.push(row.get('credentials_id') as string);
    return out;
  }

  /** Endpoints of one app_endpoints bucket in key hash order, after `after` if given, at most `limit`. */
  private async bucketRows(appId: string, bucket: number, after: string | null, limit: number): Promise<EndpointRecord[]> {
    const n = Math.min(limit, MAX_CQL_LIMIT);
    const opts = { ...this.READ, fetchSize: Math.min(n, 1000) };
    const rs =
      after === null
        ? await this.client.execute(this.q.selectBucket, [appId, bucket, n], opts)
        : await this.client.execute(this.q.selectBucketAfter, [appId, bucket, after, n], opts);
    const out: EndpointRecord[] = [];
    for await (const row of rs) out.push(endpointFrom(row));
    return out;
  }

  private async readTenant(id: string, serial: boolean): Promise<Tenant | null> {
    const row = (await this.client.execute(this.q.selectTenant, [id], serial ? this.SERIAL_READ : this.READ)).first();
    return row ? tenantFrom(row) : null;
  }

  private async readApp(id: string, serial: boolean): Promise<Application | null> {
    const row = (await this.client.execute(this.q.selectApp, [id], serial ? this.SERIAL_READ : this.READ)).first();
    return row ? appFrom(row) : null;
  }

  private async readCreds(appId: string, credentialsId: string, serial: boolean): Promise<CredentialsRecord | null> {
    const row = (await this.client.execute(this.q.selectCreds, [appId, credentialsId], serial ? this.SERIAL_READ : this.READ)).first();
    return row ? credsFrom(row) : null;
  }

  private async readApiKey(id: string, serial: boolean): Promise<ApiKeyRecord | null> {
    const row = (await this.client.execute(this.q.selectApiKey, [id], serial ? this.SERIAL_READ : this.READ)).first();
    return row ? apiKeyFrom(row) : null;
  }

  /**
   * The registration of credentials: the newer of the registrations row and a profile provisioned
   * with the credentials (see the file comment, "Provisioning with a profile").
   */
  private async readReg(appId: string, credentialsId: string): Promise<RegistrationRecord | null> {
    const [regRs, credsRs] = await Promise.all([
      this.client.execute(this.q.selectReg, [appId, credentialsId], this.READ),
      this.client.execute(this.q.selectCredsRegistration, [appId, credentialsId], this.READ),
    ]);
    const regRow = regRs.first();
    const reg = regRow ? regFrom(regRow) : null;
    const creds = credsRs.first();
    const at = creds?.get('registered_at');
    if (!creds || !(at instanceof Date)) return reg;
    if (reg !== null && reg.updatedAt >= at.getTime()) return reg;
    const serverProfileBody = (creds.get('server_profile_body') as string | null) ?? null;
    return { appId, credentialsId, serverProfileBody, createdAt: reg?.createdAt ?? at.getTime(), updatedAt: at.getTime() };
  }
}

// --- CQL ---

/**
 * Options of every statement the store runs, by kind. isIdempotent tells the driver whether it may
 * send a request again (to the same or the next coordinator) after a socket error, a client
 * timeout or an overloaded answer, when the first attempt may have been applied:
 * - Reads, plain and serial, are idempotent. A serial read may complete a Paxos round another
 *   caller left in flight, which any later serial read would complete the same way.
 * - Plain upserts and deletes are idempotent: each sets whole cells to values fixed by the caller,
 *   at the client timestamp the driver picked for the first attempt (a retry reuses it), so a late
 *   retry cannot overwrite a newer write. The store has no counters and no list appends, which
 *   would not be.
 * - Lightweight transactions (single statements and conditional batches) are NOT: a second
 *   attempt of one that applied would answer "not applied". Their unknown outcomes are decided
 *   here by a serial read instead (outcomeUnknown).
 * Exported for a unit test.
 */
export function statementOptions(serial: number): { READ: QueryOptions; SERIAL_READ: QueryOptions; UPSERT: QueryOptions; CAS: QueryOptions } {
  const localQuorum = consistencies.localQuorum;
  return {
    READ: { prepare: true, consistency: localQuorum, isIdempotent: true },
    SERIAL_READ: { prepare: true, consistency: serial, isIdempotent: true },
    UPSERT: { prepare: true, consistency: localQuorum, isIdempotent: true },
    CAS: { prepare: true, consistency: localQuorum, serialConsistency: serial, isIdempotent: false },
  };
}

/** The CREATE TABLE statements of open() (see the file comment). Exported for a test. */
export function schema(ks: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${ks}.tenants (id text PRIMARY KEY, name text, created_at timestamp, write_id uuid)`,
    `CREATE TABLE IF NOT EXISTS ${ks}.applications (id text PRIMARY KEY, tenant_id text, name text, app_token text,
       credentials_service text, profile_schema text, created_at timestamp, write_id uuid)`,
    `CREATE TABLE IF NOT EXISTS ${ks}.applications_by_token (app_token text PRIMARY KEY, app_id text, claimed_at timestamp, write_id uuid)`,
    `CREATE TABLE IF NOT EXISTS ${ks}.applications_by_tenant (tenant_id text, app_id text, PRIMARY KEY ((tenant_id), app_id))
       WITH CLUSTERING ORDER BY (app_id ASC)`,
    // server_profile_body and registered_at: see ADDED_COLUMNS.
    `CREATE TABLE IF NOT EXISTS ${ks}.credentials (app_id text, credentials_id text, public_key blob, status text,
       endpoint_id text, created_at timestamp, updated_at timestamp, write_id uuid, server_profile_body text,
       registered_at timestamp, PRIMARY KEY ((app_id, credentials_id)))`,
    `CREATE TABLE IF NOT EXISTS ${ks}.credentials_by_app (app_id text, bucket int, credentials_id text,
       PRIMARY KEY ((app_id, bucket), credentials_id)) WITH CLUSTERING ORDER BY (credentials_id ASC)`,
    `CREATE TABLE IF NOT EXISTS ${ks}.registrations (app_id text, credentials_id text, server_profile_body text,
       created_at timestamp, updated_at timestamp, PRIMARY KEY ((app_id, credentials_id)))`,
    `CREATE TABLE IF NOT EXISTS ${ks}.app_endpoints (app_id text, bucket int, key_hash text, credentials_id text,
       public_key blob, profile_body blob, profile_hash blob, server_profile_body text, created_at timestamp,
       updated_at timestamp, PRIMARY KEY ((app_id, bucket), key_hash)) WITH CLUSTERING ORDER BY (key_hash ASC)`,
    `CREATE TABLE IF NOT EXISTS ${ks}.app_endpoint_buckets (app_id text, bucket int, PRIMARY KEY ((app_id), bucket))
       WITH CLUSTERING ORDER BY (bucket ASC)`,
    `CREATE TABLE IF NOT EXISTS ${ks}.api_keys (id text PRIMARY KEY, tenant_id text, secret_hash blob, name text,
       created_at timestamp, write_id uuid)`,
    `CREATE TABLE IF NOT EXISTS ${ks}.api_keys_by_tenant (scope text, key_id text, PRIMARY KEY ((scope), key_id))
       WITH CLUSTERING ORDER BY (key_id ASC)`,
    `CREATE TABLE IF NOT EXISTS ${ks}.endpoint_owner (app_id text, key_hash text, tenant_id text, owner_external_id text,
       attached_at timestamp, write_id uuid, PRIMARY KEY ((app_id, key_hash)))`,
    `CREATE TABLE IF NOT EXISTS ${ks}.owner_endpoints (tenant_id text, owner_external_id text, app_id text, key_hash text,
       PRIMARY KEY ((tenant_id, owner_external_id), app_id, key_hash)) WITH CLUSTERING ORDER BY (app_id ASC, key_hash ASC)`,
    `CREATE TABLE IF NOT EXISTS ${ks}.endpoint_tokens (tenant_id text, token_hash blob, app_id text, key_hash text,
       expires_at timestamp, write_id uuid, PRIMARY KEY ((tenant_id, token_hash)))`,
    `CREATE TABLE IF NOT EXISTS ${ks}.endpoint_token_current (app_id text, key_hash text, tenant_id text, token_hash blob,
       expires_at timestamp, updated_at timestamp, write_id uuid, PRIMARY KEY ((app_id, key_hash)))`,
    `CREATE TABLE IF NOT EXISTS ${ks}.verifiers (app_id text, verifier_token text, plugin_type_name text, name text,
       description text, json_configuration text, created_at timestamp, updated_at timestamp, write_id uuid,
       default_token text static, PRIMARY KEY ((app_id), verifier_token)) WITH CLUSTERING ORDER BY (verifier_token ASC)`,
    // gc_grace_seconds: one day, not ten (removed entries are tombstones below the head; see the
    // file comment).
    `CREATE TABLE IF NOT EXISTS ${ks}.notification_queue (app_id text, key_hash text, seq bigint, payload blob,
       created_at timestamp, write_id uuid, last_seq bigint, head_seq bigint, PRIMARY KEY ((app_id, key_hash), seq))
       WITH CLUSTERING ORDER BY (seq ASC) AND gc_grace_seconds = 86400`,
    `CREATE TABLE IF NOT EXISTS ${ks}.event_classes (app_id text, key_hash text, classes frozen<list<text>>,
       PRIMARY KEY ((app_id, key_hash)))`,
    // gc_grace_seconds: one day, not ten (expired bans are tombstones in the one partition every
    // process reads; see the file comment).
    `CREATE TABLE IF NOT EXISTS ${ks}.bans (bucket int, kind text, ban_value text, reason text, created_at timestamp,
       expires_at timestamp, created_by text, PRIMARY KEY ((bucket), kind, ban_value))
       WITH CLUSTERING ORDER BY (kind ASC, ban_value ASC) AND gc_grace_seconds = 86400`,
    `CREATE TABLE IF NOT EXISTS ${ks}.control_log (bucket bigint, at bigint, id text, type text, app_id text, key_hash text,
       PRIMARY KEY ((bucket), at, id)) WITH CLUSTERING ORDER BY (at ASC, id ASC)`,
  ];
}

function queries(ks: string) {
  const app = 'id, tenant_id, name, app_token, credentials_service, profile_schema, created_at, write_id';
  const creds = 'app_id, credentials_id, public_key, status, endpoint_id, created_at, updated_at, write_id';
  const reg = 'app_id, credentials_id, server_profile_body, created_at, updated_at';
  const apiKey = 'id, tenant_id, secret_hash, name, created_at, write_id';
  const ep = 'app_id, key_hash, credentials_id, public_key, profile_body, profile_hash, server_profile_body, created_at, updated_at';
  const owner = 'app_id, key_hash, tenant_id, owner_external_id, attached_at, write_id';
  const current = 'app_id, key_hash, tenant_id, token_hash, expires_at, updated_at, write_id';
  const verifier = 'app_id, verifier_token, plugin_type_name, name, description, json_configuration, created_at, updated_at, write_id';
  return {
    insertTenant: `INSERT INTO ${ks}.tenants (id, name, created_at, write_id) VALUES (?, ?, ?, ?) IF NOT EXISTS`,
    selectTenant: `SELECT id, name, created_at, write_id FROM ${ks}.tenants WHERE id = ?`,
    selectTenants: `SELECT id, name, created_at FROM ${ks}.tenants`,

    insertApp: `INSERT INTO ${ks}.applications (${app}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    selectApp: `SELECT ${app} FROM ${ks}.applications WHERE id = ?`,
    claimToken: `INSERT INTO ${ks}.applications_by_token (app_token, app_id, claimed_at, write_id) VALUES (?, ?, ?, ?) IF NOT EXISTS`,
    takeOverToken: `UPDATE ${ks}.applications_by_token SET app_id = ?, claimed_at = ?, write_id = ? WHERE app_token = ? IF write_id = ?`,
    releaseToken: `DELETE FROM ${ks}.applications_by_token WHERE app_token = ? IF write_id = ?`,
    selectToken: `SELECT app_id, claimed_at, write_id FROM ${ks}.applications_by_token WHERE app_token = ?`,
    insertTenantApp: `INSERT INTO ${ks}.applications_by_tenant (tenant_id, app_id) VALUES (?, ?)`,
    selectTenantApps: `SELECT app_id FROM ${ks}.applications_by_tenant WHERE tenant_id = ?`,

    insertCreds: `INSERT INTO ${ks}.credentials (${creds}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    insertCredsRegistered: `INSERT INTO ${ks}.credentials (${creds}, server_profile_body, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                            IF NOT EXISTS`,
    selectCredsRegistration: `SELECT server_profile_body, registered_at FROM ${ks}.credentials WHERE app_id = ? AND credentials_id = ?`,
    selectCreds: `SELECT ${creds} FROM ${ks}.credentials WHERE app_id = ? AND credentials_id = ?`,
    bindCreds: `UPDATE ${ks}.credentials SET status = 'IN_USE', endpoint_id = ?, updated_at = ?
                WHERE app_id = ? AND credentials_id = ? IF status = 'AVAILABLE'`,
    insertCredsIndex: `INSERT INTO ${ks}.credentials_by_app (app_id, bucket, credentials_id) VALUES (?, ?, ?)`,
    selectCredsIndex: `SELECT credentials_id FROM ${ks}.credentials_by_app WHERE app_id = ? AND bucket = ? LIMIT ?`,
    selectCredsIndexAfter: `SELECT credentials_id FROM ${ks}.credentials_by_app WHERE app_id = ? AND bucket = ? AND credentials_id > ? LIMIT ?`,
    revokeCreds: `UPDATE ${ks}.credentials SET status = 'REVOKED', updated_at = ? WHERE app_id = ? AND credentials_id = ? IF status = ?`,

    upsertReg: `INSERT INTO ${ks}.registrations (${reg}) VALUES (?, ?, ?, ?, ?)`,
    selectReg: `SELECT ${reg} FROM ${ks}.registrations WHERE app_id = ? AND credentials_id = ?`,

    upsertEndpoint: `INSERT INTO ${ks}.app_endpoints (app_id, bucket, key_hash, credentials_id, public_key, profile_body, profile_hash,
                     server_profile_body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    selectEndpoint: `SELECT ${ep} FROM ${ks}.app_endpoints WHERE app_id = ? AND bucket = ? AND key_hash = ?`,
    selectBucket: `SELECT ${ep} FROM ${ks}.app_endpoints WHERE app_id = ? AND bucket = ? LIMIT ?`,
    selectBucketAfter: `SELECT ${ep} FROM ${ks}.app_endpoints WHERE app_id = ? AND bucket = ? AND key_hash > ? LIMIT ?`,
    insertEndpointBucket: `INSERT INTO ${ks}.app_endpoint_buckets (app_id, bucket) VALUES (?, ?)`,
    selectEndpointBuckets: `SELECT bucket FROM ${ks}.app_endpoint_buckets WHERE app_id = ? AND bucket >= ?`,

    insertApiKey: `INSERT INTO ${ks}.api_keys (${apiKey}) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    selectApiKey: `SELECT ${apiKey} FROM ${ks}.api_keys WHERE id = ?`,
    selectApiKeys: `SELECT ${apiKey} FROM ${ks}.api_keys`,
    selectApiKeyIds: `SELECT id FROM ${ks}.api_keys`,
    deleteApiKey: `DELETE FROM ${ks}.api_keys WHERE id = ? IF write_id = ?`,
    insertScopeKey: `INSERT INTO ${ks}.api_keys_by_tenant (scope, key_id) VALUES (?, ?)`,
    deleteScopeKey: `DELETE FROM ${ks}.api_keys_by_tenant WHERE scope = ? AND key_id = ?`,
    selectScopeKeys: `SELECT key_id FROM ${ks}.api_keys_by_tenant WHERE scope = ?`,

    selectOwner: `SELECT ${owner} FROM ${ks}.endpoint_owner WHERE app_id = ? AND key_hash = ?`,
    insertOwner: `INSERT INTO ${ks}.endpoint_owner (${owner}) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    moveOwner: `UPDATE ${ks}.endpoint_owner SET tenant_id = ?, owner_external_id = ?, attached_at = ?, write_id = ?
                WHERE app_id = ? AND key_hash = ? IF write_id = ?`,
    deleteOwner: `DELETE FROM ${ks}.endpoint_owner WHERE app_id = ? AND key_hash = ? IF write_id = ?`,
    insertOwnerEndpoint: `INSERT INTO ${ks}.owner_endpoints (tenant_id, owner_external_id, app_id, key_hash) VALUES (?, ?, ?, ?)`,
    deleteOwnerEndpoint: `DELETE FROM ${ks}.owner_endpoints WHERE tenant_id = ? AND owner_external_id = ? AND app_id = ? AND key_hash = ?`,
    upsertEventClasses: `INSERT INTO ${ks}.event_classes (app_id, key_hash, classes) VALUES (?, ?, ?)`,
    selectEventClasses: `SELECT classes FROM ${ks}.event_classes WHERE app_id = ? AND key_hash = ?`,
    selectOwnerEndpoints: `SELECT app_id, key_hash FROM ${ks}.owner_endpoints WHERE tenant_id = ? AND owner_external_id = ?`,

    selectTokenIdx: `SELECT app_id, key_hash, expires_at, write_id FROM ${ks}.endpoint_tokens WHERE tenant_id = ? AND token_hash = ?`,
    claimTokenIdx: `INSERT INTO ${ks}.endpoint_tokens (tenant_id, token_hash, app_id, key_hash, expires_at, write_id)
                    VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    refreshTokenIdx: `UPDATE ${ks}.endpoint_tokens SET expires_at = ? WHERE tenant_id = ? AND token_hash = ? IF write_id = ?`,
    takeTokenIdx: `UPDATE ${ks}.endpoint_tokens SET app_id = ?, key_hash = ?, expires_at = ?, write_id = ?
                   WHERE tenant_id = ? AND token_hash = ? IF write_id = ?`,
    releaseTokenIdx: `DELETE FROM ${ks}.endpoint_tokens WHERE tenant_id = ? AND token_hash = ? IF write_id = ?`,
    selectTokenCurrent: `SELECT ${current} FROM ${ks}.endpoint_token_current WHERE app_id = ? AND key_hash = ?`,
    insertTokenCurrent: `INSERT INTO ${ks}.endpoint_token_current (${current}) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    updateTokenCurrent: `UPDATE ${ks}.endpoint_token_current SET tenant_id = ?, token_hash = ?, expires_at = ?, updated_at = ?, write_id = ?
                         WHERE app_id = ? AND key_hash = ? IF write_id = ?`,

    insertVerifier: `INSERT INTO ${ks}.verifiers (${verifier}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    selectVerifier: `SELECT ${verifier}, default_token FROM ${ks}.verifiers WHERE app_id = ? AND verifier_token = ?`,
    selectVerifiers: `SELECT ${verifier} FROM ${ks}.verifiers WHERE app_id = ?`,
    updateVerifier: `UPDATE ${ks}.verifiers SET plugin_type_name = ?, name = ?, description = ?, json_configuration = ?, updated_at = ?,
                     write_id = ? WHERE app_id = ? AND verifier_token = ? IF write_id = ?`,
    deleteVerifier: `DELETE FROM ${ks}.verifiers WHERE app_id = ? AND verifier_token = ? IF write_id = ?`,
    selectDefaultVerifier: `SELECT default_token FROM ${ks}.verifiers WHERE app_id = ? LIMIT 1`,
    // Sets a regular column too (write_id): an UPDATE naming the clustering key may not set only
    // static columns.
    setDefaultVerifier: `UPDATE ${ks}.verifiers SET default_token = ?, write_id = ? WHERE app_id = ? AND verifier_token = ? IF write_id = ?`,
    clearDefaultVerifier: `UPDATE ${ks}.verifiers SET default_token = null WHERE app_id = ? IF default_token = ?`,

    // The head row (seq = HEAD_ROW) holds last_seq and head_seq; notification rows hold the rest.
    selectQueueHead: `SELECT last_seq, head_seq FROM ${ks}.notification_queue WHERE app_id = ? AND key_hash = ? AND seq = ?`,
    insertQueueHead: `INSERT INTO ${ks}.notification_queue (app_id, key_hash, seq, last_seq, head_seq) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS`,
    advanceQueueHead: `UPDATE ${ks}.notification_queue SET last_seq = ?, head_seq = ? WHERE app_id = ? AND key_hash = ? AND seq = ?
                       IF last_seq = ? AND head_seq = ?`,
    moveQueueHead: `UPDATE ${ks}.notification_queue SET head_seq = ? WHERE app_id = ? AND key_hash = ? AND seq = ? IF head_seq = ?`,
    insertQueued: `INSERT INTO ${ks}.notification_queue (app_id, key_hash, seq, payload, created_at, write_id) VALUES (?, ?, ?, ?, ?, ?)`,
    deleteQueued: `DELETE FROM ${ks}.notification_queue WHERE app_id = ? AND key_hash = ? AND seq = ?`,
    deleteQueuedIfExists: `DELETE FROM ${ks}.notification_queue WHERE app_id = ? AND key_hash = ? AND seq = ? IF EXISTS`,
    selectQueuedWriteId: `SELECT write_id FROM ${ks}.notification_queue WHERE app_id = ? AND key_hash = ? AND seq = ?`,
    selectQueued: `SELECT seq, payload, created_at FROM ${ks}.notification_queue WHERE app_id = ? AND key_hash = ? AND seq > ? LIMIT ?`,
    selectQueuedSeqsBetween: `SELECT seq FROM ${ks}.notification_queue WHERE app_id = ? AND key_hash = ? AND seq > ? AND seq <= ?`,

    // TTL 0 is no TTL (a permanent ban).
    upsertBan: `INSERT INTO ${ks}.bans (bucket, kind, ban_value, reason, created_at, expires_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)
                USING TTL ?`,
    selectBan: `SELECT kind FROM ${ks}.bans WHERE bucket = ? AND kind = ? AND ban_value = ?`,
    deleteBan: `DELETE FROM ${ks}.bans WHERE bucket = ? AND kind = ? AND ban_value = ?`,
    selectBans: `SELECT kind, ban_value, reason, created_at, expires_at, created_by FROM ${ks}.bans WHERE bucket = ?`,
    insertControl: `INSERT INTO ${ks}.control_log (bucket, at, id, type, app_id, key_hash) VALUES (?, ?, ?, ?, ?, ?) USING TTL ?`,
    selectControl: `SELECT at, id, type, app_id, key_hash FROM ${ks}.control_log WHERE bucket = ? AND at >= ? LIMIT ?`,
  };
}

/** How long open() waits for all nodes to report the same schema version after a change. */
const SCHEMA_AGREEMENT_TIMEOUT_MS = 60_000; // 60 s
/** How long open() waits for another node that holds the schema lease (2.2). */
const SCHEMA_LEASE_WAIT_MS = 300_000; // 5 min
/** The schema lease expires this long after its last renewal, so a crashed holder frees it. */
const SCHEMA_LEASE_TTL_SEC = 120; // 2 min, renewed after every table
/** Random delay before creating the lock table itself on 2.2 (spreads nodes started together). */
const LOCK_TABLE_JITTER_MS = 2_000; // 2 s
const LOCK_TABLE_ATTEMPTS = 5;
const LOCK_ROW = 'schema';

/**
 * Create the tables of schema() the cluster lacks (see the file comment, "Schema creation").
 * - Cassandra 3.0+ on every host: each table with its fixed id (tableId), so concurrent creators
 *   create the same table; no lease.
 * - Otherwise (2.2, or a cluster mid-upgrade): a lightweight-transaction lease row in
 *   schema_lock, so one node at a time creates tables. Its holder waits for schema agreement
 *   after each table, so the next holder (whose existence check reads the schema of one node)
 *   sees every table created before it.
 * Either way each CREATE is followed by an explicit wait for schema agreement: the driver's own
 * wait after DDL gives up silently after protocolOptions.maxSchemaAgreementWaitSeconds (10 s).
 * What remains on 2.2: the CREATE of schema_lock itself has no lease. Nodes started together
 * spread it with a random delay and re-check after agreement; if two still create it at once, the
 * loser's CREATE fails with "Column family ID mismatch" and is retried after agreement. If schema
 * agreement then never comes (the nodes kept different ids), open() fails with
 * LK_STORE_UNAVAILABLE: run `nodetool resetlocalschema` on the disagreeing node (or restart it).
 */
async function ensureSchema(client: Client, ks: string): Promise<void> {
  const withId = [...client.hosts.values()].every((h) => Number.parseInt(h.cassandraVersion, 10) >= 3);
  const ddlOf = (ddl: string, table: string) => (withId ? withTableId(ddl, tableId(ks, table)) : ddl);
  const tables = schema(ks).map((ddl) => ({ table: /^CREATE TABLE IF NOT EXISTS \w+\.(\w+) /.exec(ddl)![1]!, ddl }));
  // The driver's metadata may not know a keyspace another node just created (getTable would then
  // answer null for every table): refresh it, then getTable reads the control host's schema.
  const missing = async () => {
    await client.metadata.refreshKeyspace(ks);
    const out: typeof tables = [];
    for (const t of tables) if (!(await client.metadata.getTable(ks, t.table))) out.push(t);
    return out;
  };
  const create = async (t: { table: string; ddl: string }) => {
    await client.execute(ddlOf(t.ddl, t.table), [], { prepare: false });
    await waitForSchemaAgreement(client);
  };
  await waitForSchemaAgreement(client);
  let todo = await missing();
  if (todo.length === 0) return; // a restart: no DDL, no lease
  if (withId) {
    for (const t of todo) await create(t);
    return;
  }

  await ensureLockTable(client, ks, create);
  const lease = schemaLease(client, ks);
  const holder = types.Uuid.random();
  const deadline = Date.now() + SCHEMA_LEASE_WAIT_MS;
  while (!(await lease.acquire(holder))) {
    if (Date.now() > deadline) {
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', `another node held the schema lease of ${ks} for ${SCHEMA_LEASE_WAIT_MS / 1000} s`);
    }
    await sleep(500 + Math.random() * 500);
    await waitForSchemaAgreement(client);
    if ((await missing()).length === 0) return; // the holder created them
  }
  try {
    // The previous holder waited for agreement on its last table; wait again in case it crashed
    // before that, then read what is still missing.
    await waitForSchemaAgreement(client);
    todo = await missing();
    for (const t of todo) {
      await create(t);
      if (!(await lease.renew(holder))) throw new LatchkeyError('LK_STORE_UNAVAILABLE', `schema lease of ${ks} lost while creating tables`);
    }
  } finally {
    await lease.release(holder).catch(() => undefined); // best effort: the TTL frees it otherwise
  }
}

/**
 * Columns added to a table after the table was first released. A keyspace created by an older
 * build gets them from open() (ALTER TABLE ... ADD, then a wait for schema agreement); tables
 * created by this build have them in their CREATE. Several nodes adding the same column at once
 * is harmless (a column add carries no table id; the second ALTER fails because the column
 * exists, which is what it wanted).
 */
const ADDED_COLUMNS: ReadonlyArray<{ table: string; column: string; type: string }> = [
  // A server-side profile provisioned with the credentials (see the file comment).
  { table: 'credentials', column: 'server_profile_body', type: 'text' },
  { table: 'credentials', column: 'registered_at', type: 'timestamp' },
];

async function ensureColumns(client: Client, ks: string): Promise<void> {
  const has = async (table: string, column: string, refresh: boolean) => {
    if (refresh) await client.metadata.refreshKeyspace(ks);
    const t = await client.metadata.getTable(ks, table);
    return t != null && t.columnsByName[column] !== undefined;
  };
  for (const c of ADDED_COLUMNS) {
    if (await has(c.table, c.column, false)) continue;
    try {
      await client.execute(`ALTER TABLE ${ks}.${c.table} ADD ${c.column} ${c.type}`, [], { prepare: false });
    } catch (err) {
      await waitForSchemaAgreement(client);
      if (!(await has(c.table, c.column, true))) throw err;
    }
    await waitForSchemaAgreement(client);
  }
}

/** Create schema_lock if missing; on 2.2 spread concurrent creators and retry an id mismatch. */
async function ensureLockTable(client: Client, ks: string, create: (t: { table: string; ddl: string }) => Promise<void>): Promise<void> {
  const t = { table: 'schema_lock', ddl: `CREATE TABLE IF NOT EXISTS ${ks}.schema_lock (name text PRIMARY KEY, holder uuid, acquired_at timestamp)` };
  const exists = async () => {
    await client.metadata.refreshKeyspace(ks);
    return (await client.metadata.getTable(ks, t.table)) != null;
  };
  for (let attempt = 0; attempt < LOCK_TABLE_ATTEMPTS; attempt++) {
    if (await exists()) return;
    await sleep(Math.random() * LOCK_TABLE_JITTER_MS);
    await waitForSchemaAgreement(client);
    if (await exists()) return;
    try {
      await create(t);
      return;
    } catch (err) {
      if (!/Column family ID mismatch/i.test(err instanceof Error ? err.message : String(err))) throw err;
      await waitForSchemaAgreement(client);
    }
  }
  throw new LatchkeyError('LK_STORE_UNAVAILABLE', `could not create ${ks}.schema_lock (column family id mismatch)`);
}

/**
 * The schema lease: one row of schema_lock taken with IF NOT EXISTS and a TTL, renewed and
 * released conditional on its holder id. SERIAL, not LOCAL_SERIAL: the schema is cluster-wide, so
 * nodes in every data center contend for one lease (a first start needs a quorum of each DC's
 * replicas of the keyspace; restarts take no lease). An unknown outcome is decided by a serial read.
 */
function schemaLease(client: Client, ks: string) {
  const opts: QueryOptions = { prepare: true, consistency: consistencies.quorum, serialConsistency: consistencies.serial, isIdempotent: false };
  const cas = async (query: string, params: unknown[], holder: types.Uuid, wantHolder: boolean): Promise<boolean> => {
    try {
      return (await client.execute(query, params, opts)).wasApplied();
    } catch (err) {
      if (!outcomeUnknown(err)) throw err;
      const row = (await client.execute(`SELECT holder FROM ${ks}.schema_lock WHERE name = ?`, [LOCK_ROW], { prepare: true, consistency: consistencies.serial, isIdempotent: true })).first();
      const mine = row != null && String(row.get('holder')) === holder.toString();
      return wantHolder ? mine : !mine;
    }
  };
  return {
    acquire: (holder: types.Uuid) =>
      cas(
        `INSERT INTO ${ks}.schema_lock (name, holder, acquired_at) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?`,
        [LOCK_ROW, holder, new Date(), SCHEMA_LEASE_TTL_SEC],
        holder,
        true,
      ),
    renew: (holder: types.Uuid) =>
      cas(
        `UPDATE ${ks}.schema_lock USING TTL ? SET holder = ?, acquired_at = ? WHERE name = ? IF holder = ?`,
        [SCHEMA_LEASE_TTL_SEC, holder, new Date(), LOCK_ROW, holder],
        holder,
        true,
      ),
    release: (holder: types.Uuid) => cas(`DELETE FROM ${ks}.schema_lock WHERE name = ? IF holder = ?`, [LOCK_ROW, holder], holder, false),
  };
}

/** Poll until every live node reports the same schema version; LK_STORE_UNAVAILABLE after the timeout. */
async function waitForSchemaAgreement(client: Client): Promise<void> {
  const deadline = Date.now() + SCHEMA_AGREEMENT_TIMEOUT_MS;
  // checkSchemaAgreement is public API (docs, lib/metadata/index.js) missing from the typings.
  const metadata = client.metadata as unknown as { checkSchemaAgreement(): Promise<boolean> };
  while (!(await metadata.checkSchemaAgreement())) {
    if (Date.now() > deadline) {
      throw new LatchkeyError(
        'LK_STORE_UNAVAILABLE',
        `Cassandra nodes did not agree on the schema within ${SCHEMA_AGREEMENT_TIMEOUT_MS / 1000} s (nodetool describecluster shows the versions)`,
      );
    }
    await sleep(200);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A table id derived from the keyspace and table name (a name-based UUID, version 5 layout), so
 * every node creating the table creates the same one (see the file comment).
 */
function tableId(ks: string, table: string): string {
  const h = createHash('sha1').update(`latchkey:${ks}.${table}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** The CREATE TABLE statement with its table id option (ID, Cassandra 3.0+). */
function withTableId(ddl: string, id: string): string {
  return /\sWITH\s/.test(ddl) ? ddl.replace(/\sWITH\s/, ` WITH ID = ${id} AND `) : `${ddl} WITH ID = ${id}`;
}

/**
 * Server errors that prove the coordinator did not apply the request: it refused it before any
 * replica was asked (bad request, no permission, schema or protocol trouble, a coordinator still
 * bootstrapping) or found too few replicas alive before its Paxos round (unavailable; the driver
 * itself retries these whatever the request's idempotence). Every other server error may come
 * after replicas accepted a proposal or a write: server error, overloaded (raised while writes are
 * being sent), write timeout, write failure, and read timeout/failure, which a lightweight
 * transaction can also report (being conservative there costs one serial read).
 */
const NOT_APPLIED_CODES: ReadonlySet<number> = new Set([
  types.responseErrorCodes.protocolError,
  types.responseErrorCodes.badCredentials,
  types.responseErrorCodes.unavailableException,
  types.responseErrorCodes.isBootstrapping,
  types.responseErrorCodes.truncateError,
  types.responseErrorCodes.syntaxError,
  types.responseErrorCodes.unauthorized,
  types.responseErrorCodes.invalid,
  types.responseErrorCodes.configError,
  types.responseErrorCodes.alreadyExists,
  types.responseErrorCodes.unprepared,
]);

/**
 * Whether a failed lightweight transaction may still have applied (its outcome is then decided by
 * a serial read, never by the error). Only errors that prove the request was not applied answer
 * false; anything unrecognised from the driver counts as unknown.
 * - A socket closed after the request was written ("Socket was closed": the driver sets
 *   isSocketError, and requestNotWritten only for requests still queued on the connection) is
 *   unknown like a timeout: the coordinator may have run the whole Paxos round (against a
 *   Cassandra 2.2 server, 9 of 200 writes refused this way had applied).
 * - OperationTimedOutError (the driver's read timeout) and DriverInternalError: unknown.
 * - BusyConnectionError, ArgumentError, NotSupportedError, AuthenticationError, and errors that are
 *   not DriverErrors (parameter encoding, connection set-up): nothing was sent.
 * - NoHostAvailableError: unknown if the attempt on any host was.
 */
export function outcomeUnknown(err: unknown): boolean {
  if (!(err instanceof errors.DriverError)) return false;
  if (err instanceof errors.NoHostAvailableError) {
    const inner = (err.innerErrors ?? {}) as Record<string, unknown>;
    return Object.values(inner).some((e) => outcomeUnknown(e));
  }
  const flags = err as { isSocketError?: boolean; requestNotWritten?: boolean };
  if (flags.isSocketError === true) return flags.requestNotWritten !== true;
  if (err instanceof errors.ResponseError) return !NOT_APPLIED_CODES.has(err.code);
  if (
    err instanceof errors.BusyConnectionError ||
    err instanceof errors.ArgumentError ||
    err instanceof errors.NotSupportedError ||
    err instanceof errors.AuthenticationError
  ) {
    return false;
  }
  return true;
}

// --- rows ---

function ms(value: unknown): number {
  return value instanceof Date ? value.getTime() : 0;
}

function bytes(value: unknown): Buffer | null {
  return value == null ? null : Buffer.from(value as Buffer);
}

/** A bigint column (types.Long) as a number; seqs stay far below 2^53. */
function long(value: unknown): number | null {
  if (value == null) return null;
  return typeof value === 'number' ? value : (value as types.Long).toNumber();
}

function tenantFrom(row: types.Row): Tenant {
  return { id: row.get('id') as string, name: row.get('name') as string, createdAt: ms(row.get('created_at')) };
}

function appFrom(row: types.Row): Application {
  return {
    id: row.get('id') as string,
    tenantId: row.get('tenant_id') as string,
    name: row.get('name') as string,
    appToken: row.get('app_token') as string,
    credentialsService: row.get('credentials_service') as string,
    profileSchema: (row.get('profile_schema') as string | null) ?? null,
    createdAt: ms(row.get('created_at')),
  };
}

function credsFrom(row: types.Row): CredentialsRecord {
  return {
    appId: row.get('app_id') as string,
    credentialsId: row.get('credentials_id') as string,
    publicKey: bytes(row.get('public_key')),
    status: row.get('status') as CredentialStatus,
    endpointId: (row.get('endpoint_id') as string | null) ?? null,
    createdAt: ms(row.get('created_at')),
    updatedAt: ms(row.get('updated_at')),
  };
}

function regFrom(row: types.Row): RegistrationRecord {
  return {
    appId: row.get('app_id') as string,
    credentialsId: row.get('credentials_id') as string,
    serverProfileBody: (row.get('server_profile_body') as string | null) ?? null,
    createdAt: ms(row.get('created_at')),
    updatedAt: ms(row.get('updated_at')),
  };
}

function apiKeyFrom(row: types.Row): ApiKeyRecord {
  return {
    id: row.get('id') as string,
    tenantId: (row.get('tenant_id') as string | null) ?? null,
    secretHash: bytes(row.get('secret_hash')) ?? Buffer.alloc(0),
    name: row.get('name') as string,
    createdAt: ms(row.get('created_at')),
  };
}

/** Partition of api_keys_by_tenant: never empty (Cassandra refuses an empty partition key). */
function scopeOf(tenantId: string | null): string {
  return tenantId === null ? 'root' : `tenant:${tenantId}`;
}

function ownerFrom(row: types.Row): OwnerAttachment {
  return {
    tenantId: row.get('tenant_id') as string,
    ownerExternalId: row.get('owner_external_id') as string,
    appId: row.get('app_id') as string,
    keyHash: row.get('key_hash') as string,
    attachedAt: ms(row.get('attached_at')),
  };
}

function verifierFrom(row: types.Row): VerifierRecord {
  return {
    appId: row.get('app_id') as string,
    verifierToken: row.get('verifier_token') as string,
    pluginTypeName: row.get('plugin_type_name') as string,
    name: (row.get('name') as string | null) ?? '',
    description: (row.get('description') as string | null) ?? '',
    jsonConfiguration: (row.get('json_configuration') as string | null) ?? '',
    createdAt: ms(row.get('created_at')),
    updatedAt: ms(row.get('updated_at')),
  };
}

function endpointFrom(row: types.Row): EndpointRecord {
  return {
    appId: row.get('app_id') as string,
    keyHash: row.get('key_hash') as string,
    credentialsId: row.get('credentials_id') as string,
    publicKey: bytes(row.get('public_key')) ?? Buffer.alloc(0),
    profileBody: bytes(row.get('profile_body')) ?? Buffer.alloc(0),
    profileHash: bytes(row.get('profile_hash')) ?? Buffer.alloc(0),
    serverProfileBody: (row.get('server_profile_body') as string | null) ?? null,
    createdAt: ms(row.get('created_at')),
    updatedAt: ms(row.get('updated_at')),
  };
}

function banFrom(row: types.Row): BanRecord {
  const expiresAt = row.get('expires_at') as Date | null;
  return {
    kind: row.get('kind') as BanKind,
    value: row.get('ban_value') as string,
    reason: (row.get('reason') as string | null) ?? '',
    createdAt: ms(row.get('created_at')),
    expiresAt: expiresAt == null ? null : ms(expiresAt),
    createdBy: (row.get('created_by') as string | null) ?? '',
  };
}

function controlFrom(row: types.Row): ControlEntry {
  return {
    id: row.get('id') as string,
    type: row.get('type') as ControlType,
    appId: row.get('app_id') as string,
    keyHash: row.get('key_hash') as string,
    at: long(row.get('at')) ?? 0,
  };
}

/**
 * TTL in seconds for a cell that should live until `untilMs` (at least 1 s), or 0 (no TTL) when
 * that is beyond what Cassandra can store (see the file comment).
 */
function ttlUntil(untilMs: number): number {
  const nowSec = Math.floor(Date.now() / 1000);
  const ttl = Math.max(1, Math.ceil(untilMs / 1000) - nowSec);
  return ttl > MAX_TTL_SEC || nowSec + ttl > MAX_EXPIRY_SEC ? 0 : ttl;
}

// --- shared with the embedded store in behaviour (kept local: backends do not import each other) ---

function decideBound(current: CredentialsRecord, endpointId: string, created: boolean): BindResult {
  const record = copyCredentials(current);
  if (current.status === 'REVOKED') return { ok: false, reason: 'REVOKED', record };
  if (current.status === 'IN_USE' && current.endpointId === endpointId) return { ok: true, record, created };
  return { ok: false, reason: 'IN_USE', record };
}








function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Whether `row` was written by the call that generated `writeId`. */
function sameId(row: types.Row, writeId: types.Uuid): boolean {
  const id = row.get('write_id') as types.Uuid | null;
  return id !== null && id !== undefined && id.toString() === writeId.toString();
}

/** Whether two rows of one table carry the same write_id. */
function sameRowId(a: types.Row, b: types.Row): boolean {
  const x = a.get('write_id') as types.Uuid | null;
  const y = b.get('write_id') as types.Uuid | null;
  return x != null && y != null && x.toString() === y.toString();
}

/** Jittered exponential backoff before retrying a contended lightweight transaction (at most 100 ms). */
function backoff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(100, 2 ** attempt)));
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}






