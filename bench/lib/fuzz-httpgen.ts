/**
 * HTTP input of the fuzzer: requests to the bootstrap route and other paths of the gateway, and
 * to the admin listener (every route of src/admin/routes.ts, /healthz, /metrics), with bad
 * percent-escapes in path parameters, odd and garbage methods, bodies generated from each route's
 * declared schema and then broken, lying or malformed framing (Content-Length, chunked), odd
 * headers and Authorization values, with and without a valid API key.
 *
 * Each input says whether it is a complete, well-formed request (`complete`): only those must get
 * an answer within the hang bound. Truncated or ill-framed ones may be left waiting by the server
 * (it cannot know the body will never come); the fuzzer gives them a short wait and moves on.
 *
 * Requests that would stop the fuzz run itself (drain this node, add or retire server keys, delete
 * API keys, revoke the session workers' credentials) never carry a valid key: their parameter
 * parsing and authentication are still fuzzed.
 */
import type { JsonSchema } from '../../src/admin/http.js';
import { adminRoutes, type AdminDeps } from '../../src/admin/routes.js';
import { BOOTSTRAP_PATH } from '../../src/bootstrap/service.js';
import { bootstrapBody } from './fuzz-gen.js';
import { badUtf8String } from './fuzz-mutate.js';
import type { Rng } from './fuzz-rng.js';

export interface RouteInfo {
  method: string;
  path: string;
  body?: JsonSchema;
  query?: Record<string, JsonSchema>;
}

/** Method, path and schemas of every admin route, read from the route table itself. */
export function adminRouteTable(): RouteInfo[] {
  try {
    // The handlers close over the dependencies and are never called here.
    return adminRoutes({} as AdminDeps).map((r) => ({ method: r.method, path: r.path, ...(r.body ? { body: r.body } : {}), ...(r.query ? { query: r.query } : {}) }));
  } catch {
    return [
      { method: 'GET', path: '/admin/v1/tenants/{tenantId}' },
      { method: 'GET', path: '/admin/v1/applications/{appId}' },
      { method: 'GET', path: '/admin/v1/applications/{appId}/endpoints/{keyHash}' },
    ];
  }
}

/** Routes that change the node under the fuzzer's feet; never sent with a valid key. */
const DANGEROUS = new Set([
  'POST /admin/v1/node/drain',
  'POST /admin/v1/server-keys',
  'POST /admin/v1/server-keys/{keyId}/retire',
  'DELETE /admin/v1/api-keys/{keyId}',
]);
/** Routes whose keyHash/credentialsId must not name a session worker's key (revocation ends it for good). */
const NO_SESSION_KEYS = /\/(revoke|notify-revoked)$|\/registrations\//;

export interface HttpContext {
  routes: RouteInfo[];
  rootKey: string;
  tenantKey: string | null;
  tenantIds: string[];
  appIds: string[];
  appTokens: string[];
  /** Key hashes the fuzzer may revoke, kick, detach (probe keys). */
  probeKeyHashes: string[];
  /** Key hashes of the held sessions: only for routes that read. */
  sessionKeyHashes: string[];
  owners: string[];
  verifierTokens: string[];
  publicKeyPems: string[];
}

export interface HttpInput {
  target: 'gateway' | 'admin';
  chunks: Buffer[];
  /** Answers expected (pipelined requests). */
  expect: number;
  /** Per expected answer: a HEAD request (no body in its answer). */
  heads: boolean[];
  /** A well-formed, complete request: it must be answered within the hang bound. */
  complete: boolean;
  tag: string;
  /** Every generator choice (path, auth, body, framing, headers): notes for a report. */
  tags: string[];
}

export const BAD_ESCAPES = ['%ZZ', '%', '%E0%A4%A', '%C3%28', '%ED%A0%80', '%FF', 'a%2', '%%', '%u0041', '%C0%AF', '%F4%90%80%80', '%E2%82', '%0'];

