/**
 * Tenancy area of the Cassandra store: tenants, applications, and the application token claims
 * (applications_by_token) that keep an application token unique. readTenant and readApp serve the
 * other areas too: tenant and application rows never change once written, so a plain read decides
 * for good.
 */
import { types } from 'cassandra-driver';
import { LatchkeyError } from '../../errors.js';
import type { Application, Tenant } from '../store.js';
import { copyApplication, copyTenant } from '../common/tenancy.js';
import { checkId, validId } from '../common/values.js';
import { compare, mapLimit, READ_FANOUT, type CassandraContext } from './context.js';
import { cas, MAX_ATTEMPTS, resolve, sameId, serialRow } from './lwt.js';
import { appFrom, ms, tenantFrom } from './rows.js';

/**
 * A token claim whose application row never appeared (the creator crashed between the two
 * lightweight transactions) may be taken over after this long. Creation takes two round trips and
 * the driver's read timeout is 12 s, so a live creator finishes well within 60 s.
 */
const CLAIM_STALE_MS = 60_000; // 60 s

// --- tenants ---

export async function createTenant(cx: CassandraContext, tenant: Tenant): Promise<Tenant> {
  checkId('tenant id', tenant.id);
  const row = copyTenant(tenant);
  const writeId = types.Uuid.random();
  return cx.guard(async () => {
    const out = await cas(cx, cx.q.insertTenant, [row.id, row.name, new Date(row.createdAt), writeId]);
    const applied = out === 'unknown' ? await resolve(cx, cx.q.selectTenant, [row.id], writeId) : out.applied;
    if (!applied) throw new LatchkeyError('LK_CONFLICT', `tenant ${row.id} exists`);
    return copyTenant(row);
  });
}

export async function getTenant(cx: CassandraContext, id: string): Promise<Tenant | null> {
  if (!validId(id)) return null;
  return cx.guard(() => readTenant(cx, id, false));
}

export async function listTenants(cx: CassandraContext): Promise<Tenant[]> {
  return cx.guard(async () => {
    const out: Tenant[] = [];
    for await (const row of await cx.client.execute(cx.q.selectTenants, [], { ...cx.READ, fetchSize: 1000 })) out.push(tenantFrom(row));
    return out.sort((a, b) => compare(a.id, b.id));
  });
}

// --- applications ---

export async function createApplication(cx: CassandraContext, app: Application): Promise<Application> {
  checkId('application id', app.id);
  checkId('tenant id', app.tenantId);
  checkId('application token', app.appToken);
  const row = copyApplication(app);
  return cx.guard(async () => {
    // Tenants are never deleted, so an existing tenant stays existing: no Paxos needed.
    if ((await readTenant(cx, row.tenantId, false)) === null) throw new LatchkeyError('LK_TENANT_NOT_FOUND', row.tenantId);
    if ((await readApp(cx, row.id, false)) !== null) throw new LatchkeyError('LK_CONFLICT', `application ${row.id} exists`);
    // Token first: a refused token leaves nothing behind. The app row second: if it loses
    // (same id created concurrently), our own claim is released again.
    const claim = await claimToken(cx, row.appToken, row.id);
    // The tenant index row is written before the application row, so a crash in between cannot
    // hide a created application from listApplications; a row for an application that never
    // came to be (or belongs to another tenant) is filtered out on listing.
    await cx.client.execute(cx.q.insertTenantApp, [row.tenantId, row.id], cx.UPSERT);
    const writeId = types.Uuid.random();
    const out = await cas(cx, cx.q.insertApp, [
      row.id,
      row.tenantId,
      row.name,
      row.appToken,
      row.credentialsService,
      row.profileSchema ?? types.unset,
      new Date(row.createdAt),
      writeId,
    ]);
    const applied = out === 'unknown' ? await resolve(cx, cx.q.selectApp, [row.id], writeId) : out.applied;
    if (!applied) {
      if (claim !== null) {
        await cx.client
          .execute(cx.q.releaseToken, [row.appToken, claim], cx.CAS)
          .catch(() => undefined); // best effort: a leftover claim is taken over (see claimToken)
      }
      throw new LatchkeyError('LK_CONFLICT', `application ${row.id} exists`);
    }
    return copyApplication(row);
  });
}

