/**
 * Handshaker (src/session/handshake.ts) in-process: the order its top comment documents, with a stub
 * crypto pool that counts its calls and answers a chosen outcome, and real everything else (replay
 * cache, credentials gate over the embedded store, application directory, key ring of the fixture
 * server key, admission with a ban list). Every refusal that needs no RSA work must come with its
 * exact code and zero pool calls; what the pool answers must then be handled as documented (a
 * forged signature remembered, a failed decrypt consuming the nonce, accepted keys split 32/32/32/32).
 * RESUME never reaches the pool.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCache } from '../../src/cache/cache-memory.js';
import { CredentialsGate, StoreCredentialsService } from '../../src/credentials/credentials.js';
import type { KeyRing } from '../../src/crypto/keyring.js';
import { CryptoTicket, type CryptoPool } from '../../src/crypto/pool.js';
import { deriveSessionKeys, resumeInput, signatureInput } from '../../src/crypto/session-crypto.js';
import { TicketSealer } from '../../src/crypto/tickets.js';
import type { HandshakeOutcome, HandshakeTask } from '../../src/crypto/worker.js';
import { LatchkeyError } from '../../src/errors.js';
import { Stats } from '../../src/metrics.js';
import { Admission, type AdmissionLimits } from '../../src/protection/admission.js';
import { BanList } from '../../src/protection/bans.js';
import { decodeFrame } from '../../src/protocol/frames.js';
import type { Connect, Resume } from '../../src/protocol/schemas.js';
import { RegistrationService } from '../../src/registration/registration.js';
import { Handshaker } from '../../src/session/handshake.js';
import { ReplayCache } from '../../src/session/replay.js';
import type { Application } from '../../src/store/store.js';
import { ApplicationDirectory } from '../../src/tenancy/applications.js';
import { fixtureEndpointKey, fixtureKeyRing, openUnitWorld, silentLog, type UnitWorld } from '../helpers/unit-world.js';
import { makeEndpointKey, prepareConnect, prepareResume, type ConnectOptions, type NodeEndpointKey, type ResumeOptions } from '../helpers/wire-client.js';

const WINDOW_MS = 60_000;
/** What the stub pool answers for an accepted handshake: byte i is i, so each 32-byte slice is recognisable. */
const KEYS = Uint8Array.from({ length: 128 }, (_, i) => i);

/** The crypto pool's one method, counting calls; answers `outcome`. */
class StubPool {
  readonly calls: HandshakeTask[] = [];
  outcome: HandshakeOutcome = { ok: true, keys: KEYS };
  async handshake(task: HandshakeTask): Promise<HandshakeOutcome> {
    this.calls.push(task);
    return this.outcome;
  }
}

const LIMITS: AdmissionLimits = {
  maxConnections: 100, connectionFdReserve: 0, ipConnectRatePerSec: 0, ipConnectBurst: 1, keyHandshakesPerMin: 0,
  flappingMaxCount: 0, flappingWindowSec: 60, flappingBanSec: 60, ipMaxFailedHandshakes: 0, attackRefusalsPerSec: 0,
  ipMaxFailedHandshakesUnderAttack: 0, badSignatureMemory: 100, badSignatureTtlMs: 2 * WINDOW_MS, trustfulNewCredentialsPerSec: 0, probationMs: 0,
};

let world: UnitWorld;
let keyRing: KeyRing;
let key: NodeEndpointKey;
let otherKey: NodeEndpointKey;
const sealer = new TicketSealer(crypto.randomBytes(32), { lifetimeMs: 600_000, rotateMs: 600_000 });

beforeAll(async () => {
  world = await openUnitWorld();
  keyRing = await fixtureKeyRing(`${world.dir}/keys`);
  key = fixtureEndpointKey();
  otherKey = makeEndpointKey();
});
afterAll(async () => {
  await world.close();
});

interface Rig {
  hs: Handshaker;
  pool: StubPool;
  replay: ReplayCache;
  bans: BanList;
  gate: CredentialsGate;
  stats: Stats;
}