function paramValue(rng: Rng, name: string, ctx: HttpContext, route: RouteInfo, validKey: boolean): { v: string; tag: string } {
  const kind = rng.weighted<string>([
    [5, 'pool'],
    [2, 'badEscape'],
    [1, 'goodEscape'],
    [1, 'random'],
    [1, 'odd'],
  ]);
  if (kind === 'badEscape') {
    const e = rng.pick(BAD_ESCAPES);
    return { v: rng.pick([e, `x${e}`, `${e}y`, `ok${e}ok`, `${e}${e}`]), tag: 'badEscape' };
  }
  if (kind === 'goodEscape') return { v: rng.pick(['%2F', '%20', '%C3%A9t%C3%A9', '%F0%9F%98%80', 'a%2Fb', '%2E%2E', '%00', '%25ZZ']), tag: 'goodEscape' };
  if (kind === 'random') return { v: rng.bytes(rng.range(1, 40)).toString('base64url'), tag: 'random' };
  if (kind === 'odd') return { v: rng.pick(['..', '.', 'x'.repeat(rng.range(65, 3000)), '0', '-1', "'", '"', '<script>', '{tenantId}', '*', ';', '~', 'a+b', '@']), tag: 'odd' };
  let pool: string[];
  switch (name) {
    case 'tenantId':
      pool = ctx.tenantIds;
      break;
    case 'appId':
      pool = ctx.appIds;
      break;
    case 'keyHash':
    case 'credentialsId':
      pool = NO_SESSION_KEYS.test(route.path) || route.method !== 'GET' || !validKey ? ctx.probeKeyHashes : [...ctx.probeKeyHashes, ...ctx.sessionKeyHashes];
      break;
    case 'ownerExternalId':
      pool = ctx.owners;
      break;
    case 'verifierToken':
      pool = ctx.verifierTokens.length ? ctx.verifierTokens : ['none'];
      break;
    default:
      pool = ['AAAAAAAAAAAAAAAA', 'nope'];
  }
  return { v: encodeURIComponent(rng.pick(pool.length ? pool : ['x'])), tag: 'pool' };
}

function authHeader(rng: Rng, ctx: HttpContext, allowValid: boolean): { value: string | null; valid: boolean; tag: string } {
  const r = rng.weighted<string>([
    [allowValid ? 6 : 0, 'root'],
    [allowValid && ctx.tenantKey ? 2 : 0, 'tenant'],
    [1, 'none'],
    [1, 'unknownId'],
    [1, 'wrongSecret'],
    [1, 'junk'],
  ]);
  const [, id] = /^lk_([^.]+)\./.exec(ctx.rootKey) ?? [];
  switch (r) {
    case 'root':
      return { value: rng.chance(0.9) ? `Bearer ${ctx.rootKey}` : `bearer   ${ctx.rootKey}  `, valid: true, tag: 'auth.root' };
    case 'tenant':
      return { value: `Bearer ${ctx.tenantKey}`, valid: true, tag: 'auth.tenant' };
    case 'none':
      return { value: null, valid: false, tag: 'auth.none' };
    case 'unknownId':
      return { value: `Bearer lk_${rng.bytes(12).toString('base64url')}.${rng.bytes(32).toString('base64url')}`, valid: false, tag: 'auth.unknownId' };
    case 'wrongSecret':
      return { value: `Bearer lk_${id}.${rng.bytes(32).toString('base64url')}`, valid: false, tag: 'auth.wrongSecret' };
    default:
      return {
        value: rng.pick(['', 'Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', `Bearer ${ctx.rootKey}x`, `Bearer ${ctx.rootKey.slice(0, -1)}`, `Bearer lk_${'A'.repeat(16)}.${'A'.repeat(43)}`, 'Bearer ' + 'x'.repeat(rng.range(100, 9000)), `Bearer ${ctx.rootKey} ${ctx.rootKey}`]),
        valid: false,
        tag: 'auth.junk',
      };
  }
}

