/**
 * Crypto worker (piscina): every RSA operation of the server runs here, never on the event loop.
 *
 * Task: verify the endpoint's RSA-PSS signature over the CONNECT transcript first (cheap, ~30 µs),
 * and only if it holds decrypt the RSA-OAEP wrapped session secret (expensive, the floor of a
 * handshake), then derive the session keys (HKDF) and the key confirmation.
 *
 * Workers keep parsed KeyObjects: endpoint keys in a bounded LRU keyed by key hash (parsed from the
 * PKCS#1 body, ~3 µs instead of ~110 µs for SPKI), server private keys by key id, loaded lazily
 * from the key ring directory so a key added at run time is picked up without restarting workers.
 *
 * Errors thrown in a worker reach the main thread without their code (Node 20), so the task
 * returns { ok: false, code } instead of throwing.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { workerData } from 'node:worker_threads';
import { parseEndpointPublicKey } from './keys.js';
import { privateKeyPath } from './keyring.js';
import { deriveSessionKeys, RSA_OAEP, RSA_PSS, SESSION_SECRET_BYTES } from './session-crypto.js';

export interface WorkerInit {
  keyDir: string;
  endpointKeyCacheMax: number;
}

export interface HandshakeTask {
  keyHash: string;
  /** SPKI DER of the endpoint key (from CONNECT or the store; already checked against keyHash). */
  publicKey: Uint8Array;
  sigInput: Uint8Array;
  signature: Uint8Array;
  wrappedSecret: Uint8Array;
  serverKeyId: string;
}

export type HandshakeOutcome =
  | { ok: true; c2s: Uint8Array; s2c: Uint8Array; confirmation: Uint8Array }
  | { ok: false; code: 'LK_HS_BAD_SIGNATURE' | 'LK_HS_BAD_SECRET' | 'LK_HS_BAD_PUBLIC_KEY' | 'LK_HS_UNKNOWN_SERVER_KEY' | 'LK_INTERNAL'; detail?: string };

const init = workerData as WorkerInit;
const endpointKeys = new Map<string, crypto.KeyObject>();
const serverKeys = new Map<string, crypto.KeyObject>();

function endpointKey(keyHash: string, spki: Uint8Array): crypto.KeyObject {
  let key = endpointKeys.get(keyHash);
  if (key) {
    // Refresh LRU position.
    endpointKeys.delete(keyHash);
    endpointKeys.set(keyHash, key);
    return key;
  }
  key = parseEndpointPublicKey(spki);
  endpointKeys.set(keyHash, key);
  if (endpointKeys.size > init.endpointKeyCacheMax) {
    endpointKeys.delete(endpointKeys.keys().next().value as string);
  }
  return key;
}

function serverKey(id: string): crypto.KeyObject | undefined {
  let key = serverKeys.get(id);
  if (key) return key;
  let pem: string;
  try {
    pem = fs.readFileSync(privateKeyPath(init.keyDir, id), 'utf8');
  } catch {
    return undefined;
  }
  key = crypto.createPrivateKey(pem);
  serverKeys.set(id, key);
  return key;
}

export function handshake(task: HandshakeTask): HandshakeOutcome {
  let pub: crypto.KeyObject;
  try {
    pub = endpointKey(task.keyHash, task.publicKey);
  } catch {
    return { ok: false, code: 'LK_HS_BAD_PUBLIC_KEY' };
  }
  let verified = false;
  try {
    verified = crypto.verify('sha256', task.sigInput, { key: pub, ...RSA_PSS }, task.signature);
  } catch {
    verified = false;
  }
  if (!verified) return { ok: false, code: 'LK_HS_BAD_SIGNATURE' };

  const priv = serverKey(task.serverKeyId);
  if (!priv) return { ok: false, code: 'LK_HS_UNKNOWN_SERVER_KEY' };
  let secret: Buffer;
  try {
    secret = crypto.privateDecrypt({ key: priv, ...RSA_OAEP }, task.wrappedSecret);
  } catch {
    return { ok: false, code: 'LK_HS_BAD_SECRET' };
  }
  if (secret.length !== SESSION_SECRET_BYTES) return { ok: false, code: 'LK_HS_BAD_SECRET' };
  const keys = deriveSessionKeys(secret, task.sigInput);
  secret.fill(0);
  return { ok: true, c2s: keys.c2s, s2c: keys.s2c, confirmation: keys.confirmation };
}

export default handshake;
