/**
 * Protocol-level input generators of the fuzzer (docs/protocol.md, src/protocol/schemas.ts):
 * signed CONNECTs (valid, or with one field changed and signed again so the input reaches the
 * later checks), CONNECTs rebuilt field by field with lying Avro lengths, bad union indexes and
 * wrong fixed sizes, valid random SyncRequests (sealed with the session key, so they reach
 * registration, ownership and events), SyncRequest plaintexts with huge block counts, and frames of
 * every type with random or mutated bodies.
 */
import crypto from 'node:crypto';
import { NodeGcmCipher } from '../../src/crypto/aead.js';
import { deriveSessionKeys, RSA_OAEP, RSA_PSS, signatureInput } from '../../src/crypto/session-crypto.js';
import { ERRORS } from '../../src/errors.js';
import { encodeConnectBody, FrameType } from '../../src/protocol/frames.js';
import { types, type ConnectBody, type SyncRequest, type WireEvent } from '../../src/protocol/schemas.js';
import type { NodeEndpointKey } from '../../test/helpers/wire-client.js';
import { avroBytes, avroString, avroUnion, badUtf8String, mutate, varint, weirdVarint } from './fuzz-mutate.js';
import type { Rng } from './fuzz-rng.js';

export interface ServerKey {
  id: string;
  publicKey: crypto.KeyObject;
}

export interface BuiltConnect {
  frame: Buffer;
  bodyBytes: Buffer;
  signature: Buffer;
  body: ConnectBody;
  tx: NodeGcmCipher;
  rx: NodeGcmCipher;
  /** The key confirmation a genuine server puts in CONNACK (docs/protocol.md 4.3). */
  confirmation: Buffer;
  /** CONNECT carries a sealed SyncRequest (endpoint counter 0): the first SYNC frame is counter 1. */
  hasSync: boolean;
}

export interface ConnectInput {
  appToken: string;
  server: ServerKey;
  key: NodeEndpointKey;
  body?: Partial<ConnectBody>;
  /** Raw SyncRequest plaintext sealed with counter 0 into CONNECT.sync (any bytes), or null. */
  syncPlain?: Buffer | null;
  /** Sign with this key instead of the endpoint's. */
  signWith?: crypto.KeyObject;
  /** Override the signature bytes. */
  signature?: Buffer;
}

/** A CONNECT as docs/protocol.md 4.1 builds it (wire-client.ts's recipe, with a raw embedded plaintext). */
export function buildConnect(o: ConnectInput): BuiltConnect {
  const secret = crypto.randomBytes(64);
  const body: ConnectBody = {
    protocolVersion: 1,
    appToken: o.appToken,
    serverKeyId: o.server.id,
    keyHash: o.key.keyHashRaw,
    publicKey: o.key.spki,
    wrappedSecret: crypto.publicEncrypt({ key: o.server.publicKey, ...RSA_OAEP }, secret),
    timestamp: Date.now(),
    nonce: crypto.randomBytes(16),
    keepAliveSec: 5,
    ...o.body,
  };
  const bodyBytes = encodeConnectBody(body);
  const sigInput = signatureInput(bodyBytes);
  const signature = o.signature ?? crypto.sign('sha256', sigInput, { key: o.signWith ?? o.key.privateKey, ...RSA_PSS });
  const keys = deriveSessionKeys(secret, sigInput);
  const tx = new NodeGcmCipher(keys.c2s);
  const rx = new NodeGcmCipher(keys.s2c);
  const sync = o.syncPlain ? tx.seal(0, o.syncPlain) : null;
  const frame = rawConnect(bodyBytes, signature, sync === null ? avroUnion(0) : avroUnion(1, avroBytes(sync)));
  return { frame, bodyBytes, signature, body, tx, rx, confirmation: keys.confirmation, hasSync: sync !== null };
}

