/**
 * The Cassandra store's schema and its creation by open(): the keyspace, the tables the cluster
 * lacks (safely when several nodes start together), and the columns added since a table was
 * first released. Which statements use the tables: cql.ts.
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
 *                                                 credentials (credentials.ts, "Provisioning
 *                                                 with a profile")
 *   credentials_by_app((app_id, bucket), credentials_id)
 *                                                 index for listCredentials: 65 partitions per
 *                                                 application (bucket: credentialsBucket),
 *                                                 ordered by credentials id within each
 *   registrations((app_id, credentials_id))
 *   app_endpoints((app_id, bucket), key_hash)     bucket = the first two characters of the
 *                                                 base64url key hash (endpointBucket): 4,096
 *                                                 partitions per application, ordered by key hash
 *                                                 within each and across them (partitions.ts)
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
 * Schema creation when several nodes start together: open() creates only tables the cluster does
 * not have yet (restarts issue no DDL), and on Cassandra 3.0 or later creates each with a table id
 * derived from the keyspace and table name (tableId). Two coordinators creating one table at once
 * then create the SAME table: without it each picks its own id, the cluster keeps one, and what was
 * written through the other is lost at the next restart (CASSANDRA-9424; Palantir's AtlasDB made
 * its ids deterministic for the same reason). Cassandra 2.2 has no table id option and answers
 * such a race with "Column family ID mismatch" on both nodes (found against a 2.2 server), so there
 * (and on a cluster not yet all 3.0+) open() creates tables under a lease: a lightweight-transaction
 * row in schema_lock(name) with a TTL, one table at a time, waiting for schema agreement after each
 * (ensureSchema says what remains: the lock table's own creation). A keyspace dropped and created
 * again gets the same table ids: TRUNCATE its tables before dropping it, so a commit log replay
 * cannot bring old rows back.
 */
import { createHash } from 'node:crypto';
import { types, type Client, type QueryOptions } from 'cassandra-driver';
import { LatchkeyError } from '../../errors.js';
import { outcomeUnknown } from './lwt.js';

const { consistencies } = types;

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
    // gc_grace_seconds: one day, not ten (removed entries are tombstones below the head; see
    // notifications.ts).
    `CREATE TABLE IF NOT EXISTS ${ks}.notification_queue (app_id text, key_hash text, seq bigint, payload blob,
       created_at timestamp, write_id uuid, last_seq bigint, head_seq bigint, PRIMARY KEY ((app_id, key_hash), seq))
       WITH CLUSTERING ORDER BY (seq ASC) AND gc_grace_seconds = 86400`,
    `CREATE TABLE IF NOT EXISTS ${ks}.event_classes (app_id text, key_hash text, classes frozen<list<text>>,
       PRIMARY KEY ((app_id, key_hash)))`,
    // gc_grace_seconds: one day, not ten (expired bans are tombstones in the one partition every
    // process reads; see protection.ts).
    `CREATE TABLE IF NOT EXISTS ${ks}.bans (bucket int, kind text, ban_value text, reason text, created_at timestamp,
       expires_at timestamp, created_by text, PRIMARY KEY ((bucket), kind, ban_value))
       WITH CLUSTERING ORDER BY (kind ASC, ban_value ASC) AND gc_grace_seconds = 86400`,
    `CREATE TABLE IF NOT EXISTS ${ks}.control_log (bucket bigint, at bigint, id text, type text, app_id text, key_hash text,
       PRIMARY KEY ((bucket), at, id)) WITH CLUSTERING ORDER BY (at ASC, id ASC)`,
  ];
}

/**
 * Create the keyspace if missing (`replication`: a CQL replication map; default SimpleStrategy,
 * replication factor 1), then the tables and columns it lacks.
 */
export async function createSchema(client: Client, ks: string, replication: string | undefined): Promise<void> {
  // DDL is run unprepared: each statement runs once per open, and the keyspace name cannot be a
  // bind marker. The replication map is operator configuration, passed through as CQL.
  const map = replication ?? "{'class': 'SimpleStrategy', 'replication_factor': 1}";
  await client.execute(`CREATE KEYSPACE IF NOT EXISTS ${ks} WITH replication = ${map}`, [], { prepare: false });
  // Only missing tables, one at a time, under a lease on 2.2 (see the file comment); then the
  // columns a keyspace created by an older build lacks.
  await ensureSchema(client, ks);
  await ensureColumns(client, ks);
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
  // A server-side profile provisioned with the credentials (see credentials.ts).
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
