/**
 * SDK side of bootstrap (docs/protocol.md section 9): ask the bootstrap servers for the signed list
 * of access points, check it (signature under the bootstrap public key the endpoint was built with,
 * binding to this application, expiry), and order it for connecting: lower priority first, weighted
 * random among equal priorities. Kaa signed its lists and never checked them; this does, and an
 * unchecked list is never used.
 */
import wire from './wire.js';
import { PROTOCOL_VERSION } from './constants.js';
import { concat, importBootstrapKey, type WebCrypto } from './crypto.js';
import { ClientError } from './errors.js';
import type { AccessPoint, AccessPointList, BootstrapResponse } from '../protocol/wire-schemas.js';

export const BOOTSTRAP_PATH = '/bootstrap/v1/resolve';
export const BOOTSTRAP_CONTEXT_BYTES = new TextEncoder().encode('latchkey/1 BOOTSTRAP\0');

export interface BootstrapOptions {
  /** Bootstrap server base URLs (http(s)://host:port, or the full resolve URL), tried in order. */
  urls: string[];
  /** The bootstrap public key: SPKI DER, or PEM. */
  publicKey: Uint8Array | string;
  /** Per-request timeout, ms (default 5000). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface ResolvedAccessPoints {
  accessPoints: AccessPoint[];
  issuedAt: number;
  expiresAt: number;
  nodeSetVersion: string;
}

/** Why resolving failed; `code` is from the error catalogue. `terminal`: retrying cannot help. */
export class BootstrapError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly terminal = false,
  ) {
    super(`${code}: ${message}`);
    this.name = 'BootstrapError';
  }
}

/** The bootstrap key as a CryptoKey; a key that is not one is terminal (LK_SDK_BAD_KEY). */
async function bootstrapKey(publicKey: Uint8Array | string | CryptoKey, c: WebCrypto): Promise<CryptoKey> {
  if (typeof publicKey !== 'string' && !(publicKey instanceof Uint8Array)) return publicKey;
  try {
    return await importBootstrapKey(publicKey, c);
  } catch (err) {
    if (err instanceof ClientError) throw new BootstrapError(err.code, `bootstrap.publicKey: ${err.message.slice(err.code.length + 2)}`, true);
    throw err;
  }
}

function resolveUrl(base: string): string {
  const u = new URL(base);
  if (u.pathname === '/' || u.pathname === '') u.pathname = BOOTSTRAP_PATH;
  return u.toString();
}

/**
 * Check a BootstrapResponse body: signature, application binding, expiry. Returns the list or
 * throws a BootstrapError (LK_SDK_BOOTSTRAP_BAD_SIGNATURE, LK_SDK_BOOTSTRAP_EXPIRED,
 * LK_SDK_PROTOCOL_ERROR, LK_SDK_BAD_KEY when `publicKey` is not a public key).
 */
export async function verifyAccessPointList(body: Uint8Array, publicKey: Uint8Array | string | CryptoKey, appToken: string, now: number, c: WebCrypto = globalThis.crypto): Promise<ResolvedAccessPoints> {
  let res: BootstrapResponse;
  try {
    res = wire.bootstrapResponse.fromBuffer(body) as BootstrapResponse;
  } catch {
    throw new BootstrapError('LK_SDK_PROTOCOL_ERROR', 'bootstrap answer is not an Avro BootstrapResponse');
  }
  const key = await bootstrapKey(publicKey, c);
  const ok = await c.subtle.verify({ name: 'RSA-PSS', saltLength: 32 }, key, res.signature as BufferSource, concat(BOOTSTRAP_CONTEXT_BYTES, res.list) as BufferSource);
  if (!ok) throw new BootstrapError('LK_SDK_BOOTSTRAP_BAD_SIGNATURE', 'signature does not verify under the bootstrap public key');
  let list: AccessPointList;
  try {
    list = wire.accessPointList.fromBuffer(res.list) as AccessPointList;
  } catch {
    throw new BootstrapError('LK_SDK_PROTOCOL_ERROR', 'signed list is not an Avro AccessPointList');
  }
  const want = new Uint8Array(await c.subtle.digest('SHA-256', new TextEncoder().encode(appToken)));
  if (list.appTokenHash.length !== want.length || !want.every((b, i) => list.appTokenHash[i] === b)) {
    throw new BootstrapError('LK_SDK_BOOTSTRAP_BAD_SIGNATURE', 'the list was issued for another application');
  }
  if (!(list.expiresAt > now)) throw new BootstrapError('LK_SDK_BOOTSTRAP_EXPIRED', `expired at ${new Date(list.expiresAt).toISOString()}`);
  if (list.protocolVersion !== PROTOCOL_VERSION) throw new BootstrapError('LK_SDK_PROTOCOL_ERROR', `list is for protocol version ${list.protocolVersion}`);
  return { accessPoints: list.accessPoints, issuedAt: list.issuedAt, expiresAt: list.expiresAt, nodeSetVersion: list.nodeSetVersion };
}