/** A JSON value for `schema`, near its limits, sometimes of the wrong type. */
function jsonValue(rng: Rng, schema: JsonSchema, ctx: HttpContext, name: string, depth: number): unknown {
  if (rng.chance(0.06)) return rng.pick<unknown>([null, 1, -1, 1.5, 'str', true, [], {}, 1e308, '\u0000']);
  if (schema.nullable && rng.chance(0.15)) return null;
  switch (schema.type) {
    case 'string': {
      if (name === 'publicKey') return rng.pick([...ctx.publicKeyPems, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', 'not a key', 'x'.repeat(8193), rng.bytes(300).toString('base64')]);
      if (name === 'tenantId') return rng.pick([...ctx.tenantIds, 'fuzz-new-' + rng.int(1000), '', 'bad id!', 'x'.repeat(65)]);
      if (name === 'pluginTypeName') return rng.pick(['trustful', 'oidc', 'google', 'facebook', 'twitter', 'nope', '']);
      if (name === 'credentialsService') return rng.pick(['trustful', 'internal', 'nope', '']);
      if (name === 'verifierToken') return rng.pick([...ctx.verifierTokens, 'nope']);
      if (schema.enum) return rng.chance(0.8) ? rng.pick(schema.enum) : 'NOT_AN_ENUM';
      const min = schema.minLength ?? 0;
      const max = schema.maxLength ?? 64;
      const len = rng.pick([min, max, Math.max(0, min - 1), max + 1, rng.range(min, Math.min(max, 80))]);
      if (rng.chance(0.1)) return badUtf8String(rng).toString('latin1');
      if (name === 'id' || name === 'appToken') return rng.pick(['fz', 'fz-', 'fz_', 'fz.']) + rng.bytes(Math.max(1, len)).toString('base64url').slice(0, Math.max(0, len - 3));
      return rng.pick(['a', '\u00e9', '\u{1f600}', ' ', '"', '\\']).repeat(Math.max(0, len));
    }
    case 'integer':
      return rng.pick([schema.minimum ?? 0, schema.maximum ?? 1000, (schema.minimum ?? 0) - 1, (schema.maximum ?? 1000) + 1, 1.5, Number.MAX_SAFE_INTEGER, -0]);
    case 'boolean':
      return rng.chance(0.9) ? rng.chance(0.5) : 'true';
    case 'array':
      return depth > 4 ? [] : Array.from({ length: rng.int(4) }, () => jsonValue(rng, schema.items ?? { type: 'string' }, ctx, name, depth + 1));
    case 'object': {
      if (!schema.properties) return randomObject(rng, name, depth);
      const out: Record<string, unknown> = {};
      for (const [k, sub] of Object.entries(schema.properties)) {
        const required = schema.required?.includes(k) ?? false;
        if (required ? rng.chance(0.95) : rng.chance(0.5)) out[k] = jsonValue(rng, sub, ctx, k, depth + 1);
      }
      if (rng.chance(0.08)) out[rng.pick(['unknown', '__proto__', 'constructor', ''])] = rng.pick([1, {}, 'x']);
      return out;
    }
  }
}

/** A free-form object (profile schemas, server profiles, verifier configurations). */
function randomObject(rng: Rng, name: string, depth: number): unknown {
  if (name === 'profileSchema') {
    return rng.weighted<() => unknown>([
      [3, () => ({ type: 'record', name: 'P', fields: [{ name: 'n', type: rng.pick(['int', 'string', 'bytes', 'nope', ['null', 'int']]) }] })],
      [1, () => ({ type: 'record', name: rng.pick(['', '1bad', 'P']), fields: rng.pick([[], null, 'x', [{}]]) })],
      [1, () => ({ type: rng.pick(['array', 'map', 'enum', 'fixed', 'bogus']), items: 'int', values: 'int', symbols: ['A', 'A'], size: -1, name: 'E' })],
      [1, () => {
        let s: unknown = 'int';
        for (let i = 0; i < rng.range(10, 200); i++) s = { type: 'array', items: s };
        return s;
      }],
    ])();
  }
  if (depth > 3) return {};
  const out: Record<string, unknown> = {};
  for (let i = rng.int(4); i > 0; i--) out[rng.pick(['a', 'room', 'clientId', 'issuer', 'audience', 'x'.repeat(300)])] = rng.pick<unknown>([1, 'v', null, [1, 2], { deep: true }, randomObject(rng, name, depth + 1)]);
  return out;
}

function deepJson(n: number): string {
  return '['.repeat(n) + ']'.repeat(n);
}

/** The body text of a request to `route` (JSON from its schema, then perhaps broken). */
function bodyFor(rng: Rng, route: RouteInfo | null, ctx: HttpContext): { body: Buffer; tag: string } {
  const kind = rng.weighted<string>([
    [route?.body ? 10 : 1, 'schema'],
    [route?.body ? 1 : 6, 'none'],
    [1, 'brokenJson'],
    [1, 'notObject'],
    [1, 'huge'],
    [1, 'deep'],
    [1, 'binary'],
  ]);
  switch (kind) {
    case 'schema':
      return { body: Buffer.from(JSON.stringify(route?.body ? jsonValue(rng, route.body, ctx, '', 0) : { x: 1 }), 'utf8'), tag: 'body.schema' };
    case 'none':
      return { body: Buffer.alloc(0), tag: 'body.none' };
    case 'brokenJson': {
      const s = JSON.stringify(route?.body ? jsonValue(rng, route.body, ctx, '', 0) : { a: 1 });
      return { body: Buffer.from(rng.pick([s.slice(0, rng.int(s.length)), s + '}', '\ufeff' + s, s.replace(':', ''), "{'a':1}", '{"a":1,}', 'NaN']), 'utf8'), tag: 'body.brokenJson' };
    }
    case 'notObject':
      return { body: Buffer.from(rng.pick(['[]', '"s"', '1', 'null', 'true', '[{}]']), 'utf8'), tag: 'body.notObject' };
    case 'huge':
      return { body: Buffer.from(JSON.stringify({ name: 'x'.repeat(rng.pick([64 * 1024, 70 * 1024, 200 * 1024])) }), 'utf8'), tag: 'body.huge' };
    case 'deep':
      return { body: Buffer.from(rng.chance(0.5) ? deepJson(rng.pick([1000, 10_000, 30_000])) : '{"name":' + deepJson(5000) + '}', 'utf8'), tag: 'body.deep' };
    default:
      return { body: Buffer.concat([Buffer.from('{"name":"'), badUtf8String(rng), Buffer.from('"}')]), tag: 'body.badUtf8' };
  }
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'PATCH', 'OPTIONS'];
const ODD_METHODS = ['FOO', 'get', 'G3T', 'CONNECT', 'TRACE', 'PROPFIND', 'X'.repeat(300), 'GET\u0000'];

interface Framing {
  head: string;
  body: Buffer;
  complete: boolean;
  tag: string;
}

/** Frame a request: exact Content-Length usually; sometimes lying, malformed, duplicated or chunked. */
function frame(rng: Rng, head: string, body: Buffer, allowOdd: boolean, answersBeforeBody: boolean): Framing {
  const kind = allowOdd
    ? rng.weighted<string>([
        [14, 'exact'],
        [1, 'noLength'],
        [1, 'longer'],
        [1, 'shorter'],
        [1, 'junkLength'],
        [1, 'hugeLength'],
        [1, 'duplicate'],
        [2, 'chunked'],
        [1, 'badChunked'],
        [1, 'expect100'],
      ])
    : 'exact';
  const withLen = (v: string | number): string => `${head}Content-Length: ${v}\r\n`;
  switch (kind) {
    case 'noLength':
      // A body without a length is the start of the next request.
      return { head, body, complete: body.length === 0, tag: 'frame.noLength' };
    case 'longer':
      return { head: withLen(body.length + rng.range(1, 5000)), body, complete: false, tag: 'frame.lengthLonger' };
    case 'shorter':
      return { head: withLen(Math.max(0, body.length - rng.range(1, 10))), body, complete: body.length === 0, tag: 'frame.lengthShorter' };
    case 'junkLength':
      return { head: withLen(rng.pick(['abc', '-1', '1.5', '0x10', ' 5', '', '99999999999999999999999', '+3'])), body, complete: false, tag: 'frame.lengthJunk' };
    case 'hugeLength': {
      // The admin API refuses a declared length over its limit before reading: that one must be
      // answered. Lengths past 2^32 are uWS's to refuse (it closes the connection).
      const n = rng.pick([70_000, 1e9, 2 ** 53]);
      return { head: withLen(n), body: Buffer.alloc(0), complete: answersBeforeBody && n === 70_000, tag: 'frame.lengthHuge' };
    }
    case 'duplicate':
      return { head: `${withLen(body.length)}Content-Length: ${body.length + 1}\r\n`, body, complete: false, tag: 'frame.lengthDuplicate' };
    case 'chunked': {
      const parts: Buffer[] = [];
      for (let i = 0; i < body.length; ) {
        const n = rng.range(1, 64);
        const c = body.subarray(i, i + n);
        parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
        i += n;
      }
      parts.push(Buffer.from('0\r\n\r\n'));
      return { head: `${head}Transfer-Encoding: chunked\r\n`, body: Buffer.concat(parts), complete: true, tag: 'frame.chunked' };
    }
    case 'badChunked':
      return { head: `${head}Transfer-Encoding: chunked\r\n`, body: Buffer.concat([Buffer.from(rng.pick(['zz\r\n', 'ffffffffffffffff\r\n', '5\r\nab', '-1\r\n', '3;ext=1\r\nabc\r\n0\r\n\r\n'])), body]), complete: false, tag: 'frame.badChunked' };
    case 'expect100':
      return { head: `${withLen(body.length)}Expect: 100-continue\r\n`, body, complete: false, tag: 'frame.expect100' };
    default:
      return { head: withLen(body.length), body, complete: true, tag: 'frame.exact' };
  }
}

function oddHeaders(rng: Rng): { text: string; complete: boolean; tag: string } {
  if (!rng.chance(0.12)) return { text: '', complete: true, tag: '' };
  return rng.pick([
    { text: `X-Long: ${'a'.repeat(rng.range(4000, 20_000))}\r\n`, complete: false, tag: 'hdr.long' },
    { text: Array.from({ length: rng.range(50, 300) }, (_, i) => `X-H${i}: v\r\n`).join(''), complete: false, tag: 'hdr.many' },
    { text: 'NoColonHere\r\n', complete: false, tag: 'hdr.noColon' },
    { text: 'X-Fold: a\r\n  b\r\n', complete: false, tag: 'hdr.obsFold' },
    { text: 'X-Nul: a\u0000b\r\n', complete: false, tag: 'hdr.nul' },
    { text: 'X-Bytes: \u00ff\u00fe\r\n', complete: true, tag: 'hdr.latin1' },
    { text: 'Content-Type: application/json; charset=utf-16\r\n', complete: true, tag: 'hdr.contentType' },
    { text: 'Origin: http://evil.example\r\n', complete: true, tag: 'hdr.origin' },
  ]);
}

/** An admin-listener request. */
function adminRequest(rng: Rng, ctx: HttpContext): HttpInput {
  const r = rng.weighted<string>([
    [20, 'route'],
    [1, 'healthz'],
    [1, 'metrics'],
    [1, 'unknownPath'],
    [1, 'openapi'],
  ]);
  let route: RouteInfo | null = null;
  let path: string;
  const tags: string[] = [];
  let method: string;
  let dangerous = false;
  if (r === 'route') {
    route = rng.pick(ctx.routes);
    dangerous = DANGEROUS.has(`${route.method} ${route.path}`);
    const auth0 = authHeader(rng, ctx, !dangerous);
    method = rng.chance(0.85) ? route.method : rng.chance(0.8) ? rng.pick(METHODS) : rng.pick(ODD_METHODS);
    const paramTags: string[] = [];
    path = route.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
      const p = paramValue(rng, name, ctx, route!, auth0.valid);
      paramTags.push(p.tag);
      return p.v;
    });
    // Any parameter with a bad escape makes the input a bad-escape one (the quarantine key of a crash).
    tags.push(`admin.path.${paramTags.includes('badEscape') ? 'badEscape' : paramTags[0] ?? 'static'}`);
    if (rng.chance(0.1)) {
      const q = rng.pick(['limit=abc', 'limit=0', 'limit=1001', 'limit=5', 'cursor=%ZZ', 'cursor=', 'unknown=1', 'limit=1&limit=2', '%ZZ=1', '&&&', 'a=%E0%A4%A']);
      path += `?${q}`;
      tags.push('admin.query');
    }
    tags.push(auth0.tag);
    return finishRequest(rng, ctx, 'admin', method, path, auth0.value, route, tags, true);
  }
  const auth = authHeader(rng, ctx, true);
  method = rng.chance(0.7) ? 'GET' : rng.pick([...METHODS, ...ODD_METHODS]);
  path = r === 'healthz' ? rng.pick(['/healthz', '/healthz?x=1', '/healthz/', '/HEALTHZ']) : r === 'metrics' ? rng.pick(['/metrics', '/metrics?name[]=x']) : r === 'openapi' ? '/admin/openapi.json' : rng.pick(['/', '/admin', '/admin/', '/admin/v1', '/admin/v2/tenants', '/admin/v1/%ZZ', '/admin/v1/tenants/' + 'a/'.repeat(200), '/x%00y', '//admin/v1/tenants']);
  tags.push(`admin.${r}`, auth.tag);
  return finishRequest(rng, ctx, 'admin', method, path, auth.value, null, tags, true);
}

