/**
 * The latchkey CLI: `serve`, `keygen`, offline provisioning commands that work directly on the
 * configured store (offline.ts), and `admin ...`: wrappers over the admin REST API of a running
 * server (admin.ts, admin-client.ts), plus `admin create-key`, which works offline on the store.
 * Every command has --help (help.ts); errors print their catalogue code and exit 2 (usage) or 1.
 */
import { LatchkeyError, isErrorCode } from '../errors.js';
import { admin } from './admin.js';
import { parseArgs, type Parsed } from './args.js';
import { printHelp } from './help.js';
import { bootstrapKey, keygen } from './keygen.js';
import { app, credentials, registration, seed, tenant } from './offline.js';
import { serve } from './serve.js';

/** The commands by their first word; `help` and no word at all are the help (help.ts). */
const COMMANDS: Record<string, (p: Parsed) => Promise<void>> = {
  serve,
  keygen,
  tenant,
  app,
  credentials,
  registration,
  admin,
  'bootstrap-key': bootstrapKey,
  seed,
};

export async function run(argv: string[]): Promise<void> {
  const p = parseArgs(argv);
  const cmd = p.words[0] ?? '';
  if (p.bools.has('help') || cmd === 'help' || cmd === '') return printHelp(p);
  const command = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!command) throw new LatchkeyError('LK_CLI_USAGE', `unknown command ${cmd}`);
  return command(p);
}

/** Report a command's failure on stderr and exit: 2 for a usage or configuration error, else 1. */
export function fail(err: unknown): never {
  const code = err instanceof LatchkeyError ? err.code : (err as { code?: unknown })?.code;
  const shown = isErrorCode(code) ? code : 'LK_INTERNAL';
  process.stderr.write(`latchkey: ${shown}: ${(err as Error).message}\n`);
  if (shown === 'LK_INTERNAL' && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  process.exit(shown === 'LK_CLI_USAGE' || shown === 'LK_CONFIG_UNKNOWN_KEY' || shown === 'LK_CONFIG_INVALID_VALUE' ? 2 : 1);
}
