/**
 * The bootstrap key pair: RSA-2048, used only to sign access point lists (RSA-PSS-SHA-256, salt 32).
 * It is not an operations key (a leaked operations key must not let anyone redirect a fleet, and the
 * other way round). Endpoints carry its public key (SDK option `bootstrap.publicKey`). Every node of
 * a cluster must use the same file (config bootstrapKeyFile).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LatchkeyError } from '../errors.js';
import { generateRsaKeyPair } from '../crypto/keys.js';
import { serverKeyId } from '../crypto/keyring.js';

/** Signed bytes = this context (21 bytes) || the Avro AccessPointList. */
export const BOOTSTRAP_SIGNATURE_CONTEXT = Buffer.from('latchkey/1 BOOTSTRAP\0', 'latin1');

export class BootstrapKey {
  private constructor(
    readonly id: string,
    readonly spkiDer: Buffer,
    private readonly privateKey: crypto.KeyObject,
    readonly file: string,
  ) {}

  /** Load the PEM private key at `file`, creating it (mode 0600) if it does not exist. */
  static async loadOrCreate(file: string): Promise<{ key: BootstrapKey; created: boolean }> {
    let created = false;
    if (!fs.existsSync(file)) {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      const pair = await generateRsaKeyPair();
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, pair.privateKeyPem, { mode: 0o600 });
      try {
        // Another process starting on the same data dir may win: keep its key.
        fs.linkSync(tmp, file);
        created = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      } finally {
        fs.rmSync(tmp, { force: true });
      }
    }
    let privateKey: crypto.KeyObject;
    try {
      privateKey = crypto.createPrivateKey(fs.readFileSync(file));
    } catch (err) {
      throw new LatchkeyError('LK_KEYRING_INVALID', `bootstrap key ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (privateKey.asymmetricKeyType !== 'rsa' || privateKey.asymmetricKeyDetails?.modulusLength !== 2048) {
      throw new LatchkeyError('LK_KEYRING_INVALID', `bootstrap key ${file}: not an RSA-2048 private key`);
    }
    const spkiDer = crypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
    return { key: new BootstrapKey(serverKeyId(spkiDer), spkiDer, privateKey, file), created };
  }

  /** RSA-PSS-SHA-256 (salt 32) over context || list. About 1 ms of CPU: callers cache the result. */
  sign(list: Uint8Array): Buffer {
    return crypto.sign('sha256', Buffer.concat([BOOTSTRAP_SIGNATURE_CONTEXT, list]), {
      key: this.privateKey,
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
  }
}
