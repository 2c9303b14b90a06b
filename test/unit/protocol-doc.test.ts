/**
 * docs/protocol.md against the code: the Avro schemas it prints are the ones the server uses, and
 * every byte of the worked example is recomputed from the fixture keys and inputs.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIRM_LABEL, KDF_INFO, resumeInput, signatureInput } from '../../src/crypto/session-crypto.js';
import { computeExample, renderProtocolDoc } from '../helpers/protocol-example.js';
import { CONFIRM, CONNECT_CONTEXT_BYTES, KDF_INFO_BYTES, RESUME_CONTEXT_BYTES } from '../../src/sdk/constants.js';
import { decodeFrame } from '../../src/protocol/frames.js';
import { BOOTSTRAP_SIGNATURE_CONTEXT } from '../../src/bootstrap/key.js';
import { BOOTSTRAP_PATH, MAX_BOOTSTRAP_REQUEST_BYTES } from '../../src/bootstrap/service.js';
import { BOOTSTRAP_CONTEXT_BYTES, BOOTSTRAP_PATH as SDK_BOOTSTRAP_PATH } from '../../src/sdk/bootstrap.js';

const file = new URL('../../docs/protocol.md', import.meta.url);
const doc = fs.readFileSync(file, 'utf8');

/**
 * The protocol constants `text` does not state as docs/protocol.md writes them (ASCII("...") with
 * \0 for the NUL; a prefix's length and hex); compared with whitespace runs as one space, since
 * the document wraps lines. The bytes are the server's, from the functions that use them.
 */
function unstatedConstants(text: string): string[] {
  const flat = text.replace(/\s+/g, ' ');
  const ascii = (b: Buffer): string => `ASCII("${b.toString('latin1').replace('\0', '\\0')}")`;
  const bytes = (b: Buffer): string => `the ${b.length} bytes \`${b.toString('hex')}\``;
  const connect = signatureInput(Buffer.alloc(0));
  const resume = resumeInput(Buffer.alloc(0));
  const stated: Array<[string, string]> = [
    ['CONNECT context', ascii(connect)],
    ['CONNECT context bytes', bytes(connect)],
    ['RESUME context', ascii(resume)],
    ['RESUME context bytes', bytes(resume)],
    ['KDF info', ascii(KDF_INFO)],
    ['confirmation label', ascii(CONFIRM_LABEL)],
  ];
  return stated.filter(([, form]) => !flat.includes(form)).map(([name]) => name);
}

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
  it('server and SDK constants agree with each other and with the document', () => {
    // The server's bytes as its own functions produce them (an empty body leaves the prefix).
    expect(Buffer.from(CONNECT_CONTEXT_BYTES).equals(signatureInput(Buffer.alloc(0)))).toBe(true);
    expect(Buffer.from(RESUME_CONTEXT_BYTES).equals(resumeInput(Buffer.alloc(0)))).toBe(true);
    expect(Buffer.from(KDF_INFO_BYTES).equals(KDF_INFO)).toBe(true);
    expect(Buffer.from(CONFIRM).equals(CONFIRM_LABEL)).toBe(true);
    expect(unstatedConstants(doc)).toEqual([]);
  });
  it('the constants check fails on a document that misstates one', () => {
    const resumeHex = resumeInput(Buffer.alloc(0)).toString('hex');
    const wrongPrefix = doc.replace(resumeHex, `${resumeHex.slice(0, -2)}01`);
    expect(wrongPrefix).not.toBe(doc);
    expect(unstatedConstants(wrongPrefix)).toEqual(['RESUME context bytes']);
    expect(unstatedConstants(doc.replace('latchkey/1 session keys', 'latchkey/1 session key'))).toEqual(['KDF info']);
    expect(unstatedConstants(doc.replace('the 19 bytes', 'the 20 bytes'))).toEqual(['CONNECT context bytes']);
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
