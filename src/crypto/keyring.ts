/**
 * Server (operations) key ring: RSA-2048 key pairs with key ids, several valid at once so keys can
 * rotate without dropping endpoints that still name an older key.
 *
 * Layout under <dataDir>/keys (directory mode 0700):
 *   keyring.json           metadata: [{ id, status, createdAt }], status 'active' | 'valid' | 'retired'
 *   <id>.key.pem           PKCS#8 private key, mode 0600
 *   <id>.pub.pem           SPKI public key
 * The key id is the first 16 characters of the base64url SHA-256 of the SPKI DER, so an id always
 * names one key. Exactly one key is 'active' (handed out by bootstrap, used by new endpoints);
 * 'valid' keys are still accepted in CONNECT; 'retired' keys are refused (LK_HS_UNKNOWN_SERVER_KEY).
 * Private keys are read on the main thread only to check them; RSA private operations happen in
 * the crypto workers, which load `<id>.key.pem` themselves (worker.ts).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LatchkeyError } from '../errors.js';
import { generateRsaKeyPair, keyHashId, RSA_MODULUS_BITS } from './keys.js';

export type ServerKeyStatus = 'active' | 'valid' | 'retired';

export interface ServerKeyInfo {
  id: string;
  status: ServerKeyStatus;
  createdAt: number;
  spkiDer: Buffer;
  publicKeyPem: string;
}

interface KeyringFile {
  keys: Array<{ id: string; status: ServerKeyStatus; createdAt: number }>;
}

export function serverKeyId(spkiDer: Uint8Array): string {
  return keyHashId(spkiDer).slice(0, 16);
}

export function privateKeyPath(dir: string, id: string): string {
  if (!/^[A-Za-z0-9_-]{16}$/.test(id)) throw new LatchkeyError('LK_KEYRING_INVALID', `bad key id ${JSON.stringify(id)}`);
  return path.join(dir, `${id}.key.pem`);
}

function writeFileAtomic(file: string, data: string, mode: number): void {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, data, { mode });
  fs.renameSync(tmp, file);
}

export class KeyRing {
  private keys = new Map<string, ServerKeyInfo>();

  private constructor(readonly dir: string) {}

  /** Load the key ring from `dir`, generating a first key pair if there is none. */
  static async loadOrCreate(dir: string): Promise<KeyRing> {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ring = new KeyRing(dir);
    if (!fs.existsSync(ring.metaPath)) {
      await ring.add();
      return ring;
    }
    ring.reload();
    if (![...ring.keys.values()].some((k) => k.status === 'active')) {
      throw new LatchkeyError('LK_KEYRING_INVALID', `${ring.metaPath}: no active key`);
    }
    return ring;
  }

  private get metaPath(): string {
    return path.join(this.dir, 'keyring.json');
  }

  /** Re-read keyring.json and the public keys (another process, e.g. the CLI, may have rotated). */
  reload(): void {
    let meta: KeyringFile;
    try {
      meta = JSON.parse(fs.readFileSync(this.metaPath, 'utf8')) as KeyringFile;
      if (!Array.isArray(meta.keys)) throw new Error('keys is not an array');
    } catch (err) {
      throw new LatchkeyError('LK_KEYRING_INVALID', `${this.metaPath}: ${(err as Error).message}`, { cause: err });
    }
    const next = new Map<string, ServerKeyInfo>();
    for (const k of meta.keys) {
      const pem = this.readPublic(k.id);
      let key: crypto.KeyObject;
      try {
        key = crypto.createPublicKey(pem);
      } catch (err) {
        throw new LatchkeyError('LK_KEYRING_INVALID', `${k.id}.pub.pem: ${(err as Error).message}`, { cause: err });
      }
      if (key.asymmetricKeyDetails?.modulusLength !== RSA_MODULUS_BITS) {
        throw new LatchkeyError('LK_KEYRING_INVALID', `${k.id}: not RSA-${RSA_MODULUS_BITS}`);
      }
      const spkiDer = key.export({ format: 'der', type: 'spki' });
      if (serverKeyId(spkiDer) !== k.id) throw new LatchkeyError('LK_KEYRING_INVALID', `${k.id}: id does not match the key`);
      if (k.status !== 'retired' && !fs.existsSync(privateKeyPath(this.dir, k.id))) {
        throw new LatchkeyError('LK_KEYRING_INVALID', `${k.id}: private key file missing`);
      }
      next.set(k.id, { id: k.id, status: k.status, createdAt: k.createdAt, spkiDer, publicKeyPem: pem });
    }
    this.keys = next;
  }

  private readPublic(id: string): string {
    try {
      return fs.readFileSync(path.join(this.dir, `${id}.pub.pem`), 'utf8');
    } catch (err) {
      throw new LatchkeyError('LK_KEYRING_INVALID', `${id}.pub.pem: ${(err as Error).message}`, { cause: err });
    }
  }

  private save(): void {
    const meta: KeyringFile = { keys: [...this.keys.values()].map(({ id, status, createdAt }) => ({ id, status, createdAt })) };
    writeFileAtomic(this.metaPath, JSON.stringify(meta, null, 2) + '\n', 0o600);
  }

  /** The key new endpoints should use. */
  get active(): ServerKeyInfo {
    for (const k of this.keys.values()) if (k.status === 'active') return k;
    throw new LatchkeyError('LK_KEYRING_INVALID', 'no active key');
  }

  private lastReload = 0;

  /**
   * A key CONNECT may name: active or valid, not retired. An unknown id re-reads the key ring at
   * most every 5 s, so a key added by `latchkey keygen server` while the server runs is picked up
   * without a restart and unknown ids cannot make the server hammer the disk.
   */
  usable(id: string): ServerKeyInfo | undefined {
    let k = this.keys.get(id);
    if (!k && Date.now() - this.lastReload > 5000) {
      this.lastReload = Date.now();
      try {
        this.reload();
      } catch {
        // Keep the keys we have; start-up already proved them valid.
      }
      k = this.keys.get(id);
    }
    return k && k.status !== 'retired' ? k : undefined;
  }

  list(): ServerKeyInfo[] {
    return [...this.keys.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Generate a new key pair and make it active; the previous active key stays valid. */
  async add(): Promise<ServerKeyInfo> {
    const pair = await generateRsaKeyPair();
    const id = serverKeyId(pair.spkiDer);
    writeFileAtomic(privateKeyPath(this.dir, id), pair.privateKeyPem, 0o600);
    writeFileAtomic(path.join(this.dir, `${id}.pub.pem`), pair.publicKeyPem, 0o644);
    for (const k of this.keys.values()) if (k.status === 'active') k.status = 'valid';
    const info: ServerKeyInfo = { id, status: 'active', createdAt: Date.now(), spkiDer: pair.spkiDer, publicKeyPem: pair.publicKeyPem };
    this.keys.set(id, info);
    this.save();
    return info;
  }

  /** Retire a key: CONNECTs naming it are refused from now on. The active key cannot be retired. */
  retire(id: string): ServerKeyInfo {
    const k = this.keys.get(id);
    if (!k) throw new LatchkeyError('LK_NOT_FOUND', `server key ${id}`);
    if (k.status === 'active') throw new LatchkeyError('LK_CONFLICT', 'activate another key before retiring the active one');
    k.status = 'retired';
    this.save();
    return k;
  }
}
