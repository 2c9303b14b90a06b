/**
 * Tenancy area of the embedded store: tenants, and applications with their indexes `app_tokens`
 * (app token -> application id, claimed in the same transaction that creates the application, so a
 * token is never held twice) and `tenant_apps` (tenantId, appId), so a tenant's applications are one
 * range ordered by id.
 */
import { LatchkeyError } from '../../errors.js';
import type { Application, Tenant } from '../store.js';
import { copyApplication, copyTenant } from '../common/tenancy.js';
import { checkId, validId } from '../common/values.js';
import { key, prefixRange } from './keys.js';
import { nullable, type EmbeddedContext } from './lmdb.js';

// --- tenants ---

export async function createTenant(cx: EmbeddedContext, tenant: Tenant): Promise<Tenant> {
  checkId('tenant id', tenant.id);
  const row = copyTenant(tenant);
  const k = key(row.id);
  await cx.write(() => {
    if (cx.dbs.tenants.doesExist(k)) throw new LatchkeyError('LK_CONFLICT', `tenant ${row.id} exists`);
    cx.dbs.tenants.put(k, row);
  });
  return copyTenant(row);
}

export async function getTenant(cx: EmbeddedContext, id: string): Promise<Tenant | null> {
  if (!validId(id)) return null;
  return cx.read(() => nullable(cx.dbs.tenants.get(key(id)), copyTenant));
}

export async function listTenants(cx: EmbeddedContext): Promise<Tenant[]> {
  return cx.read(() => [...cx.dbs.tenants.getRange({})].map((e) => copyTenant(e.value)));
}

// --- applications ---

export async function createApplication(cx: EmbeddedContext, app: Application): Promise<Application> {
  checkId('application id', app.id);
  checkId('tenant id', app.tenantId);
  checkId('application token', app.appToken);
  const row = copyApplication(app);
  await cx.write(() => {
    const { tenants, applications, appTokens, tenantApps } = cx.dbs;
    if (!tenants.doesExist(key(row.tenantId))) throw new LatchkeyError('LK_TENANT_NOT_FOUND', row.tenantId);
    if (applications.doesExist(key(row.id))) throw new LatchkeyError('LK_CONFLICT', `application ${row.id} exists`);
    if (appTokens.doesExist(key(row.appToken))) throw new LatchkeyError('LK_APP_TOKEN_TAKEN', `application ${row.id}`);
    applications.put(key(row.id), row);
    appTokens.put(key(row.appToken), row.id);
    tenantApps.put(key(row.tenantId, row.id), row.id);
  });
  return copyApplication(row);
}

export async function getApplication(cx: EmbeddedContext, id: string): Promise<Application | null> {
  if (!validId(id)) return null;
  return cx.read(() => nullable(cx.dbs.applications.get(key(id)), copyApplication));
}

export async function getApplicationByToken(cx: EmbeddedContext, appToken: string): Promise<Application | null> {
  if (!validId(appToken)) return null;
  return cx.read(() => {
    const appId = cx.dbs.appTokens.get(key(appToken));
    if (appId === undefined) return null;
    return nullable(cx.dbs.applications.get(key(appId)), copyApplication);
  });
}

export async function listApplications(cx: EmbeddedContext, tenantId: string): Promise<Application[]> {
  if (!validId(tenantId)) return [];
  return cx.read(() => {
    const out: Application[] = [];
    for (const { value: appId } of cx.dbs.tenantApps.getRange(prefixRange(tenantId))) {
      const app = cx.dbs.applications.get(key(appId));
      if (app !== undefined) out.push(copyApplication(app));
    }
    return out;
  });
}
