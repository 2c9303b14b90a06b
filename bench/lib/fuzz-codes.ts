/**
 * What the fuzzer saw the server answer, as a histogram, and which answers fall outside what
 * docs/protocol.md and docs/errors.md (src/errors.ts) promise. Keys read like
 * `ws.close.4523`, `ws.disconnect.LK_FRAME_MALFORMED`, `ws.connack.LK_HS_BAD_SIGNATURE`,
 * `http.admin.404.LK_NOT_FOUND`, `sync.FAILURE.LK_PROFILE_REQUIRED`.
 *
 * Unexpected: an internal error of any kind (HTTP 500, LK_INTERNAL, close 4011), a code that is not
 * in the catalogue, a close code that disagrees with the catalogue entry of the DISCONNECT or
 * CONNACK before it, an HTTP status that disagrees with the catalogue entry of the JSON body's code,
 * a CONNACK return code that disagrees with its errorCode, and server frames a client must never
 * get (masked, RSV bits, a frame out of the state machine's order).
 */
import { ConnackCode, ERRORS, isErrorCode } from '../../src/errors.js';

/** Close codes the catalogue assigns (each error's `close`), except LK_INTERNAL's. */
const CATALOGUE_CLOSES = new Set(Object.entries(ERRORS).filter(([k, v]) => v.close !== undefined && k !== 'LK_INTERNAL').map(([, v]) => v.close!));

/**
 * Transport-level endings the protocol document names: 1000 normal closure (DISCONNECT, client
 * close), 1009 (frame over the hard limit), and no close frame at all ("none", seen as 1006:
 * LK_FRAME_BAD_UTF8, LK_FRAME_OVER_HARD_LIMIT, and uWS's answer to RFC 6455 violations).
 */
const TRANSPORT_CLOSES = new Set([1000, 1009]);

export function wsCloseExpected(code: number | null | undefined): boolean {
  if (code === undefined) return true; // TCP closed without a close frame
  if (code === null) return false; // an empty close frame: the server always sends a code
  return TRANSPORT_CLOSES.has(code) || CATALOGUE_CLOSES.has(code);
}

/** HTTP statuses an answer may have: the catalogue's (except 500), the successes, and uWS's own refusals of bad HTTP. */
const HTTP_OK = new Set([101, 200, 201, 204, 400, 401, 403, 404, 405, 408, 409, 413, 429, 431, 503, 505]);
for (const v of Object.values(ERRORS)) if (v.http !== 500) HTTP_OK.add(v.http);

export interface Example {
  id: string;
  note: string;
}

export class Codes {
  readonly counts = new Map<string, number>();
  readonly unexpected = new Map<string, number>();
  /** The first input that produced each unexpected key. */
  readonly examples = new Map<string, Example>();

  add(key: string, expected: boolean, example?: Example): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (expected) return;
    this.unexpected.set(key, (this.unexpected.get(key) ?? 0) + 1);
    if (example && !this.examples.has(key)) this.examples.set(key, example);
  }

  get unexpectedTotal(): number {
    let n = 0;
    for (const v of this.unexpected.values()) n += v;
    return n;
  }
}

/** The close code the catalogue promises after DISCONNECT `errorCode`, or undefined if none is fixed. */
export function closeFor(errorCode: string): number | undefined {
  return isErrorCode(errorCode) ? ERRORS[errorCode].close : undefined;
}

export function disconnectExpected(errorCode: string | null, reason: number): boolean {
  if (errorCode === null) return false; // the server always names the code
  if (!isErrorCode(errorCode) || errorCode === 'LK_INTERNAL') return false;
  const spec = ERRORS[errorCode];
  if (spec.disconnect === undefined && spec.connack === undefined) return false;
  const want = { NONE: 0, BAD_REQUEST: 1, INTERNAL_ERROR: 2, CREDENTIALS_REVOKED: 3 }[spec.disconnect ?? 'BAD_REQUEST'];
  return reason === want;
}

export function connackExpected(returnCode: number, errorCode: string | null): boolean {
  if (returnCode === ConnackCode.ACCEPTED) return errorCode === null;
  if (errorCode === null || !isErrorCode(errorCode) || errorCode === 'LK_INTERNAL') return false;
  const spec = ERRORS[errorCode];
  return spec.connack !== undefined && ConnackCode[spec.connack] === returnCode;
}

export function httpExpected(status: number, code: string | null): boolean {
  if (!HTTP_OK.has(status)) return false;
  if (code === null) return true;
  if (!isErrorCode(code) || code === 'LK_INTERNAL') return false;
  return ERRORS[code].http === status;
}

/** The `code` of a JSON error body, or null. */
export function jsonCode(body: Buffer): string | null {
  if (body.length === 0 || body.length > 64 * 1024 || body[0] !== 0x7b) return null;
  try {
    const j = JSON.parse(body.toString('utf8')) as { code?: unknown };
    return typeof j.code === 'string' ? j.code : null;
  } catch {
    return null;
  }
}
