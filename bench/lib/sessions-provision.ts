/**
 * Provisioning for bench/sessions: N credentials of an `internal` (allow-list) application, written
 * straight into the embedded store of a fresh data directory before the server starts, so every
 * handshake does the real credentials lookup. Through the store's own API (the checks the CLI and
 * the seed file go through), many writes in flight at once: lmdb-js commits the writes queued
 * meanwhile in one transaction, so 250,000 records take seconds, not one durable commit each.
 * Nothing secret is written to the repository: the data directory is a temporary one.
 */
import path from 'node:path';
import { EmbeddedStore } from '../../src/store/store-embedded.js';
import { createApplication, createTenant, BUILTIN_CREDENTIALS_SERVICES } from '../../src/tenancy/provision.js';
import { keyHashId } from '../../src/crypto/keys.js';
import { bulkKey, type PrimePool } from './bulk-keys.js';
import { bulkSpki } from './sessions-keys.js';

export const TENANT = 'bench';
export const APP = 'sessions';

/** Writes in flight at once (each batch of this many is committed together by lmdb-js). */
const IN_FLIGHT = 2000;

export async function provision(dataDir: string, pool: PrimePool, n: number, appToken: string, log: (s: string) => void): Promise<{ seconds: number }> {
  // The hand-built SPKI must be the real key's (bench/lib/sessions-keys.ts): check one per run.
  const probe = Math.min(n - 1, 12_345);
  if (!bulkSpki(pool, probe).equals(bulkKey(pool, probe).spki)) throw new Error(`bulkSpki(${probe}) differs from the derived key's SPKI`);
  const store = await EmbeddedStore.open(path.join(dataDir, 'store'));
  const t0 = Date.now();
  try {
    await createTenant(store, { id: TENANT, name: 'bench' });
    await createApplication(store, { id: APP, tenantId: TENANT, name: 'bench/sessions', appToken, credentialsService: 'internal' }, BUILTIN_CREDENTIALS_SERVICES);
    let done = 0;
    let last = Date.now();
    for (let from = 0; from < n; from += IN_FLIGHT) {
      const to = Math.min(n, from + IN_FLIGHT);
      const writes: Array<Promise<unknown>> = [];
      for (let i = from; i < to; i++) {
        const spki = bulkSpki(pool, i);
        writes.push(store.provisionCredentials(APP, keyHashId(spki), spki));
      }
      await Promise.all(writes);
      done = to;
      if (Date.now() - last >= 1000) {
        log(`provisioned ${done}/${n} credentials (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
        last = Date.now();
      }
    }
    log(`provisioned ${done} credentials of the internal application '${APP}' in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    await store.close();
  }
  return { seconds: (Date.now() - t0) / 1000 };
}
