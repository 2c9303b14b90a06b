/**
 * The junk CONNECTs of bench/flood, all built before the timed phases (the client's RSA work is not
 * measured). One list per kind; the generators cycle through a kind's list, and patch the template
 * kinds per attempt (12 bytes of counter into the nonce and the signature or the key hash), so that
 * no two of their attempts are alike: a forged CONNECT then costs the server a signature verify
 * unless it refuses earlier, and no memory of past CONNECTs or per-key count recognises it.
 *
 *   badSignature         a provisioned key hash (internal app: 4 idle keys and every legit
 *                        endpoint's), random signature, unique per attempt
 *   badSignatureRepeat   16 forged CONNECTs (random signatures) sent again and again: what a
 *                        memory of failed signatures (badSignatureMemory) should make free
 *   replay               one captured CONNECT that the server accepted, the same bytes every time
 *   unknownApp           an application token the server does not know (random key hash)
 *   unknownCredentials   valid signature of one key not provisioned in the internal application
 *   randomKeyHash        a new random key hash per attempt, not provisioned, no public key
 *   stale                timestamp one hour old (random key hash, no public key)
 *   revoked              valid signature of a provisioned key whose credentials were revoked
 *   banned               valid signature of a provisioned key banned by key hash (when the
 *                        server has a ban API; else the kind is left out)
 *   trustful             valid signature of a few fresh keys in a trustful application: the only
 *                        junk a server has to accept as such, bounded by the per-key handshake rate,
 *                        flapping detection and the new-credentials rate of trustful applications
 */
import crypto from 'node:crypto';
import { prepareConnect, type NodeEndpointKey } from '../../test/helpers/wire-client.js';
import type { JunkKindFrames } from './flood-generator.js';

export interface JunkSources {
  internalToken: string;
  trustfulToken: string;
  serverKeyId: string;
  serverPublicKey: crypto.KeyObject;
  /** Provisioned keys whose sessions are not held (forged signatures, stale timestamps). */
  provisioned: NodeEndpointKey[];
  /**
   * Key hashes the forged CONNECTs claim, besides `provisioned`: the legit endpoints' keys (public
   * knowledge). Forgeries spread over them are what an attacker would send to make a per-key limit
   * refuse the real endpoints; bench/flood checks that with reconnects under the flood.
   */
  forgeryTargets: NodeEndpointKey[];
  unknown: NodeEndpointKey;
  revoked: NodeEndpointKey;
  banned: NodeEndpointKey | null;
  trustful: NodeEndpointKey[];
  /** The captured accepted CONNECT (frame bytes). */
  replay: Buffer;
  /** Signed frames per kind (each costs the bench ~1-2 ms of RSA signing). */
  perKind: number;
}

type PatchField = 'nonce' | 'keyHash' | 'signature';

export function buildJunkKinds(s: JunkSources): JunkKindFrames[] {
  const base = { serverKeyId: s.serverKeyId, serverPublicKey: s.serverPublicKey };
  const signed = (appToken: string, keys: NodeEndpointKey[], n: number, body: Record<string, unknown> = {}): Buffer[] =>
    Array.from({ length: n }, (_, i) => prepareConnect({ ...base, appToken, key: keys[i % keys.length]!, body }).frame);
  const forged = (appToken: string, keys: NodeEndpointKey[], n: number): Buffer[] =>
    Array.from({ length: n }, (_, i) => prepareConnect({ ...base, appToken, key: keys[i % keys.length]!, signature: crypto.randomBytes(256) }).frame);
  /**
   * Templates patched per attempt (random signature, not signed): the patch points are where the
   * given fields sit in the encoded frame, found by their bytes. Templates that lay out
   * differently from the first (another SPKI size) are left out, so one list of offsets fits all.
   */
  const templates = (name: string, appToken: string, keys: NodeEndpointKey[], fields: PatchField[], body: Record<string, unknown> = {}): JunkKindFrames => {
    const frames: Buffer[] = [];
    let offsets: number[] | null = null;
    for (const key of keys) {
      const signature = crypto.randomBytes(256);
      const p = prepareConnect({ ...base, appToken, key, signature, body });
      const offs = fields.map((f) => p.frame.indexOf(f === 'nonce' ? p.body.nonce : f === 'keyHash' ? p.body.keyHash : signature));
      if (offs.some((o) => o < 0)) throw new Error(`${name}: a patched field was not found in the frame`);
      if (offsets && offs.some((o, i) => o !== offsets![i])) continue;
      offsets = offs;
      frames.push(p.frame);
    }
    if (!offsets) throw new Error(`${name}: no template`);
    return { name, frames, patchOffsets: offsets };
  };

  return [
    templates('badSignature', s.internalToken, [...s.provisioned, ...s.forgeryTargets], ['nonce', 'signature']),
    { name: 'badSignatureRepeat', frames: forged(s.internalToken, s.provisioned, 16) },
    { name: 'replay', frames: [s.replay] },
    // Key hash patched too (public key left out, so it need not match): no per-key limit sees a repeat.
    templates('unknownApp', `junk-app-${crypto.randomBytes(4).toString('hex')}`, [s.unknown], ['nonce', 'keyHash'], { publicKey: null }),
    { name: 'unknownCredentials', frames: signed(s.internalToken, [s.unknown], s.perKind) },
    templates('randomKeyHash', s.internalToken, [s.unknown], ['nonce', 'keyHash'], { publicKey: null }),
    templates('stale', s.internalToken, [s.unknown], ['nonce', 'keyHash'], { publicKey: null, timestamp: Date.now() - 3600_000 }),
    { name: 'revoked', frames: signed(s.internalToken, [s.revoked], s.perKind) },
    ...(s.banned ? [{ name: 'banned', frames: signed(s.internalToken, [s.banned], s.perKind) }] : []),
    { name: 'trustful', frames: signed(s.trustfulToken, s.trustful, s.perKind) },
  ];
}
