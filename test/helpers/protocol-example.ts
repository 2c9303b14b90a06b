/**
 * The worked example of docs/protocol.md section 8, computed from the code. The randomised parts
 * (RSA-OAEP ciphertext, RSA-PSS signature) were produced once and live in
 * test/fixtures/example.json; the test verifies them with the fixture keys and recomputes the rest.
 * `node dist/test/helpers/protocol-example.js --write` regenerates the document sections.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { NodeGcmCipher } from '../../src/crypto/aead.js';
import { serverKeyId } from '../../src/crypto/keyring.js';
import { deriveSessionKeys, resumeInput, resumeProof, RSA_OAEP, RSA_PSS, signatureInput } from '../../src/crypto/session-crypto.js';
import { encodeConnack, encodeConnect, encodeConnectBody, encodeResume, encodeResumeBody, encodeSync, encodeSyncRequest, encodeSyncResponse, encodeTicket } from '../../src/protocol/frames.js';
import { emptySyncRequest, emptySyncResponse, types, wireSchemas, type ConnectBody } from '../../src/protocol/schemas.js';
import type avro from 'avsc';

import { ROOT } from './root.js';

export { ROOT };
const FIX = path.join(ROOT, 'test/fixtures');

export interface ExampleValues {
  lines: Array<[string, string]>;
  wrappedSecretDecryptsTo: Buffer;
  signatureValid: boolean;
}

function loadFixed(): { wrappedSecret: Buffer; signature: Buffer } | null {
  const f = path.join(FIX, 'example.json');
  if (!fs.existsSync(f)) return null;
  const j = JSON.parse(fs.readFileSync(f, 'utf8')) as { wrappedSecret: string; signature: string };
  return { wrappedSecret: Buffer.from(j.wrappedSecret, 'hex'), signature: Buffer.from(j.signature, 'hex') };
}

export function computeExample(create = false): ExampleValues {
  const epPriv = crypto.createPrivateKey(fs.readFileSync(path.join(FIX, 'example-endpoint.key.pem')));
  const epPub = crypto.createPublicKey(fs.readFileSync(path.join(FIX, 'example-endpoint.pub.pem')));
  const svPriv = crypto.createPrivateKey(fs.readFileSync(path.join(FIX, 'example-server.key.pem')));
  const svPub = crypto.createPublicKey(fs.readFileSync(path.join(FIX, 'example-server.pub.pem')));
  const spki = epPub.export({ format: 'der', type: 'spki' });
  const svSpki = svPub.export({ format: 'der', type: 'spki' });
  const secret = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
  const nonce = Buffer.from(Array.from({ length: 16 }, (_, i) => 0xa0 + i));
  let fixed = loadFixed();
  if (!fixed || create) {
    fixed = { wrappedSecret: crypto.publicEncrypt({ key: svPub, ...RSA_OAEP }, secret), signature: Buffer.alloc(0) };
  }
  const body: ConnectBody = {
    protocolVersion: 1,
    appToken: 'example-app-token',
    serverKeyId: serverKeyId(svSpki),
    keyHash: crypto.createHash('sha256').update(spki).digest(),
    publicKey: null,
    wrappedSecret: fixed.wrappedSecret,
    timestamp: 1767225600000,
    nonce,
    keepAliveSec: 60,
  };
  const bodyBytes = encodeConnectBody(body);
  const sigInput = signatureInput(bodyBytes);
  if (create || fixed.signature.length === 0) {
    fixed.signature = crypto.sign('sha256', sigInput, { key: epPriv, ...RSA_PSS });
    fs.writeFileSync(path.join(FIX, 'example.json'), JSON.stringify({ wrappedSecret: fixed.wrappedSecret.toString('hex'), signature: fixed.signature.toString('hex') }, null, 2) + '\n');
  }
  const keys = deriveSessionKeys(secret, sigInput);
  const th = crypto.createHash('sha256').update(sigInput).digest();
  const okm = Buffer.from(crypto.hkdfSync('sha256', secret, th, Buffer.from('latchkey/1 session keys'), 128));
  const req = emptySyncRequest(1);
  req.profileSyncRequest = { profileBody: Buffer.from('hello', 'latin1'), endpointAccessToken: null };
  const reqBytes = encodeSyncRequest(req);
  const c2s = new NodeGcmCipher(keys.c2s);
  const s2c = new NodeGcmCipher(keys.s2c);
  const sealedReq = c2s.seal(0, reqBytes);
  const res = emptySyncResponse(1);
  res.profileSyncResponse = { responseStatus: 'DELTA' };
  const resBytes = encodeSyncResponse(res);
  const sealedRes = s2c.seal(0, resBytes);
  const connect = encodeConnect({ body: bodyBytes, signature: fixed.signature, sync: sealedReq });
  const connack = encodeConnack({ returnCode: 1, errorCode: null, confirmation: keys.confirmation, sessionId: '00000000-0000-4000-8000-000000000000', keepAliveSec: 60, sync: sealedRes });
  const req2 = emptySyncRequest(2);
  const sync1 = encodeSync({ counter: 1, ciphertext: c2s.seal(1, encodeSyncRequest(req2)) });
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  return {
    wrappedSecretDecryptsTo: crypto.privateDecrypt({ key: svPriv, ...RSA_OAEP }, fixed.wrappedSecret),
    signatureValid: crypto.verify('sha256', sigInput, { key: epPub, ...RSA_PSS }, fixed.signature),
    lines: [
      ['endpoint SPKI DER', hex(spki)],
      ['keyHash = SHA-256(SPKI)', hex(body.keyHash)],
      ['keyHash (base64url, endpoint id)', body.keyHash.toString('base64url')],
      ['server key id', body.serverKeyId],
      ['secret', hex(secret)],
      ['nonce', hex(nonce)],
      ['timestamp', String(body.timestamp)],
      ['appToken', body.appToken],
      ['keepAliveSec', String(body.keepAliveSec)],
      ['publicKey', 'null (the server knows the key)'],
      ['wrappedSecret (RSA-OAEP-SHA256, fixture)', hex(fixed.wrappedSecret)],
      ...(types.connectBody as avro.types.RecordType).fields.map((f): [string, string] => [`  bodyBytes field ${f.name}`, hex(f.type.toBuffer((body as unknown as Record<string, unknown>)[f.name]))]),
      ['bodyBytes = Avro(ConnectBody) (the fields above, concatenated)', hex(bodyBytes)],
      ['signatureInput', hex(sigInput)],
      ['signature (RSA-PSS-SHA256, salt 32, fixture)', hex(fixed.signature)],
      ['transcriptHash', hex(th)],
      ['OKM', hex(okm)],
      ['keyC2S', hex(keys.c2s)],
      ['keyS2C', hex(keys.s2c)],
      ['confirmation', hex(keys.confirmation)],
      ['resumptionSecret = OKM[96..128) (section 4.6)', hex(keys.resumption)],
      ['SyncRequest{requestId 1, profileBody "hello"} (Avro)', hex(reqBytes)],
      ['sealed with keyC2S, counter 0 (CONNECT.sync)', hex(sealedReq)],
      ['CONNECT frame', hex(connect)],
      ['SyncResponse{requestId 1, SUCCESS, DELTA} (Avro)', hex(resBytes)],
      ['sealed with keyS2C, counter 0 (CONNACK.sync)', hex(sealedRes)],
      ['CONNACK frame (sessionId 00000000-0000-4000-8000-000000000000)', hex(connack)],
      ['next SYNC frame: SyncRequest{requestId 2}, counter 1', hex(sync1)],
      ['PINGREQ frame', '0c'],
    ],
  };
}

/**
 * The resumption example of docs/protocol.md section 8.1: a RESUME built from the resumption secret
 * of the section 8 session and a ticket as the server gave it (opaque: any bytes do for the
 * endpoint's computations; these are a fixed stand-in), fixed nonce and timestamp. Deterministic.
 */