/** 0x01 || Avro(Connect) from its raw parts (`syncUnion` is the encoded ['null', bytes] union). */
export function rawConnect(body: Buffer, signature: Buffer, syncUnion: Buffer): Buffer {
  return Buffer.concat([Buffer.from([FrameType.CONNECT]), avroBytes(body), avroBytes(signature), syncUnion]);
}

/** The ConnectBody's fields, each as its own Avro encoding (in schema order). */
export function connectBodyFields(b: ConnectBody): Buffer[] {
  return [
    varint(BigInt(b.protocolVersion)),
    avroString(b.appToken),
    avroString(b.serverKeyId),
    Buffer.from(b.keyHash),
    b.publicKey === null ? avroUnion(0) : avroUnion(1, avroBytes(b.publicKey)),
    avroBytes(b.wrappedSecret),
    varint(BigInt(b.timestamp)),
    Buffer.from(b.nonce),
    varint(BigInt(b.keepAliveSec)),
  ];
}

/**
 * A CONNECT rebuilt with one ConnectBody field (or a Connect field) replaced by a bad encoding:
 * a length that lies, a huge or negative varint, a union index past the end, a fixed field of the
 * wrong size, invalid UTF-8. Returns the frame and a tag naming the field and the defect.
 */
export function structuredBadConnect(rng: Rng, t: BuiltConnect): { frame: Buffer; tag: string } {
  const fields = connectBodyFields(t.body);
  const syncUnion = avroUnion(0);
  const which = rng.int(12);
  let tag: string;
  if (which < 9) {
    const i = which;
    const defect = rng.int(5);
    const f = fields[i]!;
    switch (defect) {
      case 0:
        fields[i] = weirdVarint(rng);
        tag = `body.f${i}.varint`;
        break;
      case 1:
        // keep the bytes, lie about the length (string/bytes fields), or resize a fixed field
        if (i === 3 || i === 7) fields[i] = rng.chance(0.5) ? f.subarray(0, rng.int(f.length)) : Buffer.concat([f, rng.bytes(rng.range(1, 8))]);
        else fields[i] = Buffer.concat([weirdVarint(rng), f.subarray(Math.min(f.length, 1))]);
        tag = `body.f${i}.length`;
        break;
      case 2:
        fields[i] = i === 4 ? avroUnion(rng.pick([2, 3, -1, 100, 2 ** 31]), rng.bytes(rng.int(8))) : mutate(rng, f, 2);
        tag = `body.f${i}.${i === 4 ? 'union' : 'mutated'}`;
        break;
      case 3:
        fields[i] = i === 1 || i === 2 ? avroBytes(badUtf8String(rng)) : rng.bytes(rng.int(f.length + 4));
        tag = `body.f${i}.${i === 1 || i === 2 ? 'utf8' : 'random'}`;
        break;
      default:
        fields.length = i; // the body ends early
        tag = `body.f${i}.missing`;
    }
    const body = Buffer.concat(fields);
    return { frame: rawConnect(body, t.signature, syncUnion), tag };
  }
  const bodyBytes = t.bodyBytes;
  if (which === 9) {
    // the Connect.body length lies
    return { frame: Buffer.concat([Buffer.from([FrameType.CONNECT]), avroBytes(bodyBytes, BigInt(bodyBytes.length) + BigInt(rng.pick([-1, 1, 2, -100, 1 << 20]))), avroBytes(t.signature), syncUnion]), tag: 'connect.body.length' };
  }
  if (which === 10) {
    // the signature length lies or the signature is the wrong size
    const sig = rng.chance(0.5) ? t.signature.subarray(0, rng.int(t.signature.length)) : Buffer.concat([t.signature, rng.bytes(rng.range(1, 300))]);
    return { frame: rawConnect(bodyBytes, sig, syncUnion), tag: 'connect.signature.size' };
  }
  // the sync union: bad index, lying length, random ciphertext
  const u = rng.pick([avroUnion(2), avroUnion(-1), avroUnion(1, weirdVarint(rng)), avroUnion(1, avroBytes(rng.bytes(rng.size(200)))), avroUnion(1)]);
  return { frame: rawConnect(bodyBytes, t.signature, u), tag: 'connect.sync' };
}

