/**
 * What the examples need, read from the environment or the command line. `latchkey serve` (npm
 * start) prints every value at start, and a line to copy:
 *
 *   LATCHKEY_SDK_URL              --url=...              endpoint URL, e.g. ws://127.0.0.1:9443/ep/v1
 *   LATCHKEY_SDK_APP_TOKEN        --app-token=...        application token ("demo app token")
 *   LATCHKEY_SDK_SERVER_KEY_ID    --server-key-id=...    the active server key id
 *   LATCHKEY_SDK_SERVER_KEY_SPKI  --server-key-spki=...  its SPKI, base64 DER ("server key SPKI")
 *   LATCHKEY_SDK_KEY              --key=PREFIX           optional: the endpoint key pair PREFIX.key.pem and
 *                                                        PREFIX.pub.pem (`npx latchkey keygen endpoint --out
 *                                                        PREFIX`); without it a fresh key each run, which a
 *                                                        trustful application (the demo one) accepts
 *
 * Give options as --name=value: an app token may begin with '-', which `--name value` would take
 * for the next option.
 */
import fs from 'node:fs';
import { generateEndpointKeys, loadEndpointKeys } from 'latchkey/sdk';

const ENV = {
  url: 'LATCHKEY_SDK_URL',
  'app-token': 'LATCHKEY_SDK_APP_TOKEN',
  'server-key-id': 'LATCHKEY_SDK_SERVER_KEY_ID',
  'server-key-spki': 'LATCHKEY_SDK_SERVER_KEY_SPKI',
  key: 'LATCHKEY_SDK_KEY',
  'bootstrap-url': 'LATCHKEY_SDK_BOOTSTRAP_URL',
  'bootstrap-key': 'LATCHKEY_SDK_BOOTSTRAP_KEY',
  owner: 'LATCHKEY_SDK_OWNER',
  'owner-token': 'LATCHKEY_SDK_OWNER_TOKEN',
  'verifier-token': 'LATCHKEY_SDK_VERIFIER_TOKEN',
};

const args = new Map(
  process.argv
    .slice(2)
    .filter((a) => a.startsWith('--') && a.includes('='))
    .map((a) => [a.slice(2, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]),
);

/** The setting `name` (a key of ENV), or `fallback`; missing and no fallback: exit 2 saying what is needed. */
export function setting(name, fallback) {
  const v = args.get(name) ?? process.env[ENV[name]];
  if (v !== undefined && v !== '') return v;
  if (fallback !== undefined) return fallback;
  process.stderr.write(`missing ${ENV[name]} (or --${name}=...): latchkey serve prints it at start\n`);
  process.exit(2);
}

/** serverKey for EndpointClient: the id and the SPKI bytes. */
export function serverKey() {
  return { id: setting('server-key-id'), spki: new Uint8Array(Buffer.from(setting('server-key-spki'), 'base64')) };
}

/** The endpoint's keys: the PEM pair named by LATCHKEY_SDK_KEY, or a fresh RSA-2048 pair. */
export async function endpointKeys(prefix = setting('key', '')) {
  if (!prefix) return generateEndpointKeys();
  return loadEndpointKeys(fs.readFileSync(`${prefix}.key.pem`, 'utf8'), fs.readFileSync(`${prefix}.pub.pem`, 'utf8'));
}

/** Stop with exit code 1 and the catalogue code when an SDK result is not ok. */
export function check(what, r) {
  if (r.ok) return r;
  process.stderr.write(`${what} failed: ${r.kind} ${r.code}${r.errorCode ? ` (${r.errorCode})` : ''}${r.detail ? `: ${r.detail}` : ''}\n`);
  process.exit(1);
}

export const text = (s) => new TextEncoder().encode(s);
export const untext = (b) => (b ? new TextDecoder().decode(b) : '');
