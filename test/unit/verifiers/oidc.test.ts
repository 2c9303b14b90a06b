import { constants, createHmac, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createVerifier, type OwnerVerifier } from '../../../src/ownership/verifiers/registry.js';
import { capturingLog, nowSec, refusedOrigin, silentLog, startStandIn, type Answer, type StandIn } from './stand-in.js';

const ISSUER = 'https://issuer.example';
const AUD = 'latchkey-app';
const USER = 'user-1';

interface TestKey {
  kid: string;
  alg: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

function rsaKey(kid: string, bits = 2048): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return { kid, alg: 'RS256', privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' } };
}

function ecKey(kid: string): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, alg: 'ES256', privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid } };
}

function psKey(kid: string): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, alg: 'PS256', privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid } };
}

function edKey(kid: string): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { kid, alg: 'EdDSA', privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid } };
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

function signature(key: TestKey, input: string): Buffer {
  const data = Buffer.from(input);
  if (key.alg === 'ES256') return sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  if (key.alg === 'PS256') return sign('sha256', data, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  if (key.alg === 'EdDSA') return sign(null, data, key.privateKey);
  return sign('sha256', data, key.privateKey);
}

function jwt(key: TestKey, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  const h = { alg: key.alg, typ: 'JWT', kid: key.kid, ...header };
  const payload = { iss: ISSUER, aud: AUD, sub: USER, iat: nowSec(), exp: nowSec() + 300, ...claims };
  const input = `${b64(h)}.${b64(payload)}`;
  return `${input}.${signature(key, input).toString('base64url')}`;
}

describe('oidc verifier', () => {
  let A: TestKey;
  let B: TestKey;
  let E: TestKey;
  let jwksServer: StandIn;
  let jwks: Answer;
  const made: OwnerVerifier[] = [];
  // 2 s, not less: a first JWKS fetch took over 200 ms on a loaded machine (CONNECTION_ERROR, flaky).
  const make = async (over: Record<string, unknown> = {}, log = silentLog): Promise<OwnerVerifier> => {
    const v = await createVerifier('oidc', { issuer: ISSUER, audience: [AUD], jwks_url: `${jwksServer.origin}/jwks`, request_timeout_ms: 2000, ...over }, { log });
    made.push(v);
    return v;
  };
  const fetches = (): number => jwksServer.requests.length;

  beforeAll(async () => {
    A = rsaKey('a');
    B = rsaKey('b');
    E = ecKey('e');
    jwks = { json: { keys: [A.jwk, E.jwk] } };
    jwksServer = await startStandIn(() => jwks);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(made.splice(0).map((v) => v.close()));
    jwksServer.requests.length = 0;
    jwks = { json: { keys: [A.jwk, E.jwk] } };
  });
  afterAll(async () => {
    await jwksServer.close();
  });

  it('accepts RS256 and ES256 tokens of the user, fetching the JWKS once for many calls', async () => {
    const v = await make();
    expect(await v.verify(USER, jwt(A))).toEqual({ ok: true });
    expect(await v.verify(USER, jwt(E))).toEqual({ ok: true });
    expect(await v.verify(USER, jwt(A, { aud: ['other', AUD] }))).toEqual({ ok: true });
    expect(await v.verify(USER, jwt(A, {}, { kid: undefined }))).toEqual({ ok: true }); // no kid: every fitting key is tried
    expect(fetches()).toBe(1);
  });

  it('concurrent first calls share one JWKS request', async () => {
    const v = await make();
    const results = await Promise.all(Array.from({ length: 10 }, () => v.verify(USER, jwt(A))));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(fetches()).toBe(1);
  });

  it('TOKEN_INVALID for a forged signature, alg none, HMAC with the public key, a refused alg, or a malformed token', async () => {
    const v = await make();
    const forged = jwt({ ...B, kid: 'a' }); // B's signature under A's kid
    expect(await v.verify(USER, forged)).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    const [h, p] = jwt(A).split('.');
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${p}.`;
    expect(await v.verify(USER, none)).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    const hsHeader = b64({ alg: 'HS256', typ: 'JWT', kid: 'a' });
    const hs = `${hsHeader}.${p}.${createHmac('sha256', JSON.stringify(A.jwk)).update(`${hsHeader}.${p}`).digest('base64url')}`;
    expect(await v.verify(USER, hs)).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    const esOnly = await make({ algorithms: ['ES256'] });
    expect(await esOnly.verify(USER, jwt(A))).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    for (const bad of ['', 'abc', 'a.b', `${h}.${p}`, `${h}.${p}.!!`, 'e30.e30.AAAA', `${b64('str')}.${p}.AAAA`]) {
      expect(await v.verify(USER, bad), bad).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    }
  });

  it('TOKEN_INVALID for a key type that does not fit the alg (an EC key named by an RS256 token)', async () => {
    const v = await make();
    expect(await v.verify(USER, jwt({ ...A, kid: 'e' }))).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
  });

  it('exp and nbf with clock skew: TOKEN_EXPIRED past the skew, accepted inside it; no exp or future nbf is TOKEN_INVALID', async () => {
    const v = await make({ clock_skew_sec: 30 });
    expect(await v.verify(USER, jwt(A, { exp: nowSec() - 60 }))).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
    expect(await v.verify(USER, jwt(A, { exp: nowSec() - 10 }))).toEqual({ ok: true });
    expect(await v.verify(USER, jwt(A, { exp: undefined }))).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    expect(await v.verify(USER, jwt(A, { nbf: nowSec() + 120 }))).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    expect(await v.verify(USER, jwt(A, { nbf: nowSec() + 10 }))).toEqual({ ok: true });
  });

  it('OTHER for another issuer, audience or user; user_claim selects the claim', async () => {
    const v = await make();
    expect(await v.verify(USER, jwt(A, { iss: 'https://evil.example' }))).toMatchObject({ ok: false, code: 'OTHER' });
    expect(await v.verify(USER, jwt(A, { aud: 'other-app' }))).toMatchObject({ ok: false, code: 'OTHER' });
    expect(await v.verify(USER, jwt(A, { aud: undefined }))).toMatchObject({ ok: false, code: 'OTHER' });
    expect(await v.verify('user-2', jwt(A))).toMatchObject({ ok: false, code: 'OTHER' });
    const byEmail = await make({ user_claim: 'email' });
    expect(await byEmail.verify('u@example.com', jwt(A, { email: 'u@example.com' }))).toEqual({ ok: true });
    expect(await byEmail.verify(USER, jwt(A, { email: 'u@example.com' }))).toMatchObject({ ok: false, code: 'OTHER' });
  });

  it('refetches the JWKS on an unknown kid (rotation), but not more than once per min refresh interval', async () => {
    const rotating = await make({ jwks_min_refresh_interval_sec: 0 });
    expect(await rotating.verify(USER, jwt(A))).toEqual({ ok: true });
    jwks = { json: { keys: [B.jwk] } };
    expect(await rotating.verify(USER, jwt(B))).toEqual({ ok: true });
    expect(fetches()).toBe(2);

    jwksServer.requests.length = 0;
    jwks = { json: { keys: [A.jwk] } };
    const guarded = await make(); // default 30 s interval
    expect(await guarded.verify(USER, jwt(A))).toEqual({ ok: true });
    for (let i = 0; i < 5; i++) {
      expect(await guarded.verify(USER, jwt(A, {}, { kid: `made-up-${i}` }))).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    }
    expect(fetches()).toBe(1);
  });

  it('refetches after jwks_cache_ttl_sec and keeps the old keys when that refetch fails', async () => {
    const { log, lines } = capturingLog();
    const v = await make({ jwks_cache_ttl_sec: 60, jwks_min_refresh_interval_sec: 0 }, log);
    expect(await v.verify(USER, jwt(A))).toEqual({ ok: true });
    const real = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => real() + 61_000);
    jwks = { status: 503, text: 'down' };
    expect(await v.verify(USER, jwt(A, { exp: nowSec() + 600 }))).toEqual({ ok: true });
    expect(fetches()).toBe(2);
    expect(lines.some((l) => l.msg === 'JWKS refresh failed; keeping the previous keys')).toBe(true);
  });

  it('skips RSA keys under 2048 bits and published private keys', async () => {
    const weak = rsaKey('weak', 1024);
    const leaked = { ...weak.privateKey.export({ format: 'jwk' }), kid: 'leaked' };
    jwks = { json: { keys: [weak.jwk, leaked] } };
    const v = await make();
    expect(await v.verify(USER, jwt(weak))).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    expect(await v.verify(USER, jwt({ ...weak, kid: 'leaked' }))).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
  });

  it('REMOTE_ERROR when the JWKS answers 5xx, not JSON, or without keys', async () => {
    for (const answer of [{ status: 500, text: 'x' }, { text: 'not json' }, { json: { nokeys: true } }, { status: 404, json: {} }] satisfies Answer[]) {
      jwks = answer;
      const v = await make();
      expect(await v.verify(USER, jwt(A)), JSON.stringify(answer)).toMatchObject({ ok: false, code: 'REMOTE_ERROR' });
    }
  });

  it('CONNECTION_ERROR when the JWKS is too slow or refuses connections', async () => {
    jwks = 'hang';
    const slow = await make({ request_timeout_ms: 200 });
    const t0 = Date.now();
    expect(await slow.verify(USER, jwt(A))).toMatchObject({ ok: false, code: 'CONNECTION_ERROR' });
    expect(Date.now() - t0).toBeLessThan(2000);
    const refused = await make({ jwks_url: `${await refusedOrigin()}/jwks` });
    expect(await refused.verify(USER, jwt(A))).toMatchObject({ ok: false, code: 'CONNECTION_ERROR' });
  });

  it('refuses configurations it cannot verify safely', async () => {
    for (const bad of [
      { issuer: ISSUER, audience: [AUD] }, // no jwks_url
      { issuer: ISSUER, audience: [], jwks_url: 'https://x.example/jwks' },
      { issuer: ISSUER, audience: [AUD], jwks_url: 'https://x.example/jwks', algorithms: ['HS256'] },
      { issuer: ISSUER, audience: [AUD], jwks_url: 'https://x.example/jwks', algorithms: ['none'] },
      { issuer: ISSUER, audience: [AUD], jwks_url: 'file:///etc/passwd' },
      { issuer: ISSUER, audience: [AUD], jwks_url: 'https://x.example/jwks', clock_skew_sec: -1 },
    ]) {
      await expect(createVerifier('oidc', bad, { log: silentLog }), JSON.stringify(bad)).rejects.toMatchObject({ code: 'LK_BAD_VERIFIER_CONFIG' });
    }
  });

  // The edges where jose (jwtVerify, createLocalJWKSet) replaced hand-written checks.
  describe('on jose', () => {
    it('alg none or HMAC keyed with the public key is refused before any JWKS fetch', async () => {
      const v = await make({ algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] });
      const p = jwt(A).split('.')[1]!;
      const none = `${b64({ alg: 'none', typ: 'JWT' })}.${p}.AAAA`; // a signature part, so the shape check passes
      expect(await v.verify(USER, none)).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
      const pem = createPublicKey(A.privateKey).export({ type: 'spki', format: 'pem' });
      for (const secret of [pem, JSON.stringify(A.jwk)]) {
        for (const alg of ['HS256', 'HS512']) {
          const h = b64({ alg, typ: 'JWT', kid: 'a' });
          const hs = `${h}.${p}.${createHmac(alg === 'HS256' ? 'sha256' : 'sha512', secret).update(`${h}.${p}`).digest('base64url')}`;
          expect(await v.verify(USER, hs), alg).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
        }
      }
      expect(fetches()).toBe(0);
    });

    it('a crit header is TOKEN_INVALID, also one jose understands (b64) and an empty one', async () => {
      const v = await make();
      expect(await v.verify(USER, jwt(A))).toEqual({ ok: true });
      for (const crit of [{ crit: ['b64'], b64: true }, { crit: ['x-ext'], 'x-ext': 1 }, { crit: [] }, { crit: 'b64' }]) {
        expect(await v.verify(USER, jwt(A, {}, crit)), JSON.stringify(crit)).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
      }
    });

    it('exp within and outside the tolerance, on the clock the verifier reads (Date.now)', async () => {
      const strict = await make({ clock_skew_sec: 0 });
      expect(await strict.verify(USER, jwt(A, { exp: nowSec() - 1 }))).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
      expect(await strict.verify(USER, jwt(A, { exp: nowSec() + 60 }))).toEqual({ ok: true });
      const lenient = await make({ clock_skew_sec: 120 });
      expect(await lenient.verify(USER, jwt(A, { exp: nowSec() - 100 }))).toEqual({ ok: true });
      expect(await lenient.verify(USER, jwt(A, { exp: nowSec() - 130 }))).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
      const token = jwt(A); // exp in 300 s
      const real = Date.now.bind(Date);
      vi.spyOn(Date, 'now').mockImplementation(() => real() + 400_000);
      expect(await strict.verify(USER, token)).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
    });

    it('exp is checked before iss, aud and the user: an expired token of another issuer is TOKEN_EXPIRED', async () => {
      const v = await make();
      const old = { exp: nowSec() - 600 };
      expect(await v.verify(USER, jwt(A, { ...old, iss: 'https://evil.example' }))).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
      expect(await v.verify(USER, jwt(A, { ...old, aud: 'other-app' }))).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
      expect(await v.verify('user-2', jwt(A, old))).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
    });

    it('exp, nbf or iat that is not a number is TOKEN_INVALID', async () => {
      const v = await make();
      for (const claims of [{ exp: String(nowSec() + 300) }, { nbf: '0' }, { iat: 'yesterday' }]) {
        expect(await v.verify(USER, jwt(A, claims)), JSON.stringify(claims)).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
      }
    });

    it('an unknown kid causes exactly one refetch per call, shared by concurrent calls; no kid never refetches', async () => {
      const v = await make({ jwks_min_refresh_interval_sec: 0 });
      expect(await v.verify(USER, jwt(A))).toEqual({ ok: true });
      expect(fetches()).toBe(1);
      expect(await v.verify(USER, jwt(A, {}, { kid: 'unknown' }))).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
      expect(fetches()).toBe(2);
      const results = await Promise.all(Array.from({ length: 5 }, (_, i) => v.verify(USER, jwt(A, {}, { kid: `unknown-${i}` }))));
      expect(results.every((r) => !r.ok && r.code === 'TOKEN_INVALID')).toBe(true);
      expect(fetches()).toBe(3);
      expect(await v.verify(USER, jwt(B, {}, { kid: undefined }))).toMatchObject({ ok: false, code: 'TOKEN_INVALID' }); // B not published
      expect(fetches()).toBe(3);
    });

    it('the refetch for an unknown kid reports a JWKS failure as such', async () => {
      const v = await make({ jwks_min_refresh_interval_sec: 0 });
      expect(await v.verify(USER, jwt(A))).toEqual({ ok: true });
      jwks = { status: 503, text: 'down' };
      expect(await v.verify(USER, jwt(B))).toMatchObject({ ok: false, code: 'REMOTE_ERROR' });
      expect(await v.verify(USER, jwt(A))).toEqual({ ok: true }); // the known keys still serve
    });

    it('a token without kid is checked against every key that fits its alg', async () => {
      jwks = { json: { keys: [A.jwk, B.jwk, E.jwk] } };
      const v = await make();
      expect(await v.verify(USER, jwt(B, {}, { kid: undefined }))).toEqual({ ok: true });
      expect(await v.verify(USER, jwt(A, {}, { kid: undefined }))).toEqual({ ok: true });
      expect(await v.verify(USER, jwt(rsaKey('c'), {}, { kid: undefined }))).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
      expect(await v.verify(USER, jwt(A, { exp: nowSec() - 600 }, { kid: undefined }))).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
      expect(fetches()).toBe(1);
    });

    it('PS256 and EdDSA (Ed25519) tokens, each only when allowed', async () => {
      const P = psKey('p');
      const D = edKey('d');
      jwks = { json: { keys: [P.jwk, D.jwk] } };
      const v = await make({ algorithms: ['PS256', 'EdDSA'] });
      expect(await v.verify(USER, jwt(P))).toEqual({ ok: true });
      expect(await v.verify(USER, jwt(D))).toEqual({ ok: true });
      const rsOnly = await make();
      expect(await rsOnly.verify(USER, jwt(P))).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
      expect(await rsOnly.verify(USER, jwt(D))).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    });
  });
});