/**
 * ConnectBody changes worth signing again: each reaches a later check of docs/protocol.md 4.2
 * (version, application, server key, timestamp, key hash, sizes, public key, keepalive).
 */
export function semanticConnectChange(rng: Rng, appTokens: string[], server: ServerKey, key: NodeEndpointKey, other: NodeEndpointKey): { body: Partial<ConnectBody>; signWith?: crypto.KeyObject; tag: string } {
  const c = rng.int(14);
  switch (c) {
    case 0:
      return { body: { protocolVersion: rng.pick([0, 2, -1, 2 ** 31 - 1, -(2 ** 31)]) }, tag: 'sem.protocolVersion' };
    case 1:
      return { body: { appToken: rng.pick(['', 'x', 'unknown-app-token', 'a'.repeat(rng.range(100, 5000)), '\u0000', '\u{1f600}']) }, tag: 'sem.appToken' };
    case 2:
      return { body: { serverKeyId: rng.pick(['', 'AAAAAAAAAAAAAAAA', server.id.slice(0, 15), server.id + 'x', 'z'.repeat(4000)]) }, tag: 'sem.serverKeyId' };
    case 3:
      return { body: { timestamp: rng.pick([0, -1, Date.now() - 600_000, Date.now() + 600_000, 2 ** 52, -(2 ** 52)]) }, tag: 'sem.timestamp' };
    case 4:
      return { body: { keyHash: rng.bytes(32) }, tag: 'sem.keyHash' };
    case 5:
      return { body: { publicKey: null, keyHash: rng.bytes(32) }, tag: 'sem.unknownKeyNoPublicKey' };
    case 6: {
      const pk = rng.pick([rng.bytes(rng.range(0, 1100)), other.spki.subarray(0, 200), Buffer.concat([key.spki, Buffer.from([0])])]);
      return { body: { publicKey: pk, keyHash: crypto.createHash('sha256').update(pk).digest() }, tag: 'sem.publicKeyJunk' };
    }
    case 7:
      return { body: { wrappedSecret: rng.bytes(rng.pick([0, 1, 255, 257, 512])) }, tag: 'sem.wrappedSecretSize' };
    case 8:
      return { body: { wrappedSecret: rng.bytes(256) }, tag: 'sem.wrappedSecretJunk' };
    case 9:
      return { body: {}, signWith: other.privateKey, tag: 'sem.wrongSigner' };
    case 10:
      return { body: { keepAliveSec: rng.pick([-1, 0, 1, 4, 601, 2 ** 31 - 1, -(2 ** 31)]) }, tag: 'sem.keepAlive' };
    case 11:
      return { body: { appToken: rng.pick(appTokens) }, tag: 'sem.otherApp' };
    case 12: {
      // a 2048-bit key of the wrong kind would need generation; an EC-like SPKI prefix is enough junk
      const pk = Buffer.concat([Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), rng.bytes(65)]);
      return { body: { publicKey: pk, keyHash: crypto.createHash('sha256').update(pk).digest() }, tag: 'sem.ecPublicKey' };
    }
    default:
      return { body: { nonce: Buffer.alloc(16) }, tag: 'sem.zeroNonce' };
  }
}

// ---- SyncRequests ----

export interface SyncContext {
  owners: string[];
  peers: string[];
  eventClasses: string[];
  verifierTokens: string[];
  /** A valid profile of the schema application, Avro-encoded. */
  schemaProfile: () => Buffer;
}

const INT_MAX = 2 ** 31 - 1;