export async function getApplication(cx: CassandraContext, id: string): Promise<Application | null> {
  if (!validId(id)) return null;
  return cx.guard(() => readApp(cx, id, false));
}

export async function getApplicationByToken(cx: CassandraContext, appToken: string): Promise<Application | null> {
  if (!validId(appToken)) return null;
  return cx.guard(async () => {
    const claim = (await cx.client.execute(cx.q.selectToken, [appToken], cx.READ)).first();
    if (!claim) return null;
    const app = await readApp(cx, claim.get('app_id') as string, false);
    // A claim may point at an application still being created, or be a leftover of a failed
    // create; only an application that holds this token answers.
    return app !== null && app.appToken === appToken ? app : null;
  });
}

export async function listApplications(cx: CassandraContext, tenantId: string): Promise<Application[]> {
  if (!validId(tenantId)) return [];
  return cx.guard(async () => {
    const ids: string[] = [];
    for await (const row of await cx.client.execute(cx.q.selectTenantApps, [tenantId], { ...cx.READ, fetchSize: 1000 })) {
      ids.push(row.get('app_id') as string);
    }
    const apps = await mapLimit(ids, READ_FANOUT, (id) => readApp(cx, id, false));
    return apps.filter((a): a is Application => a !== null && a.tenantId === tenantId);
  });
}

/**
 * Claim `token` for application `appId`. Returns the claim's write_id if this call wrote the
 * claim (the caller releases it if the application insert loses), null if a claim by the same
 * application id was already there (a retried or concurrent create of that id; the application
 * insert decides). Throws LK_APP_TOKEN_TAKEN if another application holds it.
 */
async function claimToken(cx: CassandraContext, token: string, appId: string): Promise<types.Uuid | null> {
  const writeId = types.Uuid.random();
  let out = await cas(cx, cx.q.claimToken, [token, appId, new Date(), writeId]);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (out !== 'unknown' && out.applied) return writeId;
    const holder = await serialRow(cx, cx.q.selectToken, [token]);
    if (!holder) {
      if (out === 'unknown') throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'token claim timed out and did not apply');
      out = await cas(cx, cx.q.claimToken, [token, appId, new Date(), writeId]); // released meanwhile
      continue;
    }
    if (sameId(holder, writeId)) return writeId;
    const holderId = holder.get('app_id') as string;
    if (holderId === appId) return null;
    const holderApp = await readApp(cx, holderId, true);
    if (holderApp !== null && holderApp.appToken === token) throw new LatchkeyError('LK_APP_TOKEN_TAKEN', `application ${appId}`);
    // Application rows never change, so a holder whose row exists with another token left this
    // claim behind in a failed create; a holder with no row is either still being created
    // (leave it) or crashed between the two transactions (take over once stale).
    const stale = holderApp !== null || Date.now() - ms(holder.get('claimed_at')) > CLAIM_STALE_MS;
    if (!stale) throw new LatchkeyError('LK_APP_TOKEN_TAKEN', `application ${appId}`);
    out = await cas(cx, cx.q.takeOverToken, [appId, new Date(), writeId, token, holder.get('write_id')]);
  }
  throw new LatchkeyError('LK_STORE_UNAVAILABLE', `token claim for application ${appId} kept changing`);
}

/** A tenant by id; `serial`: a linearizable read. */
export async function readTenant(cx: CassandraContext, id: string, serial: boolean): Promise<Tenant | null> {
  const row = (await cx.client.execute(cx.q.selectTenant, [id], serial ? cx.SERIAL_READ : cx.READ)).first();
  return row ? tenantFrom(row) : null;
}

/** An application by id; `serial`: a linearizable read. */
export async function readApp(cx: CassandraContext, id: string, serial: boolean): Promise<Application | null> {
  const row = (await cx.client.execute(cx.q.selectApp, [id], serial ? cx.SERIAL_READ : cx.READ)).first();
  return row ? appFrom(row) : null;
}
