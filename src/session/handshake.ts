/**
 * The server side of the handshake (docs/protocol.md "Handshake"). Order matters and is part of the
 * contract: every refusal that needs no RSA work happens before the crypto pool is asked, and the
 * pool verifies the signature (cheap) before it decrypts the secret (expensive). So a stranger with
 * an unknown app token, a stale timestamp, a replayed nonce or revoked/unknown credentials costs the
 * server a few microseconds and one cache lookup, never an RSA private operation.
 *
 *  1. body decodes as ConnectBody                       else LK_FRAME_MALFORMED (DISCONNECT)
 *  2. protocolVersion == 1                              else LK_HS_BAD_PROTOCOL_VERSION
 *     key hash not banned, not starting handshakes too fast  else LK_BANNED / LK_HS_RATE_LIMITED
 *     (flapping counts verified handshakes and those of the key still in the crypto pool)
 *  3. app token names an application, not banned        else LK_HS_UNKNOWN_APPLICATION / LK_BANNED
 *  4. server key id is active or valid                  else LK_HS_UNKNOWN_SERVER_KEY
 *  5. |now - timestamp| <= window                       else LK_HS_STALE_TIMESTAMP
 *  6. public key, if sent, hashes to the key hash       else LK_HS_KEY_HASH_MISMATCH
 *     signature and wrapped secret are 256 bytes, a sent public key at most 1 KiB
 *                                                       else LK_HS_BAD_SIGNATURE / LK_HS_BAD_SECRET / LK_HS_BAD_PUBLIC_KEY
 *  7. (key hash, nonce) not seen in 2 x window          else LK_HS_REPLAYED_NONCE (LK_SERVER_BUSY if full)
 *  8. credentials status allows the endpoint            else LK_CRED_UNKNOWN / LK_CRED_IN_USE / LK_CRED_REVOKED
 *  9. a public key is known (CONNECT, credentials, registration)  else LK_HS_PUBLIC_KEY_REQUIRED
 *     this exact CONNECT did not fail its signature before   else LK_HS_BAD_SIGNATURE (no RSA verify)
 *     probation: an address with a handshake refused in the last handshakeProbationMs waits until it
 *     has gone that long without one (at most 5 x)      banned meanwhile: LK_BANNED (no RSA)
 * 10. crypto pool: signature, then secret, then keys    else LK_HS_BAD_SIGNATURE / LK_HS_BAD_SECRET
 *     (the decrypt is skipped if the session closed or was banned meanwhile: LK_HS_ABANDONED)
 *     trustful application, new key: within trustfulNewCredentialsPerSec  else LK_CRED_RATE_LIMITED
 * 11. credentials bound to this endpoint (atomic CAS; skipped when already bound to it)  else LK_CRED_IN_USE / LK_CRED_REVOKED / LK_CRED_UNKNOWN
 *
 * A RESUME (docs/protocol.md 4.6) runs resume() instead, with no RSA operation on either side and
 * the same checks where they apply, cheapest first: decode, version, resumption on, key bans and
 * rates, application, timestamp, the ticket (opens under a valid ticket key, not expired, for this
 * application and key hash), the proof, the nonce, the credentials status (IN_USE, bound to this
 * endpoint: a revoked or re-bound credential's ticket is dead at once, on every node, since every
 * node reads the same status), then the keys.
 */
import type { Logger } from 'pino';
import type { CredentialsGate } from '../credentials/credentials.js';
import { refusalFor, bindRefusal } from '../credentials/credentials.js';
import { ABANDONED_UNSENT, type CryptoPool, type CryptoTicket } from '../crypto/pool.js';
import type { KeyRing } from '../crypto/keyring.js';
import { base64url, keyHashRaw } from '../crypto/keys.js';
import crypto from 'node:crypto';
import { deriveSessionKeys, PROTOCOL_VERSION, resumeInput, resumeProof, signatureInput } from '../crypto/session-crypto.js';
import type { TicketSealer } from '../crypto/tickets.js';
import { LatchkeyError, refusal } from '../errors.js';
import { decodeConnectBody, decodeResumeBody } from '../protocol/frames.js';
import type { Connect, ConnectBody, Resume } from '../protocol/schemas.js';
import type { RegistrationService } from '../registration/registration.js';
import type { ApplicationDirectory } from '../tenancy/applications.js';
import type { Application, EndpointRecord } from '../store/store.js';
import type { ReplayCache } from './replay.js';
import type { Admission } from '../protection/admission.js';
import type { Stats } from '../metrics.js';

