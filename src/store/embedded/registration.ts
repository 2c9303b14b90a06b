/**
 * Registration area of the embedded store: `registrations` (appId, credentialsId) ->
 * RegistrationRecord (server-side profiles) and `endpoints` (appId, keyHash) -> EndpointRecord, so
 * an application's endpoints are one range in key hash order (listEndpoints pages it).
 */
import { LatchkeyError } from '../../errors.js';
import type { EndpointRecord, Page, RegistrationRecord } from '../store.js';
import { copyEndpoint, copyRegistration } from '../common/registration.js';
import { checkId, checkKeyHash, checkLimit, decodeCursor, encodeCursor, validId, validKeyHash } from '../common/values.js';
import { key, prefixRange } from './keys.js';
import { nullable, type EmbeddedContext } from './lmdb.js';

// --- registrations ---

export async function provisionRegistration(cx: EmbeddedContext, appId: string, credentialsId: string, serverProfileBody: string | null): Promise<RegistrationRecord> {
  checkId('application id', appId);
  checkId('credentials id', credentialsId);
  const k = key(appId, credentialsId);
  return cx.write(() => {
    if (!cx.dbs.applications.doesExist(key(appId))) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
    const now = Date.now();
    const previous = cx.dbs.registrations.get(k);
    const row: RegistrationRecord = {
      appId,
      credentialsId,
      serverProfileBody,
      createdAt: previous?.createdAt ?? now,
      updatedAt: now,
    };
    cx.dbs.registrations.put(k, row);
    return copyRegistration(row);
  });
}

export async function getRegistration(cx: EmbeddedContext, appId: string, credentialsId: string): Promise<RegistrationRecord | null> {
  if (!validId(appId) || !validId(credentialsId)) return null;
  return cx.read(() => nullable(cx.dbs.registrations.get(key(appId, credentialsId)), copyRegistration));
}

// --- endpoints ---

export async function getEndpoint(cx: EmbeddedContext, appId: string, keyHash: string): Promise<EndpointRecord | null> {
  if (!validId(appId) || !validKeyHash(keyHash)) return null;
  return cx.read(() => nullable(cx.dbs.endpoints.get(key(appId, keyHash)), copyEndpoint));
}

export async function saveEndpoint(cx: EmbeddedContext, endpoint: EndpointRecord): Promise<EndpointRecord> {
  checkId('application id', endpoint.appId);
  checkKeyHash(endpoint.keyHash);
  const row = copyEndpoint(endpoint);
  await cx.write(() => {
    cx.dbs.endpoints.put(key(row.appId, row.keyHash), row);
  });
  return copyEndpoint(row);
}

export async function listEndpoints(cx: EmbeddedContext, appId: string, limit: number, cursor?: string | null): Promise<Page<EndpointRecord>> {
  checkLimit(limit);
  const after = cursor == null ? null : decodeCursor(cursor);
  if (!validId(appId)) return { items: [], next: null };
  return cx.read(() => {
    const range = prefixRange(appId);
    const rows = [
      ...cx.dbs.endpoints.getRange({
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
