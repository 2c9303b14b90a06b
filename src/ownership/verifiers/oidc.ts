/**
 * OpenID Connect / JWT verifier: the access token is a JWS (an ID token or a JWT access token) from
 * `issuer`, signed with a key published at `jwks_url`. Checked, in this order: compact JWS shape,
 * `alg` among `algorithms` (never `none` or HMAC: the JWKS holds public keys only), a JWKS key of
 * the header's `kid` whose type fits the alg, the signature, `exp` (required) and `nbf` with
 * `clock_skew_sec` of tolerance, `iss`, `aud`, and the `user_claim` (default `sub`) equal to the
 * user id.
 *
 * Failures: malformed, bad alg, unknown kid, bad signature, no exp, not yet valid -> TOKEN_INVALID;
 * past exp -> TOKEN_EXPIRED; another issuer, audience or user -> OTHER; JWKS fetch failures as in
 * http.ts.
 *
 * JWKS cache: fetched on first use, refetched when older than `jwks_cache_ttl_sec`, and refetched
 * early when a token names an unknown kid (key rotation) but at most once per
 * `jwks_min_refresh_interval_sec`, so tokens with made-up kids cannot make us hammer the provider.
 * Concurrent refreshes share one request. A failed periodic refresh keeps serving the old keys.
 */
