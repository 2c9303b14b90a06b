/**
 * Registration area of the Cassandra store: server-side profiles provisioned against credentials
 * (registrations, and the profile a credentials row may carry) and endpoint records
 * (app_endpoints in 4,096 buckets per application: partitions.ts).
 *
 * Endpoints: app_endpoint_buckets lists the buckets that hold an endpoint (written before the
 * first endpoint row of a bucket; each process remembers the ones it wrote), so a small
 * application does not cost 4,096 reads per page. Endpoints are never deleted, so a listed bucket stays non-empty (a crash
 * between the two writes leaves an empty one, read and skipped). listEndpoints reads the listed
 * buckets in order from the cursor's, one at a time, each with LIMIT of what the page still needs:
 * at most limit + 1 endpoint rows per page (the extra row says whether a next page exists), at the
 * cost of one round trip per non-empty bucket the page spans (one or two for an application of
 * millions; up to the page size for one of a few thousand). The cursor is the last key hash, which
 * names its bucket. The earlier `endpoints` table (64 buckets) is no longer read or written.
 */
import { LatchkeyError } from '../../errors.js';
import type { EndpointRecord, Page, RegistrationRecord } from '../store.js';
import { copyEndpoint, copyRegistration } from '../common/registration.js';
import { checkId, checkKeyHash, checkLimit, decodeCursor, encodeCursor, validId, validKeyHash } from '../common/values.js';
import { MAX_CQL_LIMIT, type CassandraContext } from './context.js';
import { endpointBucket } from './partitions.js';
import { endpointFrom, regFrom } from './rows.js';
import { readApp } from './tenancy.js';

/** (application, bucket) pairs a process remembers having listed in app_endpoint_buckets. */
const KNOWN_BUCKETS_MAX = 100_000;
/** Directory rows listEndpoints fetches per round trip. */
const BUCKET_DIRECTORY_PAGE = 64;

// --- registrations ---

export async function provisionRegistration(
  cx: CassandraContext,
  appId: string,
  credentialsId: string,
  serverProfileBody: string | null,
): Promise<RegistrationRecord> {
  checkId('application id', appId);
  checkId('credentials id', credentialsId);
  return cx.guard(async () => {
    if ((await readApp(cx, appId, false)) === null) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
    // Last writer wins (an upsert); reading first keeps the original createdAt (two concurrent
    // first provisions can at worst disagree on it by their own latency) and stamps the new one
    // after what it replaces, a profile provisioned with the credentials included (readReg).
    const previous = await readReg(cx, appId, credentialsId);
    const now = Math.max(Date.now(), (previous?.updatedAt ?? 0) + 1);
    const record: RegistrationRecord = { appId, credentialsId, serverProfileBody, createdAt: previous?.createdAt ?? now, updatedAt: now };
    await cx.client.execute(
      cx.q.upsertReg,
      [appId, credentialsId, serverProfileBody, new Date(record.createdAt), new Date(record.updatedAt)],
      cx.UPSERT,
    );
    return copyRegistration(record);
  });
}

export async function getRegistration(cx: CassandraContext, appId: string, credentialsId: string): Promise<RegistrationRecord | null> {
  if (!validId(appId) || !validId(credentialsId)) return null;
  return cx.guard(() => readReg(cx, appId, credentialsId));
}

// --- endpoints ---

export async function getEndpoint(cx: CassandraContext, appId: string, keyHash: string): Promise<EndpointRecord | null> {
  if (!validId(appId) || !validKeyHash(keyHash)) return null;
  return cx.guard(async () => {
    const row = (await cx.client.execute(cx.q.selectEndpoint, [appId, endpointBucket(keyHash), keyHash], cx.READ)).first();
    return row ? endpointFrom(row) : null;
  });
}

export async function saveEndpoint(cx: CassandraContext, endpoint: EndpointRecord): Promise<EndpointRecord> {
  checkId('application id', endpoint.appId);
  checkKeyHash(endpoint.keyHash);
  const e = copyEndpoint(endpoint);
  const bucket = endpointBucket(e.keyHash);
  return cx.guard(async () => {
    // The bucket's directory row first (see the file comment, "Endpoints"): a crash after it
    // leaves an empty bucket listed, never an endpoint unlisted.
    const known = `${bucket}:${e.appId}`;
    if (!cx.knownBuckets.has(known)) {
      await cx.client.execute(cx.q.insertEndpointBucket, [e.appId, bucket], cx.UPSERT);
      if (cx.knownBuckets.size >= KNOWN_BUCKETS_MAX) cx.knownBuckets.clear();
      cx.knownBuckets.add(known);
    }
    // Nulls are bound (not unset) on purpose: this replaces the whole record.
    await cx.client.execute(
      cx.q.upsertEndpoint,
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
      cx.UPSERT,
    );
    return copyEndpoint(e);
  });
}

export async function listEndpoints(cx: CassandraContext, appId: string, limit: number, cursor?: string | null): Promise<Page<EndpointRecord>> {
  checkLimit(limit);
  const after = cursor == null ? null : decodeCursor(cursor);
  if (!validId(appId)) return { items: [], next: null };
  return cx.guard(async () => {
    // The non-empty buckets from the cursor's on, in order, one at a time, each asked for what
    // the page still lacks: at most limit + 1 rows (the extra one says whether a next page
    // exists). See the file comment, "Endpoints".
    const want = limit + 1;
    const first = after === null ? 0 : endpointBucket(after);
    const rows: EndpointRecord[] = [];
    const buckets = await cx.client.execute(cx.q.selectEndpointBuckets, [appId, first], { ...cx.READ, fetchSize: BUCKET_DIRECTORY_PAGE });
    for await (const b of buckets) {
      const bucket = b.get('bucket') as number;
      rows.push(...(await bucketRows(cx, appId, bucket, bucket === first ? after : null, want - rows.length)));
      if (rows.length >= want) break;
    }
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items, next: rows.length > limit && last ? encodeCursor(last.keyHash) : null };
  });
}

/** Endpoints of one app_endpoints bucket in key hash order, after `after` if given, at most `limit`. */
async function bucketRows(cx: CassandraContext, appId: string, bucket: number, after: string | null, limit: number): Promise<EndpointRecord[]> {
  const n = Math.min(limit, MAX_CQL_LIMIT);
  const opts = { ...cx.READ, fetchSize: Math.min(n, 1000) };
  const rs =
    after === null
      ? await cx.client.execute(cx.q.selectBucket, [appId, bucket, n], opts)
      : await cx.client.execute(cx.q.selectBucketAfter, [appId, bucket, after, n], opts);
  const out: EndpointRecord[] = [];
  for await (const row of rs) out.push(endpointFrom(row));
  return out;
}

/**
 * The registration of credentials: the newer of the registrations row and a profile provisioned
 * with the credentials (see credentials.ts, "Provisioning with a profile").
 */
export async function readReg(cx: CassandraContext, appId: string, credentialsId: string): Promise<RegistrationRecord | null> {
  const [regRs, credsRs] = await Promise.all([
    cx.client.execute(cx.q.selectReg, [appId, credentialsId], cx.READ),
    cx.client.execute(cx.q.selectCredsRegistration, [appId, credentialsId], cx.READ),
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
