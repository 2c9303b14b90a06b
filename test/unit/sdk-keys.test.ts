/**
 * Keys handed to the SDK: PEM with text around it (the old `bootstrap-key` comment line) is fine;
 * anything that is not the PEM block asked for fails with LK_SDK_BAD_KEY saying what was expected,
 * never with the browser's bare InvalidCharacterError or a DataError.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BootstrapError, ClientError, EndpointClient, generateEndpointKeys, loadEndpointKeys, resolveAccessPoints } from '../../src/sdk/index.js';
import { pemToDer } from '../../src/sdk/crypto.js';

const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PUB = pair.publicKey.export({ type: 'spki', format: 'pem' }) as string;
const PRIV = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('SDK key parsing', () => {
  it('reads a PEM block with a comment line around it', () => {
    expect(pemToDer(`# bootstrap key abc (data/bootstrap/bootstrap-key.pem)\n${PUB}`)).toEqual(new Uint8Array(pair.publicKey.export({ type: 'spki', format: 'der' })));
  });

  it('a server key that is not PEM is LK_SDK_BAD_KEY at construction', async () => {
    const keys = await generateEndpointKeys();
    for (const spki of ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA', 'not a key', PRIV, PUB.replace('PUBLIC KEY-----\n', 'PUBLIC KEY-----\n*'), '']) {
      let err: unknown;
      try {
        new EndpointClient({ url: 'ws://127.0.0.1:1', appToken: 't', serverKey: { id: 'k', spki }, keys });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ClientError);
      expect((err as ClientError).code).toBe('LK_SDK_BAD_KEY');
      expect((err as ClientError).message).toMatch(/serverKey\.spki: not a PEM public key/);
    }
    expect(codeOf(() => new EndpointClient({ appToken: 't', keys, bootstrap: { urls: ['http://127.0.0.1:1'], publicKey: 'garbage' } }))).toBe('LK_SDK_BAD_KEY');
  });

  it('a DER that is not a public key fails connect() with LK_SDK_BAD_KEY, not a DataError', async () => {
    const keys = await generateEndpointKeys();
    const client = new EndpointClient({ url: 'ws://127.0.0.1:1', appToken: 't', serverKey: { id: 'k', spki: new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]) }, keys });
    const r = await client.connect();
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.code).toBe('LK_SDK_BAD_KEY');
  });

  it('resolveAccessPoints with a non-PEM bootstrap key fails before any request, terminally', async () => {
    let fetched = 0;
    const err = await resolveAccessPoints({ urls: ['http://127.0.0.1:1'], publicKey: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', fetch: (async () => { fetched++; throw new Error('no'); }) as typeof fetch }, 'app').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BootstrapError);
    expect((err as BootstrapError).code).toBe('LK_SDK_BAD_KEY');
    expect((err as BootstrapError).terminal).toBe(true);
    expect(fetched).toBe(0);
  });

  it('loadEndpointKeys names the file that is wrong', async () => {
    await expect(loadEndpointKeys(PUB, PRIV)).rejects.toMatchObject({ code: 'LK_SDK_BAD_KEY' });
    const keys = await loadEndpointKeys(PRIV, PUB);
    expect(keys.keyHash).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
