/**
 * Provisioning operations shared by the CLI, the seed file and (later) the admin API: create
 * tenants and applications, provision credentials and server-side profiles. Inputs are validated
 * here so every entry point refuses the same things with the same codes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { keyHashId, toSpkiDer } from '../crypto/keys.js';
import { LatchkeyError } from '../errors.js';
import type { Application, CredentialsRecord, RegistrationRecord, Store, Tenant } from '../store/store.js';
import { parseProfileSchema } from './applications.js';

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const BUILTIN_CREDENTIALS_SERVICES = ['trustful', 'internal'] as const;

function checkId(what: string, id: string): string {
  if (!ID.test(id)) throw new LatchkeyError('LK_BAD_ARGUMENT', `${what} must match ${ID.source}`);
  return id;
}

/**
 * A generated app token: 16 random bytes as base64url (22 characters) that begins with a letter or
 * digit, never `-` or `_`: a token starting with `-` is taken for an option by command-line parsers
 * (docs/protocol.md section 3). Redrawing the 2 in 64 draws that start so costs under 0.05 bit.
 */
export function randomToken(): string {
  for (;;) {
    const t = crypto.randomBytes(16).toString('base64url');
    if (/^[A-Za-z0-9]/.test(t)) return t;
  }
}

export async function createTenant(store: Store, input: { id?: string; name: string }): Promise<Tenant> {
  if (!input.name || input.name.length > 200) throw new LatchkeyError('LK_BAD_ARGUMENT', 'tenant name must be 1-200 characters');
  const id = checkId('tenant id', input.id ?? crypto.randomUUID());
  return store.createTenant({ id, name: input.name, createdAt: Date.now() });
}

export interface CreateAppInput {
  id?: string;
  tenantId: string;
  name: string;
  appToken?: string;
  credentialsService?: string;
  profileSchema?: string | null;
}

export async function createApplication(store: Store, input: CreateAppInput, knownServices: readonly string[]): Promise<Application> {
  if (!input.name || input.name.length > 200) throw new LatchkeyError('LK_BAD_ARGUMENT', 'application name must be 1-200 characters');
  const credentialsService = input.credentialsService ?? 'trustful';
  if (!knownServices.includes(credentialsService)) {
    throw new LatchkeyError('LK_BAD_CREDENTIALS_SERVICE', `${credentialsService}; known: ${knownServices.join(', ')}`);
  }
  const appToken = input.appToken ?? randomToken();
  if (!/^[A-Za-z0-9_-]{8,128}$/.test(appToken)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'app token must be 8-128 characters of [A-Za-z0-9_-]');
  const profileSchema = input.profileSchema ?? null;
  if (profileSchema !== null) parseProfileSchema(profileSchema);
  const id = checkId('application id', input.id ?? crypto.randomUUID());
  return store.createApplication({ id, tenantId: input.tenantId, name: input.name, appToken, credentialsService, profileSchema, createdAt: Date.now() });
}

/** Provision credentials from a public key (PEM or DER); the credentials id is the key hash. */
export async function provisionCredentials(store: Store, appId: string, publicKey: string | Buffer): Promise<CredentialsRecord> {
  const spki = toSpkiDer(publicKey);
  return store.provisionCredentials(appId, keyHashId(spki), spki);
}

export function checkServerProfile(body: string | null): string | null {
  if (body === null) return null;
  try {
    JSON.parse(body);
  } catch (err) {
    throw new LatchkeyError('LK_BAD_SERVER_PROFILE', `not JSON: ${(err as Error).message}`);
  }
  return body;
}

export async function provisionRegistration(store: Store, appId: string, credentialsId: string, serverProfileBody: string | null): Promise<RegistrationRecord> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(credentialsId)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'credentials id must be a base64url SHA-256 key hash (43 characters)');
  return store.provisionRegistration(appId, credentialsId, checkServerProfile(serverProfileBody));
}

/**
 * Seed file (JSON), applied idempotently: objects that already exist are left as they are.
 * {
 *   "tenants": [{ "id": "acme", "name": "Acme" }],
 *   "applications": [{ "id": "thermo", "tenantId": "acme", "name": "Thermostats", "appToken": "...",
 *                      "credentialsService": "internal", "profileSchema": { ...Avro... } }],
 *   "credentials": [{ "appId": "thermo", "publicKeyPem": "-----BEGIN PUBLIC KEY-----...",
 *                     "serverProfile": { ... } }]
 * }
 */
export interface SeedResult {
  tenants: number;
  applications: number;
  credentials: number;
  registrations: number;
}

export async function applySeed(store: Store, file: string, knownServices: readonly string[]): Promise<SeedResult> {
  let seed: Record<string, unknown>;
  try {
    seed = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new LatchkeyError('LK_SEED_INVALID', `${file}: ${(err as Error).message}`);
  }
  const out: SeedResult = { tenants: 0, applications: 0, credentials: 0, registrations: 0 };
  const list = (k: string): Array<Record<string, unknown>> => {
    const v = seed[k] ?? [];
    if (!Array.isArray(v)) throw new LatchkeyError('LK_SEED_INVALID', `${k} must be an array`);
    return v as Array<Record<string, unknown>>;
  };
  for (const k of Object.keys(seed)) {
    if (!['tenants', 'applications', 'credentials'].includes(k)) throw new LatchkeyError('LK_SEED_INVALID', `unknown key ${k}`);
  }
  const ignoreConflict = async (fn: () => Promise<unknown>): Promise<boolean> => {
    try {
      await fn();
      return true;
    } catch (err) {
      if (err instanceof LatchkeyError && (err.code === 'LK_CONFLICT' || err.code === 'LK_CRED_EXISTS')) return false;
      throw err;
    }
  };
  for (const t of list('tenants')) {
    if (await ignoreConflict(() => createTenant(store, { id: String(t.id), name: String(t.name ?? t.id) }))) out.tenants++;
  }
  for (const a of list('applications')) {
    const schema = a.profileSchema === undefined || a.profileSchema === null ? null : typeof a.profileSchema === 'string' ? a.profileSchema : JSON.stringify(a.profileSchema);
    const input: CreateAppInput = { id: String(a.id), tenantId: String(a.tenantId), name: String(a.name ?? a.id), profileSchema: schema };
    if (typeof a.appToken === 'string') input.appToken = a.appToken;
    if (typeof a.credentialsService === 'string') input.credentialsService = a.credentialsService;
    if (await ignoreConflict(() => createApplication(store, input, knownServices))) out.applications++;
  }
  for (const c of list('credentials')) {
    if (typeof c.appId !== 'string' || typeof c.publicKeyPem !== 'string') throw new LatchkeyError('LK_SEED_INVALID', 'credentials need appId and publicKeyPem');
    const spki = toSpkiDer(c.publicKeyPem);
    if (await ignoreConflict(() => store.provisionCredentials(c.appId as string, keyHashId(spki), spki))) out.credentials++;
    if (c.serverProfile !== undefined) {
      await provisionRegistration(store, c.appId, keyHashId(spki), JSON.stringify(c.serverProfile));
      out.registrations++;
    }
  }
  return out;
}
