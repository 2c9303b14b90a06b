/**
 * OpenID Connect / JWT verifier: the access token is a JWS (an ID token or a JWT access token) from
 * `issuer`, signed with a key published at `jwks_url`. Checked, in this order: compact JWS shape,
 * `alg` among `algorithms` (never `none` or HMAC: the JWKS holds public keys only) and no `crit`
 * header, a JWKS key of the header's `kid` whose type fits the alg, the signature, `exp` (required)
 * and `nbf` with `clock_skew_sec` of tolerance, `iss`, `aud`, and the `user_claim` (default `sub`)
 * equal to the user id.
 *
 * Failures: malformed, bad alg, crit header, unknown kid, bad signature, no exp, not yet valid ->
 * TOKEN_INVALID; past exp -> TOKEN_EXPIRED; another issuer, audience or user -> OTHER; JWKS fetch
 * failures as in http.ts.
 *
 * JWKS cache: fetched on first use, refetched when older than `jwks_cache_ttl_sec`, and refetched
 * early when a token names an unknown kid (key rotation) but at most once per
 * `jwks_min_refresh_interval_sec`, so tokens with made-up kids cannot make us hammer the provider.
 * Concurrent refreshes share one request. A failed periodic refresh keeps serving the old keys.
 *
 * jose does the security work: `jwtVerify` parses the JWS, checks `crit` and the alg allow-list,
 * verifies the signature (RSA keys of 2048 bits at least) and checks exp, nbf and iat with the
 * tolerance; `createLocalJWKSet` over the fetched keys picks the keys that fit the header (kid, kty
 * and crv for the alg, the key's own alg, use, key_ops) and imports them. What stays ours, and why:
 * - fetching and caching the JWKS. jose's createRemoteJWKSet fetches with the global fetch (no
 *   max_parallel_connections pool, no 1 MiB body bound, no CONNECTION_ERROR / REMOTE_ERROR split),
 *   refuses every token when the refresh after its max age fails instead of keeping the old keys,
 *   and counts its cooldown from the last success, so a provider that is down would be asked again
 *   on every call;
 * - which published keys enter the set: public keys node imports, RSA of 2048 bits or more, the
 *   rest skipped and logged (jose refuses those too, but only when a token names them, as a
 *   TypeError that would read as INTERNAL_ERROR);
 * - the shape check first, so garbage never costs a JWKS fetch (jose decodes the signature only
 *   after resolving the key);
 * - refusing any `crit`: jose understands `crit: ["b64"]`, this verifier no extension at all;
 * - iss, aud and the user claim, after the time checks: jose checks iss and aud before exp, which
 *   would answer OTHER instead of TOKEN_EXPIRED for an expired token of another issuer;
 * - trying every fitting key for a token without kid: jose leaves that loop to the caller
 *   (JWKSMultipleMatchingKeys yields the candidates).
 * Stricter than the hand-written checker this replaced: EdDSA means Ed25519 (jose's table; Ed448
 * keys no longer fit), and a non-numeric `iat` or `nbf`, a `kid` that is not a string, or a key
 * whose `key_ops` leaves out "verify" is TOKEN_INVALID instead of ignored. A token both expired and
 * not yet valid (nbf after exp: never valid) is TOKEN_INVALID, not TOKEN_EXPIRED: jose checks nbf
 * first.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import type {
  CompactJWSHeaderParameters, CryptoKey, FlattenedJWSInput, JWK, JWTPayload, JWTVerifyGetKey, JWTVerifyOptions, LocalJWKSet,
} from 'jose';
import { LatchkeyError } from '../../errors.js';
import {
  checkHttpConfig, checkIntRange, fail, HTTP_CONFIG_FIELDS, isObject, ProviderClient, providerUrl, type HttpConfig,
} from './http.js';
import type { OwnerVerifier, VerifierContext, VerifyFailure } from './types.js';

/**
 * jose, loaded at the first verify(): every path below that uses it starts there, and a gateway
 * process (which may never see an OIDC attach) starts ~60 modules lighter.
 */
let jose: typeof import('jose') | null = null;

async function loadJose(): Promise<typeof import('jose')> {
  return (jose ??= await import('jose'));
}