function someString(rng: Rng, pool: readonly string[]): string {
  return rng.weighted<() => string>([
    [6, () => rng.pick(pool)],
    [1, () => ''],
    [1, () => 'x'.repeat(rng.range(200, 300))],
    [1, () => rng.bytes(rng.range(1, 24)).toString('base64url')],
    [1, () => rng.pick(['\u00e9t\u00e9', '\u{1f600}', '\u0000nul', 'a/b', '..', '%ZZ'])],
  ])();
}

function someInt(rng: Rng): number {
  return rng.weighted<() => number>([
    [8, () => rng.range(1, 1_000_000)],
    [1, () => rng.pick([0, -1, INT_MAX, -INT_MAX - 1])],
    [1, () => -rng.range(1, 1000)],
  ])();
}

/** A random SyncRequest that encodes (its content may still be refused by the server). */
export function randomSyncRequest(rng: Rng, ctx: SyncContext, requestId = someInt(rng)): SyncRequest {
  const req: SyncRequest = { requestId, syncRequestMetaData: null, profileSyncRequest: null, userSyncRequest: null, eventSyncRequest: null };
  if (rng.chance(0.15)) req.syncRequestMetaData = { profileHash: rng.chance(0.5) ? null : rng.bytes(rng.pick([32, 32, 0, 31, 64])), timeout: rng.chance(0.5) ? null : rng.pick([0, -1, 1000, 2 ** 52]) };
  if (rng.chance(0.35)) {
    req.profileSyncRequest = {
      profileBody: rng.weighted<() => Buffer>([
        [3, () => ctx.schemaProfile()],
        [3, () => rng.bytes(rng.size(512))],
        [1, () => Buffer.alloc(0)],
        [1, () => mutate(rng, ctx.schemaProfile())],
      ])(),
      endpointAccessToken: rng.chance(0.7) ? null : someString(rng, ['tok-a', 'tok-b', 'tok-c']),
    };
  }
  if (rng.chance(0.3)) {
    req.userSyncRequest = {
      userAttachRequest: rng.chance(0.6)
        ? { userVerifierId: rng.chance(0.7) ? null : someString(rng, ctx.verifierTokens.length ? ctx.verifierTokens : ['v']), userExternalId: someString(rng, ctx.owners), userAccessToken: someString(rng, ['token', 'x']) }
        : null,
      endpointAttachRequests: rng.chance(0.3) ? Array.from({ length: rng.int(4) }, () => ({ requestId: someInt(rng), endpointAccessToken: someString(rng, ['tok-a', 'tok-b', 'tok-c']) })) : null,
      endpointDetachRequests: rng.chance(0.3) ? Array.from({ length: rng.int(4) }, () => ({ requestId: someInt(rng), endpointKeyHash: someString(rng, ctx.peers) })) : null,
    };
  }
  if (rng.chance(0.45)) {
    const event = (): WireEvent => ({
      seqNum: rng.chance(0.9) ? rng.int(1_000_000) : rng.pick([-1, INT_MAX, 0]),
      eventClassFQN: someString(rng, ctx.eventClasses),
      eventData: rng.chance(0.2) ? null : rng.bytes(rng.size(256)),
      source: rng.chance(0.9) ? null : someString(rng, ctx.peers),
      target: rng.chance(0.6) ? null : someString(rng, ctx.peers),
    });
    req.eventSyncRequest = {
      eventListenersRequests: rng.chance(0.25) ? Array.from({ length: rng.range(0, rng.chance(0.1) ? 20 : 3) }, () => ({ requestId: someInt(rng), eventClassFQNs: Array.from({ length: rng.int(4) }, () => someString(rng, ctx.eventClasses)) })) : null,
      events: rng.chance(0.6) ? Array.from({ length: rng.range(0, rng.chance(0.05) ? 300 : 4) }, event) : null,
      listenedEventClassFQNs: rng.chance(0.4) ? Array.from({ length: rng.range(0, rng.chance(0.05) ? 300 : 4) }, () => someString(rng, ctx.eventClasses)) : null,
    };
  }
  return req;
}

