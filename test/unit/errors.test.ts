import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, type ErrorCode } from '../../src/errors.js';
import { catalogueRows, parseTable } from '../helpers/errors-doc.js';

const doc = fs.readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

describe('error catalogue', () => {
  it('docs/errors.md lists every code with the same HTTP status, close code, wire mapping and message', () => {
    expect(parseTable(doc)).toEqual(catalogueRows());
  });
  it('docs/errors.md lists no code the catalogue lacks', () => {
    const documented = [...doc.matchAll(/`(LK_[A-Z0-9_]+)`/g)].map((m) => m[1]);
    for (const code of documented) expect(Object.keys(ERRORS)).toContain(code);
  });
  it('close codes sit in the documented ranges and are unique', () => {
    const seen = new Map<number, string>();
    for (const [code, spec] of Object.entries(ERRORS)) {
      if (spec.close === undefined) continue;
      expect(spec.close).toBeGreaterThanOrEqual(4000);
      expect(spec.close).toBeLessThanOrEqual(4999);
      expect(seen.get(spec.close), `${code} reuses close ${spec.close}`).toBeUndefined();
      seen.set(spec.close, code);
    }
  });
  it('every handshake refusal and session-ending code has a close code', () => {
    for (const [code, spec] of Object.entries(ERRORS) as Array<[ErrorCode, (typeof ERRORS)[ErrorCode]]>) {
      if (spec.connack || spec.disconnect) expect(spec.close, code).toBeDefined();
    }
  });
  it('terminal refusals use 4500-4999, retryable ones 4000-4499', () => {
    for (const code of ['LK_HS_UNKNOWN_APPLICATION', 'LK_HS_BAD_SIGNATURE', 'LK_CRED_REVOKED', 'LK_CRED_IN_USE', 'LK_FRAME_MALFORMED'] as const) {
      expect(ERRORS[code].close).toBeGreaterThanOrEqual(4500);
    }
    for (const code of ['LK_SERVER_BUSY', 'LK_SERVER_UNAVAILABLE', 'LK_SERVER_SHUTDOWN', 'LK_HS_REPLAYED_NONCE', 'LK_KEEPALIVE_TIMEOUT'] as const) {
      expect(ERRORS[code].close).toBeLessThan(4500);
    }
  });
});