async function rig(o: { limits?: Partial<AdmissionLimits>; replayMax?: number; tickets?: boolean; admission?: boolean } = {}): Promise<Rig> {
  const store = world.store;
  const pool = new StubPool();
  const replay = await ReplayCache.create({ ttlMs: 2 * WINDOW_MS, max: o.replayMax ?? 1000 });
  const gate = new CredentialsGate(new Map([['trustful', new StoreCredentialsService(store, true)], ['internal', new StoreCredentialsService(store, false)]]), new MemoryCache(), { ttlMs: 60_000, negativeTtlMs: 1000 });
  const apps = new ApplicationDirectory(store, 60_000, 1000);
  const stats = new Stats();
  const bans = new BanList({ store, log: silentLog, announce: async () => undefined, onBanned: () => undefined });
  const admission = new Admission({ ...LIMITS, ...o.limits }, bans, stats, silentLog);
  const hs = new Handshaker({
    apps, keyRing, replay, credentials: gate, registration: new RegistrationService(store, apps), pool: pool as unknown as CryptoPool,
    ...(o.admission === false ? {} : { admission }), stats, windowMs: WINDOW_MS, tickets: o.tickets === false ? null : sealer, log: silentLog,
  });
  return { hs, pool, replay, bans, gate, stats };
}

/** A real signed CONNECT for `app` (fixture endpoint key unless `key` is given), decoded as the session would. */
function connect(app: Application, o: Partial<ConnectOptions> = {}): Connect {
  const frame = prepareConnect({ appToken: app.appToken, serverKeyId: keyRing.active.id, serverPublicKey: keyRing.active.spkiDer, key, ...o }).frame;
  const f = decodeFrame(frame);
  if (!f.ok || f.value.type !== 'CONNECT') throw new Error('prepareConnect made no CONNECT');
  return f.value.connect;
}

function resume(o: ResumeOptions): { resume: Resume; confirmation: Buffer } {
  const p = prepareResume(o);
  const f = decodeFrame(p.frame);
  if (!f.ok || f.value.type !== 'RESUME') throw new Error('prepareResume made no RESUME');
  return { resume: f.value.resume, confirmation: p.confirmation };
}

/** The refusal code a handshake ends with, or ACCEPTED. */
function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ACCEPTED',
    (err: unknown) => (err instanceof LatchkeyError ? err.code : `not a LatchkeyError: ${String(err)}`),
  );
}