/** jose once loadJose() has resolved (every caller runs inside a verify()). */
function J(): typeof import('jose') {
  if (!jose) throw new Error('jose used before loadJose()');
  return jose;
}

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
    { name: 'algorithms', type: { type: 'array', items: 'string' }, default: ['RS256', 'ES256'], doc: 'Accepted JWS algorithms: RS256/384/512, PS256/384/512, ES256/384/512, EdDSA (Ed25519)' },
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

/** The `algorithms` a configuration may name: jose's asymmetric JWS algorithms, never `none` or HMAC. */
const ALGORITHMS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']);

const MIN_RSA_BITS = 2048;

/** Three non-empty base64url parts: checked before anything that may fetch. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

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
    if (!ALGORITHMS.has(a)) throw new LatchkeyError('LK_BAD_VERIFIER_CONFIG', `${t}: unsupported algorithm ${a}`);
  }
  const jwksUrl = providerUrl(t, 'jwks_url', config.jwks_url);
  const jwks = new JwksCache(new ProviderClient(jwksUrl, config), jwksUrl, config, ctx);
  const audience = new Set(config.audience);
  const options = { algorithms: config.algorithms, requiredClaims: ['exp'], clockTolerance: config.clock_skew_sec };
  const getKey: JWTVerifyGetKey = (header, token) => {
    if (header.crit !== undefined) throw new Refusal(fail('TOKEN_INVALID', 'token has critical header parameters this verifier does not understand'));
    return jwks.getKey(header, token);
  };

  return {
    async verify(userExternalId, accessToken) {
      if (!COMPACT_JWS.test(accessToken)) return fail('TOKEN_INVALID', 'token is not a compact JWS');
      await loadJose();
      let payload: JWTPayload;
      try {
        // currentDate: the clock of the JWKS cache (Date.now), not a second one.
        payload = await verifyJwt(accessToken, getKey, { ...options, currentDate: new Date(Date.now()) });
      } catch (err) {
        return outcome(err);
      }
      if (payload.iss !== config.issuer) return fail('OTHER', 'token was issued by another issuer');
      const aud = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
      if (!aud.some((a) => typeof a === 'string' && audience.has(a))) return fail('OTHER', 'token was issued for another audience');
      if (payload[config.user_claim] !== userExternalId) return fail('OTHER', 'token belongs to another user');
      return { ok: true };
    },
    close: () => jwks.close(),
  };
}

/** Thrown by the key resolver to end jwtVerify with an outcome of ours (a JWKS failure, a crit header). */
class Refusal extends Error {
  constructor(readonly failure: VerifyFailure) {
    super(failure.reason);
  }
}

/** jwtVerify, trying each fitting key in turn when several fit (a token without kid). */
async function verifyJwt(token: string, getKey: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await J().jwtVerify(token, getKey, options)).payload;
  } catch (err) {
    if (!(err instanceof J().errors.JWKSMultipleMatchingKeys)) throw err;
    for await (const key of err) {
      try {
        return (await J().jwtVerify(token, key, options)).payload;
      } catch (e) {
        if (!(e instanceof J().errors.JWSSignatureVerificationFailed)) throw e;
      }
    }
    throw new (J().errors.JWSSignatureVerificationFailed)();
  }
}

/**
 * jose's errors and our refusals as the outcomes of the header comment. Anything else is a fault and
 * is rethrown: the registry's guard logs it and answers INTERNAL_ERROR.
 */
function outcome(err: unknown): VerifyFailure {
  if (err instanceof Refusal) return err.failure;
  if (err instanceof J().errors.JWTExpired) return fail('TOKEN_EXPIRED', 'token has expired');
  if (err instanceof J().errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' && err.reason === 'check_failed') return fail('TOKEN_INVALID', 'token is not valid yet');
    // Claim names come from jose (exp, nbf, iat), never from the token.
    return fail('TOKEN_INVALID', err.reason === 'missing' ? `token has no ${err.claim} claim` : `token ${err.claim} claim is not a number`);
  }
  if (err instanceof J().errors.JOSEAlgNotAllowed) return fail('TOKEN_INVALID', 'token algorithm is not accepted');
  if (err instanceof J().errors.JWSSignatureVerificationFailed) return fail('TOKEN_INVALID', 'token signature does not verify');
  if (err instanceof J().errors.JWKSNoMatchingKey) return fail('TOKEN_INVALID', 'no key of the issuer matches the token kid and algorithm');
  if (err instanceof J().errors.JOSENotSupported) return fail('TOKEN_INVALID', 'token has critical header parameters this verifier does not understand');
  // JWSInvalid, JWTInvalid: a header, payload or signature that does not decode.
  if (err instanceof J().errors.JOSEError) return fail('TOKEN_INVALID', 'token is not a well-formed JWT');
  throw err;
}