export function encodeSyncRequestRaw(req: SyncRequest): Buffer {
  return types.syncRequest.toBuffer(req);
}

/**
 * A SyncRequest plaintext that must not decode: huge or negative block counts with few bytes
 * behind them, bad union indexes, truncations and trailing bytes of a valid one, random bytes.
 */
export function badSyncPlain(rng: Rng, ctx: SyncContext): { plain: Buffer; tag: string } {
  const rid = varint(BigInt(rng.range(1, 1000)));
  const huge = (): Buffer => rng.chance(0.5) ? weirdVarint(rng) : varint(BigInt(rng.pick([2 ** 31 - 1, 2 ** 32, 1e9, 65536, 1000])));
  const c = rng.int(8);
  switch (c) {
    case 0:
      // endpointAttachRequests: [null, array] with a huge block count
      return { plain: Buffer.concat([rid, avroUnion(0), avroUnion(0), avroUnion(1, Buffer.concat([avroUnion(0), avroUnion(1, huge()), rng.bytes(rng.int(8))])), avroUnion(0)]), tag: 'sync.plain.attachCount' };
    case 1:
      // events array with a huge count
      return { plain: Buffer.concat([rid, avroUnion(0), avroUnion(0), avroUnion(0), avroUnion(1, Buffer.concat([avroUnion(0), avroUnion(1, huge()), rng.bytes(rng.int(8))]))]), tag: 'sync.plain.eventsCount' };
    case 2:
      // listened classes: negative block count with a lying block size
      return { plain: Buffer.concat([rid, avroUnion(0), avroUnion(0), avroUnion(0), avroUnion(1, Buffer.concat([avroUnion(0), avroUnion(0), avroUnion(1, Buffer.concat([varint(-BigInt(rng.range(1, 2 ** 30))), weirdVarint(rng), rng.bytes(rng.int(6))]))]))]), tag: 'sync.plain.negativeBlock' };
    case 3:
      return { plain: Buffer.concat([rid, avroUnion(rng.pick([2, 5, -1, 2 ** 31]))]), tag: 'sync.plain.union' };
    case 4: {
      const v = encodeSyncRequestRaw(randomSyncRequest(rng, ctx));
      return { plain: Buffer.concat([v, rng.bytes(rng.range(1, 8))]), tag: 'sync.plain.trailing' };
    }
    case 5: {
      const v = encodeSyncRequestRaw(randomSyncRequest(rng, ctx));
      return { plain: v.subarray(0, Math.max(0, v.length - rng.range(1, Math.max(1, v.length)))), tag: 'sync.plain.truncated' };
    }
    case 6:
      // a profile body whose length lies
      return { plain: Buffer.concat([rid, avroUnion(0), avroUnion(1, Buffer.concat([huge(), rng.bytes(rng.int(16))]))]), tag: 'sync.plain.profileLength' };
    default:
      return { plain: rng.bytes(rng.size(300)), tag: 'sync.plain.random' };
  }
}

// ---- other frame types ----

const CODES = Object.keys(ERRORS);

