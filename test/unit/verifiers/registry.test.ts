import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import {
  BUILTIN_VERIFIER_TYPES, createVerifier, VERIFIER_ERROR_CODES, type CreateVerifierOptions,
} from '../../../src/ownership/verifiers/registry.js';
import { capturingLog, silentLog } from './stand-in.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../../fixtures/verifiers/${name}`, import.meta.url));

/** Smallest valid configuration of each built-in: everything else comes from schema defaults. */
const MINIMAL: Record<string, object> = {
  trustful: {},
  facebook: { app_id: '1', app_secret: 's' },
  google: { audience: ['client'] },
  twitter: { consumer_key: 'k', consumer_secret: 's' },
  oidc: { issuer: 'https://issuer.example', audience: ['a'], jwks_url: 'https://issuer.example/jwks' },
};

describe('verifier registry', () => {
  it('publishes the built-in types with Avro config schemas avsc accepts (defaults included)', () => {
    expect(BUILTIN_VERIFIER_TYPES.map((t) => t.name)).toEqual(['trustful', 'facebook', 'google', 'twitter', 'oidc']);
    for (const t of BUILTIN_VERIFIER_TYPES) {
      expect(() => avro.Type.forSchema(t.configSchema as avro.Schema, { wrapUnions: false }), t.name).not.toThrow();
      expect(t.description.length).toBeGreaterThan(10);
    }
  });

  it('creates every built-in from its minimal configuration, as a JSON string or an object', async () => {
    const { log } = capturingLog();
    for (const [name, config] of Object.entries(MINIMAL)) {
      const a = await createVerifier(name, JSON.stringify(config), { log });
      const b = await createVerifier(name, config, { log });
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('refuses configurations that are not JSON objects, have unknown keys, wrong types or out-of-range values', async () => {
    const bad: Array<[string, string | object]> = [
      ['facebook', '{not json'],
      ['facebook', '[1]'],
      ['facebook', 'null'],
      ['trustful', { anything: true }],
      ['facebook', { ...MINIMAL.facebook, unknown_key: 1 }],
      ['facebook', { ...MINIMAL.facebook, max_parallel_connections: '5' }],
      ['facebook', { ...MINIMAL.facebook, max_parallel_connections: 0 }],
      ['facebook', { ...MINIMAL.facebook, max_parallel_connections: 10_000 }],
      ['facebook', { ...MINIMAL.facebook, request_timeout_ms: 0 }],
      ['facebook', { ...MINIMAL.facebook, graph_url: 'not a url' }],
      ['google', { ...MINIMAL.google, tokeninfo_url: 'ftp://example.com/tokeninfo' }],
      ['twitter', { ...MINIMAL.twitter, verify_url: 'https://user:pw@api.twitter.com/x' }],
      ['twitter', { consumer_key: 'k' }],
    ];
    for (const [type, config] of bad) {
      await expect(createVerifier(type, config, { log: silentLog }), `${type} ${JSON.stringify(config)}`).rejects.toMatchObject({ code: 'LK_BAD_VERIFIER_CONFIG' });
    }
  });

  it('LK_UNKNOWN_VERIFIER_TYPE for a type that is neither built in nor configured', async () => {
    await expect(createVerifier('myspace', {}, { log: silentLog })).rejects.toMatchObject({ code: 'LK_UNKNOWN_VERIFIER_TYPE' });
    await expect(createVerifier('__proto__', {}, { log: silentLog })).rejects.toMatchObject({ code: 'LK_UNKNOWN_VERIFIER_TYPE' });
  });

  it('trustful accepts anything and warns that it is not for production', async () => {
    const { log, lines } = capturingLog();
    const v = await createVerifier('trustful', '{}', { log });
    expect(await v.verify('anyone', 'anything')).toEqual({ ok: true });
    expect(lines.some((l) => l.level === 40 && String(l.msg).includes('not for production'))).toBe(true);
    await v.close();
  });

  it('a closed verifier answers INTERNAL_ERROR', async () => {
    const v = await createVerifier('google', MINIMAL.google!, { log: silentLog });
    await v.close();
    expect(await v.verify('u', 't')).toMatchObject({ ok: false, code: 'INTERNAL_ERROR' });
  });

  it('publishes the codes a verifier may return: every UserAttachErrorCode but NO_VERIFIER_CONFIGURED', () => {
    expect([...VERIFIER_ERROR_CODES].sort()).toEqual(['CONNECTION_ERROR', 'INTERNAL_ERROR', 'OTHER', 'REMOTE_ERROR', 'TOKEN_EXPIRED', 'TOKEN_INVALID']);
  });
});

describe('custom verifier modules', () => {
  const opts = (over: Partial<CreateVerifierOptions> = {}): CreateVerifierOptions => ({
    log: silentLog,
    customModules: {
      allowlist: fixture('custom-verifier.mjs'),
      schemaless: fixture('no-schema.mjs'),
      verifyless: fixture('no-verify.mjs'),
      broken: fixture('broken-import.mjs'),
      missing: fixture('does-not-exist.mjs'),
      google: fixture('custom-verifier.mjs'),
    },
    customCallTimeoutMs: 100,
    ...over,
  });

  it('loads a module, validates its config against its schema (defaults filled) and passes results through', async () => {
    const v = await createVerifier('allowlist', '{"allowed_user":"alice"}', opts());
    expect(await v.verify('alice', 'letmein')).toEqual({ ok: true }); // default token; extra fields dropped
    expect(await v.verify('alice', 'nope')).toEqual({ ok: false, code: 'TOKEN_INVALID', reason: 'wrong token' });
    expect(await v.verify('bob', 'letmein')).toMatchObject({ ok: false, code: 'OTHER' });
    await v.close();
    await v.close();
    expect((globalThis as { __customVerifierClosed?: number }).__customVerifierClosed).toBe(1);
  });

  it('INTERNAL_ERROR when the module throws or returns a malformed result; CONNECTION_ERROR past the call deadline', async () => {
    const v = await createVerifier('allowlist', { allowed_user: 'alice' }, opts());
    for (const token of ['throw', 'garbage', 'no-verifier']) {
      expect(await v.verify('alice', token), token).toMatchObject({ ok: false, code: 'INTERNAL_ERROR' });
    }
    const t0 = Date.now();
    expect(await v.verify('alice', 'hang')).toMatchObject({ ok: false, code: 'CONNECTION_ERROR' });
    expect(Date.now() - t0).toBeLessThan(1000);
    await v.close();
  });

  it('checks modules when loaded', async () => {
    await expect(createVerifier('allowlist', {}, opts())).rejects.toMatchObject({ code: 'LK_BAD_VERIFIER_CONFIG' });
    await expect(createVerifier('allowlist', { allowed_user: 'a', extra: 1 }, opts())).rejects.toMatchObject({ code: 'LK_BAD_VERIFIER_CONFIG' });
    await expect(createVerifier('schemaless', {}, opts())).rejects.toMatchObject({ code: 'LK_PLUGIN_INVALID' });
    await expect(createVerifier('verifyless', {}, opts())).rejects.toMatchObject({ code: 'LK_PLUGIN_INVALID' });
    await expect(createVerifier('broken', {}, opts())).rejects.toMatchObject({ code: 'LK_PLUGIN_LOAD_FAILED' });
    await expect(createVerifier('missing', {}, opts())).rejects.toMatchObject({ code: 'LK_PLUGIN_LOAD_FAILED' });
    await expect(createVerifier('google', MINIMAL.google!, opts())).rejects.toMatchObject({ code: 'LK_CONFIG_INVALID_VALUE' });
  });
});