/** Size of an RSA-2048 signature or ciphertext. */
const RSA_BYTES = 256;
/** An RSA-2048 SPKI DER is 294 bytes; leave room for unusual exponents, refuse anything huge. */
const MAX_SPKI_BYTES = 1024;

export interface HandshakeDeps {
  apps: ApplicationDirectory;
  keyRing: KeyRing;
  replay: ReplayCache;
  credentials: CredentialsGate;
  registration: RegistrationService;
  pool: CryptoPool;
  /** Bans and rates (protection/admission.ts); absent: no limits (unit tests). */
  admission?: Admission;
  /** RSA operation counters (latchkey_rsa_operations_total). */
  stats?: Stats;
  windowMs: number;
  /** Opens resumption tickets; absent: RESUME is refused with LK_RESUME_DISABLED. */
  tickets?: TicketSealer | null;
  log: Logger;
  now?: () => number;
}

export interface HandshakeAccepted {
  app: Application;
  /** What the endpoint asked for (0: the server default). */
  keepAliveSec: number;
  keyHash: string;
  publicKey: Buffer;
  /** Endpoint record if the endpoint is registered and it was read during the handshake. */
  endpoint: EndpointRecord | null;
  c2s: Uint8Array;
  s2c: Uint8Array;
  confirmation: Uint8Array;
  /** The secret this session's tickets carry (4.6). */
  resumption: Uint8Array;
  /** True for a resumed session (no RSA). */
  resumed: boolean;
}

export class Handshaker {
  private readonly now: () => number;
  constructor(private readonly d: HandshakeDeps) {
    this.now = d.now ?? Date.now;
  }

  /**
   * Run the handshake; throws LatchkeyError with the refusal code. `ticket` (the session's) learns
   * the claimed key hash, so bans match the handshaking session, and is cancelled by the session
   * when it closes, which spares the RSA decrypt of a handshake nobody waits for.
   */
  async run(connect: Connect, remoteAddress = '', ticket: CryptoTicket | null = null): Promise<HandshakeAccepted> {
    const decoded = decodeConnectBody(connect.body);
    if (!decoded.ok) throw refusal('LK_FRAME_MALFORMED', 'ConnectBody');
    const body = decoded.value;
    if (body.protocolVersion !== PROTOCOL_VERSION) throw refusal('LK_HS_BAD_PROTOCOL_VERSION', String(body.protocolVersion));
    const keyHash = base64url(body.keyHash);
    const cryptoDone = this.admitKey(keyHash, remoteAddress, ticket);
    try {
      return await this.afterKeyCheck(connect, body, keyHash, remoteAddress, ticket, cryptoDone);
    } finally {
      cryptoDone(false);
    }
  }

  /**
   * Bans, rates and flapping for the key hash (throws the refusal); `ticket` learns the key hash so
   * bans match the handshaking session. Returns the call that ends the key's in-flight count, once
   * (verified: the handshake proved the key, so flapping detection counts it).
   */
  private admitKey(keyHash: string, remoteAddress: string, ticket: CryptoTicket | null): (verified: boolean) => boolean {
    const admission = this.d.admission;
    if (ticket) ticket.keyHash = keyHash;
    const keyRefusal = admission?.checkKey(keyHash, remoteAddress);
    if (keyRefusal) throw refusal(keyRefusal);
    let admitted = admission !== undefined;
    return (verified) => {
      if (!admitted) return false;
      admitted = false;
      return admission!.keyHandshakeDone(keyHash, verified);
    };
  }

  /** The endpoint's public key: `known` (sent or from the credentials), else its registration's; LK_HS_PUBLIC_KEY_REQUIRED if none. */
  private async knownPublicKey(app: Application, keyHash: string, known: Buffer | null): Promise<{ publicKey: Buffer; endpoint: EndpointRecord | null }> {
    if (known) return { publicKey: known, endpoint: null };
    let endpoint: EndpointRecord | null;
    try {
      endpoint = await this.d.registration.getEndpoint({ app, keyHash, publicKey: Buffer.alloc(0) });
    } catch (err) {
      throw new LatchkeyError('LK_SERVER_UNAVAILABLE', `endpoint lookup: ${(err as Error).message}`, { cause: err });
    }
    if (!endpoint?.publicKey) throw refusal('LK_HS_PUBLIC_KEY_REQUIRED');
    return { publicKey: endpoint.publicKey, endpoint };
  }