function finishRequest(rng: Rng, ctx: HttpContext, target: 'gateway' | 'admin', method: string, path: string, auth: string | null, route: RouteInfo | null, tags: string[], answersBeforeBody: boolean): HttpInput {
  const version = rng.chance(0.97) ? 'HTTP/1.1' : rng.pick(['HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', '', 'http/1.1']);
  // Methods uWS does not know it refuses by closing the connection: not a request that must be answered.
  const methodOk = METHODS.includes(method);
  const pathOk = /^[\x21-\x7e]+$/.test(path) && path.length < 4000;
  // HTTP/1.1 requires Host; a server must answer its absence with 400 (RFC 9112 3.2).
  const noHost = rng.chance(0.03);
  let head = `${method} ${path}${version ? ' ' + version : ''}\r\n${noHost ? '' : 'Host: 127.0.0.1\r\n'}`;
  if (auth !== null) head += `Authorization: ${auth}\r\n`;
  const odd = oddHeaders(rng);
  if (odd.tag) tags.push(odd.tag);
  head += odd.text;
  const b = bodyFor(rng, route, ctx);
  const body = b.body;
  tags.push(b.tag);
  const f = frame(rng, head, body, true, answersBeforeBody);
  tags.push(f.tag);
  const bytes = Buffer.concat([Buffer.from(f.head + '\r\n', 'latin1'), f.body]);
  // uWS 20.30 serves HTTP/1.1 with a Host header only: an HTTP/1.0 request or one without Host is
  // never answered and is closed at uWS's idle timeout (~10 s). That is the transport's documented
  // behaviour (docs/operations.md), not a hang of latchkey's: such requests expect no answer (the
  // connection must still close within hangMs).
  const complete = f.complete && odd.complete && methodOk && pathOk && version === 'HTTP/1.1' && !noHost;
  const chunks = splitChunks(rng, bytes);
  return { target, chunks, expect: 1, heads: [method === 'HEAD'], complete, tag: noHost ? 'http.noHost' : primaryTag(tags[0]!, version, chunks, f.body.length), tags: [...tags, `${method} ${version || '(no version)'}`, `${chunks.length} writes`] };
}

