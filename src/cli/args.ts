/**
 * The command line as every latchkey command reads it: words, `--name value` / `--name=value`
 * options, the booleans --help (-h), --json and --force, and the configuration flags.
 *
 * A small parser of its own rather than node:util parseArgs, which cannot say the same thing
 * (checked on Node 20): it refuses an unknown option instead of letting the command name it
 * (LK_CONFIG_UNKNOWN_KEY, or "not an option of admin ..."), refuses `--help=false`, and takes
 * neither `--name -x` nor `--expires-in -5` as a value ("ambiguous").
 */
import fs from 'node:fs';
import { flagNames, loadConfig, type Config } from '../config/config.js';
import { LatchkeyError } from '../errors.js';

export interface Parsed {
  words: string[];
  opts: Record<string, string>;
  bools: Set<string>;
}

const BOOLEAN_FLAGS = new Set(['help', 'json', 'force']);

export function parseArgs(argv: string[]): Parsed {
  const out: Parsed = { words: [], opts: {}, bools: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h') {
      out.bools.add('help');
    } else if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (BOOLEAN_FLAGS.has(name)) {
        const v = eq > 0 ? a.slice(eq + 1) : 'true';
        if (v !== 'true' && v !== 'false') throw new LatchkeyError('LK_CLI_USAGE', `--${name} takes no value (or =true/=false)`);
        if (v === 'true') out.bools.add(name);
        continue;
      }
      const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new LatchkeyError('LK_CLI_USAGE', `--${name} needs a value`);
      out.opts[name] = value;
    } else {
      out.words.push(a);
    }
  }
  return out;
}

/** Options of the commands themselves; every other option must name a configuration field. */
const CLI_ONLY = new Set(['config', 'name', 'id', 'tenant', 'token', 'credentials', 'profile-schema', 'app', 'key', 'server-profile', 'out', 'admin-url', 'api-key', 'limit', 'cursor']);

/** The configuration: `--field-name VALUE` flags over --config FILE over LATCHKEY_* over defaults. */
export function configFrom(p: Parsed): Config {
  const flags: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.opts)) {
    if (CLI_ONLY.has(k)) continue;
    const field = Object.hasOwn(flagNames, k) ? flagNames[k] : undefined;
    if (!field) throw new LatchkeyError('LK_CONFIG_UNKNOWN_KEY', `--${k}`);
    flags[field] = v;
  }
  return loadConfig({ flags, ...(p.opts.config ? { configFile: p.opts.config } : {}) });
}

/** The value of a required option (LK_CLI_USAGE when it is missing or empty). */
export function need(p: Parsed, name: string): string {
  const v = p.opts[name];
  if (!v) throw new LatchkeyError('LK_CLI_USAGE', `--${name} is required`);
  return v;
}

/** The text of a file an option names (LK_BAD_ARGUMENT when it cannot be read). */
export function readFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new LatchkeyError('LK_BAD_ARGUMENT', `${file}: ${(err as Error).message}`);
  }
}
