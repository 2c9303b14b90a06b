/**
 * Owner verifier area of the embedded store: `verifiers` (appId, verifierToken) -> VerifierRecord,
 * so an application's verifiers are one range ordered by token; `default_verifiers` appId -> token.
 * deleteVerifier and setDefaultVerifier check and change both in one write transaction, so the
 * default never names a missing verifier.
 */
import { LatchkeyError } from '../../errors.js';
import type { VerifierRecord } from '../store.js';
import { checkId, validId } from '../common/values.js';
import { checkVerifier, copyVerifier } from '../common/verifiers.js';
import { key, prefixRange } from './keys.js';
import { nullable, type EmbeddedContext } from './lmdb.js';

export async function createVerifier(cx: EmbeddedContext, rec: VerifierRecord): Promise<VerifierRecord> {
  checkVerifier(rec);
  const row = copyVerifier(rec);
  const k = key(row.appId, row.verifierToken);
  await cx.write(() => {
    if (!cx.dbs.applications.doesExist(key(row.appId))) throw new LatchkeyError('LK_APP_NOT_FOUND', row.appId);
    if (cx.dbs.verifiers.doesExist(k)) throw new LatchkeyError('LK_CONFLICT', `verifier ${row.verifierToken} exists`);
    cx.dbs.verifiers.put(k, row);
  });
  return copyVerifier(row);
}

export async function getVerifier(cx: EmbeddedContext, appId: string, verifierToken: string): Promise<VerifierRecord | null> {
  if (!validId(appId) || !validId(verifierToken)) return null;
  return cx.read(() => nullable(cx.dbs.verifiers.get(key(appId, verifierToken)), copyVerifier));
}

export async function listVerifiers(cx: EmbeddedContext, appId: string): Promise<VerifierRecord[]> {
  if (!validId(appId)) return [];
  return cx.read(() => [...cx.dbs.verifiers.getRange(prefixRange(appId))].map((e) => copyVerifier(e.value)));
}

export async function updateVerifier(cx: EmbeddedContext, rec: VerifierRecord): Promise<VerifierRecord> {
  checkVerifier(rec);
  const k = key(rec.appId, rec.verifierToken);
  const next = copyVerifier(rec);
  return cx.write(() => {
    const current = cx.dbs.verifiers.get(k);
    if (current === undefined) throw new LatchkeyError('LK_NOT_FOUND', `verifier ${next.verifierToken}`);
    const row: VerifierRecord = { ...next, createdAt: current.createdAt };
    cx.dbs.verifiers.put(k, row);
    return copyVerifier(row);
  });
}

export async function deleteVerifier(cx: EmbeddedContext, appId: string, verifierToken: string): Promise<boolean> {
  if (!validId(appId) || !validId(verifierToken)) return false;
  const k = key(appId, verifierToken);
  return cx.write(() => {
    if (!cx.dbs.verifiers.doesExist(k)) return false;
    cx.dbs.verifiers.remove(k);
    if (cx.dbs.defaultVerifiers.get(key(appId)) === verifierToken) cx.dbs.defaultVerifiers.remove(key(appId));
    return true;
  });
}

export async function setDefaultVerifier(cx: EmbeddedContext, appId: string, verifierToken: string | null): Promise<void> {
  checkId('application id', appId);
  await cx.write(() => {
    if (!cx.dbs.applications.doesExist(key(appId))) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
    if (verifierToken === null) {
      cx.dbs.defaultVerifiers.remove(key(appId));
      return;
    }
    if (!validId(verifierToken) || !cx.dbs.verifiers.doesExist(key(appId, verifierToken))) {
      throw new LatchkeyError('LK_NOT_FOUND', `verifier ${String(verifierToken)}`);
    }
    cx.dbs.defaultVerifiers.put(key(appId), verifierToken);
  });
}

export async function getDefaultVerifier(cx: EmbeddedContext, appId: string): Promise<string | null> {
  if (!validId(appId)) return null;
  return cx.read(() => cx.dbs.defaultVerifiers.get(key(appId)) ?? null);
}