export function computeResumeExample(): Array<[string, string]> {
  const base = computeExample();
  const resumption = Buffer.from(base.lines.find(([k]) => k.startsWith('resumptionSecret'))![1], 'hex');
  const ticket = Buffer.from(Array.from({ length: 120 }, (_, i) => (i * 7 + 1) & 0xff));
  const body = {
    protocolVersion: 1,
    appToken: 'example-app-token',
    keyHash: Buffer.from(base.lines.find(([k]) => k === 'keyHash = SHA-256(SPKI)')![1], 'hex'),
    ticket,
    timestamp: 1_767_225_660_000,
    nonce: Buffer.from('f0e0d0c0b0a090807060504030201000', 'hex'),
    keepAliveSec: 60,
  };
  const bodyBytes = encodeResumeBody(body);
  const input = resumeInput(bodyBytes);
  const proof = resumeProof(resumption, input);
  const keys = deriveSessionKeys(resumption, input);
  const th = crypto.createHash('sha256').update(input).digest();
  const okm = Buffer.from(crypto.hkdfSync('sha256', resumption, th, Buffer.from('latchkey/1 session keys'), 128));
  const frame = encodeResume({ body: bodyBytes, proof, sync: null });
  const ticketFrame = encodeTicket({ ticket, lifetimeSec: 86_400 });
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  return [
    ['resumptionSecret of the section 8 session', hex(resumption)],
    ['TICKETREQ frame', '11'],
    ['TICKET frame (ticket: the 120 bytes 01 08 0f ..., lifetimeSec 86400)', hex(ticketFrame)],
    ['timestamp', String(body.timestamp)],
    ['nonce', hex(body.nonce)],
    ...(types.resumeBody as avro.types.RecordType).fields.map((f): [string, string] => [`  bodyBytes field ${f.name}`, hex(f.type.toBuffer((body as unknown as Record<string, unknown>)[f.name]))]),
    ['bodyBytes = Avro(ResumeBody)', hex(bodyBytes)],
    ['resumeInput = "latchkey/1 RESUME\\0" || bodyBytes', hex(input)],
    ['proof = HMAC-SHA-256(resumptionSecret, resumeInput)', hex(proof)],
    ['transcriptHash = SHA-256(resumeInput)', hex(th)],
    ['OKM = HKDF-SHA-256(resumptionSecret, transcriptHash, "latchkey/1 session keys", 128)', hex(okm)],
    ['keyC2S', hex(keys.c2s)],
    ['keyS2C', hex(keys.s2c)],
    ['confirmation', hex(keys.confirmation)],
    ['next resumptionSecret', hex(keys.resumption)],
    ['RESUME frame (no sync)', hex(frame)],
  ];
}