/**
 * The input's category (the quarantine key of a crash or repeated hang): structural oddities
 * first (an HTTP version other than 1.1, a request written in several pieces), then what it asks.
 */
function primaryTag(tag: string, version: string, chunks: Buffer[], bodyBytes: number): string {
  if (version !== 'HTTP/1.1') return `http.version.${version || 'none'}`;
  if (chunks.length > 1) return `http.split.${bodyBytes === 0 ? 'noBody' : 'body'}`;
  return tag;
}

/** Sometimes write a request in several pieces (a parser must not depend on one read). */
function splitChunks(rng: Rng, b: Buffer): Buffer[] {
  if (!rng.chance(0.1) || b.length < 4) return [b];
  const out: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    const n = rng.range(1, Math.max(1, b.length >> 1));
    out.push(b.subarray(i, i + n));
    i += n;
  }
  return out;
}

/** A gateway request: the bootstrap route, WebSocket upgrades gone wrong, other paths. */
function gatewayRequest(rng: Rng, ctx: HttpContext): HttpInput {
  const r = rng.weighted<string>([
    [10, 'bootstrap'],
    [2, 'bootstrapOtherMethod'],
    [2, 'badUpgrade'],
    [1, 'otherPath'],
  ]);
  if (r === 'bootstrap') {
    const b = bootstrapBody(rng, ctx.appTokens);
    const big = rng.chance(0.05);
    const body = big ? Buffer.concat([b.body, Buffer.alloc(rng.range(4097, 20_000))]) : b.body;
    let head = `POST ${rng.chance(0.95) ? BOOTSTRAP_PATH : BOOTSTRAP_PATH + rng.pick(['?x=1', '/', '%ZZ', '?%ZZ'])} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
    if (rng.chance(0.8)) head += 'Content-Type: application/octet-stream\r\n';
    const odd = oddHeaders(rng);
    head += odd.text;
    const f = frame(rng, head, body, true, false);
    const bytes = Buffer.concat([Buffer.from(f.head + '\r\n', 'latin1'), f.body]);
    const pipelined = f.complete && odd.complete && rng.chance(0.1) ? rng.range(2, 3) : 1;
    const chunks = splitChunks(rng, pipelined > 1 ? Buffer.concat(Array.from({ length: pipelined }, () => bytes)) : bytes);
    return { target: 'gateway', chunks, expect: pipelined, heads: new Array<boolean>(pipelined).fill(false), complete: f.complete && odd.complete, tag: primaryTag(`gateway.${b.tag}${big ? '.big' : ''}`, 'HTTP/1.1', chunks, f.body.length), tags: [f.tag, odd.tag, `pipelined ${pipelined}`, `${chunks.length} writes`] };
  }
  if (r === 'bootstrapOtherMethod') {
    const method = rng.pick([...METHODS.filter((m) => m !== 'POST'), ...ODD_METHODS]);
    let head = `${method} ${BOOTSTRAP_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
    if (method === 'OPTIONS') head += 'Origin: http://example.com\r\nAccess-Control-Request-Method: POST\r\n';
    const bytes = Buffer.from(head + 'Content-Length: 0\r\n\r\n', 'latin1');
    return { target: 'gateway', chunks: [bytes], expect: 1, heads: [method === 'HEAD'], complete: METHODS.includes(method), tag: 'gateway.bootstrap.method', tags: [method] };
  }
  if (r === 'badUpgrade') {
    const h: Record<string, string> = { Host: '127.0.0.1', Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' };
    const defect = rng.int(9);
    if (defect === 0) delete h['Sec-WebSocket-Key'];
    if (defect === 1) h['Sec-WebSocket-Key'] = rng.pick(['', 'short', '!!!!', 'x'.repeat(500)]);
    if (defect === 2) h['Sec-WebSocket-Version'] = rng.pick(['8', '', '99', 'abc']);
    if (defect === 3) h.Upgrade = rng.pick(['h2c', 'WebSocket', '']);
    if (defect === 4) h['Sec-WebSocket-Protocol'] = rng.pick(['', ',,,', 'latchkey.v1, latchkey.v1', 'x'.repeat(3000), 'a,'.repeat(500)]);
    if (defect === 5) h['Sec-WebSocket-Extensions'] = rng.pick(['permessage-deflate', 'permessage-deflate; client_max_window_bits=8', 'x-unknown; a=1']);
    if (defect === 6) delete h.Connection;
    const path = defect === 7 ? rng.pick(['/ep/v2', '/ep/v1/', '/ep/v1?x=1', '/EP/V1', '/ep/v1%ZZ', '/ep/%76%31']) : '/ep/v1';
    const method = defect === 8 ? rng.pick(['POST', 'PUT', 'HEAD']) : 'GET';
    let s = `${method} ${path} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(h)) s += `${k}: ${v}\r\n`;
    return { target: 'gateway', chunks: [Buffer.from(s + '\r\n', 'latin1')], expect: 1, heads: [method === 'HEAD'], complete: true, tag: `gateway.upgrade.d${defect}`, tags: [method, path] };
  }
  const auth = rng.chance(0.2) ? `Bearer ${ctx.rootKey}` : null;
  return finishRequest(rng, ctx, 'gateway', rng.chance(0.7) ? 'GET' : rng.pick([...METHODS, ...ODD_METHODS]), rng.pick(['/', '/ep', '/ep/v1', '/admin/v1/tenants', '/healthz', '/%ZZ', '/bootstrap/v1', '/bootstrap/v1/resolve/x', '/' + 'a'.repeat(5000)]), auth, null, ['gateway.otherPath'], false);
}

export function httpInput(rng: Rng, ctx: HttpContext): HttpInput {
  return rng.chance(0.35) ? gatewayRequest(rng, ctx) : adminRequest(rng, ctx);
}
