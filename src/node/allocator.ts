/**
 * The malloc of a node's gateway processes (config `allocator`). A gateway process that has taken
 * many handshakes keeps, with glibc's malloc, much of the memory those handshakes freed: OpenSSL's
 * key objects, uWS's buffers and V8's transient backing stores are freed between long-lived
 * session allocations, and glibc returns freed memory to the system only from the top of a heap.
 * jemalloc, with a background thread that purges freed pages after a second, gives it back.
 * Measured with bench/sessions at 20,000 sessions over 2 gateway processes (docs/performance.md,
 * "Per-session memory"): gateway anonymous memory 6.3 KiB -> 3.7 KiB per idle session after the ramp.
 *
 * jemalloc is a system library (Debian: libjemalloc2), loaded with LD_PRELOAD into each forked
 * gateway process; the primary itself and a one-process node keep the allocator they started with.
 *   auto      jemalloc when the library is at one of JEMALLOC_PATHS, else the system malloc (logged)
 *   system    the system malloc (glibc)
 *   jemalloc  jemalloc, or the node does not start (LK_CONFIG_INVALID_VALUE: library not found)
 */
import fs from 'node:fs';
import { LatchkeyError } from '../errors.js';

export type AllocatorSetting = 'auto' | 'system' | 'jemalloc';

/** Where distributions install jemalloc's shared library. */
export const JEMALLOC_PATHS = [
  '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
  '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2',
  '/usr/lib64/libjemalloc.so.2',
  '/usr/lib/libjemalloc.so.2',
  '/usr/local/lib/libjemalloc.so.2',
];

/** Purge freed pages after 1 s from a background thread (an idle process purges too); no muzzy stage. */
export const JEMALLOC_CONF = 'background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0';

export interface AllocatorChoice {
  name: 'system' | 'jemalloc';
  /** Library path when jemalloc. */
  path: string | null;
  /** Environment to add to each gateway process. */
  env: Record<string, string>;
  /** Why this one, for the start-up log. */
  reason: string;
}

export function chooseAllocator(setting: AllocatorSetting, exists: (p: string) => boolean = fs.existsSync, inherited: NodeJS.ProcessEnv = process.env): AllocatorChoice {
  if (setting === 'system') return { name: 'system', path: null, env: {}, reason: 'allocator=system' };
  const found = JEMALLOC_PATHS.find((p) => exists(p)) ?? null;
  if (!found) {
    if (setting === 'jemalloc') throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `allocator=jemalloc but libjemalloc.so.2 is in none of ${JEMALLOC_PATHS.join(', ')} (Debian: apt-get install libjemalloc2)`);
    return { name: 'system', path: null, env: {}, reason: 'allocator=auto and no libjemalloc.so.2 found (Debian: apt-get install libjemalloc2)' };
  }
  const preload = [found, ...(inherited.LD_PRELOAD ?? '').split(/[: ]/).filter((p) => p && p !== found)].join(':');
  const conf = inherited.MALLOC_CONF ? `${JEMALLOC_CONF},${inherited.MALLOC_CONF}` : JEMALLOC_CONF;
  return { name: 'jemalloc', path: found, env: { LD_PRELOAD: preload, MALLOC_CONF: conf }, reason: `allocator=${setting}` };
}