  /** A RESUME: throws LatchkeyError with the refusal code (see the top of this file). */
  async resume(resume: Resume, remoteAddress = '', ticket: CryptoTicket | null = null): Promise<HandshakeAccepted> {
    const d = this.d;
    const decoded = decodeResumeBody(resume.body);
    if (!decoded.ok) throw refusal('LK_FRAME_MALFORMED', 'ResumeBody');
    const body = decoded.value;
    if (body.protocolVersion !== PROTOCOL_VERSION) throw refusal('LK_HS_BAD_PROTOCOL_VERSION', String(body.protocolVersion));
    if (!d.tickets) throw refusal('LK_RESUME_DISABLED');
    const keyHash = base64url(body.keyHash);
    const done = this.admitKey(keyHash, remoteAddress, ticket);
    try {
      const app = await d.apps.byAppToken(body.appToken);
      if (!app) throw refusal('LK_HS_UNKNOWN_APPLICATION');
      const appRefusal = d.admission?.checkApp(app.id);
      if (appRefusal) throw refusal(appRefusal);
      if (Math.abs(this.now() - body.timestamp) > d.windowMs) throw refusal('LK_HS_STALE_TIMESTAMP');
      const opened = d.tickets.open(body.ticket);
      if (!opened.ok) throw refusal(opened.code);
      const t = opened.contents;
      if (t.appId !== app.id || !t.keyHash.equals(body.keyHash)) throw refusal('LK_TICKET_WRONG_APP');
      const input = resumeInput(resume.body);
      const expected = resumeProof(t.resumption, input);
      if (resume.proof.length !== expected.length || !crypto.timingSafeEqual(resume.proof, expected)) throw refusal('LK_RESUME_BAD_PROOF');
      // Flapping detection counts resumptions like verified handshakes (only the secret's holder gets here).
      if (done(true)) throw refusal('LK_BANNED');
      const fp = d.replay.fingerprint(body.keyHash, body.nonce);
      const reserved = await d.replay.reserve(fp);
      if (reserved === 'replayed') throw refusal('LK_HS_REPLAYED_NONCE');
      if (reserved === 'full') throw refusal('LK_SERVER_BUSY', 'replay cache full');
      // The proof verified: the nonce stays consumed whatever comes next.
      const view = await d.credentials.lookup(app, keyHash);
      const credRefusal = refusalFor(view, keyHash, false);
      if (credRefusal) throw refusal(credRefusal);
      if (!view || view.status !== 'IN_USE') throw refusal('LK_CRED_UNKNOWN', 'credentials not bound to this endpoint');
      const { publicKey, endpoint } = await this.knownPublicKey(app, keyHash, view.publicKey);
      const keys = deriveSessionKeys(t.resumption, input);
      return { app, keepAliveSec: body.keepAliveSec, keyHash, publicKey, endpoint, resumed: true, c2s: keys.c2s, s2c: keys.s2c, confirmation: keys.confirmation, resumption: keys.resumption };
    } finally {
      done(false);
    }
  }

