/**
 * Endpoint RSA-2048 keys for the benches, cached in bench/.cache/endpoint-keys.json (a JSON array
 * of PKCS#8 PEM private keys, mode 0600) so that later runs skip the slow generation. Benches share
 * the cache: one that needs more keys than are cached generates only the missing ones and appends.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { endpointKeyFrom, type NodeEndpointKey } from '../../test/helpers/wire-client.js';
import { ROOT } from '../../test/helpers/root.js';

export const KEY_CACHE_DIR = path.join(ROOT, 'bench/.cache');
export const KEY_CACHE_FILE = path.join(KEY_CACHE_DIR, 'endpoint-keys.json');

function generatePem(): Promise<string> {
  return new Promise((resolve, reject) =>
    crypto.generateKeyPair('rsa', { modulusLength: 2048 }, (err, _pub, priv) => (err ? reject(err) : resolve(priv.export({ format: 'pem', type: 'pkcs8' }).toString()))),
  );
}

function save(pems: string[]): void {
  const tmp = `${KEY_CACHE_FILE}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(pems), { mode: 0o600 });
  fs.renameSync(tmp, KEY_CACHE_FILE);
}

/**
 * The first `n` cached endpoint keys, generating (and caching) the missing ones. `label` prefixes
 * the progress output (e.g. "handshake"). Generation runs 16 at a time on the libuv pool; the cache
 * is saved every few seconds, so an interrupted run keeps what it generated.
 */
export async function endpointKeys(n: number, label: string): Promise<NodeEndpointKey[]> {
  fs.mkdirSync(KEY_CACHE_DIR, { recursive: true });
  const cached: string[] = fs.existsSync(KEY_CACHE_FILE) ? (JSON.parse(fs.readFileSync(KEY_CACHE_FILE, 'utf8')) as string[]) : [];
  if (cached.length < n) {
    const missing = n - cached.length;
    process.stdout.write(`[${label}] generating ${missing} endpoint keys (cached in bench/.cache for later runs)\n`);
    const t0 = performance.now();
    let lastSave = t0;
    while (cached.length < n) {
      const batch = await Promise.all(Array.from({ length: Math.min(16, n - cached.length) }, generatePem));
      cached.push(...batch);
      const s = (performance.now() - t0) / 1000;
      const made = missing - (n - cached.length);
      const eta = made > 0 ? ((n - cached.length) * s) / made : 0;
      process.stdout.write(`\r[${label}] keys ${cached.length}/${n} (${s.toFixed(0)} s, ~${eta.toFixed(0)} s left) `);
      if (performance.now() - lastSave > 5000) {
        save(cached);
        lastSave = performance.now();
      }
    }
    process.stdout.write('\n');
    save(cached);
  }
  return cached.slice(0, n).map((pem) => {
    const priv = crypto.createPrivateKey(pem);
    return endpointKeyFrom(priv, crypto.createPublicKey(priv));
  });
}
