/**
 * The first frame of a session, built but for its embedded SyncRequest: a full CONNECT
 * (docs/protocol.md 4.1, one RSA-OAEP encryption and one RSA-PSS signature here) or a RESUME from a
 * ticket (4.6, HMAC and HKDF only). Both give the new session's keys (4.3); the client seals the
 * first SyncRequest under keys.tx, counter 0, and passes it to frame().
 */
import wire from './wire.js';
import { FRAME, PROTOCOL_VERSION } from './constants.js';
import { concat, deriveClientKeys, deriveResumedKeys, importServerKey, resumeProof, signConnect, wrapSecret, type ClientSessionKeys, type EndpointKeys, type WebCrypto } from './crypto.js';

export interface Hello {
  /** The new session's keys; its own resumption secret is keys.resumptionSecret. */
  keys: ClientSessionKeys;
  /** The frame, type byte included, with `sync` (the sealed first SyncRequest) or none. */
  frame(sync: Uint8Array | null): Uint8Array;
  /** CONNECT carried the public key. */
  sentKey: boolean;
  resumed: boolean;
}

export interface ConnectInput {
  appToken: string;
  serverKey: { id: string; spki: Uint8Array | string };
  keys: EndpointKeys;
  sendPublicKey: boolean;
  /** ms since the Unix epoch, endpoint clock. */
  timestamp: number;
  keepAliveSec: number;
}

/** 4.1 steps 1-5 and 7 (importServerKey throws ClientError LK_SDK_BAD_KEY on a bad server key). */
export async function prepareConnect(i: ConnectInput, c: WebCrypto = globalThis.crypto): Promise<Hello> {
  const serverKey = await importServerKey(i.serverKey.spki, c);
  const secret = c.getRandomValues(new Uint8Array(64));
  const wrappedSecret = await wrapSecret(serverKey, secret, c);
  const body = wire.connectBody.toBuffer({
    protocolVersion: PROTOCOL_VERSION,
    appToken: i.appToken,
    serverKeyId: i.serverKey.id,
    keyHash: i.keys.keyHashRaw,
    publicKey: i.sendPublicKey ? i.keys.spki : null,
    wrappedSecret,
    timestamp: i.timestamp,
    nonce: c.getRandomValues(new Uint8Array(16)),
    keepAliveSec: i.keepAliveSec,
  });
  const signature = await signConnect(i.keys, body, c);
  const keys = await deriveClientKeys(secret, body, c);
  secret.fill(0);
  return { keys, sentKey: i.sendPublicKey, resumed: false, frame: (sync) => concat(new Uint8Array([FRAME.CONNECT]), wire.connect.toBuffer({ body, signature, sync })) };
}

export interface ResumeInput {
  appToken: string;
  keyHashRaw: Uint8Array;
  ticket: Uint8Array;
  resumptionSecret: Uint8Array;
  /** ms since the Unix epoch, endpoint clock. */
  timestamp: number;
  /** 16 fresh random bytes. */
  nonce: Uint8Array;
  keepAliveSec: number;
}

/** 4.6 steps 2-5 and 7: Avro(ResumeBody), proof = HMAC(resumptionSecret, resumeInput), the resumed keys. */
export async function prepareResume(r: ResumeInput, c: WebCrypto = globalThis.crypto): Promise<Hello & { body: Uint8Array; proof: Uint8Array }> {
  const body = wire.resumeBody.toBuffer({
    protocolVersion: PROTOCOL_VERSION,
    appToken: r.appToken,
    keyHash: r.keyHashRaw,
    ticket: r.ticket,
    timestamp: r.timestamp,
    nonce: r.nonce,
    keepAliveSec: r.keepAliveSec,
  });
  const proof = await resumeProof(r.resumptionSecret, body, c);
  const keys = await deriveResumedKeys(r.resumptionSecret, body, c);
  return { body, proof, keys, sentKey: false, resumed: true, frame: (sync) => concat(new Uint8Array([FRAME.RESUME]), wire.resume.toBuffer({ body, proof, sync })) };
}
