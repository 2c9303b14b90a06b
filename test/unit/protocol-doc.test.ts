/**
 * docs/protocol.md against the code: the Avro schemas it prints are the ones the server uses, and
 * every byte of the worked example is recomputed from the fixture keys and inputs.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONNECT_CONTEXT, CONFIRM_LABEL, KDF_INFO } from '../../src/crypto/session-crypto.js';
import { computeExample, renderProtocolDoc } from '../helpers/protocol-example.js';
import { CONFIRM, CONNECT_CONTEXT_BYTES, KDF_INFO_BYTES } from '../../src/sdk/constants.js';
import { decodeFrame } from '../../src/protocol/frames.js';
import { BOOTSTRAP_SIGNATURE_CONTEXT } from '../../src/bootstrap/key.js';
import { BOOTSTRAP_PATH, MAX_BOOTSTRAP_REQUEST_BYTES } from '../../src/bootstrap/service.js';
import { BOOTSTRAP_CONTEXT_BYTES, BOOTSTRAP_PATH as SDK_BOOTSTRAP_PATH } from '../../src/sdk/bootstrap.js';

const file = new URL('../../docs/protocol.md', import.meta.url);
const doc = fs.readFileSync(file, 'utf8');

describe('docs/protocol.md', () => {
  it('matches the schemas and the worked example computed from the code', () => {
    expect(renderProtocolDoc(doc)).toBe(doc);
  });
  it('example fixtures are genuine: the wrapped secret decrypts and the signature verifies', () => {
    const v = computeExample();
    expect(v.signatureValid).toBe(true);
    expect(v.wrappedSecretDecryptsTo.equals(Buffer.from(Array.from({ length: 64 }, (_, i) => i)))).toBe(true);
  });
  it('the example frames decode', () => {
    const v = new Map(computeExample().lines);
    for (const k of ['CONNECT frame', 'CONNACK frame (sessionId 00000000-0000-4000-8000-000000000000)', 'next SYNC frame: SyncRequest{requestId 2}, counter 1']) {
      expect(decodeFrame(Buffer.from(v.get(k)!, 'hex')).ok, k).toBe(true);
    }
  });
  it('server and SDK constants agree with the document', () => {
    expect(Buffer.from(CONNECT_CONTEXT_BYTES).equals(CONNECT_CONTEXT)).toBe(true);
    expect(Buffer.from(KDF_INFO_BYTES).equals(KDF_INFO)).toBe(true);
    expect(Buffer.from(CONFIRM).equals(CONFIRM_LABEL)).toBe(true);
    expect(doc).toContain(CONNECT_CONTEXT.toString('hex'));
    expect(CONNECT_CONTEXT.length).toBe(19);
    expect(crypto.getHashes()).toContain('sha256');
  });
  it('bootstrap constants: signature context, path and body limit as documented', () => {
    expect(Buffer.from(BOOTSTRAP_CONTEXT_BYTES).equals(BOOTSTRAP_SIGNATURE_CONTEXT)).toBe(true);
    expect(BOOTSTRAP_SIGNATURE_CONTEXT.length).toBe(21);
    expect(doc).toContain(BOOTSTRAP_SIGNATURE_CONTEXT.toString('hex'));
    expect(SDK_BOOTSTRAP_PATH).toBe(BOOTSTRAP_PATH);
    expect(doc).toContain(`\`POST ${BOOTSTRAP_PATH}\``);
    expect(doc).toContain(`body over ${MAX_BOOTSTRAP_REQUEST_BYTES} bytes`);
  });
});