import { constants, createPublicKey, verify as cryptoVerify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { LatchkeyError } from '../../errors.js';
import {
  checkHttpConfig, checkIntRange, fail, HTTP_CONFIG_FIELDS, isObject, ProviderClient, providerUrl, type HttpConfig,
} from './http.js';
import type { OwnerVerifier, VerifierContext, VerifyFailure } from './types.js';

export const description = 'OpenID Connect ID tokens or JWT access tokens, checked against the issuer JWKS (signature, iss, aud, exp).';

export const configSchema = {
  type: 'record',
  name: 'OidcVerifierConfig',
  namespace: 'org.latchkey.verifiers',
  fields: [
    { name: 'issuer', type: 'string', doc: 'Expected iss claim, exactly (e.g. https://accounts.google.com)' },
    { name: 'audience', type: { type: 'array', items: 'string' }, doc: 'Accepted aud values (client ids / API identifiers); at least one' },
    { name: 'jwks_url', type: 'string', doc: 'JWKS of the issuer (jwks_uri of its discovery document)' },
    { name: 'user_claim', type: 'string', default: 'sub', doc: 'Claim that must equal the user external id' },
    { name: 'algorithms', type: { type: 'array', items: 'string' }, default: ['RS256', 'ES256'], doc: 'Accepted JWS algorithms: RS256/384/512, PS256/384/512, ES256/384/512, EdDSA' },
    { name: 'clock_skew_sec', type: 'int', default: 30, doc: 'Tolerance for exp and nbf in seconds (0-300)' },
    { name: 'jwks_cache_ttl_sec', type: 'int', default: 600, doc: 'Age in seconds after which the JWKS is fetched again (1-86400)' },
    { name: 'jwks_min_refresh_interval_sec', type: 'int', default: 30, doc: 'Least time in seconds between refetches caused by an unknown kid (0-3600)' },
    ...HTTP_CONFIG_FIELDS,
  ],
};

export interface OidcConfig extends HttpConfig {
  issuer: string;
  audience: string[];
  jwks_url: string;
  user_claim: string;
  algorithms: string[];
  clock_skew_sec: number;
  jwks_cache_ttl_sec: number;
  jwks_min_refresh_interval_sec: number;
}

interface AlgSpec {
  hash: string | null;
  kty: 'RSA' | 'EC' | 'OKP';
  crv?: string;
  pss?: boolean;
}

const ALGS: Record<string, AlgSpec> = {
  RS256: { hash: 'sha256', kty: 'RSA' },
  RS384: { hash: 'sha384', kty: 'RSA' },
  RS512: { hash: 'sha512', kty: 'RSA' },
  PS256: { hash: 'sha256', kty: 'RSA', pss: true },
  PS384: { hash: 'sha384', kty: 'RSA', pss: true },
  PS512: { hash: 'sha512', kty: 'RSA', pss: true },
  ES256: { hash: 'sha256', kty: 'EC', crv: 'P-256' },
  ES384: { hash: 'sha384', kty: 'EC', crv: 'P-384' },
  ES512: { hash: 'sha512', kty: 'EC', crv: 'P-521' },
  EdDSA: { hash: null, kty: 'OKP' },
};

const MIN_RSA_BITS = 2048;

interface Jwk {
  kid: string | undefined;
  kty: string;
  crv: string | undefined;
  alg: string | undefined;
  key: KeyObject;
}

export function create(config: OidcConfig, ctx: VerifierContext): OwnerVerifier {
  const t = 'oidc';
  checkHttpConfig(t, config);
  checkIntRange(t, 'clock_skew_sec', config.clock_skew_sec, 0, 300);
  checkIntRange(t, 'jwks_cache_ttl_sec', config.jwks_cache_ttl_sec, 1, 86_400);
  checkIntRange(t, 'jwks_min_refresh_interval_sec', config.jwks_min_refresh_interval_sec, 0, 3600);
  if (config.audience.length === 0) throw new LatchkeyError('LK_BAD_VERIFIER_CONFIG', `${t}: audience must name at least one value`);
  if (!config.user_claim) throw new LatchkeyError('LK_BAD_VERIFIER_CONFIG', `${t}: user_claim must not be empty`);
  if (config.algorithms.length === 0) throw new LatchkeyError('LK_BAD_VERIFIER_CONFIG', `${t}: algorithms must name at least one algorithm`);
  for (const a of config.algorithms) {
    if (!Object.prototype.hasOwnProperty.call(ALGS, a)) throw new LatchkeyError('LK_BAD_VERIFIER_CONFIG', `${t}: unsupported algorithm ${a}`);
  }
  const jwksUrl = providerUrl(t, 'jwks_url', config.jwks_url);
  const jwks = new JwksCache(new ProviderClient(jwksUrl, config), jwksUrl, config, ctx);
  const algorithms = new Set(config.algorithms);
  const audience = new Set(config.audience);
  const skewMs = config.clock_skew_sec * 1000;

  return {
    async verify(userExternalId, accessToken) {
      const parsed = parseJws(accessToken);
      if (!parsed.ok) return parsed;
      const { header, payload, signingInput, signature } = parsed;
      const alg = header.alg;
      if (typeof alg !== 'string' || !algorithms.has(alg)) return fail('TOKEN_INVALID', 'token algorithm is not accepted');
      if (header.crit !== undefined) return fail('TOKEN_INVALID', 'token has critical header parameters this verifier does not understand');
      const kid = typeof header.kid === 'string' ? header.kid : undefined;
      const keys = await jwks.keysFor(kid, ALGS[alg]!, alg);
      if (!keys.ok) return keys;
      if (!keys.keys.some((k) => verifySignature(ALGS[alg]!, k.key, signingInput, signature))) {
        return fail('TOKEN_INVALID', 'token signature does not verify');
      }
      const now = Date.now();
      if (typeof payload.exp !== 'number') return fail('TOKEN_INVALID', 'token has no exp claim');
      if (payload.exp * 1000 + skewMs <= now) return fail('TOKEN_EXPIRED', 'token has expired');
      if (typeof payload.nbf === 'number' && payload.nbf * 1000 - skewMs > now) return fail('TOKEN_INVALID', 'token is not valid yet');
      if (payload.iss !== config.issuer) return fail('OTHER', 'token was issued by another issuer');
      const aud = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
      if (!aud.some((a) => typeof a === 'string' && audience.has(a))) return fail('OTHER', 'token was issued for another audience');
      if (payload[config.user_claim] !== userExternalId) return fail('OTHER', 'token belongs to another user');
      return { ok: true };
    },
    close: () => jwks.close(),
  };
}

type ParsedJws =
  | { ok: true; header: Record<string, unknown>; payload: Record<string, unknown>; signingInput: Buffer; signature: Buffer }
  | VerifyFailure;

const B64URL = /^[A-Za-z0-9_-]*$/;

function parseJws(token: string): ParsedJws {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => B64URL.test(p)) || !parts[0] || !parts[1] || !parts[2]) {
    return fail('TOKEN_INVALID', 'token is not a compact JWS');
  }
  const header = decodeJson(parts[0]);
  const payload = decodeJson(parts[1]);
  if (!header || !payload) return fail('TOKEN_INVALID', 'token header or payload is not a JSON object');
  return {
    ok: true,
    header,
    payload,
    signingInput: Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii'),
    signature: Buffer.from(parts[2], 'base64url'),
  };
}

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function verifySignature(spec: AlgSpec, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  try {
    if (spec.kty === 'OKP') return cryptoVerify(null, data, key, signature);
    if (spec.kty === 'EC') return cryptoVerify(spec.hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    if (spec.pss) {
      return cryptoVerify(spec.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature);
    }
    return cryptoVerify(spec.hash, data, key, signature);
  } catch {
    // A signature of the wrong length for the key, for example.
    return false;
  }
}

function keyFits(k: Jwk, spec: AlgSpec, alg: string): boolean {
  if (k.kty !== spec.kty) return false;
  if (k.alg !== undefined && k.alg !== alg) return false;
  if (spec.crv !== undefined && k.crv !== spec.crv) return false;
  if (spec.kty === 'OKP' && k.crv !== 'Ed25519' && k.crv !== 'Ed448') return false;
  return true;
}

type KeysOutcome = { ok: true; keys: Jwk[] } | VerifyFailure;

class JwksCache {
  private keys: Jwk[] | null = null;
  private fetchedAt = 0; // last successful fetch
  private attemptedAt = 0; // last fetch, successful or not
  private inflight: Promise<VerifyFailure | null> | null = null;

  constructor(
    private readonly client: ProviderClient,
    private readonly url: URL,
    private readonly config: OidcConfig,
    private readonly ctx: VerifierContext,
  ) {}

  /** Keys that may have signed a token with this kid and alg; refreshes as the header comment says. */
  async keysFor(kid: string | undefined, spec: AlgSpec, alg: string): Promise<KeysOutcome> {
    if (this.keys === null) {
      const failure = await this.refresh();
      if (failure) return failure;
    } else if (Date.now() - this.fetchedAt >= this.config.jwks_cache_ttl_sec * 1000 && this.mayRefetch()) {
      await this.refresh(); // on failure the old keys stay in use (logged in fetch)
    }
    let found = this.match(kid, spec, alg);
    if (found.length === 0 && kid !== undefined && this.mayRefetch()) {
      const failure = await this.refresh();
      if (failure) return failure;
      found = this.match(kid, spec, alg);
    }
    if (found.length === 0) return fail('TOKEN_INVALID', 'no key of the issuer matches the token kid and algorithm');
    return { ok: true, keys: found };
  }

  /** A failing or rotating provider is asked at most once per jwks_min_refresh_interval_sec. */
  private mayRefetch(): boolean {
    return Date.now() - this.attemptedAt >= this.config.jwks_min_refresh_interval_sec * 1000;
  }

  private match(kid: string | undefined, spec: AlgSpec, alg: string): Jwk[] {
    return (this.keys ?? []).filter((k) => (kid === undefined || k.kid === kid) && keyFits(k, spec, alg));
  }

  private refresh(): Promise<VerifyFailure | null> {
    this.inflight ??= this.fetch().finally(() => {
      this.attemptedAt = Date.now();
      this.inflight = null;
    });
    return this.inflight;
  }

  private async fetch(): Promise<VerifyFailure | null> {
    const res = await this.client.getJson(this.url);
    if (!res.ok) return this.failed(res);
    if (res.status !== 200) return this.failed(fail('REMOTE_ERROR', `JWKS answered HTTP ${res.status}`));
    if (!isObject(res.body) || !Array.isArray(res.body.keys)) return this.failed(fail('REMOTE_ERROR', 'JWKS answer has no keys array'));
    const keys: Jwk[] = [];
    let skipped = 0;
    for (const raw of res.body.keys as unknown[]) {
      const k = importJwk(raw);
      if (k) keys.push(k);
      else skipped++;
    }
    if (skipped) this.ctx.log.debug({ skipped }, 'JWKS keys skipped (not a usable public signing key)');
    this.keys = keys;
    this.fetchedAt = Date.now();
    return null;
  }

  private failed(f: VerifyFailure): VerifyFailure {
    if (this.keys !== null) this.ctx.log.warn({ code: f.code, reason: f.reason }, 'JWKS refresh failed; keeping the previous keys');
    return f;
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

function importJwk(raw: unknown): Jwk | undefined {
  if (!isObject(raw) || typeof raw.kty !== 'string') return undefined;
  if (raw.use !== undefined && raw.use !== 'sig') return undefined;
  if (raw.d !== undefined) return undefined; // a private key published by mistake: refuse to use it
  let key: KeyObject;
  try {
    key = createPublicKey({ key: raw as JsonWebKey, format: 'jwk' });
  } catch {
    return undefined;
  }
  if (raw.kty === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return undefined;
  return {
    kid: typeof raw.kid === 'string' ? raw.kid : undefined,
    kty: raw.kty,
    crv: typeof raw.crv === 'string' ? raw.crv : undefined,
    alg: typeof raw.alg === 'string' ? raw.alg : undefined,
    key,
  };
}
