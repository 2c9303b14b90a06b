/**
 * Twitter (X) verifier: `GET {verify_url}?skip_status=true&include_entities=false` signed with
 * OAuth 1.0a HMAC-SHA1 (RFC 5849) using the app's consumer key/secret and the user's token/secret;
 * the answer's `id_str` must equal the user id.
 *
 * Access token format: `<oauth_token>:<oauth_token_secret>` (split at the first colon; Twitter
 * tokens and secrets contain no colon). Twitter answers 401 for an invalid, revoked or expired token
 * alike (codes 89 and 32), so this verifier reports TOKEN_INVALID and never TOKEN_EXPIRED; 403
 * (suspended or locked account) is a verification failure (OTHER).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { checkHttpConfig, fail, HTTP_CONFIG_FIELDS, idString, isObject, ProviderClient, providerUrl, type HttpConfig } from './http.js';
import type { OwnerVerifier, VerifierContext, VerifyResult } from './types.js';

export const description = 'Twitter (X) OAuth 1.0a user tokens "token:secret", checked with account/verify_credentials.';

export const configSchema = {
  type: 'record',
  name: 'TwitterVerifierConfig',
  namespace: 'org.latchkey.verifiers',
  fields: [
    { name: 'consumer_key', type: 'string', doc: 'API key (OAuth consumer key) of the Twitter app' },
    { name: 'consumer_secret', type: 'string', doc: 'API key secret (OAuth consumer secret) of the Twitter app' },
    {
      name: 'verify_url',
      type: 'string',
      default: 'https://api.twitter.com/1.1/account/verify_credentials.json',
      doc: 'account/verify_credentials endpoint',
    },
    ...HTTP_CONFIG_FIELDS,
  ],
};

export interface TwitterConfig extends HttpConfig {
  consumer_key: string;
  consumer_secret: string;
  verify_url: string;
}

export function create(config: TwitterConfig, _ctx: VerifierContext): OwnerVerifier {
  checkHttpConfig('twitter', config);
  const endpoint = providerUrl('twitter', 'verify_url', config.verify_url);
  endpoint.searchParams.set('skip_status', 'true');
  endpoint.searchParams.set('include_entities', 'false');
  const client = new ProviderClient(endpoint, config);
  return {
    async verify(userExternalId, accessToken) {
      const colon = accessToken.indexOf(':');
      if (colon <= 0 || colon === accessToken.length - 1) return fail('TOKEN_INVALID', 'access token must be "<oauth_token>:<oauth_token_secret>"');
      const token = accessToken.slice(0, colon);
      const tokenSecret = accessToken.slice(colon + 1);
      const authorization = oauthHeader('GET', endpoint, {
        consumerKey: config.consumer_key,
        consumerSecret: config.consumer_secret,
        token,
        tokenSecret,
        timestamp: Math.floor(Date.now() / 1000),
        nonce: randomBytes(16).toString('hex'),
      });
      const res = await client.getJson(endpoint, { authorization });
      if (!res.ok) return res;
      return interpret(res.status, res.body, userExternalId);
    },
    close: () => client.close(),
  };
}

function interpret(status: number, body: unknown, userExternalId: string): VerifyResult {
  if (status === 401) return fail('TOKEN_INVALID', 'access token is not valid, revoked or expired');
  if (status === 403) return fail('OTHER', 'Twitter refused this account');
  if (status !== 200) return fail('REMOTE_ERROR', `Twitter answered HTTP ${status}`);
  const id = isObject(body) ? idString(body.id_str) : undefined;
  if (id === undefined) return fail('REMOTE_ERROR', 'verify_credentials answer has no id_str');
  if (id !== userExternalId) return fail('OTHER', 'access token belongs to another user');
  return { ok: true };
}

/** RFC 3986 unreserved characters stay; everything else is %XX (RFC 5849 section 3.6). */
export function percentEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

export interface OAuthSigning {
  consumerKey: string;
  consumerSecret: string;
  token: string;
  tokenSecret: string;
  timestamp: number;
  nonce: string;
}

/** Signature base string (RFC 5849 section 3.4.1): method, base URI, sorted encoded parameters. */
export function signatureBaseString(method: string, url: URL, oauthParams: Record<string, string>): string {
  const pairs: Array<[string, string]> = [];
  for (const [k, v] of url.searchParams) pairs.push([percentEncode(k), percentEncode(v)]);
  for (const [k, v] of Object.entries(oauthParams)) pairs.push([percentEncode(k), percentEncode(v)]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const params = pairs.map(([k, v]) => `${k}=${v}`).join('&');
  const base = `${url.protocol}//${url.host}${url.pathname}`;
  return [method.toUpperCase(), percentEncode(base), percentEncode(params)].join('&');
}

export function oauthHeader(method: string, url: URL, s: OAuthSigning): string {
  const oauth: Record<string, string> = {
    oauth_consumer_key: s.consumerKey,
    oauth_nonce: s.nonce,
    oauth_signature_method: 'HMAC-SHA1',
    oauth_timestamp: String(s.timestamp),
    oauth_token: s.token,
    oauth_version: '1.0',
  };
  const key = `${percentEncode(s.consumerSecret)}&${percentEncode(s.tokenSecret)}`;
  oauth.oauth_signature = createHmac('sha1', key).update(signatureBaseString(method, url, oauth)).digest('base64');
  return 'OAuth ' + Object.entries(oauth).map(([k, v]) => `${percentEncode(k)}="${percentEncode(v)}"`).join(', ');
}
