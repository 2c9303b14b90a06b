/**
 * Shared pieces of the admin route files: JSON-schema shorthands, value checks, the JSON views of
 * records, and the scope checks a tenant key is held to (scopes()).
 */
import crypto from 'node:crypto';
import type { ServerKeyInfo } from '../crypto/keyring.js';
import { isKeyHashId } from '../crypto/keys.js';
import { LatchkeyError } from '../errors.js';
import { BAN_KINDS, banKey } from '../store/common/protection.js';
import type { Application, BanKind, BanRecord, CredentialsRecord, EndpointRecord, Store, Tenant, VerifierRecord } from '../store/store.js';
import type { JsonSchema, RequestContext } from './http.js';

export const str = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'string', description, ...extra });
export const obj = (properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({ type: 'object', properties, required, additionalProperties: false });
export const anyObject = (description: string): JsonSchema => ({ type: 'object', description, nullable: true });

export const ID = str('identifier: letters, digits, . _ - (up to 64)', { minLength: 1, maxLength: 64 });

/** Longest ban a caller may ask for by duration: 10 years (longer: no expiry at all). */
export const MAX_BAN_SEC = 10 * 365 * 86_400;
/** Largest time a Date holds (ms): the store refuses later expiries. */
export const MAX_TIME_MS = 8.64e15;

/**
 * Application ids as tenancy/provision.ts creates them (its checkId). Stricter than the store, which
 * takes any id: a ban on a value no application can have would be accepted and do nothing.
 */
export const APP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function banValue(kind: string, value: string): { kind: BanKind; value: string } {
  if (!(BAN_KINDS as readonly string[]).includes(kind)) throw new LatchkeyError('LK_BAD_ARGUMENT', `ban kind must be one of ${BAN_KINDS.join(', ')}`);
  const ok = kind === 'keyHash' ? isKeyHashId(value) : kind === 'app' ? APP_ID.test(value) : banKey('ip', value) !== null;
  if (!ok) throw new LatchkeyError('LK_BAD_ARGUMENT', `ban value must be ${kind === 'ip' ? 'an IPv4/IPv6 address or CIDR' : kind === 'keyHash' ? 'a key hash (43 base64url characters)' : 'an application id'}`);
  return { kind: kind as BanKind, value };
}

export function pem(der: Buffer | null): string | null {
  return der ? crypto.createPublicKey({ key: der, format: 'der', type: 'spki' }).export({ format: 'pem', type: 'spki' }).toString() : null;
}

export function jsonOrNull(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const views = {
  tenant: (t: Tenant) => ({ id: t.id, name: t.name, createdAt: t.createdAt }),
  app: (a: Application) => ({ id: a.id, tenantId: a.tenantId, name: a.name, appToken: a.appToken, credentialsService: a.credentialsService, profileSchema: jsonOrNull(a.profileSchema), createdAt: a.createdAt }),
  credentials: (c: CredentialsRecord) => ({ appId: c.appId, credentialsId: c.credentialsId, status: c.status, endpointId: c.endpointId, publicKey: pem(c.publicKey), createdAt: c.createdAt, updatedAt: c.updatedAt }),
  endpoint: (e: EndpointRecord, connected: boolean) => ({
    appId: e.appId,
    keyHash: e.keyHash,
    credentialsId: e.credentialsId,
    profile: e.profileBody.toString('base64'),
    profileHash: e.profileHash.toString('hex'),
    serverProfile: jsonOrNull(e.serverProfileBody),
    connected,
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
  }),
  serverKey: (k: ServerKeyInfo) => ({ id: k.id, status: k.status, createdAt: k.createdAt, publicKey: k.publicKeyPem }),
  ban: (b: BanRecord) => ({ kind: b.kind, value: b.value, reason: b.reason, createdAt: b.createdAt, expiresAt: b.expiresAt, createdBy: b.createdBy }),
  verifier: (v: VerifierRecord, isDefault: boolean) => ({
    verifierToken: v.verifierToken, appId: v.appId, pluginTypeName: v.pluginTypeName, name: v.name, description: v.description,
    jsonConfiguration: jsonOrNull(v.jsonConfiguration), isDefault, createdAt: v.createdAt, updatedAt: v.updatedAt,
  }),
};

/** An integer query parameter in 1..max (absent: `dflt`); LK_BAD_ARGUMENT otherwise. */
export function intQuery(ctx: RequestContext, name: string, dflt: number, max: number): number {
  const text = ctx.query.get(name);
  const n = text === null ? dflt : /^[0-9]{1,7}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) throw new LatchkeyError('LK_BAD_ARGUMENT', `${name} must be 1-${max}`);
  return n;
}


/** The scope checks of a request: a tenant key sees only its tenant's tenants and applications. */
export function scopes(d: { store: Store }) {
  const tenantScoped = async (ctx: RequestContext, tenantId: string): Promise<Tenant> => {
    if (ctx.key.tenantId !== null && ctx.key.tenantId !== tenantId) throw new LatchkeyError('LK_TENANT_NOT_FOUND', tenantId);
    const t = await d.store.getTenant(tenantId);
    if (!t) throw new LatchkeyError('LK_TENANT_NOT_FOUND', tenantId);
    return t;
  };
  const appScoped = async (ctx: RequestContext, appId: string): Promise<Application> => {
    const app = await d.store.getApplication(appId);
    if (!app || (ctx.key.tenantId !== null && app.tenantId !== ctx.key.tenantId)) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
    return app;
  };
  const credentialsId = (ctx: RequestContext): string => {
    const id = ctx.params.credentialsId ?? ctx.params.keyHash ?? '';
    if (!isKeyHashId(id)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'credentials id / key hash must be 43 base64url characters');
    return id;
  };

  return { tenantScoped, appScoped, credentialsId };
}

export type Scopes = ReturnType<typeof scopes>;
