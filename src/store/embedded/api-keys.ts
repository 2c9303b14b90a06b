/**
 * Admin API key area of the embedded store: `api_keys` id -> ApiKeyRecord and `scope_api_keys`
 * (scope, keyId), so the keys of one tenant (or the root keys) are one range; both change in one
 * write transaction.
 */
import { LatchkeyError } from '../../errors.js';
import type { ApiKeyRecord } from '../store.js';
import { checkApiKey, copyApiKey } from '../common/api-keys.js';
import { validId } from '../common/values.js';
import { key, prefixRange } from './keys.js';
import { nullable, type EmbeddedContext } from './lmdb.js';

export async function createApiKey(cx: EmbeddedContext, apiKey: ApiKeyRecord): Promise<ApiKeyRecord> {
  checkApiKey(apiKey);
  const row = copyApiKey(apiKey);
  await cx.write(() => {
    const { tenants, apiKeys, scopeApiKeys } = cx.dbs;
    if (row.tenantId !== null && !tenants.doesExist(key(row.tenantId))) throw new LatchkeyError('LK_TENANT_NOT_FOUND', row.tenantId);
    if (apiKeys.doesExist(key(row.id))) throw new LatchkeyError('LK_CONFLICT', `API key ${row.id} exists`);
    apiKeys.put(key(row.id), row);
    scopeApiKeys.put(key(scopeOf(row.tenantId), row.id), row.id);
  });
  return copyApiKey(row);
}

export async function getApiKey(cx: EmbeddedContext, id: string): Promise<ApiKeyRecord | null> {
  if (!validId(id)) return null;
  return cx.read(() => nullable(cx.dbs.apiKeys.get(key(id)), copyApiKey));
}

export async function listApiKeys(cx: EmbeddedContext, tenantId?: string | null): Promise<ApiKeyRecord[]> {
  if (tenantId === undefined) return cx.read(() => [...cx.dbs.apiKeys.getRange({})].map((e) => copyApiKey(e.value)));
  if (tenantId !== null && !validId(tenantId)) return [];
  return cx.read(() => {
    const out: ApiKeyRecord[] = [];
    for (const { value: id } of cx.dbs.scopeApiKeys.getRange(prefixRange(scopeOf(tenantId)))) {
      const row = cx.dbs.apiKeys.get(key(id));
      if (row !== undefined) out.push(copyApiKey(row));
    }
    return out;
  });
}

export async function deleteApiKey(cx: EmbeddedContext, id: string): Promise<boolean> {
  if (!validId(id)) return false;
  return cx.write(() => {
    const row = cx.dbs.apiKeys.get(key(id));
    if (row === undefined) return false;
    cx.dbs.apiKeys.remove(key(id));
    cx.dbs.scopeApiKeys.remove(key(scopeOf(row.tenantId ?? null), id));
    return true;
  });
}

export async function countApiKeys(cx: EmbeddedContext): Promise<number> {
  return cx.read(() => cx.dbs.apiKeys.getKeysCount());
}

/** First id of a scopeApiKeys key: the tenant id, or '' (which no tenant id is) for root keys. */
function scopeOf(tenantId: string | null): string {
  return tenantId ?? '';
}
