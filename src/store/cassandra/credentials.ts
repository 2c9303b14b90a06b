/**
 * Credentials area of the Cassandra store: provision, get, list, bind and revoke. Each credentials
 * row is its own partition ((app_id, credentials_id)), so Paxos contention stays per credentials
 * id; credentials_by_app is the listing index (buckets: partitions.ts).
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
 * Provisioning with a profile: a server-side profile provisioned with the credentials (the admin
 * API's POST .../credentials with serverProfile) is written in the credentials row by the same
 * lightweight transaction that creates it (server_profile_body, registered_at): a conditional
 * batch cannot span the registrations table, and two writes would leave credentials without their
 * profile after a crash between them. getRegistration reads both rows and answers the newer of
 * the registrations row and the provisioned profile (by updated_at and registered_at, so like
 * every last-writer-wins here it relies on synchronized clocks); a provision refused with
 * LK_CRED_EXISTS writes neither.
 */
import { types } from 'cassandra-driver';
import { LatchkeyError } from '../../errors.js';
import type { BindResult, CredentialsListOptions, CredentialsRecord, Page, ProvisionOptions } from '../store.js';
import { checkCredentialsList, copyCredentials, CredentialsPager, credentialsScanBudget, decideBound, newCredentials } from '../common/credentials.js';
import { checkId, validId } from '../common/values.js';
import { READ_FANOUT, type CassandraContext } from './context.js';
import { cas, MAX_ATTEMPTS, resolve, sameId, serialRow, type CasOutcome } from './lwt.js';
import { CRED_BUCKETS, credentialsBucket } from './partitions.js';
import { readReg } from './registration.js';
import { credsFrom } from './rows.js';
import { readApp } from './tenancy.js';

/** Bucket queries listCredentials runs at once while filling a page. */
const BUCKET_FANOUT = 8;

export async function provisionCredentials(
  cx: CassandraContext,
  appId: string,
  credentialsId: string,
  publicKey: Buffer | null,
  opts: ProvisionOptions = {},
): Promise<CredentialsRecord> {
  const record = newCredentials(appId, credentialsId, publicKey);
  const profile = opts.serverProfileBody;
  const now = record.createdAt;
  const writeId = types.Uuid.random();
  return cx.guard(async () => {
    if ((await readApp(cx, appId, false)) === null) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
    await indexCredentials(cx, appId, credentialsId);
    // Columns without a value are left unset rather than bound to null: no tombstones. A profile
    // provisioned with the credentials goes in the same transaction (see the file comment),
    // stamped after any registration it replaces, so readReg never sees a tie.
    const params = [appId, credentialsId, record.publicKey ?? types.unset, 'AVAILABLE', types.unset, new Date(now), new Date(now), writeId];
    let out: CasOutcome;
    if (profile === undefined) {
      out = await cas(cx, cx.q.insertCreds, params);
    } else {
      const replaced = await readReg(cx, appId, credentialsId);
      const registeredAt = Math.max(now, (replaced?.updatedAt ?? 0) + 1);
      out = await cas(cx, cx.q.insertCredsRegistered, [...params, profile ?? types.unset, new Date(registeredAt)]);
    }
    const applied = out === 'unknown' ? await resolve(cx, cx.q.selectCreds, [appId, credentialsId], writeId) : out.applied;
    if (!applied) throw new LatchkeyError('LK_CRED_EXISTS', credentialsId);
    return copyCredentials(record);
  });
}

export async function getCredentials(cx: CassandraContext, appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
  if (!validId(appId) || !validId(credentialsId)) return null;
  return cx.guard(() => readCreds(cx, appId, credentialsId, false));
}

export async function listCredentials(cx: CassandraContext, appId: string, opts: CredentialsListOptions): Promise<Page<CredentialsRecord>> {
  const { limit, after, status } = checkCredentialsList(opts);
  if (!validId(appId)) return { items: [], next: null };
  return cx.guard(async () => {
    // As listEndpoints: buckets in order from the cursor's, BUCKET_FANOUT at a time; then the
    // credentials rows of the ids in order, READ_FANOUT at a time, until the pager is done.
    const pager = new CredentialsPager(limit, status);
    const first = after === null ? 0 : credentialsBucket(after);
    const want = credentialsScanBudget(limit);
    for (let b = first; b < CRED_BUCKETS; b += BUCKET_FANOUT) {
      const batch = Array.from({ length: Math.min(BUCKET_FANOUT, CRED_BUCKETS - b) }, (_, j) => b + j);
      const ids = (await Promise.all(batch.map((bucket) => credentialIds(cx, appId, bucket, bucket === first ? after : null, want)))).flat();
      for (let i = 0; i < ids.length; i += READ_FANOUT) {
        const chunk = ids.slice(i, i + READ_FANOUT);
        const records = await Promise.all(chunk.map((id) => readCreds(cx, appId, id, false)));
        for (let j = 0; j < chunk.length; j++) {
          if (!pager.offer(chunk[j]!, records[j]!) || pager.done) return pager.page();
        }
      }
    }
    return pager.page();
  });
}

