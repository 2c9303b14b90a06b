/**
 * docs/protocol.md section 3: generated application tokens are 22 base64url characters that begin
 * with a letter or a digit, never `-` (which command-line parsers take for an option) or `_`.
 */
import { describe, expect, it } from 'vitest';
import { randomToken } from '../../src/tenancy/provision.js';

describe('generated application tokens', () => {
  it('never begin with "-" or "_" (1 draw in 32 would without the redraw: 20,000 draws cover it)', () => {
    for (let i = 0; i < 20_000; i++) expect(randomToken()).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{21}$/);
  });
  it('are distinct', () => {
    const seen = new Set(Array.from({ length: 1000 }, () => randomToken()));
    expect(seen.size).toBe(1000);
  });
});
