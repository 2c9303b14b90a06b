/** Copies of tenancy records (store.ts TenancyStore) shared by every Store backend. */
import type { Application, Tenant } from '../store.js';

export function copyTenant(t: Tenant): Tenant {
  return { id: t.id, name: t.name, createdAt: t.createdAt };
}

export function copyApplication(a: Application): Application {
  return {
    id: a.id,
    tenantId: a.tenantId,
    name: a.name,
    appToken: a.appToken,
    credentialsService: a.credentialsService,
    profileSchema: a.profileSchema ?? null,
    createdAt: a.createdAt,
  };
}