describe('Handshaker: refusals before any RSA work', () => {
  it('a body that does not decode as ConnectBody: LK_FRAME_MALFORMED', async () => {
    const r = await rig();
    expect(await outcome(r.hs.run({ body: Buffer.from('not an avro ConnectBody'), signature: Buffer.alloc(256), sync: null }))).toBe('LK_FRAME_MALFORMED');
    expect(r.pool.calls).toHaveLength(0);
  });

  it('each cheap check refuses with its own code, none reaches the pool, and no refused CONNECT keeps its nonce', async () => {
    const trustful = await world.app('trustful');
    const r = await rig();
    const tooBig = crypto.randomBytes(1025);
    const cases: Array<[string, Connect]> = [
      ['LK_HS_BAD_PROTOCOL_VERSION', connect(trustful, { body: { protocolVersion: 2 } })],
      ['LK_HS_UNKNOWN_APPLICATION', connect({ ...trustful, appToken: 'no-such-app-token' })],
      ['LK_HS_UNKNOWN_SERVER_KEY', connect(trustful, { serverKeyId: 'AAAAAAAAAAAAAAAA' })],
      ['LK_HS_STALE_TIMESTAMP', connect(trustful, { body: { timestamp: Date.now() - WINDOW_MS - 5000 } })],
      ['LK_HS_STALE_TIMESTAMP', connect(trustful, { body: { timestamp: Date.now() + WINDOW_MS + 5000 } })],
      ['LK_HS_KEY_HASH_MISMATCH', connect(trustful, { body: { keyHash: otherKey.keyHashRaw } })],
      ['LK_HS_BAD_PUBLIC_KEY', connect(trustful, { body: { publicKey: tooBig, keyHash: crypto.createHash('sha256').update(tooBig).digest() } })],
      ['LK_HS_BAD_SIGNATURE', connect(trustful, { signature: crypto.randomBytes(255) })],
      ['LK_HS_BAD_SECRET', connect(trustful, { body: { wrappedSecret: crypto.randomBytes(128) } })],
    ];
    for (const [code, c] of cases) expect(await outcome(r.hs.run(c)), code).toBe(code);
    expect(r.pool.calls).toHaveLength(0);
    expect(r.replay.size).toBe(0);
  });

  it('the checks run in the documented order: a CONNECT with several faults is refused for the earliest', async () => {
    const trustful = await world.app('trustful');
    const r = await rig();
    const stale = Date.now() - WINDOW_MS - 5000;
    const cases: Array<[string, Connect]> = [
      ['LK_HS_BAD_PROTOCOL_VERSION', connect({ ...trustful, appToken: 'no-such-app-token' }, { body: { protocolVersion: 2 } })],
      ['LK_HS_UNKNOWN_APPLICATION', connect({ ...trustful, appToken: 'no-such-app-token' }, { serverKeyId: 'AAAAAAAAAAAAAAAA' })],
      ['LK_HS_UNKNOWN_SERVER_KEY', connect(trustful, { serverKeyId: 'AAAAAAAAAAAAAAAA', body: { timestamp: stale } })],
      ['LK_HS_STALE_TIMESTAMP', connect(trustful, { body: { timestamp: stale, keyHash: otherKey.keyHashRaw } })],
      ['LK_HS_KEY_HASH_MISMATCH', connect(trustful, { body: { keyHash: otherKey.keyHashRaw }, signature: crypto.randomBytes(10) })],
      ['LK_HS_BAD_SIGNATURE', connect(trustful, { signature: crypto.randomBytes(10), body: { wrappedSecret: crypto.randomBytes(10) } })],
    ];
    for (const [code, c] of cases) expect(await outcome(r.hs.run(c)), code).toBe(code);
    expect(r.pool.calls).toHaveLength(0);
  });

  it('a banned key hash or application: LK_BANNED; the session\'s ticket learns the claimed key hash first', async () => {
    const trustful = await world.app('trustful');
    const other = await world.app('trustful');
    const r = await rig();
    await r.bans.add({ kind: 'keyHash', value: otherKey.keyHash, reason: 'test', expiresAt: null, createdBy: 'test' });
    await r.bans.add({ kind: 'app', value: other.id, reason: 'test', expiresAt: null, createdBy: 'test' });
    const ticket = new CryptoTicket();
    expect(await outcome(r.hs.run(connect(trustful, { key: otherKey }), '10.0.0.1', ticket))).toBe('LK_BANNED');
    expect(ticket.keyHash).toBe(otherKey.keyHash);
    expect(await outcome(r.hs.run(connect(other)))).toBe('LK_BANNED');
    expect(r.pool.calls).toHaveLength(0);
    // The same key in an application that is not banned gets through to the pool.
    expect(await outcome(r.hs.run(connect(trustful)))).toBe('ACCEPTED');
    expect(r.pool.calls).toHaveLength(1);
  });

  it('a key hash starting handshakes too fast from one address: LK_HS_RATE_LIMITED, before the pool', async () => {
    const trustful = await world.app('trustful');
    const r = await rig({ limits: { keyHandshakesPerMin: 1 } });
    expect(await outcome(r.hs.run(connect(trustful), '10.0.0.1'))).toBe('ACCEPTED');
    expect(await outcome(r.hs.run(connect(trustful), '10.0.0.1'))).toBe('LK_HS_RATE_LIMITED');
    expect(r.pool.calls).toHaveLength(1);
    // Per (key, address): a stranger elsewhere claiming the key cannot lock it out.
    expect(await outcome(r.hs.run(connect(trustful), '10.0.0.2'))).toBe('ACCEPTED');
    expect(r.pool.calls).toHaveLength(2);
  });

  it('a nonce seen before: LK_HS_REPLAYED_NONCE; a full replay cache: LK_SERVER_BUSY', async () => {
    const trustful = await world.app('trustful');
    const r = await rig();
    const c = connect(trustful);
    expect(await outcome(r.hs.run(c))).toBe('ACCEPTED');
    expect(await outcome(r.hs.run(c))).toBe('LK_HS_REPLAYED_NONCE');
    expect(r.pool.calls).toHaveLength(1);
    const full = await rig({ replayMax: 0 });
    expect(await outcome(full.hs.run(connect(trustful)))).toBe('LK_SERVER_BUSY');
    expect(full.pool.calls).toHaveLength(0);
  });

  it('credentials unknown (internal), revoked, or in use by another endpoint: refused before the pool, nonce released', async () => {
    const unknown = await world.app('internal');
    const revoked = await world.app('internal');
    const inUse = await world.app('internal');
    await world.store.provisionCredentials(revoked.id, key.keyHash, key.spki);
    await world.store.revokeCredentials(revoked.id, key.keyHash);
    await world.store.provisionCredentials(inUse.id, key.keyHash, key.spki);
    expect((await world.store.bindCredentials(inUse.id, key.keyHash, 'another-endpoint')).ok).toBe(true);
    const r = await rig();
    expect(await outcome(r.hs.run(connect(unknown)))).toBe('LK_CRED_UNKNOWN');
    expect(await outcome(r.hs.run(connect(revoked)))).toBe('LK_CRED_REVOKED');
    expect(await outcome(r.hs.run(connect(inUse)))).toBe('LK_CRED_IN_USE');
    expect(r.pool.calls).toHaveLength(0);
    expect(r.replay.size).toBe(0);
  });

  it('no public key in the CONNECT, the credentials or a registration: LK_HS_PUBLIC_KEY_REQUIRED; one from the credentials goes to the pool', async () => {
    const keyless = await world.app('internal');
    const keyed = await world.app('internal');
    await world.store.provisionCredentials(keyless.id, key.keyHash, null);
    await world.store.provisionCredentials(keyed.id, key.keyHash, key.spki);
    const r = await rig();
    expect(await outcome(r.hs.run(connect(keyless, { body: { publicKey: null } })))).toBe('LK_HS_PUBLIC_KEY_REQUIRED');
    expect(r.pool.calls).toHaveLength(0);
    expect(await outcome(r.hs.run(connect(keyed, { body: { publicKey: null } })))).toBe('ACCEPTED');
    expect(r.pool.calls).toHaveLength(1);
    expect(Buffer.from(r.pool.calls[0]!.publicKey).equals(key.spki)).toBe(true);
    const bound = await world.store.getCredentials(keyed.id, key.keyHash);
    expect([bound?.status, bound?.endpointId]).toEqual(['IN_USE', key.keyHash]);
  });
});