/**
 * Ask each bootstrap URL in turn until one gives a list that checks out. An unknown application
 * token is terminal (every server would say the same); anything else moves on to the next URL.
 */
export async function resolveAccessPoints(o: BootstrapOptions, appToken: string, now: () => number = Date.now, c: WebCrypto = globalThis.crypto): Promise<ResolvedAccessPoints> {
  const f = o.fetch ?? globalThis.fetch;
  // Before any request: a key that is not a public key fails the same way against every server.
  const key = await bootstrapKey(o.publicKey, c);
  const body = wire.bootstrapRequest.toBuffer({ appToken, protocolVersions: [PROTOCOL_VERSION] });
  const problems: string[] = [];
  let last: BootstrapError | null = null;
  for (const base of o.urls) {
    let r: Response;
    try {
      r = await f(resolveUrl(base), { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: body as BodyInit, signal: AbortSignal.timeout(o.timeoutMs ?? 5000) });
    } catch (err) {
      problems.push(`${base}: ${(err as Error).message}`);
      continue;
    }
    const bytes = new Uint8Array(await r.arrayBuffer().catch(() => new ArrayBuffer(0)));
    if (r.status !== 200) {
      let code = `HTTP ${r.status}`;
      try {
        code = (JSON.parse(new TextDecoder().decode(bytes)) as { code?: string }).code ?? code;
      } catch {
        // not JSON
      }
      if (code === 'LK_HS_UNKNOWN_APPLICATION') throw new BootstrapError(code, 'the bootstrap server does not know this application token', true);
      problems.push(`${base}: ${code}`);
      continue;
    }
    try {
      return await verifyAccessPointList(bytes, key, appToken, now(), c);
    } catch (err) {
      last = err instanceof BootstrapError ? err : new BootstrapError('LK_SDK_PROTOCOL_ERROR', String(err));
      problems.push(`${base}: ${last.message}`);
    }
  }
  // A list that failed its checks says more than "unreachable" when nothing else worked.
  if (last && problems.length === o.urls.length) throw last;
  throw new BootstrapError('LK_SDK_BOOTSTRAP_FAILED', problems.join('; ') || 'no bootstrap URL configured');
}

/** Connection order: ascending priority; within one priority a weighted random permutation (weight 0 last). */
export function orderAccessPoints(points: readonly AccessPoint[], random: () => number = Math.random): AccessPoint[] {
  const byPriority = new Map<number, AccessPoint[]>();
  for (const p of points) {
    const g = byPriority.get(p.priority);
    if (g) g.push(p);
    else byPriority.set(p.priority, [p]);
  }
  const out: AccessPoint[] = [];
  for (const prio of [...byPriority.keys()].sort((a, b) => a - b)) {
    const pool = [...byPriority.get(prio)!];
    while (pool.length > 0) {
      const total = pool.reduce((s, p) => s + Math.max(0, p.weight), 0);
      let i = 0;
      if (total > 0) {
        let r = random() * total;
        i = pool.findIndex((p) => (r -= Math.max(0, p.weight)) < 0);
        if (i < 0) i = pool.length - 1;
      }
      out.push(pool.splice(i, 1)[0]!);
    }
  }
  return out;
}
