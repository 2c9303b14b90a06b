/** Owner verifier checks and copies (store.ts VerifierStore) shared by every Store backend. */
import { LatchkeyError } from '../../errors.js';
import type { VerifierRecord } from '../store.js';
import { checkId, checkTime } from './values.js';

/** Validate a verifier record before it is written (createVerifier, updateVerifier). */
export function checkVerifier(v: VerifierRecord): void {
  checkId('application id', v.appId);
  checkId('verifier token', v.verifierToken);
  checkId('verifier plugin type name', v.pluginTypeName);
  for (const field of ['name', 'description', 'jsonConfiguration'] as const) {
    if (typeof v[field] !== 'string') throw new LatchkeyError('LK_BAD_ARGUMENT', `verifier ${field} must be a string`);
  }
  checkTime('verifier createdAt', v.createdAt);
  checkTime('verifier updatedAt', v.updatedAt);
}

export function copyVerifier(v: VerifierRecord): VerifierRecord {
  return {
    appId: v.appId,
    verifierToken: v.verifierToken,
    pluginTypeName: v.pluginTypeName,
    name: v.name,
    description: v.description,
    jsonConfiguration: v.jsonConfiguration,
    createdAt: v.createdAt,
    updatedAt: v.updatedAt,
  };
}