export function exampleMarkdown(v: ExampleValues): string {
  return v.lines.map(([k, val]) => `- ${k}:\n  \`${val}\``).join('\n');
}

export function schemasMarkdown(): string {
  return Object.entries(wireSchemas)
    .map(([name, schema]) => `### ${name}\n\n\`\`\`json\n${JSON.stringify(schema, null, 2)}\n\`\`\``)
    .join('\n\n');
}

export function replaceSection(doc: string, name: string, content: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) throw new Error(`section ${name} missing`);
  return doc.slice(0, i + begin.length) + '\n' + content + '\n' + doc.slice(j);
}

export function renderProtocolDoc(doc: string): string {
  const withExample = replaceSection(replaceSection(doc, 'schemas', schemasMarkdown()), 'example', exampleMarkdown(computeExample()));
  return replaceSection(withExample, 'example-resume', computeResumeExample().map(([k, val]) => `- ${k}:\n  \`${val}\``).join('\n'));
}

if (process.argv.includes('--write')) {
  if (process.argv.includes('--new-fixture')) computeExample(true);
  const file = path.join(ROOT, 'docs/protocol.md');
  fs.writeFileSync(file, renderProtocolDoc(fs.readFileSync(file, 'utf8')));
  process.stdout.write(`wrote ${file}\n`);
}
