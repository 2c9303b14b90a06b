/**
 * A minimal Node reference client built straight from docs/protocol.md with node:crypto: builds
 * CONNECT frames (with any field overridden, for the refusal and malformed-frame tests), derives the
 * session keys and seals/opens SYNC payloads. The bench uses it to prepare signed CONNECTs outside
 * its timed phase. Independent of src/sdk on purpose: two implementations that interoperate are a
 * check on the document.
 */
import crypto from 'node:crypto';
import { NodeGcmCipher } from '../../src/crypto/aead.js';
import { deriveSessionKeys, resumeInput, resumeProof, RSA_OAEP, RSA_PSS, signatureInput } from '../../src/crypto/session-crypto.js';
import { encodeConnect, encodeConnectBody, encodeResume, encodeResumeBody, encodeSync, encodeSyncRequest, decodeFrame, decodeSyncResponse } from '../../src/protocol/frames.js';
import type { ConnectBody, ResumeBody, SyncRequest, SyncResponse } from '../../src/protocol/schemas.js';

export interface NodeEndpointKey {
  privateKey: crypto.KeyObject;
  spki: Buffer;
  keyHashRaw: Buffer;
  keyHash: string;
  publicKeyPem: string;
  privateKeyPem: string;
}

export function makeEndpointKey(): NodeEndpointKey {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return endpointKeyFrom(privateKey, publicKey);
}

export function endpointKeyFrom(privateKey: crypto.KeyObject, publicKey: crypto.KeyObject): NodeEndpointKey {
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const keyHashRaw = crypto.createHash('sha256').update(spki).digest();
  return {
    privateKey,
    spki,
    keyHashRaw,
    keyHash: keyHashRaw.toString('base64url'),
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

export interface ConnectOptions {
  appToken: string;
  serverKeyId: string;
  serverPublicKey: crypto.KeyObject | Buffer;
  key: NodeEndpointKey;
  /** Overrides applied to the ConnectBody before encoding. */
  body?: Partial<ConnectBody>;
  /** Sign with this key instead (bad-signature tests). */
  signWith?: crypto.KeyObject;
  /** Replace the signature bytes. */
  signature?: Buffer;
  /** SyncRequest to embed (sealed with counter 0). */
  sync?: SyncRequest;
  secret?: Buffer;
}

export interface PreparedConnect {
  frame: Buffer;
  tx: NodeGcmCipher;
  rx: NodeGcmCipher;
  confirmation: Buffer;
  body: ConnectBody;
  /** The session's resumption secret (docs/protocol.md 4.3, OKM[96..128)). */
  resumption: Buffer;
}

export function prepareConnect(o: ConnectOptions): PreparedConnect {
  const serverKey = Buffer.isBuffer(o.serverPublicKey) ? crypto.createPublicKey({ key: o.serverPublicKey, format: 'der', type: 'spki' }) : o.serverPublicKey;
  const secret = o.secret ?? crypto.randomBytes(64);
  const body: ConnectBody = {
    protocolVersion: 1,
    appToken: o.appToken,
    serverKeyId: o.serverKeyId,
    keyHash: o.key.keyHashRaw,
    publicKey: o.key.spki,
    wrappedSecret: crypto.publicEncrypt({ key: serverKey, ...RSA_OAEP }, secret),
    timestamp: Date.now(),
    nonce: crypto.randomBytes(16),
    keepAliveSec: 30,
    ...o.body,
  };
  const bodyBytes = encodeConnectBody(body);
  const sigInput = signatureInput(bodyBytes);
  const signature = o.signature ?? crypto.sign('sha256', sigInput, { key: o.signWith ?? o.key.privateKey, ...RSA_PSS });
  const keys = deriveSessionKeys(secret, sigInput);
  const tx = new NodeGcmCipher(keys.c2s);
  const rx = new NodeGcmCipher(keys.s2c);
  const sync = o.sync ? tx.seal(0, encodeSyncRequest(o.sync)) : null;
  return { frame: encodeConnect({ body: bodyBytes, signature, sync }), tx, rx, confirmation: keys.confirmation, body, resumption: keys.resumption };
}

export interface ResumeOptions {
  appToken: string;
  keyHashRaw: Buffer;
  ticket: Buffer;
  /** The previous session's resumption secret. */
  resumption: Buffer;
  body?: Partial<ResumeBody>;
  /** Replace the proof bytes. */
  proof?: Buffer;
  sync?: SyncRequest;
}

export interface PreparedResume {
  frame: Buffer;
  tx: NodeGcmCipher;
  rx: NodeGcmCipher;
  confirmation: Buffer;
  resumption: Buffer;
}

/** A RESUME frame (docs/protocol.md 4.6) and the keys of the session it opens. */
export function prepareResume(o: ResumeOptions): PreparedResume {
  const body: ResumeBody = {
    protocolVersion: 1,
    appToken: o.appToken,
    keyHash: o.keyHashRaw,
    ticket: o.ticket,
    timestamp: Date.now(),
    nonce: crypto.randomBytes(16),
    keepAliveSec: 30,
    ...o.body,
  };
  const bodyBytes = encodeResumeBody(body);
  const input = resumeInput(bodyBytes);
  const proof = o.proof ?? resumeProof(o.resumption, input);
  const keys = deriveSessionKeys(o.resumption, input);
  const tx = new NodeGcmCipher(keys.c2s);
  const rx = new NodeGcmCipher(keys.s2c);
  const sync = o.sync ? tx.seal(0, encodeSyncRequest(o.sync)) : null;
  return { frame: encodeResume({ body: bodyBytes, proof, sync }), tx, rx, confirmation: keys.confirmation, resumption: keys.resumption };
}

export function syncFrame(tx: NodeGcmCipher, counter: number, req: SyncRequest): Buffer {
  return encodeSync({ counter, ciphertext: tx.seal(counter, encodeSyncRequest(req)) });
}

export function openSync(rx: NodeGcmCipher, frame: Buffer): { counter: number; response: SyncResponse } {
  const f = decodeFrame(frame);
  if (!f.ok || f.value.type !== 'SYNC') throw new Error(`not a SYNC frame: ${f.ok ? f.value.type : f.code}`);
  const plain = rx.open(f.value.sync.counter, f.value.sync.ciphertext);
  if (!plain) throw new Error('SYNC does not authenticate');
  const r = decodeSyncResponse(plain);
  if (!r.ok) throw new Error('bad SyncResponse');
  return { counter: f.value.sync.counter, response: r.value };
}