describe('Handshaker: what the crypto pool answers', () => {
  it('a bad signature is refused and remembered: the same CONNECT again costs no pool call, and its nonce is not consumed', async () => {
    const trustful = await world.app('trustful');
    const r = await rig();
    r.pool.outcome = { ok: false, code: 'LK_HS_BAD_SIGNATURE' };
    const c = connect(trustful);
    expect(await outcome(r.hs.run(c))).toBe('LK_HS_BAD_SIGNATURE');
    expect(r.pool.calls).toHaveLength(1);
    expect(await outcome(r.hs.run(c))).toBe('LK_HS_BAD_SIGNATURE');
    expect(r.pool.calls).toHaveLength(1);
    expect(r.replay.size).toBe(0);
    expect([r.stats.rsaVerifies, r.stats.rsaDecrypts]).toEqual([1, 0]);
    expect(await world.store.getCredentials(trustful.id, key.keyHash)).toBeNull();
    // Without the admission's memory the same CONNECT would cost a second verify.
    const bare = await rig({ admission: false });
    bare.pool.outcome = { ok: false, code: 'LK_HS_BAD_SIGNATURE' };
    await outcome(bare.hs.run(c));
    await outcome(bare.hs.run(c));
    expect(bare.pool.calls).toHaveLength(2);
  });

  it('a secret that does not decrypt (after a good signature) consumes the nonce: the same CONNECT again is a replay', async () => {
    const trustful = await world.app('trustful');
    const r = await rig();
    r.pool.outcome = { ok: false, code: 'LK_HS_BAD_SECRET' };
    const c = connect(trustful);
    expect(await outcome(r.hs.run(c))).toBe('LK_HS_BAD_SECRET');
    expect(await outcome(r.hs.run(c))).toBe('LK_HS_REPLAYED_NONCE');
    expect(r.pool.calls).toHaveLength(1);
    expect(r.replay.size).toBe(1);
    expect([r.stats.rsaVerifies, r.stats.rsaDecrypts]).toEqual([1, 1]);
    // The nonce check comes before the credentials: revoked since, the replay is still refused as one.
    expect((await r.gate.bind(trustful, key.keyHash, key.keyHash, key.spki)).ok).toBe(true);
    await r.gate.revoke(trustful, key.keyHash);
    expect(await outcome(r.hs.run(c))).toBe('LK_HS_REPLAYED_NONCE');
    expect(await outcome(r.hs.run(connect(trustful)))).toBe('LK_CRED_REVOKED');
    expect(r.pool.calls).toHaveLength(1);
  });

  it('accepted: the pool got the signed bytes, and its 128 bytes split into c2s, s2c, confirmation, resumption', async () => {
    const trustful = await world.app('trustful');
    const r = await rig();
    const c = connect(trustful);
    const ticket = new CryptoTicket();
    const a = await r.hs.run(c, '10.0.0.1', ticket);
    expect(r.pool.calls).toHaveLength(1);
    const task = r.pool.calls[0]!;
    expect(task.keyHash).toBe(key.keyHash);
    expect(task.serverKeyId).toBe(keyRing.active.id);
    expect(Buffer.from(task.sigInput).equals(signatureInput(c.body))).toBe(true);
    expect(Buffer.from(task.signature).equals(c.signature)).toBe(true);
    expect(Buffer.from(task.publicKey).equals(key.spki)).toBe(true);
    expect(task.wrappedSecret).toHaveLength(256);
    expect([a.app.id, a.keyHash, a.resumed, a.keepAliveSec, a.endpoint]).toEqual([trustful.id, key.keyHash, false, 30, null]);
    expect(Buffer.from(a.publicKey).equals(key.spki)).toBe(true);
    expect([...a.c2s]).toEqual([...KEYS.subarray(0, 32)]);
    expect([...a.s2c]).toEqual([...KEYS.subarray(32, 64)]);
    expect([...a.confirmation]).toEqual([...KEYS.subarray(64, 96)]);
    expect([...a.resumption]).toEqual([...KEYS.subarray(96, 128)]);
    expect(ticket.decrypted).toBe(true);
    // A trustful application records the new key IN_USE, bound to this endpoint.
    const rec = await world.store.getCredentials(trustful.id, key.keyHash);
    expect([rec?.status, rec?.endpointId]).toEqual(['IN_USE', key.keyHash]);
  });

  it('a trustful application past its new-credentials budget: LK_CRED_RATE_LIMITED after the verify, no record created', async () => {
    const trustful = await world.app('trustful');
    const r = await rig({ limits: { trustfulNewCredentialsPerSec: 0.1 } });
    expect(await outcome(r.hs.run(connect(trustful)))).toBe('ACCEPTED');
    expect(await outcome(r.hs.run(connect(trustful, { key: otherKey })))).toBe('LK_CRED_RATE_LIMITED');
    expect(r.pool.calls).toHaveLength(2);
    expect(await world.store.getCredentials(trustful.id, otherKey.keyHash)).toBeNull();
    // A known key is not charged: the first one reconnects.
    expect(await outcome(r.hs.run(connect(trustful)))).toBe('ACCEPTED');
  });
});

