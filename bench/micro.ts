/**
 * bench/micro: the small measurements behind design decisions recorded in code comments and
 * docs/performance.md. Each case runs in this process on one thread, warm, several batches; the
 * median batch is reported in CPU µs per operation.
 *
 *   npm run bench:micro
 *
 * Cases:
 *   keyparse     createPublicKey of an SPKI DER vs its PKCS#1 body (src/crypto/keys.ts)
 *   aead         frame AES-256-GCM seal and open, 64 / 100 / 1024 B: node:crypto per frame (NodeGcmCipher)
 *                vs the default WasmGcmCipher (src/crypto/aead.ts, wasm/)
 *   hkdf         crypto.hkdfSync vs the HMAC-based hkdfSha256 (src/crypto/session-crypto.ts)
 *   hmac         node:crypto HMAC vs hash-wasm HMAC (why the handshake path stays on node:crypto)
 *   replay       replay-cache fingerprint: hash-wasm xxhash128 vs node:crypto SHA-256, and heap
 *                bytes per remembered nonce for each key form (src/session/replay.ts)
 *   webcrypto    the SDK's handshake operations on Node's built-in WebCrypto vs @peculiar/webcrypto
 *                (src/sdk/crypto.ts)
 *   resume       the building blocks of a resumed handshake (docs/protocol.md 4.6) on the server:
 *                ticket seal (TICKETREQ) and open (src/crypto/tickets.ts TicketSealer), the RESUME
 *                proof HMAC over a real resumeInput, the key schedule's 128-byte HKDF, the whole
 *                key schedule (deriveSessionKeys), and the three together as a RESUME costs them
 *   x25519       what an ephemeral X25519 exchange per resumed session would add (node:crypto):
 *                keygen, DH, import of the endpoint's raw public key and export of the server's
 *                (JWK vs DER SPKI), keygen + DH (the figure docs/protocol.md 4.6 quotes), and a
 *                whole exchange
 * Writes bench/results/micro-latest.json and .md.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Crypto as PeculiarCrypto } from '@peculiar/webcrypto';
import { createHMAC, createSHA256, createXXHash128 } from 'hash-wasm';
import { NodeGcmCipher, type FrameCipher } from '../src/crypto/aead.js';
import { WASM_MAX_BYTES, WasmGcmCipher } from '../src/crypto/aead-wasm.js';
import { frameCipherKind } from '../src/crypto/frame-cipher.js';
import { deriveSessionKeys, hkdfSha256, KDF_INFO, resumeInput, resumeProof } from '../src/crypto/session-crypto.js';
import { TicketSealer } from '../src/crypto/tickets.js';
import { encodeResumeBody } from '../src/protocol/frames.js';
import { deriveClientKeys, importServerKey, signConnect, wrapSecret, type EndpointKeys } from '../src/sdk/crypto.js';
import { ROOT } from '../test/helpers/root.js';
import { machineInfo, machineLine } from './lib/machine.js';

function cpuUs(fn: () => void, n: number): number {
  for (let i = 0; i < Math.min(n, 200); i++) fn();
  const batches: number[] = [];
  for (let b = 0; b < 5; b++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) fn();
    const c = process.cpuUsage(c0);
    batches.push((c.user + c.system) / n);
  }
  return batches.sort((a, b) => a - b)[2]!;
}

async function cpuUsAsync(fn: () => Promise<unknown>, n: number): Promise<number> {
  for (let i = 0; i < Math.min(n, 20); i++) await fn();
  const batches: number[] = [];
  for (let b = 0; b < 5; b++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) await fn();
    const c = process.cpuUsage(c0);
    batches.push((c.user + c.system) / n);
  }
  return batches.sort((a, b) => a - b)[2]!;
}

function heapPerEntry(make: (i: number) => string): number {
  global.gc?.();
  const before = process.memoryUsage().heapUsed;
  const m = new Map<string, number>();
  const N = 100_000;
  for (let i = 0; i < N; i++) m.set(make(i), i);
  global.gc?.();
  const after = process.memoryUsage().heapUsed;
  if (m.size !== N) throw new Error('unexpected');
  return (after - before) / N;
}

const rows: Array<{ case: string; variant: string; value: number; unit: string }> = [];
function report(c: string, variant: string, value: number, unit = 'µs/op'): void {
  rows.push({ case: c, variant, value: +value.toFixed(2), unit });
  process.stdout.write(`[micro] ${c.padEnd(10)} ${variant.padEnd(46)} ${value.toFixed(2).padStart(10)} ${unit}\n`);
}

async function main(): Promise<void> {
  const machine = machineInfo();
  process.stdout.write(`[micro] ${machineLine(machine)}\n`);
  if (!global.gc) process.stdout.write('[micro] (run with --expose-gc for exact heap-per-entry numbers)\n');

  // keyparse
  const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const pkcs1 = publicKey.export({ format: 'der', type: 'pkcs1' });
  report('keyparse', 'createPublicKey SPKI DER', cpuUs(() => crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' }), 300));
  report('keyparse', 'createPublicKey PKCS#1 DER (what keys.ts does)', cpuUs(() => crypto.createPublicKey({ key: pkcs1, format: 'der', type: 'pkcs1' }), 3000));

  // aead: one node:crypto GCM call per frame (NodeGcmCipher) vs the default frame cipher
  // (WasmGcmCipher: AES-ECB keystream computed ahead, GHASH + XOR in wasm/build/ghash.wasm). Each
  // cipher sees sequential counters, as a session direction does; opens take frames sealed beforehand.
  process.stdout.write(`[micro] createFrameCipher picks: ${frameCipherKind()}\n`);
  const aeadKey = crypto.randomBytes(32);
  const frame = crypto.randomBytes(64);
  const aeadVariants: Array<[string, () => FrameCipher]> = [
    ['node:crypto GCM', () => new NodeGcmCipher(aeadKey)],
    ['wasm (default)', () => new WasmGcmCipher(aeadKey)],
  ];
  const warm = crypto.randomBytes(200);
  for (const [, make] of aeadVariants) {
    // warm up (JIT, the wasm tier-up) on throwaway ciphers before any measured batch
    const tx = make();
    const rx = make();
    for (let i = 0; i < 20_000; i++) rx.open(i, tx.seal(i, warm.subarray(0, i % 200)));
  }
  for (const len of [64, 100, 1024]) {
    const n = 5000;
    const pt = crypto.randomBytes(len);
    const ref = new NodeGcmCipher(aeadKey);
    const frames = Array.from({ length: 200 + 5 * n }, (_, i) => ref.seal(i, pt));
    const variants = len > WASM_MAX_BYTES
      ? [...aeadVariants, ['wasm kernel forced (above wasmMaxBytes)', () => new WasmGcmCipher(aeadKey, { wasmMaxBytes: 16384 })] as [string, () => FrameCipher]]
      : aeadVariants;
    for (const [name, make] of variants) {
      const tx = make();
      let s = 0;
      report('aead', `${name} seal, ${len} B`, cpuUs(() => tx.seal(s++, pt), n));
      const rx = make();
      let o = 0;
      report('aead', `${name} open, ${len} B`, cpuUs(() => {
        if (!rx.open(o, frames[o++]!)) throw new Error('aead: open failed');
      }, n));
    }
  }

  // hkdf
  const ikm = crypto.randomBytes(64);
  const salt = crypto.randomBytes(32);
  report('hkdf', 'crypto.hkdfSync, 96 B', cpuUs(() => crypto.hkdfSync('sha256', ikm, salt, KDF_INFO, 96), 5000));
  report('hkdf', 'hkdfSha256 (HMAC calls), 96 B', cpuUs(() => hkdfSha256(ikm, salt, KDF_INFO, 96), 5000));

  // hmac: what the handshake path would gain from hash-wasm
  const hkey = crypto.randomBytes(32);
  const hmsg = crypto.randomBytes(64);
  report('hmac', 'node:crypto createHmac SHA-256, 64 B', cpuUs(() => crypto.createHmac('sha256', hkey).update(hmsg).digest(), 20_000));
  const wasmHmac = await createHMAC(createSHA256(), hkey);
  report('hmac', 'hash-wasm HMAC SHA-256 (key set up once), 64 B', cpuUs(() => {
    wasmHmac.init();
    wasmHmac.update(hmsg);
    wasmHmac.digest('binary');
  }, 20_000));

  // replay
  const xx = await createXXHash128();
  const kh = crypto.randomBytes(32);
  const nonce = crypto.randomBytes(16);
  report('replay', 'fingerprint: hash-wasm xxhash128 -> base64url', cpuUs(() => {
    xx.init();
    xx.update(kh);
    xx.update(nonce);
    Buffer.from(xx.digest('binary')).toString('base64url');
  }, 50_000));
  report('replay', 'fingerprint: node:crypto SHA-256 -> base64url', cpuUs(() => crypto.createHash('sha256').update(kh).update(nonce).digest('base64url'), 50_000));
  report('replay', 'raw keyHash+nonce -> base64url', cpuUs(() => Buffer.concat([kh, nonce]).toString('base64url'), 50_000));
  const seed = crypto.randomBytes(48);
  report('replay', 'heap per entry: xxhash128 key (22 chars)', heapPerEntry((i) => { seed.writeUInt32BE(i, 0); xx.init(); xx.update(seed); return Buffer.from(xx.digest('binary')).toString('base64url'); }), 'B/entry');
  report('replay', 'heap per entry: raw keyHash+nonce key (64 chars)', heapPerEntry((i) => { seed.writeUInt32BE(i, 0); return seed.toString('base64url'); }), 'B/entry');

  // webcrypto: the SDK's per-handshake operations
  const pec = new PeculiarCrypto() as unknown as Crypto;
  for (const [name, c] of [['node built-in WebCrypto', globalThis.crypto], ['@peculiar/webcrypto', pec]] as const) {
    const pair = await c.subtle.generateKey({ name: 'RSA-PSS', hash: 'SHA-256', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, true, ['sign', 'verify']);
    const epSpki = new Uint8Array(await c.subtle.exportKey('spki', pair.publicKey));
    const keys: EndpointKeys = { privateKey: pair.privateKey, spki: epSpki, keyHashRaw: new Uint8Array(32), keyHash: '' };
    const server = await importServerKey(spki, c);
    const secret = crypto.randomBytes(64);
    const body = crypto.randomBytes(600);
    report('webcrypto', `${name}: RSA-OAEP wrap`, await cpuUsAsync(() => wrapSecret(server, secret, c), 200));
    report('webcrypto', `${name}: RSA-PSS sign`, await cpuUsAsync(() => signConnect(keys, body, c), 100));
    report('webcrypto', `${name}: HKDF + key import`, await cpuUsAsync(() => deriveClientKeys(secret, body, c), 500));
    const k = await deriveClientKeys(secret, body, c);
    let n = 0;
    report('webcrypto', `${name}: AES-GCM seal 64 B`, await cpuUsAsync(() => k.tx.seal(n++, frame), 2000));
  }

  // resume: the server's crypto for TICKETREQ and RESUME. The sealer's ticket keys are derived once
  // per epoch and cached, as in the server (every call here is in the same epoch).
  const sealer = new TicketSealer(crypto.randomBytes(32), { lifetimeMs: 86_400_000, rotateMs: 3_600_000 });
  const contents = { appId: 'bench-application', keyHash: crypto.randomBytes(32), resumption: crypto.randomBytes(32) };
  report('resume', 'ticket seal (TicketSealer.seal)', cpuUs(() => sealer.seal(contents), 20_000));
  const sealed = Array.from({ length: 1000 }, () => sealer.seal(contents));
  let ti = 0;
  report('resume', `ticket open (TicketSealer.open), ${sealed[0]!.length} B ticket`, cpuUs(() => {
    if (!sealer.open(sealed[ti++ % sealed.length]!).ok) throw new Error('resume: ticket open failed');
  }, 20_000));
  const resumeBody = encodeResumeBody({ protocolVersion: 1, appToken: 'bench-app-token', keyHash: contents.keyHash, ticket: sealed[0]!, timestamp: Date.now(), nonce: crypto.randomBytes(16), keepAliveSec: 30 });
  const rInput = resumeInput(resumeBody);
  report('resume', `proof: HMAC-SHA-256 over resumeInput (${rInput.length} B)`, cpuUs(() => resumeProof(contents.resumption, rInput), 20_000));
  const th = crypto.createHash('sha256').update(rInput).digest();
  report('resume', 'crypto.hkdfSync, 128 B (the key schedule, L = 128)', cpuUs(() => crypto.hkdfSync('sha256', contents.resumption, th, KDF_INFO, 128), 20_000));
  report('resume', 'deriveSessionKeys (SHA-256 + HKDF 128 B + confirmation HMAC)', cpuUs(() => deriveSessionKeys(contents.resumption, rInput), 20_000));
  const sentProof = resumeProof(contents.resumption, rInput);
  let ri = 0;
  report('resume', 'all of a RESUME: ticket open + proof + deriveSessionKeys', cpuUs(() => {
    const o = sealer.open(sealed[ri++ % sealed.length]!);
    if (!o.ok) throw new Error('resume: ticket open failed');
    const input = resumeInput(resumeBody);
    if (!crypto.timingSafeEqual(resumeProof(o.contents.resumption, input), sentProof)) throw new Error('resume: proof');
    deriveSessionKeys(o.contents.resumption, input);
  }, 10_000));

  // x25519: the forward-secrecy option docs/protocol.md 4.6 does not offer, priced on the server's
  // side of one exchange: a fresh key pair, the endpoint's 32-byte public key imported, DH, and
  // the server's public key exported as 32 raw bytes for the CONNACK. Node 20 has no raw key
  // format: a JWK (x = base64url of the 32 bytes) is the cheap way in and out; DER SPKI goes
  // through OpenSSL's decoder/encoder framework and costs ~10x more.
  const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
  const peer = crypto.generateKeyPairSync('x25519');
  const peerRaw = peer.publicKey.export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI_PREFIX.length);
  const importJwk = (): crypto.KeyObject => crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: peerRaw.toString('base64url') }, format: 'jwk' });
  const importDer = (): crypto.KeyObject => crypto.createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, peerRaw]), format: 'der', type: 'spki' });
  const exportJwk = (k: crypto.KeyObject): Buffer => Buffer.from(k.export({ format: 'jwk' }).x!, 'base64url');
  const own = crypto.generateKeyPairSync('x25519');
  const peerKey = importJwk();
  if (!exportJwk(peerKey).equals(peerRaw) || !importDer().equals(peerKey)) throw new Error('x25519: import/export mismatch');
  report('x25519', 'generateKeyPairSync(x25519)', cpuUs(() => crypto.generateKeyPairSync('x25519'), 3000));
  report('x25519', 'diffieHellman (one shared secret)', cpuUs(() => crypto.diffieHellman({ privateKey: own.privateKey, publicKey: peerKey }), 3000));
  report('x25519', "import the endpoint's raw public key: JWK", cpuUs(importJwk, 5000));
  report('x25519', "import the endpoint's raw public key: DER SPKI", cpuUs(importDer, 3000));
  report('x25519', "export the server's public key (raw 32 B): JWK", cpuUs(() => exportJwk(own.publicKey), 5000));
  report('x25519', "export the server's public key (raw 32 B): DER SPKI", cpuUs(() => own.publicKey.export({ format: 'der', type: 'spki' }).subarray(12), 3000));
  report('x25519', 'keygen + DH (what protocol.md 4.6 prices)', cpuUs(() => {
    const k = crypto.generateKeyPairSync('x25519');
    crypto.diffieHellman({ privateKey: k.privateKey, publicKey: peerKey });
  }, 3000));
  report('x25519', 'one exchange: keygen + import + DH + export, JWK', cpuUs(() => {
    const k = crypto.generateKeyPairSync('x25519');
    crypto.diffieHellman({ privateKey: k.privateKey, publicKey: importJwk() });
    exportJwk(k.publicKey);
  }, 3000));
  report('x25519', 'one exchange: the same with DER SPKI', cpuUs(() => {
    const k = crypto.generateKeyPairSync('x25519');
    crypto.diffieHellman({ privateKey: k.privateKey, publicKey: importDer() });
    k.publicKey.export({ format: 'der', type: 'spki' });
  }, 2000));

  const dir = path.join(ROOT, 'bench/results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'micro-latest.json'), JSON.stringify({ bench: 'micro', machine, rows }, null, 2) + '\n');
  const md = ['# bench/micro', '', machineLine(machine), '', '| case | variant | value | unit |', '|---|---|---|---|', ...rows.map((r) => `| ${r.case} | ${r.variant} | ${r.value} | ${r.unit} |`)].join('\n');
  fs.writeFileSync(path.join(dir, 'micro-latest.md'), md + '\n');
  process.stdout.write('[micro] wrote bench/results/micro-latest.{json,md}\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/micro failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
