import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyHashId, parseEndpointPublicKey, spkiToPkcs1, toSpkiDer } from '../../src/crypto/keys.js';
import { NodeGcmCipher } from '../../src/crypto/aead.js';
import { deriveSessionKeys, signatureInput } from '../../src/crypto/session-crypto.js';
import { deriveClientKeys, WebFrameCipher } from '../../src/sdk/crypto.js';

const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const spki = publicKey.export({ format: 'der', type: 'spki' });

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('keys', () => {
  it('unwraps SPKI to the PKCS#1 key OpenSSL produces', () => {
    expect(spkiToPkcs1(spki).equals(publicKey.export({ format: 'der', type: 'pkcs1' }))).toBe(true);
    expect(parseEndpointPublicKey(spki).equals(publicKey)).toBe(true);
  });
  it('refuses non-RSA, wrong size, truncated and padded keys', () => {
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
    const small = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'der', type: 'spki' });
    expect(code(() => parseEndpointPublicKey(ec))).toBe('LK_HS_BAD_PUBLIC_KEY');
    expect(code(() => parseEndpointPublicKey(small))).toBe('LK_HS_BAD_PUBLIC_KEY');
    expect(code(() => parseEndpointPublicKey(spki.subarray(0, 100)))).toBe('LK_HS_BAD_PUBLIC_KEY');
    expect(code(() => parseEndpointPublicKey(Buffer.concat([spki, Buffer.from([0])])))).toBe('LK_HS_BAD_PUBLIC_KEY');
    expect(code(() => toSpkiDer('not a key'))).toBe('LK_BAD_PUBLIC_KEY');
    expect(code(() => toSpkiDer(small))).toBe('LK_BAD_PUBLIC_KEY');
  });
  it('accepts PEM, PKCS#1 PEM and DER for provisioning, with one key hash', () => {
    const id = keyHashId(spki);
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(keyHashId(toSpkiDer(publicKey.export({ format: 'pem', type: 'spki' }).toString()))).toBe(id);
    expect(keyHashId(toSpkiDer(publicKey.export({ format: 'pem', type: 'pkcs1' }).toString()))).toBe(id);
    expect(keyHashId(toSpkiDer(spki))).toBe(id);
  });
});

describe('server (node:crypto) and SDK (WebCrypto) agree on keys and frames', () => {
  it('derive the same keys and open each other\'s frames', async () => {
    const secret = crypto.randomBytes(64);
    const body = crypto.randomBytes(400);
    const server = deriveSessionKeys(secret, signatureInput(body));
    const client = await deriveClientKeys(secret, body);
    expect(await client.checkConfirmation(server.confirmation)).toBe(true);
    expect(await client.checkConfirmation(Buffer.alloc(32))).toBe(false);
    const c2s = new NodeGcmCipher(server.c2s);
    const s2c = new NodeGcmCipher(server.s2c);
    const sealed = await client.tx.seal(5, Buffer.from('hello'));
    expect(c2s.open(5, sealed)?.toString()).toBe('hello');
    expect(c2s.open(6, sealed)).toBeNull();
    const back = s2c.seal(0, Buffer.from('world'));
    expect(Buffer.from((await client.rx.open(0, back))!).toString()).toBe('world');
    expect(await client.rx.open(1, back)).toBeNull();
    expect(client.tx).toBeInstanceOf(WebFrameCipher);
  });
});

describe('hkdfSha256', () => {
  it('equals node:crypto hkdfSync for the lengths the protocol uses and more', async () => {
    const { hkdfSha256 } = await import('../../src/crypto/session-crypto.js');
    for (const len of [1, 32, 33, 64, 96, 200]) {
      const ikm = crypto.randomBytes(64);
      const salt = crypto.randomBytes(32);
      const info = Buffer.from('latchkey/1 session keys');
      expect(hkdfSha256(ikm, salt, info, len).equals(Buffer.from(crypto.hkdfSync('sha256', ikm, salt, info, len)))).toBe(true);
    }
  });
});