describe('Handshaker: RESUME never reaches the crypto pool', () => {
  /** A trustful application whose credentials for the fixture key are IN_USE, and a ticket for them. */
  async function resumable(r: Rig): Promise<{ app: Application; ticket: Buffer; resumption: Buffer }> {
    const app = await world.app('trustful');
    expect((await r.gate.bind(app, key.keyHash, key.keyHash, key.spki)).ok).toBe(true);
    const resumption = crypto.randomBytes(32);
    return { app, ticket: sealer.seal({ appId: app.id, keyHash: key.keyHashRaw, resumption }), resumption };
  }

  it('accepted: keys derived from the ticket\'s secret, as the endpoint derives them; the same RESUME again is a replay', async () => {
    const r = await rig();
    const { app, ticket, resumption } = await resumable(r);
    const m = resume({ appToken: app.appToken, keyHashRaw: key.keyHashRaw, ticket, resumption });
    const a = await r.hs.resume(m.resume);
    expect([a.resumed, a.keyHash, a.app.id]).toEqual([true, key.keyHash, app.id]);
    expect(Buffer.from(a.confirmation).equals(m.confirmation)).toBe(true);
    const keys = deriveSessionKeys(resumption, resumeInput(m.resume.body));
    expect(Buffer.from(a.c2s).equals(keys.c2s)).toBe(true);
    expect(Buffer.from(a.publicKey).equals(key.spki)).toBe(true);
    expect(await outcome(r.hs.resume(m.resume))).toBe('LK_HS_REPLAYED_NONCE');
    expect(r.pool.calls).toHaveLength(0);
  });

  it('resumption off, a ticket that does not open, one of another application or key, a bad proof, a stale timestamp', async () => {
    const r = await rig();
    const { app, ticket, resumption } = await resumable(r);
    const other = await world.app('trustful');
    const base = { appToken: app.appToken, keyHashRaw: key.keyHashRaw, ticket, resumption };
    const off = await rig({ tickets: false });
    expect(await outcome(off.hs.resume(resume(base).resume))).toBe('LK_RESUME_DISABLED');
    expect(await outcome(r.hs.resume(resume({ ...base, appToken: 'no-such-app-token' }).resume))).toBe('LK_HS_UNKNOWN_APPLICATION');
    expect(await outcome(r.hs.resume(resume({ ...base, body: { timestamp: Date.now() - WINDOW_MS - 5000 } }).resume))).toBe('LK_HS_STALE_TIMESTAMP');
    expect(await outcome(r.hs.resume(resume({ ...base, ticket: crypto.randomBytes(ticket.length) }).resume))).toBe('LK_TICKET_INVALID');
    expect(await outcome(r.hs.resume(resume({ ...base, appToken: other.appToken }).resume))).toBe('LK_TICKET_WRONG_APP');
    const otherKeyTicket = sealer.seal({ appId: app.id, keyHash: otherKey.keyHashRaw, resumption });
    expect(await outcome(r.hs.resume(resume({ ...base, ticket: otherKeyTicket }).resume))).toBe('LK_TICKET_WRONG_APP');
    // A bad proof does not consume the nonce: the real endpoint's RESUME with it still opens.
    const nonce = crypto.randomBytes(16);
    expect(await outcome(r.hs.resume(resume({ ...base, body: { nonce }, proof: crypto.randomBytes(32) }).resume))).toBe('LK_RESUME_BAD_PROOF');
    expect(await outcome(r.hs.resume(resume({ ...base, body: { nonce } }).resume))).toBe('ACCEPTED');
    expect(r.pool.calls).toHaveLength(0);
    expect(off.pool.calls).toHaveLength(0);
  });

  it('credentials revoked or no longer bound: a live ticket is dead at once', async () => {
    const r = await rig();
    const revoked = await resumable(r);
    await r.gate.revoke(revoked.app, key.keyHash);
    expect(await outcome(r.hs.resume(resume({ appToken: revoked.app.appToken, keyHashRaw: key.keyHashRaw, ticket: revoked.ticket, resumption: revoked.resumption }).resume))).toBe('LK_CRED_REVOKED');
    const available = await world.app('internal');
    await world.store.provisionCredentials(available.id, key.keyHash, key.spki);
    const resumption = crypto.randomBytes(32);
    const ticket = sealer.seal({ appId: available.id, keyHash: key.keyHashRaw, resumption });
    expect(await outcome(r.hs.resume(resume({ appToken: available.appToken, keyHashRaw: key.keyHashRaw, ticket, resumption }).resume))).toBe('LK_CRED_UNKNOWN');
    expect(r.pool.calls).toHaveLength(0);
  });
});