/** A frame of any type other than CONNECT, valid in its encoding or not. */
export function randomOtherFrame(rng: Rng): { frame: Buffer; tag: string } {
  const c = rng.int(12);
  switch (c) {
    case 0:
      return { frame: Buffer.from([FrameType.PINGREQ]), tag: 'frame.pingreq' };
    case 1:
      return { frame: Buffer.concat([Buffer.from([rng.pick([FrameType.PINGREQ, FrameType.PINGRESP])]), rng.bytes(rng.range(1, 8))]), tag: 'frame.pingBody' };
    case 2:
      return { frame: Buffer.from([FrameType.PINGRESP]), tag: 'frame.pingresp' };
    case 3:
      return { frame: Buffer.concat([Buffer.from([FrameType.DISCONNECT]), types.disconnect.toBuffer({ reason: rng.pick([0, 1, 2, 3, 4, -1, INT_MAX]), errorCode: rng.chance(0.3) ? null : rng.chance(0.5) ? rng.pick(CODES) : someString(rng, ['x']) })]), tag: 'frame.disconnect' };
    case 4:
      return { frame: Buffer.concat([Buffer.from([FrameType.DISCONNECT]), rng.bytes(rng.size(40))]), tag: 'frame.disconnectJunk' };
    case 5:
      return { frame: Buffer.concat([Buffer.from([FrameType.SYNC]), weirdVarint(rng), avroBytes(rng.bytes(rng.size(100)))]), tag: 'frame.syncCounter' };
    case 6:
      return { frame: Buffer.concat([Buffer.from([FrameType.SYNC]), varint(BigInt(rng.int(4))), weirdVarint(rng), rng.bytes(rng.int(20))]), tag: 'frame.syncLength' };
    case 7:
      return {
        frame: Buffer.concat([Buffer.from([FrameType.CONNACK]), types.connack.toBuffer({ returnCode: rng.range(-2, 9), errorCode: rng.chance(0.5) ? null : rng.pick(CODES), confirmation: rng.chance(0.5) ? null : rng.bytes(32), sessionId: null, keepAliveSec: rng.int(100), sync: null })]),
        tag: 'frame.connack',
      };
    case 8:
      return { frame: Buffer.concat([Buffer.from([FrameType.CONNACK]), rng.bytes(rng.size(60))]), tag: 'frame.connackJunk' };
    case 9: {
      let t = rng.int(256);
      while (Object.values(FrameType).includes(t as never)) t = rng.int(256);
      return { frame: Buffer.concat([Buffer.from([t]), rng.bytes(rng.size(100))]), tag: 'frame.unknownType' };
    }
    case 10:
      return { frame: Buffer.alloc(0), tag: 'frame.empty' };
    default:
      return { frame: rng.bytes(rng.size(2000)), tag: 'frame.random' };
  }
}

// ---- bootstrap bodies ----

export function bootstrapBody(rng: Rng, appTokens: string[]): { body: Buffer; tag: string } {
  const c = rng.int(9);
  switch (c) {
    case 0:
    case 1:
      return { body: types.bootstrapRequest.toBuffer({ appToken: rng.pick(appTokens), protocolVersions: rng.pick([[1], [1, 2], [2], [], [0, 1, -1], [INT_MAX, 1]]) }), tag: 'bootstrap.valid' };
    case 2:
      return { body: types.bootstrapRequest.toBuffer({ appToken: someString(rng, ['unknown']), protocolVersions: [1] }), tag: 'bootstrap.unknownApp' };
    case 3:
      return { body: Buffer.concat([avroString(rng.pick(appTokens)), weirdVarint(rng), rng.bytes(rng.int(8))]), tag: 'bootstrap.hugeCount' };
    case 4:
      return { body: Buffer.concat([avroString(rng.pick(appTokens)), varint(-BigInt(rng.range(1, 2 ** 30))), weirdVarint(rng), rng.bytes(rng.int(8))]), tag: 'bootstrap.negativeBlock' };
    case 5:
      return { body: Buffer.concat([avroBytes(badUtf8String(rng)), varint(2n), varint(2n), varint(0n)]), tag: 'bootstrap.utf8' };
    case 6:
      return { body: mutate(rng, types.bootstrapRequest.toBuffer({ appToken: rng.pick(appTokens), protocolVersions: [1] })), tag: 'bootstrap.mutated' };
    case 7:
      // many versions, right at the size limit
      return { body: Buffer.concat([avroString(rng.pick(appTokens)), varint(BigInt(rng.pick([1000, 2000, 4000]))), Buffer.alloc(rng.pick([1000, 2000, 4000]), 0x02), varint(0n)]), tag: 'bootstrap.manyVersions' };
    default:
      return { body: rng.bytes(rng.size(5000)), tag: 'bootstrap.random' };
  }
}
