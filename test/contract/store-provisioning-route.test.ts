/**
 * POST /admin/v1/applications/{appId}/credentials with a serverProfile, through its route handler
 * on the embedded store: the credentials and the profile are one store write (Store
 * provisionCredentials with serverProfileBody), and a retry is idempotent while the credentials
 * are AVAILABLE with the same key and no profile or the same one. The crash this guards against
 * (credentials written, profile not) is simulated by provisioning without the profile first, as
 * the two writes of an earlier build or of a plugin credentials service leave it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRoutes, type AdminDeps } from '../../src/admin/routes.js';
import type { RequestContext, Route } from '../../src/admin/http.js';
import { MemoryCache } from '../../src/cache/cache-memory.js';
import { CredentialsGate, StoreCredentialsService, type CredentialsService } from '../../src/credentials/credentials.js';
import { LatchkeyError } from '../../src/errors.js';
import type { CredentialsRecord } from '../../src/store/store.js';
import { EmbeddedStore } from '../../src/store/store-embedded.js';
import { makeEndpointKey } from '../helpers/wire-client.js';
import { uid } from './store.contract.js';

let dir: string;
let store: EmbeddedStore;
let route: Route;
/** Credentials a stand-in plugin service keeps outside the store. */
const pluginRecords = new Map<string, CredentialsRecord>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latchkey-provision-'));
  store = await EmbeddedStore.open(dir);
  const plugin: CredentialsService = {
    async provideCredentials(appId, credentialsId, publicKey) {
      const k = `${appId}/${credentialsId}`;
      if (pluginRecords.has(k)) throw new LatchkeyError('LK_CRED_EXISTS', credentialsId);
      const now = Date.now();
      const rec: CredentialsRecord = { appId, credentialsId, publicKey, status: 'AVAILABLE', endpointId: null, createdAt: now, updatedAt: now };
      pluginRecords.set(k, rec);
      return rec;
    },
    async lookupCredentials(appId, credentialsId) {
      return pluginRecords.get(`${appId}/${credentialsId}`) ?? null;
    },
    async markCredentialsInUse() {
      throw new Error('not used');
    },
    async markCredentialsRevoked() {
      return null;
    },
  };
  const services = new Map<string, CredentialsService>([
    ['internal', new StoreCredentialsService(store, false)],
    ['plugin', plugin],
  ]);
  const credentials = new CredentialsGate(services, new MemoryCache(), { ttlMs: 60_000, negativeTtlMs: 60_000 });
  // Only what this handler uses; the rest of AdminDeps is never touched by it.
  const deps = { store, credentials } as unknown as AdminDeps;
  route = adminRoutes(deps).find((r) => r.method === 'POST' && r.path === '/admin/v1/applications/{appId}/credentials')!;
});

afterAll(async () => {
  await store?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function newApp(credentialsService: string): Promise<string> {
  const t = await store.createTenant({ id: uid('t'), name: 'T', createdAt: Date.now() });
  const a = await store.createApplication({ id: uid('a'), tenantId: t.id, name: 'A', appToken: uid('tok'), credentialsService, profileSchema: null, createdAt: Date.now() });
  return a.id;
}

/** Call the handler as the router would; a LatchkeyError answers with its code. */
async function provision(appId: string, publicKey: string, serverProfile?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const ctx: RequestContext = {
    params: { appId },
    query: new URLSearchParams(),
    body: { publicKey, ...(serverProfile !== undefined ? { serverProfile } : {}) },
    key: { id: 'root', tenantId: null },
  };
  try {
    const r = await route.handler(ctx);
    return { status: r.status, body: r.body as Record<string, unknown> };
  } catch (err) {
    if (err instanceof LatchkeyError) return { status: 409, body: { code: err.code } };
    throw err;
  }
}

describe('provisioning credentials with a server profile (admin route)', () => {
  it('writes credentials and profile in one store call; a retry answers 200, another profile or no profile 409', async () => {
    const appId = await newApp('internal');
    const key = makeEndpointKey();
    const first = await provision(appId, key.publicKeyPem, { room: 'attic' });
    expect(first).toMatchObject({ status: 201, body: { credentials: { credentialsId: key.keyHash, status: 'AVAILABLE' }, registration: { serverProfile: { room: 'attic' } } } });
    expect(await store.getRegistration(appId, key.keyHash)).toMatchObject({ serverProfileBody: '{"room":"attic"}' });

    // The answer was lost and the caller retries: same key, same profile.
    expect(await provision(appId, key.publicKeyPem, { room: 'attic' })).toMatchObject({ status: 200, body: { registration: { serverProfile: { room: 'attic' } } } });
    expect(await provision(appId, key.publicKeyPem, { room: 'cellar' })).toEqual({ status: 409, body: { code: 'LK_CRED_EXISTS' } });
    expect(await provision(appId, key.publicKeyPem)).toEqual({ status: 409, body: { code: 'LK_CRED_EXISTS' } });
    expect(await store.getRegistration(appId, key.keyHash)).toMatchObject({ serverProfileBody: '{"room":"attic"}' });
  });

  it('completes credentials left without their profile (a crash between two writes), only while they are AVAILABLE', async () => {
    const appId = await newApp('internal');
    const key = makeEndpointKey();
    await store.provisionCredentials(appId, key.keyHash, key.spki); // what the crash left
    expect(await provision(appId, key.publicKeyPem, { room: 'hall' })).toMatchObject({ status: 200, body: { registration: { serverProfile: { room: 'hall' } } } });
    expect(await store.getRegistration(appId, key.keyHash)).toMatchObject({ serverProfileBody: '{"room":"hall"}' });

    // Bound: the endpoint registered already, a profile provisioned now would not reach it.
    const bound = makeEndpointKey();
    await store.provisionCredentials(appId, bound.keyHash, bound.spki);
    await store.bindCredentials(appId, bound.keyHash, bound.keyHash);
    expect(await provision(appId, bound.publicKeyPem, { room: 'hall' })).toEqual({ status: 409, body: { code: 'LK_CRED_EXISTS' } });
    expect(await store.getRegistration(appId, bound.keyHash)).toBeNull();
  });

  it('a plugin service: two writes, and a retry completes the profile the first call did not write', async () => {
    const appId = await newApp('plugin');
    const key = makeEndpointKey();
    expect(await provision(appId, key.publicKeyPem, { room: 'loft' })).toMatchObject({ status: 201, body: { registration: { serverProfile: { room: 'loft' } } } });
    expect(await store.getRegistration(appId, key.keyHash)).toMatchObject({ serverProfileBody: '{"room":"loft"}' });

    const crashed = makeEndpointKey();
    await provision(appId, crashed.publicKeyPem); // the plugin wrote the credentials; the profile write never ran
    expect(await provision(appId, crashed.publicKeyPem, { room: 'loft' })).toMatchObject({ status: 200 });
    expect(await store.getRegistration(appId, crashed.keyHash)).toMatchObject({ serverProfileBody: '{"room":"loft"}' });
  });
});
