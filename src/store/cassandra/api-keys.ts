/**
 * Admin API keys area of the Cassandra store. api_keys is the truth (a small table: full scans
 * list and count it); api_keys_by_tenant is an index of one partition per scope that may hold
 * extra rows, filtered on listing, and never lacks one for long (see createApiKey, deleteApiKey).
 */
import { types } from 'cassandra-driver';
import { LatchkeyError } from '../../errors.js';
import type { ApiKeyRecord } from '../store.js';
import { checkApiKey, copyApiKey } from '../common/api-keys.js';
import { validId } from '../common/values.js';
import { compare, mapLimit, READ_FANOUT, type CassandraContext } from './context.js';
import { cas, MAX_ATTEMPTS, resolve, sameRowId, serialRow } from './lwt.js';
import { apiKeyFrom } from './rows.js';
import { readTenant } from './tenancy.js';

export async function createApiKey(cx: CassandraContext, apiKey: ApiKeyRecord): Promise<ApiKeyRecord> {
  checkApiKey(apiKey);
  const row = copyApiKey(apiKey);
  const scope = scopeOf(row.tenantId);
  const writeId = types.Uuid.random();
  return cx.guard(async () => {
    // Tenants are never deleted, so an existing tenant stays existing: no Paxos needed.
    if (row.tenantId !== null && (await readTenant(cx, row.tenantId, false)) === null) {
      throw new LatchkeyError('LK_TENANT_NOT_FOUND', row.tenantId);
    }
    // The scope index row is written before the key (a crash in between cannot hide a created
    // key from listApiKeys) and again after it (see deleteApiKey). A row left by a create that
    // lost, or by a key of another scope, is filtered out on listing.
    await cx.client.execute(cx.q.insertScopeKey, [scope, row.id], cx.UPSERT);
    const out = await cas(cx, cx.q.insertApiKey, [row.id, row.tenantId ?? types.unset, row.secretHash, row.name, new Date(row.createdAt), writeId]);
    const applied = out === 'unknown' ? await resolve(cx, cx.q.selectApiKey, [row.id], writeId) : out.applied;
    if (!applied) throw new LatchkeyError('LK_CONFLICT', `API key ${row.id} exists`);
    await cx.client.execute(cx.q.insertScopeKey, [scope, row.id], cx.UPSERT);
    return copyApiKey(row);
  });
}

export async function getApiKey(cx: CassandraContext, id: string): Promise<ApiKeyRecord | null> {
  if (!validId(id)) return null;
  return cx.guard(() => readApiKey(cx, id, false));
}

export async function listApiKeys(cx: CassandraContext, tenantId?: string | null): Promise<ApiKeyRecord[]> {
  if (tenantId !== undefined && tenantId !== null && !validId(tenantId)) return [];
  return cx.guard(async () => {
    if (tenantId === undefined) {
      const out: ApiKeyRecord[] = [];
      for await (const row of await cx.client.execute(cx.q.selectApiKeys, [], { ...cx.READ, fetchSize: 1000 })) out.push(apiKeyFrom(row));
      return out.sort((a, b) => compare(a.id, b.id));
    }
    const ids: string[] = [];
    for await (const row of await cx.client.execute(cx.q.selectScopeKeys, [scopeOf(tenantId)], { ...cx.READ, fetchSize: 1000 })) {
      ids.push(row.get('key_id') as string);
    }
    const keys = await mapLimit(ids, READ_FANOUT, (id) => readApiKey(cx, id, false));
    return keys.filter((k): k is ApiKeyRecord => k !== null && k.tenantId === tenantId);
  });
}

export async function deleteApiKey(cx: CassandraContext, id: string): Promise<boolean> {
  if (!validId(id)) return false;
  return cx.guard(async () => {
    // Administrative and rare: serial reads, and the delete is conditional on the incarnation
    // seen (its write_id), so the scope index row removed below is that key's.
    let row = await serialRow(cx, cx.q.selectApiKey, [id]);
    let deleted: ApiKeyRecord;
    for (let attempt = 0; ; attempt++) {
      if (row === null) return false;
      if (attempt === MAX_ATTEMPTS) throw new LatchkeyError('LK_STORE_UNAVAILABLE', `API key ${id} kept changing during delete`);
      const seen = row;
      const out = await cas(cx, cx.q.deleteApiKey, [id, seen.get('write_id')]);
      if (out !== 'unknown' && out.applied) {
        deleted = apiKeyFrom(seen);
        break;
      }
      row = await serialRow(cx, cx.q.selectApiKey, [id]);
      // Unknown outcome and the incarnation we saw is gone: count it as ours. (Only a concurrent
      // delete of the same key timing out can make two callers both see true.)
      if (out === 'unknown' && (row === null || !sameRowId(row, seen))) {
        deleted = apiKeyFrom(seen);
        break;
      }
    }
    const scope = scopeOf(deleted.tenantId);
    await cx.client.execute(cx.q.deleteScopeKey, [scope, id], cx.UPSERT);
    // A key with the same id and scope created meanwhile wrote the index row before (and after)
    // its insert; if our removal came last, put the row back.
    const now = await readApiKey(cx, id, true);
    if (now !== null && scopeOf(now.tenantId) === scope) await cx.client.execute(cx.q.insertScopeKey, [scope, id], cx.UPSERT);
    return true;
  });
}

export async function countApiKeys(cx: CassandraContext): Promise<number> {
  return cx.guard(async () => {
    // Paged instead of SELECT COUNT(*): no single request has to scan the table in time.
    let n = 0;
    for await (const _row of await cx.client.execute(cx.q.selectApiKeyIds, [], { ...cx.READ, fetchSize: 1000 })) n++;
    return n;
  });
}

async function readApiKey(cx: CassandraContext, id: string, serial: boolean): Promise<ApiKeyRecord | null> {
  const row = (await cx.client.execute(cx.q.selectApiKey, [id], serial ? cx.SERIAL_READ : cx.READ)).first();
  return row ? apiKeyFrom(row) : null;
}

/** Partition of api_keys_by_tenant: never empty (Cassandra refuses an empty partition key). */
function scopeOf(tenantId: string | null): string {
  return tenantId === null ? 'root' : `tenant:${tenantId}`;
}
