/**
 * Trustful verifier (Kaa's TrustfulUserVerifier): every token is accepted for every user. For
 * development and tests only: anyone who knows a user id can attach an endpoint to that owner, so
 * creating one logs a warning.
 */
import type { OwnerVerifier, VerifierContext } from './types.js';

export const description = 'Accepts every token for every user. Development only: not for production.';

export const configSchema = {
  type: 'record',
  name: 'TrustfulVerifierConfig',
  namespace: 'org.latchkey.verifiers',
  doc: 'No settings.',
  fields: [],
};

export function create(_config: Record<string, never>, ctx: VerifierContext): OwnerVerifier {
  ctx.log.warn('trustful owner verifier accepts any access token for any user: not for production');
  return {
    verify: async () => ({ ok: true }),
    close: async () => {},
  };
}