type Fetched = { ok: true; keys: LocalJWKSet } | VerifyFailure;

class JwksCache {
  private keys: LocalJWKSet | null = null;
  private fetchedAt = 0; // last successful fetch
  private attemptedAt = 0; // last fetch, successful or not
  private inflight: Promise<Fetched> | null = null;

  constructor(
    private readonly client: ProviderClient,
    private readonly url: URL,
    private readonly config: OidcConfig,
    private readonly ctx: VerifierContext,
  ) {}

  /** jwtVerify's key resolver: a key that fits the header, the JWKS refreshed as the header comment says. */
  async getKey(header: CompactJWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    let keys = this.keys;
    if (keys === null) {
      keys = usable(await this.refresh());
    } else if (Date.now() - this.fetchedAt >= this.config.jwks_cache_ttl_sec * 1000 && this.mayRefetch()) {
      const fresh = await this.refresh(); // on failure the old keys stay in use (logged in failed)
      if (fresh.ok) keys = fresh.keys;
    }
    try {
      return await keys(header, token);
    } catch (err) {
      if (!(err instanceof J().errors.JWKSNoMatchingKey) || typeof header.kid !== 'string' || !this.mayRefetch()) throw err;
      return usable(await this.refresh())(header, token); // an unknown kid: the issuer may have rotated its keys
    }
  }

  /** A failing or rotating provider is asked at most once per jwks_min_refresh_interval_sec. */
  private mayRefetch(): boolean {
    return Date.now() - this.attemptedAt >= this.config.jwks_min_refresh_interval_sec * 1000;
  }

  private refresh(): Promise<Fetched> {
    this.inflight ??= this.fetch().finally(() => {
      this.attemptedAt = Date.now();
      this.inflight = null;
    });
    return this.inflight;
  }

  private async fetch(): Promise<Fetched> {
    const res = await this.client.getJson(this.url);
    if (!res.ok) return this.failed(res);
    if (res.status !== 200) return this.failed(fail('REMOTE_ERROR', `JWKS answered HTTP ${res.status}`));
    if (!isObject(res.body) || !Array.isArray(res.body.keys)) return this.failed(fail('REMOTE_ERROR', 'JWKS answer has no keys array'));
    const published = res.body.keys as unknown[];
    const keys = published.filter(isUsableJwk);
    if (keys.length < published.length) {
      this.ctx.log.debug({ skipped: published.length - keys.length }, 'JWKS keys skipped (not a usable public signing key)');
    }
    this.keys = J().createLocalJWKSet({ keys });
    this.fetchedAt = Date.now();
    return { ok: true, keys: this.keys };
  }

  private failed(f: VerifyFailure): VerifyFailure {
    if (this.keys !== null) this.ctx.log.warn({ code: f.code, reason: f.reason }, 'JWKS refresh failed; keeping the previous keys');
    return f;
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

function usable(fetched: Fetched): LocalJWKSet {
  if (!fetched.ok) throw new Refusal(fetched);
  return fetched.keys;
}

/** A published key worth offering jose: a public key node imports, RSA of at least MIN_RSA_BITS. */
function isUsableJwk(raw: unknown): raw is JWK {
  if (!isObject(raw) || typeof raw.kty !== 'string') return false;
  if (raw.d !== undefined) return false; // a private key published by mistake: refuse to use it
  try {
    const key = createPublicKey({ key: raw as JsonWebKey, format: 'jwk' });
    return raw.kty !== 'RSA' || (key.asymmetricKeyDetails?.modulusLength ?? 0) >= MIN_RSA_BITS;
  } catch {
    return false;
  }
}