  private async afterKeyCheck(connect: Connect, body: ConnectBody, keyHash: string, remoteAddress: string, ticket: CryptoTicket | null, cryptoDone: (verified: boolean) => boolean): Promise<HandshakeAccepted> {
    const d = this.d;
    const app = await d.apps.byAppToken(body.appToken);
    if (!app) throw refusal('LK_HS_UNKNOWN_APPLICATION');
    const appRefusal = d.admission?.checkApp(app.id);
    if (appRefusal) throw refusal(appRefusal);
    if (!d.keyRing.usable(body.serverKeyId)) throw refusal('LK_HS_UNKNOWN_SERVER_KEY', body.serverKeyId);
    if (Math.abs(this.now() - body.timestamp) > d.windowMs) throw refusal('LK_HS_STALE_TIMESTAMP');
    if (body.publicKey && !keyHashRaw(body.publicKey).equals(body.keyHash)) throw refusal('LK_HS_KEY_HASH_MISMATCH');
    // RSA-2048 fixes these sizes; anything else cannot verify or decrypt, and must not reach (or
    // be batched with other handshakes in) the crypto pool.
    if (body.publicKey && body.publicKey.length > MAX_SPKI_BYTES) throw refusal('LK_HS_BAD_PUBLIC_KEY', 'public key too large');
    if (connect.signature.length !== RSA_BYTES) throw refusal('LK_HS_BAD_SIGNATURE', 'signature must be 256 bytes');
    if (body.wrappedSecret.length !== RSA_BYTES) throw refusal('LK_HS_BAD_SECRET', 'wrapped secret must be 256 bytes');

    const fp = d.replay.fingerprint(body.keyHash, body.nonce);
    const reserved = await d.replay.reserve(fp);
    if (reserved === 'replayed') throw refusal('LK_HS_REPLAYED_NONCE');
    if (reserved === 'full') throw refusal('LK_SERVER_BUSY', 'replay cache full');
    let signatureVerified = false;
    try {
      const acceptUnknown = d.credentials.acceptsUnknown(app);
      const view = await d.credentials.lookup(app, keyHash);
      const credRefusal = refusalFor(view, keyHash, acceptUnknown);
      if (credRefusal) throw refusal(credRefusal);

      const { publicKey, endpoint } = await this.knownPublicKey(app, keyHash, body.publicKey ?? view?.publicKey ?? null);

      const sigInput = signatureInput(connect.body);
      const digest = d.admission?.signatureDigest(sigInput, connect.signature) ?? null;
      if (d.admission?.knownBadSignature(digest)) throw refusal('LK_HS_BAD_SIGNATURE', 'this CONNECT already failed its signature check');
      if (d.admission?.onProbation(remoteAddress)) {
        // Probation: an address refusing handshakes right now is banned before this one costs RSA.
        const probation = await d.admission.beforeCrypto(remoteAddress, () => ticket?.cancelled === true);
        if (probation === 'LK_BANNED') throw refusal('LK_BANNED', 'address banned while on probation');
      }
      const out = await d.pool.handshake(
        {
          keyHash,
          publicKey,
          sigInput,
          signature: connect.signature,
          wrappedSecret: body.wrappedSecret,
          serverKeyId: body.serverKeyId,
        },
        ticket,
      );
      if (d.stats) {
        // Abandoned before a worker took it: no RSA at all; skipped in the worker: the verify only.
        if (out !== ABANDONED_UNSENT) d.stats.rsaVerifies++;
        if (out.ok || out.code === 'LK_HS_BAD_SECRET') d.stats.rsaDecrypts++;
      }
      if (ticket && (out.ok || out.code === 'LK_HS_BAD_SECRET')) ticket.decrypted = true;
      // Flapping detection counts verified handshakes (a forger cannot); banned now: refuse.
      if (cryptoDone(out.ok || out.code === 'LK_HS_BAD_SECRET')) throw refusal('LK_BANNED');
      if (!out.ok) {
        if (out.code === 'LK_HS_BAD_SIGNATURE') d.admission?.rememberBadSignature(digest);
        // Only a failed decrypt (after a good signature) or an unknown key id consumes the nonce.
        signatureVerified = out.code === 'LK_HS_BAD_SECRET' || out.code === 'LK_HS_UNKNOWN_SERVER_KEY';
        throw refusal(out.code, out.detail);
      }
      signatureVerified = true;
      // A trustful application turns every new key into a stored record: bound how fast. Charged only
      // for a verified signature, so strangers claiming random key hashes cannot spend the budget.
      if (view === null && acceptUnknown && d.admission && !d.admission.allowNewTrustfulCredentials(app.id)) throw refusal('LK_CRED_RATE_LIMITED');

      // Already bound to this endpoint: binding again would be a no-op write on every reconnect.
      // A revocation racing this handshake can still let it through with the status it read; live
      // session kicks on revocation (admin API, issue #3) must therefore run after the status change.
      if (!(view && view.status === 'IN_USE' && view.endpointId === keyHash)) {
        const bound = await d.credentials.bind(app, keyHash, keyHash, Buffer.from(publicKey));
        const bindErr = bindRefusal(bound);
        if (bindErr) throw refusal(bindErr);
      }
      return {
        app, keepAliveSec: body.keepAliveSec, keyHash, publicKey, endpoint, resumed: false,
        c2s: out.keys.subarray(0, 32), s2c: out.keys.subarray(32, 64), confirmation: out.keys.subarray(64, 96), resumption: out.keys.subarray(96, 128),
      };
    } catch (err) {
      if (!signatureVerified) d.replay.release(fp);
      throw err;
    }
  }
}
