import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, type OwnerVerifier } from '../../../src/ownership/verifiers/registry.js';
import { oauthHeader, signatureBaseString } from '../../../src/ownership/verifiers/twitter.js';
import { refusedOrigin, silentLog, startStandIn, type Answer, type SeenRequest, type StandIn } from './stand-in.js';

const CONSUMER_KEY = 'ck-test';
const CONSUMER_SECRET = 'cs-test';
const USER = '783214';
const PATH = '/1.1/account/verify_credentials.json';

/** Per oauth_token: its secret and how the stand-in answers once the signature checks out. */
const TOKENS: Record<string, { secret: string; answer: Answer }> = {
  good: { secret: 'good-secret', answer: { json: { id: Number(USER), id_str: USER, screen_name: 'twitterapi' } } },
  other: { secret: 'other-secret', answer: { json: { id_str: '12' } } },
  suspended: { secret: 'x', answer: { status: 403, json: { errors: [{ code: 64, message: 'Your account is suspended' }] } } },
  limited: { secret: 'x', answer: { status: 429, json: { errors: [{ code: 88, message: 'Rate limit exceeded' }] } } },
  boom: { secret: 'x', answer: { status: 500, json: {} } },
  'no-id': { secret: 'x', answer: { json: { screen_name: 'x' } } },
  slow: { secret: 'x', answer: 'hang' },
};

function parseAuthorization(h: string | undefined): Record<string, string> | undefined {
  if (!h?.startsWith('OAuth ')) return undefined;
  const out: Record<string, string> = {};
  for (const m of h.slice(6).matchAll(/([a-z_]+)="([^"]*)"/g)) out[decodeURIComponent(m[1]!)] = decodeURIComponent(m[2]!);
  return out;
}

/** verify_credentials as Twitter answers it: 401 code 32 for a bad signature, 89 for an unknown token. */
function twitterApi(req: SeenRequest): Answer {
  const unauthenticated: Answer = { status: 401, json: { errors: [{ code: 32, message: 'Could not authenticate you.' }] } };
  if (req.url.pathname !== PATH) return { status: 404, json: { errors: [{ code: 34 }] } };
  const oauth = parseAuthorization(req.headers.authorization);
  if (!oauth || oauth.oauth_consumer_key !== CONSUMER_KEY || oauth.oauth_signature_method !== 'HMAC-SHA1' || !oauth.oauth_nonce || !oauth.oauth_timestamp) {
    return unauthenticated;
  }
  const t = TOKENS[oauth.oauth_token ?? ''];
  if (!t) return { status: 401, json: { errors: [{ code: 89, message: 'Invalid or expired token.' }] } };
  const { oauth_signature: signature, ...params } = oauth;
  const url = new URL(`http://${req.headers.host}${req.url.pathname}${req.url.search}`);
  const expected = createHmac('sha1', `${CONSUMER_SECRET}&${t.secret}`).update(signatureBaseString('GET', url, params)).digest('base64');
  return signature === expected ? t.answer : unauthenticated;
}

describe('twitter verifier', () => {
  let tw: StandIn;
  let v: OwnerVerifier;
  const made: OwnerVerifier[] = [];
  const make = async (over: Record<string, unknown> = {}): Promise<OwnerVerifier> => {
    const verifier = await createVerifier('twitter', { consumer_key: CONSUMER_KEY, consumer_secret: CONSUMER_SECRET, verify_url: tw.origin + PATH, request_timeout_ms: 200, ...over }, { log: silentLog });
    made.push(verifier);
    return verifier;
  };

  beforeAll(async () => {
    tw = await startStandIn(twitterApi);
    v = await make();
  });
  afterAll(async () => {
    await Promise.all(made.map((m) => m.close()));
    await tw.close();
  });

  it('signs like Twitter documents (known answer from "Creating a signature")', () => {
    const url = new URL('https://api.twitter.com/1.1/statuses/update.json');
    url.searchParams.set('include_entities', 'true');
    url.searchParams.set('status', 'Hello Ladies + Gentlemen, a signed OAuth request!');
    const h = oauthHeader('POST', url, {
      consumerKey: 'xvz1evFS4wEEPTGEFPHBog',
      consumerSecret: 'kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw',
      token: '370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb',
      tokenSecret: 'LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE',
      timestamp: 1318622958,
      nonce: 'kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg',
    });
    expect(parseAuthorization(h)!.oauth_signature).toBe('hCtSmYh+iHYCEqBWrE7C7hYmtUk=');
  });

  it('accepts "token:secret" of the user, with a fresh nonce per call', async () => {
    expect(await v.verify(USER, 'good:good-secret')).toEqual({ ok: true });
    expect(await v.verify(USER, 'good:good-secret')).toEqual({ ok: true });
    const [a, b] = tw.requests.slice(-2).map((r) => parseAuthorization(r.headers.authorization)!.oauth_nonce);
    expect(a).not.toBe(b);
  });

  it('TOKEN_INVALID for an unknown token, a wrong token secret, or a token not in "token:secret" form (no call)', async () => {
    expect(await v.verify(USER, 'revoked:whatever')).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    expect(await v.verify(USER, 'good:wrong-secret')).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    const before = tw.requests.length;
    for (const t of ['good', ':secret', 'good:', '']) expect(await v.verify(USER, t), t).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    expect(tw.requests.length).toBe(before);
  });

  it('OTHER for another user or a suspended account', async () => {
    expect(await v.verify(USER, 'other:other-secret')).toMatchObject({ ok: false, code: 'OTHER' });
    expect(await v.verify(USER, 'suspended:x')).toMatchObject({ ok: false, code: 'OTHER' });
  });

  it('REMOTE_ERROR on 5xx, 429 and an answer without id_str', async () => {
    for (const token of ['boom:x', 'limited:x', 'no-id:x']) {
      expect(await v.verify(USER, token), token).toMatchObject({ ok: false, code: 'REMOTE_ERROR' });
    }
  });

  it('TOKEN_INVALID when our consumer secret is wrong (Twitter cannot tell whose secret is wrong)', async () => {
    const wrong = await make({ consumer_secret: 'nope' });
    expect(await wrong.verify(USER, 'good:good-secret')).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
  });

  it('CONNECTION_ERROR when Twitter is too slow or refuses connections', async () => {
    const t0 = Date.now();
    expect(await v.verify(USER, 'slow:x')).toMatchObject({ ok: false, code: 'CONNECTION_ERROR' });
    expect(Date.now() - t0).toBeLessThan(2000);
    const refused = await make({ verify_url: (await refusedOrigin()) + PATH });
    expect(await refused.verify(USER, 'good:good-secret')).toMatchObject({ ok: false, code: 'CONNECTION_ERROR' });
  });
});
