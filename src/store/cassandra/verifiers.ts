/**
 * Owner verifiers area of the Cassandra store: the verifiers of an application and its default,
 * all in one partition of `verifiers` per application.
 *
 * Verifiers: the default is a static column of the application's verifier partition, and Paxos
 * serializes every lightweight transaction of one partition, so every verifier write is one and
 * each decides atomically with the default. Setting the default is conditional on the verifier
 * row's write_id (the row exists) and gives the row a new write_id; a delete is conditional on the
 * write_id it read, so a concurrent setDefault makes it retry; deleting the default verifier is a
 * conditional batch that removes the row and clears default_token (IF default_token = the token).
 */
import { types } from 'cassandra-driver';
import { LatchkeyError } from '../../errors.js';
import type { VerifierRecord } from '../store.js';
import { checkId, validId } from '../common/values.js';
import { checkVerifier, copyVerifier } from '../common/verifiers.js';
import type { CassandraContext } from './context.js';
import { cas, casBatch, MAX_ATTEMPTS, resolve, sameId } from './lwt.js';
import { ms, verifierFrom } from './rows.js';
import { readApp } from './tenancy.js';

export async function createVerifier(cx: CassandraContext, rec: VerifierRecord): Promise<VerifierRecord> {
  checkVerifier(rec);
  const row = copyVerifier(rec);
  const writeId = types.Uuid.random();
  return cx.guard(async () => {
    // Applications are never deleted, so an existing application stays existing: no Paxos needed.
    if ((await readApp(cx, row.appId, false)) === null) throw new LatchkeyError('LK_APP_NOT_FOUND', row.appId);
    const out = await cas(cx, cx.q.insertVerifier, [
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
    const applied = out === 'unknown' ? await resolve(cx, cx.q.selectVerifier, [row.appId, row.verifierToken], writeId) : out.applied;
    if (!applied) throw new LatchkeyError('LK_CONFLICT', `verifier ${row.verifierToken} exists`);
    return copyVerifier(row);
  });
}

export async function getVerifier(cx: CassandraContext, appId: string, verifierToken: string): Promise<VerifierRecord | null> {
  if (!validId(appId) || !validId(verifierToken)) return null;
  return cx.guard(async () => {
    const row = await verifierRow(cx, appId, verifierToken, false);
    return row ? verifierFrom(row) : null;
  });
}

export async function listVerifiers(cx: CassandraContext, appId: string): Promise<VerifierRecord[]> {
  if (!validId(appId)) return [];
  return cx.guard(async () => {
    const out: VerifierRecord[] = [];
    for await (const row of await cx.client.execute(cx.q.selectVerifiers, [appId], { ...cx.READ, fetchSize: 1000 })) {
      // A partition holding only its static default (no verifier rows) reads as one row of nulls.
      if (row.get('verifier_token') != null) out.push(verifierFrom(row));
    }
    return out;
  });
}

export async function updateVerifier(cx: CassandraContext, rec: VerifierRecord): Promise<VerifierRecord> {
  checkVerifier(rec);
  const next = copyVerifier(rec);
  const { appId, verifierToken } = next;
  return cx.guard(async () => {
    let row = await verifierRow(cx, appId, verifierToken, true);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (row === null) throw new LatchkeyError('LK_NOT_FOUND', `verifier ${verifierToken}`);
      const seen = row;
      const writeId = types.Uuid.random();
      const out = await cas(cx, cx.q.updateVerifier, [
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
        row = await verifierRow(cx, appId, verifierToken, true);
        if (!(out === 'unknown' && row !== null && sameId(row, writeId))) continue;
      }
      return copyVerifier({ ...next, createdAt: ms(seen.get('created_at')) });
    }
    throw new LatchkeyError('LK_STORE_UNAVAILABLE', `verifier ${verifierToken} kept changing during update`);
  });
}

export async function deleteVerifier(cx: CassandraContext, appId: string, verifierToken: string): Promise<boolean> {
  if (!validId(appId) || !validId(verifierToken)) return false;
  return cx.guard(async () => {
    let row = await verifierRow(cx, appId, verifierToken, true);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (row === null) return false;
      const drop = { query: cx.q.deleteVerifier, params: [appId, verifierToken, row.get('write_id')] };
      // The default verifier: remove it and clear the default in one conditional batch.
      const out =
        row.get('default_token') === verifierToken
          ? await casBatch(cx, [drop, { query: cx.q.clearDefaultVerifier, params: [appId, verifierToken] }])
          : await cas(cx, drop.query, drop.params);
      if (out !== 'unknown' && out.applied) return true;
      row = await verifierRow(cx, appId, verifierToken, true);
      // Unknown outcome and no row left: count it as ours (as detachEndpoint).
      if (out === 'unknown' && row === null) return true;
    }
    throw new LatchkeyError('LK_STORE_UNAVAILABLE', `verifier ${verifierToken} kept changing during delete`);
  });
}

export async function setDefaultVerifier(cx: CassandraContext, appId: string, verifierToken: string | null): Promise<void> {
  checkId('application id', appId);
  return cx.guard(async () => {
    if ((await readApp(cx, appId, false)) === null) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
    if (verifierToken === null) {
      let current = await defaultVerifier(cx, appId, true);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (current === null) return;
        const out = await cas(cx, cx.q.clearDefaultVerifier, [appId, current]);
        if (out !== 'unknown' && out.applied) return;
        current = await defaultVerifier(cx, appId, true);
      }
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', `default verifier of application ${appId} kept changing`);
    }
    if (!validId(verifierToken)) throw new LatchkeyError('LK_NOT_FOUND', `verifier ${String(verifierToken)}`);
    let row = await verifierRow(cx, appId, verifierToken, true);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (row === null) throw new LatchkeyError('LK_NOT_FOUND', `verifier ${verifierToken}`);
      if (row.get('default_token') === verifierToken) return;
      // Conditional on the row's write_id (the verifier exists) and giving it a new one, so a
      // delete that read the row before this change retries (see the file comment).
      const writeId = types.Uuid.random();
      const out = await cas(cx, cx.q.setDefaultVerifier, [verifierToken, writeId, appId, verifierToken, row.get('write_id')]);
      if (out !== 'unknown' && out.applied) return;
      row = await verifierRow(cx, appId, verifierToken, true);
      if (out === 'unknown' && row !== null && sameId(row, writeId)) return;
    }
    throw new LatchkeyError('LK_STORE_UNAVAILABLE', `default verifier of application ${appId} kept changing`);
  });
}

export async function getDefaultVerifier(cx: CassandraContext, appId: string): Promise<string | null> {
  if (!validId(appId)) return null;
  return cx.guard(() => defaultVerifier(cx, appId, false));
}

async function verifierRow(cx: CassandraContext, appId: string, verifierToken: string, serial: boolean): Promise<types.Row | null> {
  const row = (await cx.client.execute(cx.q.selectVerifier, [appId, verifierToken], serial ? cx.SERIAL_READ : cx.READ)).first();
  return row && row.get('verifier_token') != null ? row : null;
}

async function defaultVerifier(cx: CassandraContext, appId: string, serial: boolean): Promise<string | null> {
  const row = (await cx.client.execute(cx.q.selectDefaultVerifier, [appId], serial ? cx.SERIAL_READ : cx.READ)).first();
  return (row?.get('default_token') as string | null | undefined) ?? null;
}
