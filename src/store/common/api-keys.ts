/** Admin API key checks and copies (store.ts ApiKeyStore) shared by every Store backend. */
import { LatchkeyError } from '../../errors.js';
import type { ApiKeyRecord } from '../store.js';
import { checkId } from './values.js';

/** Length of ApiKeyRecord.secretHash (SHA-256). */
export const API_KEY_HASH_BYTES = 32;

/** Validate an API key record before it is written. */
export function checkApiKey(k: ApiKeyRecord): void {
  checkId('API key id', k.id);
  if (k.tenantId != null) checkId('tenant id', k.tenantId);
  if (!(k.secretHash instanceof Uint8Array) || k.secretHash.length !== API_KEY_HASH_BYTES) {
    throw new LatchkeyError('LK_BAD_ARGUMENT', `API key secret hash must be ${API_KEY_HASH_BYTES} bytes`);
  }
  if (typeof k.name !== 'string') throw new LatchkeyError('LK_BAD_ARGUMENT', 'API key name must be a string');
  if (!Number.isSafeInteger(k.createdAt)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'API key createdAt must be an integer');
}

export function copyApiKey(k: ApiKeyRecord): ApiKeyRecord {
  return {
    id: k.id,
    tenantId: k.tenantId ?? null,
    secretHash: Buffer.from(k.secretHash),
    name: k.name,
    createdAt: k.createdAt,
  };
}
