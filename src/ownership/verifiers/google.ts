/**
 * Google verifier: `GET {tokeninfo_url}?access_token=<token>`. The v3 endpoint answers
 * `{ sub, aud, exp, expires_in, ... }` with numbers as strings; the legacy v1/v2 endpoints answer
 * `{ user_id, audience | issued_to, expires_in }`. Both shapes are read. An invalid or expired token
 * gets HTTP 400 (`invalid_token` / "Invalid Value"), which Google does not split, so it is
 * TOKEN_INVALID; TOKEN_EXPIRED comes from an answer whose exp or expires_in is already past.
 *
 * Kaa checked only the user id; this also requires the audience (the OAuth client id the token was
 * issued to) to be one of ours, since any app's Google token would otherwise attach owners here.
 */
import { LatchkeyError } from '../../errors.js';
import { checkHttpConfig, fail, HTTP_CONFIG_FIELDS, idString, isObject, numeric, ProviderClient, providerUrl, type HttpConfig } from './http.js';
import type { OwnerVerifier, VerifierContext, VerifyResult } from './types.js';

export const description = 'Google OAuth 2.0 access tokens, checked with the tokeninfo endpoint.';

export const configSchema = {
  type: 'record',
  name: 'GoogleVerifierConfig',
  namespace: 'org.latchkey.verifiers',
  fields: [
    { name: 'audience', type: { type: 'array', items: 'string' }, doc: 'OAuth client ids of this application; tokens issued to any other client are refused' },
    { name: 'tokeninfo_url', type: 'string', default: 'https://www.googleapis.com/oauth2/v3/tokeninfo', doc: 'tokeninfo endpoint' },
    ...HTTP_CONFIG_FIELDS,
  ],
};

export interface GoogleConfig extends HttpConfig {
  audience: string[];
  tokeninfo_url: string;
}

export function create(config: GoogleConfig, _ctx: VerifierContext): OwnerVerifier {
  checkHttpConfig('google', config);
  if (config.audience.length === 0) throw new LatchkeyError('LK_BAD_VERIFIER_CONFIG', 'google: audience must name at least one client id');
  const endpoint = providerUrl('google', 'tokeninfo_url', config.tokeninfo_url);
  const client = new ProviderClient(endpoint, config);
  const audience = new Set(config.audience);
  return {
    async verify(userExternalId, accessToken) {
      if (!accessToken) return fail('TOKEN_INVALID', 'empty access token');
      const url = new URL(endpoint.href);
      url.searchParams.set('access_token', accessToken);
      const res = await client.getJson(url);
      if (!res.ok) return res;
      return interpret(res.status, res.body, userExternalId, audience, Date.now());
    },
    close: () => client.close(),
  };
}

function interpret(status: number, body: unknown, userExternalId: string, audience: Set<string>, now: number): VerifyResult {
  if (status === 400 || status === 401) return fail('TOKEN_INVALID', 'access token is not valid');
  if (status !== 200) return fail('REMOTE_ERROR', `tokeninfo answered HTTP ${status}`);
  if (!isObject(body)) return fail('REMOTE_ERROR', 'tokeninfo answer is not an object');
  if (body.error !== undefined) return fail('TOKEN_INVALID', 'access token is not valid');
  const user = idString(body.sub) ?? idString(body.user_id);
  const aud = idString(body.aud) ?? idString(body.audience) ?? idString(body.issued_to);
  const exp = numeric(body.exp);
  const expiresIn = numeric(body.expires_in);
  if (user === undefined || aud === undefined || (exp === undefined && expiresIn === undefined)) {
    return fail('REMOTE_ERROR', 'tokeninfo answer lacks the user id, audience or expiry');
  }
  if ((exp !== undefined && exp * 1000 <= now) || (expiresIn !== undefined && expiresIn <= 0)) {
    return fail('TOKEN_EXPIRED', 'access token has expired');
  }
  if (!audience.has(aud)) return fail('OTHER', 'access token was issued to another client');
  if (user !== userExternalId) return fail('OTHER', 'access token belongs to another user');
  return { ok: true };
}
