/**
 * Facebook verifier: Graph API `GET {graph_url}/debug_token?input_token=<token>&access_token=<app_id>|<app_secret>`
 * answers `{ data: { app_id, user_id, is_valid, expires_at, error? } }` for the user token.
 *
 * Kaa only compared user_id; this also requires is_valid, an unexpired token (expires_at 0 means
 * "never expires") and app_id equal to ours, so a token issued to another app cannot attach owners.
 * A top-level `error` (not under `data`) means Graph refused the request itself, usually our app
 * credentials: that is REMOTE_ERROR, not the endpoint's token.
 */
import { checkHttpConfig, fail, HTTP_CONFIG_FIELDS, idString, isObject, joinPath, numeric, ProviderClient, providerUrl, type HttpConfig } from './http.js';
import type { OwnerVerifier, VerifierContext, VerifyResult } from './types.js';

export const description = 'Facebook user access tokens, checked with the Graph API debug_token call.';

export const configSchema = {
  type: 'record',
  name: 'FacebookVerifierConfig',
  namespace: 'org.latchkey.verifiers',
  fields: [
    { name: 'app_id', type: 'string', doc: 'Facebook app id; tokens issued to any other app are refused' },
    { name: 'app_secret', type: 'string', doc: 'Facebook app secret; app_id|app_secret is the app access token debug_token needs' },
    { name: 'graph_url', type: 'string', default: 'https://graph.facebook.com', doc: 'Graph API base URL, may include a version (https://graph.facebook.com/v19.0)' },
    ...HTTP_CONFIG_FIELDS,
  ],
};

export interface FacebookConfig extends HttpConfig {
  app_id: string;
  app_secret: string;
  graph_url: string;
}

/** Graph subcode for "session has expired" under error code 190 (OAuthException). */
const SUBCODE_EXPIRED = 463;

export function create(config: FacebookConfig, _ctx: VerifierContext): OwnerVerifier {
  checkHttpConfig('facebook', config);
  const endpoint = joinPath(providerUrl('facebook', 'graph_url', config.graph_url), 'debug_token');
  const client = new ProviderClient(endpoint, config);
  const appToken = `${config.app_id}|${config.app_secret}`;
  return {
    async verify(userExternalId, accessToken) {
      if (!accessToken) return fail('TOKEN_INVALID', 'empty access token');
      const url = new URL(endpoint.href);
      url.searchParams.set('input_token', accessToken);
      url.searchParams.set('access_token', appToken);
      const res = await client.getJson(url);
      if (!res.ok) return res;
      return interpret(res.status, res.body, userExternalId, config.app_id, Date.now());
    },
    close: () => client.close(),
  };
}

function interpret(status: number, body: unknown, userExternalId: string, appId: string, now: number): VerifyResult {
  if (status !== 200) {
    const err = isObject(body) && isObject(body.error) ? body.error : undefined;
    if (err) return fail('REMOTE_ERROR', `Graph refused the debug_token request (HTTP ${status}, code ${String(err.code)}): check app_id and app_secret`);
    return fail('REMOTE_ERROR', `Graph answered HTTP ${status}`);
  }
  const data = isObject(body) && isObject(body.data) ? body.data : undefined;
  if (!data || typeof data.is_valid !== 'boolean') return fail('REMOTE_ERROR', 'Graph answer has no data.is_valid');
  const expiresAt = numeric(data.expires_at) ?? 0;
  if (isObject(data.error)) {
    if (data.error.subcode === SUBCODE_EXPIRED) return fail('TOKEN_EXPIRED', 'access token has expired');
    return fail('TOKEN_INVALID', typeof data.error.message === 'string' ? data.error.message.slice(0, 200) : 'access token is not valid');
  }
  if (expiresAt > 0 && expiresAt * 1000 <= now) return fail('TOKEN_EXPIRED', 'access token has expired');
  if (!data.is_valid) return fail('TOKEN_INVALID', 'access token is not valid');
  if (idString(data.app_id) !== appId) return fail('OTHER', 'access token was issued to another application');
  if (idString(data.user_id) !== userExternalId) return fail('OTHER', 'access token belongs to another user');
  return { ok: true };
}
