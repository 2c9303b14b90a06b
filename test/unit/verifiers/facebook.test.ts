import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, type OwnerVerifier } from '../../../src/ownership/verifiers/registry.js';
import { nowSec, refusedOrigin, silentLog, startStandIn, type Answer, type SeenRequest, type StandIn } from './stand-in.js';

const APP_ID = '1001';
const APP_SECRET = 's3cret';
const USER = '4242';

/** Graph debug_token as Facebook answers it, keyed by input_token. */
function graph(req: SeenRequest): Answer {
  if (req.url.pathname !== '/v19.0/debug_token') return { status: 404, json: { error: { message: 'unknown path', code: 803 } } };
  if (req.url.searchParams.get('access_token') !== `${APP_ID}|${APP_SECRET}`) {
    return { status: 400, json: { error: { message: 'Invalid OAuth access token - Cannot parse access token', type: 'OAuthException', code: 190 } } };
  }
  const data = (over: Record<string, unknown>): Answer => ({
    json: { data: { app_id: APP_ID, type: 'USER', application: 'app', is_valid: true, user_id: USER, expires_at: nowSec() + 3600, scopes: ['public_profile'], ...over } },
  });
  switch (req.url.searchParams.get('input_token')) {
    case 'good': return data({});
    case 'never-expires': return data({ expires_at: 0 });
    case 'invalid': return data({ is_valid: false, error: { code: 190, message: 'Invalid OAuth access token.' } });
    case 'invalid-no-error': return data({ is_valid: false });
    case 'expired': return data({ is_valid: false, expires_at: nowSec() - 60, error: { code: 190, subcode: 463, message: 'Session has expired' } });
    case 'expired-still-valid': return data({ expires_at: nowSec() - 1 });
    case 'other-user': return data({ user_id: '999' });
    case 'other-app': return data({ app_id: '2002' });
    case 'numeric-ids': return data({ app_id: Number(APP_ID), user_id: Number(USER) });
    case 'no-data': return { json: { something: 'else' } };
    case 'not-json': return { text: '<html>oops</html>' };
    case 'boom': return { status: 502, text: 'bad gateway' };
    case 'rate-limited': return { status: 429, json: { error: { message: 'too many calls', code: 4 } } };
    case 'slow': return 'hang';
    default: return { status: 500, json: {} };
  }
}

describe('facebook verifier', () => {
  let fb: StandIn;
  let v: OwnerVerifier;
  const made: OwnerVerifier[] = [];
  const make = async (over: Record<string, unknown> = {}): Promise<OwnerVerifier> => {
    const verifier = await createVerifier('facebook', JSON.stringify({ app_id: APP_ID, app_secret: APP_SECRET, graph_url: `${fb.origin}/v19.0`, request_timeout_ms: 200, ...over }), { log: silentLog });
    made.push(verifier);
    return verifier;
  };

  beforeAll(async () => {
    fb = await startStandIn(graph);
    v = await make();
  });
  afterEach(() => {
    fb.requests.length = 0;
  });
  afterAll(async () => {
    await Promise.all(made.map((m) => m.close()));
    await fb.close();
  });

  it('accepts a valid token of the user for our app, sending the app access token to debug_token', async () => {
    expect(await v.verify(USER, 'good')).toEqual({ ok: true });
    expect(await v.verify(USER, 'never-expires')).toEqual({ ok: true });
    expect(await v.verify(USER, 'numeric-ids')).toEqual({ ok: true });
    const q = fb.requests[0]!.url.searchParams;
    expect(q.get('input_token')).toBe('good');
    expect(q.get('access_token')).toBe(`${APP_ID}|${APP_SECRET}`);
  });

  it('TOKEN_INVALID when Graph says the token is not valid, or the token is empty (no call)', async () => {
    expect(await v.verify(USER, 'invalid')).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    expect(await v.verify(USER, 'invalid-no-error')).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    fb.requests.length = 0;
    expect(await v.verify(USER, '')).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    expect(fb.requests).toHaveLength(0);
  });

  it('TOKEN_EXPIRED on subcode 463, and on a past expires_at even if is_valid is still true', async () => {
    expect(await v.verify(USER, 'expired')).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
    expect(await v.verify(USER, 'expired-still-valid')).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
  });

  it('OTHER for a valid token of another user or issued to another app', async () => {
    expect(await v.verify(USER, 'other-user')).toMatchObject({ ok: false, code: 'OTHER' });
    expect(await v.verify(USER, 'other-app')).toMatchObject({ ok: false, code: 'OTHER' });
    expect(await v.verify('someone-else', 'good')).toMatchObject({ ok: false, code: 'OTHER' });
  });

  it('REMOTE_ERROR on 5xx, 429, an unexpected or non-JSON answer, and when Graph refuses our app credentials', async () => {
    for (const token of ['boom', 'rate-limited', 'no-data', 'not-json']) {
      expect(await v.verify(USER, token), token).toMatchObject({ ok: false, code: 'REMOTE_ERROR' });
    }
    const wrongSecret = await make({ app_secret: 'wrong' });
    const r = await wrongSecret.verify(USER, 'good');
    expect(r).toMatchObject({ ok: false, code: 'REMOTE_ERROR' });
    expect(JSON.stringify(r)).not.toContain('wrong'); // the secret never reaches the endpoint
  });

  it('CONNECTION_ERROR when Graph is too slow (bounded by request_timeout_ms) or refuses connections', async () => {
    const t0 = Date.now();
    expect(await v.verify(USER, 'slow')).toMatchObject({ ok: false, code: 'CONNECTION_ERROR' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(Date.now() - t0).toBeLessThan(2000);
    const refused = await make({ graph_url: await refusedOrigin() });
    expect(await refused.verify(USER, 'good')).toMatchObject({ ok: false, code: 'CONNECTION_ERROR' });
  });

  it('defaults graph_url to the real Graph API and requires app_id and app_secret', async () => {
    const { BUILTIN_VERIFIER_TYPES } = await import('../../../src/ownership/verifiers/registry.js');
    const schema = BUILTIN_VERIFIER_TYPES.find((t) => t.name === 'facebook')!.configSchema as { fields: Array<{ name: string; default?: unknown }> };
    expect(schema.fields.find((f) => f.name === 'graph_url')!.default).toBe('https://graph.facebook.com');
    await expect(createVerifier('facebook', { app_id: APP_ID }, { log: silentLog })).rejects.toMatchObject({ code: 'LK_BAD_VERIFIER_CONFIG' });
  });
});
