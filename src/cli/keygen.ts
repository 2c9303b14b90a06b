/**
 * The key commands, all offline: `keygen endpoint` (an endpoint key pair in two PEM files),
 * `keygen server` (a new active key in the server key ring of the data directory) and
 * `bootstrap-key` (the public half of the key that signs bootstrap lists).
 */
import fs from 'node:fs';
import path from 'node:path';
import { BootstrapKey } from '../bootstrap/key.js';
import { KeyRing } from '../crypto/keyring.js';
import { generateRsaKeyPair } from '../crypto/keys.js';
import { LatchkeyError } from '../errors.js';
import { derToPem } from '../sdk/crypto.js';
import { configFrom, need, type Parsed } from './args.js';
import { print } from './output.js';

export async function keygen(p: Parsed): Promise<void> {
  const kind = p.words[1];
  if (kind === 'endpoint') {
    const prefix = need(p, 'out');
    const keyFile = `${prefix}.key.pem`;
    const pubFile = `${prefix}.pub.pem`;
    if (!p.bools.has('force') && (fs.existsSync(keyFile) || fs.existsSync(pubFile))) {
      throw new LatchkeyError('LK_CONFLICT', `${keyFile} or ${pubFile} exists; use --force to overwrite`);
    }
    const pair = await generateRsaKeyPair();
    fs.mkdirSync(path.dirname(path.resolve(keyFile)), { recursive: true });
    fs.writeFileSync(keyFile, pair.privateKeyPem, { mode: 0o600 });
    fs.chmodSync(keyFile, 0o600);
    fs.writeFileSync(pubFile, pair.publicKeyPem, { mode: 0o644 });
    print(p, { keyHash: pair.keyHash, privateKey: keyFile, publicKey: pubFile }, [{ keyHash: pair.keyHash, privateKey: keyFile, publicKey: pubFile }]);
    return;
  }
  if (kind === 'server') {
    const config = configFrom(p);
    const dir = path.resolve(config.dataDir, 'keys');
    const existed = fs.existsSync(path.join(dir, 'keyring.json'));
    const ring = await KeyRing.loadOrCreate(dir);
    const info = existed ? await ring.add() : ring.active;
    const rows = ring.list().map((k) => ({ id: k.id, status: k.status, createdAt: new Date(k.createdAt).toISOString(), new: k.id === info.id ? 'yes' : '' }));
    print(p, { active: info.id, keys: rows }, rows);
    return;
  }
  throw new LatchkeyError('LK_CLI_USAGE', 'keygen endpoint|server');
}

/**
 * `bootstrap-key`: print the bootstrap public key, creating the key like `serve` would. stdout is
 * the PEM alone (`latchkey bootstrap-key > bootstrap.pub.pem` gives a file the SDK reads); which
 * key and file it came from goes to stderr.
 */
export async function bootstrapKey(p: Parsed): Promise<void> {
  const config = configFrom(p);
  const file = config.bootstrapKeyFile || path.resolve(config.dataDir, 'bootstrap', 'bootstrap-key.pem');
  const { key } = await BootstrapKey.loadOrCreate(file);
  const pem = derToPem(key.spkiDer, 'PUBLIC KEY');
  if (p.bools.has('json')) process.stdout.write(JSON.stringify({ keyId: key.id, file, publicKeyPem: pem, publicKeyDer: key.spkiDer.toString('base64') }) + '\n');
  else {
    process.stderr.write(`latchkey: bootstrap public key ${key.id} (of ${file})\n`);
    process.stdout.write(pem);
  }
}
