/**
 * Deprecation warnings of plugin loading, each logged once per process: a node loads its plugins
 * once per start, but owner verifier modules are imported again for every verifier created, and a
 * warning per verifier would bury the one line an operator has to act on.
 */
import type { Logger } from 'pino';

const warned = new Set<string>();

/** Log `msg` at warn level unless a warning with the same key was logged before in this process. */
export function warnDeprecatedOnce(log: Logger, key: string, fields: Record<string, unknown>, msg: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  log.warn({ deprecated: true, ...fields }, msg);
}
