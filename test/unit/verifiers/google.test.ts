import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, type OwnerVerifier } from '../../../src/ownership/verifiers/registry.js';
import { nowSec, refusedOrigin, silentLog, startStandIn, type Answer, type SeenRequest, type StandIn } from './stand-in.js';

const CLIENT = 'web-client.apps.googleusercontent.com';
const USER = '110169484474386276334';

/** tokeninfo as Google answers it: v3 shape (strings) and legacy v1 shape, keyed by access_token. */
function tokeninfo(req: SeenRequest): Answer {
  if (req.url.pathname !== '/oauth2/v3/tokeninfo') return { status: 404, text: 'not found' };
  const v3 = (over: Record<string, unknown>): Answer => ({
    json: { azp: CLIENT, aud: CLIENT, sub: USER, scope: 'openid', exp: String(nowSec() + 3000), expires_in: '3000', ...over },
  });
  switch (req.url.searchParams.get('access_token')) {
    case 'good': return v3({});
    case 'good-v1': return { json: { issued_to: CLIENT, audience: CLIENT, user_id: USER, scope: 'openid', expires_in: 3000, access_type: 'online' } };
    case 'second-client': return v3({ aud: 'android-client', azp: 'android-client' });
    case 'invalid': return { status: 400, json: { error: 'invalid_token', error_description: 'Invalid Value' } };
    case 'expired-exp': return v3({ exp: String(nowSec() - 5), expires_in: undefined });
    case 'expired-in': return { json: { audience: CLIENT, user_id: USER, expires_in: 0 } };
    case 'other-user': return v3({ sub: '1' });
    case 'other-aud': return v3({ aud: 'someone-elses-client' });
    case 'no-expiry': return v3({ exp: undefined, expires_in: undefined });
    case 'forbidden': return { status: 403, json: {} };
    case 'boom': return { status: 503, text: 'unavailable' };
    case 'not-json': return { text: 'hello' };
    case 'slow': return { json: {}, delayMs: 5000 };
    default: return { status: 500 };
  }
}

describe('google verifier', () => {
  let g: StandIn;
  let v: OwnerVerifier;
  const made: OwnerVerifier[] = [];
  const make = async (over: Record<string, unknown> = {}): Promise<OwnerVerifier> => {
    const verifier = await createVerifier('google', { audience: [CLIENT, 'android-client'], tokeninfo_url: `${g.origin}/oauth2/v3/tokeninfo`, request_timeout_ms: 200, ...over }, { log: silentLog });
    made.push(verifier);
    return verifier;
  };

  beforeAll(async () => {
    g = await startStandIn(tokeninfo);
    v = await make();
  });
  afterAll(async () => {
    await Promise.all(made.map((m) => m.close()));
    await g.close();
  });

  it('accepts a token of the user issued to one of our client ids (v3 and legacy answers)', async () => {
    expect(await v.verify(USER, 'good')).toEqual({ ok: true });
    expect(await v.verify(USER, 'good-v1')).toEqual({ ok: true });
    expect(await v.verify(USER, 'second-client')).toEqual({ ok: true });
    expect(g.requests[0]!.url.searchParams.get('access_token')).toBe('good');
  });

  it('TOKEN_INVALID when tokeninfo refuses the token (400), or the token is empty', async () => {
    expect(await v.verify(USER, 'invalid')).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    expect(await v.verify(USER, '')).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
  });

  it('TOKEN_EXPIRED when exp is past or expires_in is 0', async () => {
    expect(await v.verify(USER, 'expired-exp')).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
    expect(await v.verify(USER, 'expired-in')).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
  });

  it('OTHER for another user or a client id that is not ours', async () => {
    expect(await v.verify(USER, 'other-user')).toMatchObject({ ok: false, code: 'OTHER' });
    expect(await v.verify(USER, 'other-aud')).toMatchObject({ ok: false, code: 'OTHER' });
  });

  it('REMOTE_ERROR on 5xx, an unexpected status, a non-JSON answer or one without expiry', async () => {
    for (const token of ['boom', 'forbidden', 'not-json', 'no-expiry']) {
      expect(await v.verify(USER, token), token).toMatchObject({ ok: false, code: 'REMOTE_ERROR' });
    }
  });

  it('CONNECTION_ERROR when tokeninfo is too slow or refuses connections', async () => {
    const t0 = Date.now();
    expect(await v.verify(USER, 'slow')).toMatchObject({ ok: false, code: 'CONNECTION_ERROR' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(Date.now() - t0).toBeLessThan(2000);
    const refused = await make({ tokeninfo_url: `${await refusedOrigin()}/oauth2/v3/tokeninfo` });
    expect(await refused.verify(USER, 'good')).toMatchObject({ ok: false, code: 'CONNECTION_ERROR' });
  });

  it('requires at least one audience', async () => {
    await expect(createVerifier('google', { audience: [] }, { log: silentLog })).rejects.toMatchObject({ code: 'LK_BAD_VERIFIER_CONFIG' });
    await expect(createVerifier('google', {}, { log: silentLog })).rejects.toMatchObject({ code: 'LK_BAD_VERIFIER_CONFIG' });
  });
});
