import { describe, expect, it } from 'vitest';
import { chooseAllocator, JEMALLOC_CONF, JEMALLOC_PATHS } from '../../src/node/allocator.js';

const lib = JEMALLOC_PATHS[0]!;
const has = (p: string): boolean => p === lib;
const none = (): boolean => false;

describe('chooseAllocator (config allocator)', () => {
  it('auto takes jemalloc when the library is installed, with background purging', () => {
    const c = chooseAllocator('auto', has, {});
    expect(c).toMatchObject({ name: 'jemalloc', path: lib, env: { LD_PRELOAD: lib, MALLOC_CONF: JEMALLOC_CONF } });
  });
  it('auto falls back to the system malloc and says why', () => {
    const c = chooseAllocator('auto', none, {});
    expect(c.name).toBe('system');
    expect(c.env).toEqual({});
    expect(c.reason).toMatch(/no libjemalloc/);
  });
  it('system never preloads anything', () => {
    expect(chooseAllocator('system', has, {})).toMatchObject({ name: 'system', env: {} });
  });
  it('jemalloc without the library is a coded configuration error', () => {
    expect(() => chooseAllocator('jemalloc', none, {})).toThrow(expect.objectContaining({ code: 'LK_CONFIG_INVALID_VALUE' }));
  });
  it("keeps the operator's own LD_PRELOAD and MALLOC_CONF (theirs last, so their options win)", () => {
    const c = chooseAllocator('jemalloc', has, { LD_PRELOAD: '/opt/x.so', MALLOC_CONF: 'narenas:2' });
    expect(c.env.LD_PRELOAD).toBe(`${lib}:/opt/x.so`);
    expect(c.env.MALLOC_CONF).toBe(`${JEMALLOC_CONF},narenas:2`);
  });
});
