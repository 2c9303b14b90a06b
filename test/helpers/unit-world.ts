/**
 * Real, cheap collaborators for in-process unit tests of the session, credentials, control and
 * ownership components: an embedded store (LMDB) in a temp dir, applications on it, the server key
 * ring and endpoint key of test/fixtures (no RSA key generation), a silent logger. What is costly
 * (the crypto pool, transports) each test file stubs itself.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { KeyRing, privateKeyPath, serverKeyId } from '../../src/crypto/keyring.js';
import { EmbeddedStore } from '../../src/store/store-embedded.js';
import type { Application } from '../../src/store/store.js';
import { createApplication, createTenant } from '../../src/tenancy/provision.js';
import { ROOT } from './root.js';
import { endpointKeyFrom, type NodeEndpointKey } from './wire-client.js';

const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const SERVICES = ['trustful', 'internal'];

export const silentLog: Logger = pino({ level: 'silent' });

export interface UnitWorld {
  dir: string;
  store: EmbeddedStore;
  /** A new tenant with one application using `credentialsService` ('trustful', 'internal' or one of `extraServices`). */
  app(credentialsService?: string, extraServices?: string[]): Promise<Application>;
  close(): Promise<void>;
}

export async function openUnitWorld(): Promise<UnitWorld> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-unit-'));
  const store = await EmbeddedStore.open(path.join(dir, 'store'));
  let n = 0;
  return {
    dir,
    store,
    async app(credentialsService = 'trustful', extraServices = []) {
      const id = `u${n++}-${crypto.randomBytes(4).toString('hex')}`;
      const tenant = await createTenant(store, { id: `t-${id}`, name: id });
      return createApplication(store, { id: `a-${id}`, tenantId: tenant.id, name: id, credentialsService }, [...SERVICES, ...extraServices]);
    },
    async close() {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A key ring in `dir` holding the fixture server key (test/fixtures/example-server.*.pem) as its active key. */
export async function fixtureKeyRing(dir: string): Promise<KeyRing> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pub = fs.readFileSync(path.join(FIXTURES, 'example-server.pub.pem'), 'utf8');
  const id = serverKeyId(crypto.createPublicKey(pub).export({ format: 'der', type: 'spki' }));
  fs.writeFileSync(path.join(dir, `${id}.pub.pem`), pub);
  fs.writeFileSync(privateKeyPath(dir, id), fs.readFileSync(path.join(FIXTURES, 'example-server.key.pem')), { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'keyring.json'), JSON.stringify({ keys: [{ id, status: 'active', createdAt: 0 }] }));
  return KeyRing.loadOrCreate(dir);
}

/** The fixture endpoint key (test/fixtures/example-endpoint.*.pem). */
export function fixtureEndpointKey(): NodeEndpointKey {
  return endpointKeyFrom(
    crypto.createPrivateKey(fs.readFileSync(path.join(FIXTURES, 'example-endpoint.key.pem'))),
    crypto.createPublicKey(fs.readFileSync(path.join(FIXTURES, 'example-endpoint.pub.pem'))),
  );
}
