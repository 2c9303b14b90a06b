/**
 * Admin API keys: `lk_<id>.<secret>`, id 16 base64url characters, secret 32 random bytes
 * (base64url). Only SHA-256(secret) is stored; a plain hash suffices because the secret is 256 bits
 * of randomness (no dictionary to try), and it keeps verification cheap. Comparison is constant
 * time. Scopes: root (tenantId null) or one tenant.
 */
import crypto from 'node:crypto';
import { LatchkeyError } from '../errors.js';
import type { ApiKeyRecord, Store } from '../store/store.js';
import type { Authenticator } from './http.js';

const KEY_FORMAT = /^lk_([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/;

export interface NewApiKey {
  record: ApiKeyRecord;
  /** The full key, shown once. */
  token: string;
}

export function newApiKey(tenantId: string | null, name: string): NewApiKey {
  const id = crypto.randomBytes(12).toString('base64url');
  const secret = crypto.randomBytes(32).toString('base64url');
  return {
    record: { id, tenantId, name, secretHash: crypto.createHash('sha256').update(secret).digest(), createdAt: Date.now() },
    token: `lk_${id}.${secret}`,
  };
}

export class ApiKeyAuthenticator implements Authenticator {
  constructor(private readonly store: Store) {}

  async authenticate(header: string): Promise<{ id: string; tenantId: string | null }> {
    if (!header) throw new LatchkeyError('LK_AUTH_REQUIRED');
    const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
    const parsed = m ? KEY_FORMAT.exec(m[1]!) : null;
    if (!parsed) throw new LatchkeyError('LK_AUTH_INVALID');
    const rec = await this.store.getApiKey(parsed[1]!);
    const hash = crypto.createHash('sha256').update(parsed[2]!).digest();
    // Compare even when the id is unknown, so timing does not tell which ids exist.
    const expected = rec?.secretHash ?? Buffer.alloc(32);
    if (!crypto.timingSafeEqual(hash, expected) || !rec) throw new LatchkeyError('LK_AUTH_INVALID');
    return { id: rec.id, tenantId: rec.tenantId };
  }
}