export async function bindCredentials(
  cx: CassandraContext,
  appId: string,
  credentialsId: string,
  endpointId: string,
  createWithKey?: Buffer,
): Promise<BindResult> {
  checkId('endpoint id', endpointId);
  if (!validId(appId) || !validId(credentialsId)) {
    if (createWithKey === undefined) return { ok: false, reason: 'UNKNOWN', record: null };
    checkId('application id', appId);
    checkId('credentials id', credentialsId);
  }
  const newKey = createWithKey === undefined ? null : Buffer.from(createWithKey);
  return cx.guard(async () => {
    // Fast path (every reconnect): a LOCAL_QUORUM read. IN_USE and REVOKED answers from it are
    // safe because neither state ever returns to AVAILABLE.
    let current = await readCreds(cx, appId, credentialsId, false);
    // "Missing" decides UNKNOWN; confirm it serially so credentials provisioned through another
    // coordinator a moment ago are not refused.
    if (current === null && newKey === null) current = await readCreds(cx, appId, credentialsId, true);
    let appChecked = false;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (current === null) {
        if (newKey === null) return { ok: false, reason: 'UNKNOWN', record: null };
        if (!appChecked) {
          if ((await readApp(cx, appId, false)) === null) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
          await indexCredentials(cx, appId, credentialsId);
          appChecked = true;
        }
        const now = Date.now();
        const writeId = types.Uuid.random();
        const record: CredentialsRecord = { appId, credentialsId, publicKey: newKey, status: 'IN_USE', endpointId, createdAt: now, updatedAt: now };
        const out = await cas(cx, cx.q.insertCreds, [appId, credentialsId, newKey, 'IN_USE', endpointId, new Date(now), new Date(now), writeId]);
        if (out !== 'unknown' && out.applied) return { ok: true, record: copyCredentials(record), created: true };
        const row = await serialRow(cx, cx.q.selectCreds, [appId, credentialsId]);
        current = row ? credsFrom(row) : null;
        if (row && sameId(row, writeId)) return decideBound(current!, endpointId, true); // ours, then revoked at worst
        continue;
      }
      if (current.status !== 'AVAILABLE') return decideBound(current, endpointId, false);
      const now = Date.now();
      const out = await cas(cx, cx.q.bindCreds, [endpointId, new Date(now), appId, credentialsId]);
      if (out !== 'unknown' && out.applied) {
        return { ok: true, record: copyCredentials({ ...current, status: 'IN_USE', endpointId, updatedAt: now }), created: false };
      }
      // Lost a race or unknown outcome: the serial read shows the winner (possibly us).
      current = await readCreds(cx, appId, credentialsId, true);
    }
    throw new LatchkeyError('LK_STORE_UNAVAILABLE', `credentials ${credentialsId} kept changing during bind`);
  });
}

export async function revokeCredentials(cx: CassandraContext, appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
  if (!validId(appId) || !validId(credentialsId)) return null;
  return cx.guard(async () => {
    // Administrative and rare: serial reads throughout, so the answer reflects every bind.
    let current = await readCreds(cx, appId, credentialsId, true);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (current === null) return null;
      if (current.status === 'REVOKED') return current;
      const now = Date.now();
      // Conditional on the status seen, so the returned record is exactly what was written;
      // endpoint_id is kept: it names the endpoint whose sessions must end.
      const out = await cas(cx, cx.q.revokeCreds, [new Date(now), appId, credentialsId, current.status]);
      if (out !== 'unknown' && out.applied) return copyCredentials({ ...current, status: 'REVOKED', updatedAt: now });
      current = await readCreds(cx, appId, credentialsId, true);
    }
    throw new LatchkeyError('LK_STORE_UNAVAILABLE', `credentials ${credentialsId} kept changing during revoke`);
  });
}

/** Write the credentials_by_app row of a credentials id (before the credentials are created). */
async function indexCredentials(cx: CassandraContext, appId: string, credentialsId: string): Promise<void> {
  await cx.client.execute(cx.q.insertCredsIndex, [appId, credentialsBucket(credentialsId), credentialsId], cx.UPSERT);
}

async function credentialIds(cx: CassandraContext, appId: string, bucket: number, after: string | null, limit: number): Promise<string[]> {
  const opts = { ...cx.READ, fetchSize: Math.min(limit, 1000) };
  const rs =
    after === null
      ? await cx.client.execute(cx.q.selectCredsIndex, [appId, bucket, limit], opts)
      : await cx.client.execute(cx.q.selectCredsIndexAfter, [appId, bucket, after, limit], opts);
  const out: string[] = [];
  for await (const row of rs) out.push(row.get('credentials_id') as string);
  return out;
}

async function readCreds(cx: CassandraContext, appId: string, credentialsId: string, serial: boolean): Promise<CredentialsRecord | null> {
  const row = (await cx.client.execute(cx.q.selectCreds, [appId, credentialsId], serial ? cx.SERIAL_READ : cx.READ)).first();
  return row ? credsFrom(row) : null;
}

// --- shared with the embedded store in behaviour (kept local: backends do not import each other) ---
