/**
 * Every help text of the CLI, by topic: `latchkey [<command>] --help`, `latchkey help <command>`,
 * `latchkey admin <group> --help`.
 */
import { LatchkeyError } from '../errors.js';
import type { Parsed } from './args.js';
import { DEFAULT_ADMIN_URL } from './admin-client.js';

const CONFIG_FLAGS_HELP = `Configuration flags (all commands that touch the store or serve):
  --config FILE           JSON configuration file (or LATCHKEY_CONFIG)
  --data-dir DIR          embedded store and key ring (LATCHKEY_DATA_DIR, default ./data)
  --<field-name> VALUE    any configuration field, e.g. --port 9443 --admin-port 9444
                          (docs/operations.md lists every field and its LATCHKEY_* variable)`;

const HELP: Record<string, string> = {
  '': `latchkey: endpoint connection server

Usage: latchkey <command> [options]

Commands:
  serve                       run the server (gateway + admin listener)
  keygen endpoint|server      generate RSA-2048 key pairs
  tenant create|list          manage tenants in the store
  app create|list             manage applications
  credentials provision|show  provision endpoint credentials (internal credentials service)
  registration provision      provision a server-side profile against credentials
  seed FILE                   apply a seed file (idempotent)
  bootstrap-key               print the bootstrap public key endpoints verify lists with
  admin ...                   manage a running server through its admin API (tenants,
                              applications, credentials, endpoints, sessions, keys);
                              admin create-key makes an API key offline

Run \`latchkey <command> --help\` for details. Add --json for machine-readable output.`,
  serve: `Usage: latchkey serve [--config FILE] [--<field-name> VALUE ...]

Runs the endpoint gateway (WebSocket ${'/ep/v1'}) and the admin listener (/healthz).
SIGTERM/SIGINT end sessions with DISCONNECT and exit.

${CONFIG_FLAGS_HELP}`,
  'bootstrap-key': `Usage: latchkey bootstrap-key [--data-dir DIR | --bootstrap-key-file FILE] [--json]
  Prints the public key of the key that signs bootstrap lists as a PEM on stdout (its key id and
  file on stderr), so \`latchkey bootstrap-key > bootstrap.pub.pem\` writes a file the SDK reads;
  --json prints { keyId, file, publicKeyPem, publicKeyDer (base64) }. Creates the key like \`serve\`
  would if it does not exist yet. Build it into endpoints (SDK option bootstrap.publicKey). The
  private key never leaves the file (mode 0600).`,
  keygen: `Usage:
  latchkey keygen endpoint --out PREFIX [--force]
      writes PREFIX.key.pem (PKCS#8, mode 0600) and PREFIX.pub.pem (SPKI); prints the key hash
  latchkey keygen server [--data-dir DIR]
      adds a new server key to the key ring in DIR/keys and makes it active (rotation: the
      previous active key stays valid for endpoints that still use it)`,
  tenant: `Usage:
  latchkey tenant create --name NAME [--id ID] [--json]
  latchkey tenant list [--json]

${CONFIG_FLAGS_HELP}`,
  app: `Usage:
  latchkey app create --tenant TENANT_ID --name NAME [--id ID] [--token APP_TOKEN]
                      [--credentials trustful|internal|PLUGIN] [--profile-schema FILE.avsc] [--json]
  latchkey app list --tenant TENANT_ID [--json]

${CONFIG_FLAGS_HELP}`,
  credentials: `Usage:
  latchkey credentials provision --app APP_ID --key PUBLIC_KEY.pem [--server-profile FILE.json] [--json]
  latchkey credentials show --app APP_ID --id KEY_HASH [--json]

${CONFIG_FLAGS_HELP}`,
  registration: `Usage:
  latchkey registration provision --app APP_ID (--id KEY_HASH | --key PUBLIC_KEY.pem) --server-profile FILE.json [--json]

${CONFIG_FLAGS_HELP}`,
  seed: `Usage: latchkey seed FILE [--json]

Applies a seed file of tenants, applications and credentials; objects that exist are kept.

${CONFIG_FLAGS_HELP}`,
};

const ADMIN_ENV_HELP = `Admin API connection (all admin commands except create-key):
  LATCHKEY_ADMIN_URL   base URL of the admin listener (default ${DEFAULT_ADMIN_URL}); or --admin-url URL
  LATCHKEY_API_KEY     API key lk_<id>.<secret>; or --api-key KEY (the environment is preferred:
                       command-line flags are visible to other users in \`ps\`)
Output: a table, or with --json the admin API's JSON answer. Errors print their catalogue code
(e.g. LK_AUTH_INVALID, LK_APP_NOT_FOUND) and exit 1; usage errors exit 2.`;

const ADMIN_HELP: Record<string, string> = {
  admin: `Usage: latchkey admin <group> <verb> [options] [--json]

Groups:
  create-key [--tenant ID] [--name N]       create an API key offline, on the store (no server needed)
  tenant create|list|get                    tenants
  app create|list|get                       applications
  credentials list|provision|status|revoke|notify-revoked
  registration provision                    server-side profiles
  endpoints list|get                        registered endpoints
  sessions list|kick                        live sessions on the node answering
  verifiers list|create|delete              an application's owner verifiers (attachUser checks tokens with them)
  server-keys list|add|retire               the server key ring of the node answering
  node show|drain                           the node answering, as bootstrap lists show it; drain it
  bans list|add|remove                      bans of key hashes, IP addresses/CIDRs, applications (root keys only)
  api-keys list|create|delete               admin API keys (root keys only)

Run \`latchkey admin <group> --help\` for details.

${ADMIN_ENV_HELP}`,
  'admin create-key': `Usage: latchkey admin create-key [--tenant TENANT_ID] [--name NAME] [--json]

Creates an admin API key directly in the store (works without a running server, e.g. when the
first key printed at start was lost). Without --tenant the key is a root key. The token
lk_<id>.<secret> is printed once; only its hash is stored.

${CONFIG_FLAGS_HELP}`,
  'admin tenant': `Usage:
  latchkey admin tenant create --name NAME [--id ID] [--json]      (root key)
  latchkey admin tenant list [--json]
  latchkey admin tenant get --id TENANT_ID [--json]

${ADMIN_ENV_HELP}`,
  'admin app': `Usage:
  latchkey admin app create --tenant TENANT_ID --name NAME [--id ID] [--token APP_TOKEN]
                            [--credentials trustful|internal|PLUGIN] [--profile-schema FILE.avsc] [--json]
  latchkey admin app list --tenant TENANT_ID [--json]
  latchkey admin app get --id APP_ID [--json]

${ADMIN_ENV_HELP}`,
  'admin credentials': `Usage:
  latchkey admin credentials list --app APP_ID [--status AVAILABLE|IN_USE|REVOKED] [--limit N] [--cursor CURSOR] [--json]
      one page by credentials id (default 100, at most 1000); the next page's cursor is printed on stderr
  latchkey admin credentials provision --app APP_ID --key PUBLIC_KEY.pem [--server-profile FILE.json] [--json]
  latchkey admin credentials status --app APP_ID --id KEY_HASH [--json]
  latchkey admin credentials revoke --app APP_ID --id KEY_HASH [--json]
      ends the endpoint's live session and refuses reconnects (terminal)
  latchkey admin credentials notify-revoked --app APP_ID --id KEY_HASH [--json]
      an external credentials store revoked them: drop cached status, end sessions

${ADMIN_ENV_HELP}`,
  'admin registration': `Usage:
  latchkey admin registration provision --app APP_ID (--id KEY_HASH | --key PUBLIC_KEY.pem)
                                        --server-profile FILE.json [--json]

${ADMIN_ENV_HELP}`,
  'admin endpoints': `Usage:
  latchkey admin endpoints list --app APP_ID [--limit N] [--cursor CURSOR] [--json]
      one page (default 100, at most 1000); the next page's cursor is printed on stderr
  latchkey admin endpoints get --app APP_ID --id KEY_HASH [--json]

${ADMIN_ENV_HELP}`,
  'admin sessions': `Usage:
  latchkey admin sessions list --app APP_ID [--json]
  latchkey admin sessions kick --app APP_ID --id KEY_HASH [--json]
      ends the endpoint's live session (LK_SESSION_KICKED); it may reconnect

${ADMIN_ENV_HELP}`,
  'admin node': `Usage (root key; the node that answers):
  latchkey admin node show [--json]     id, access point id, URL, priority, weight, load, draining
  latchkey admin node drain [--json]    leave the bootstrap lists and REDIRECT every endpoint to
                                        another node; the process keeps running (stop it after)`,
  'admin verifiers': `Usage:
  latchkey admin verifiers list --app APP_ID [--json]
  latchkey admin verifiers create --app APP_ID --type TYPE [--name NAME] [--config JSON|FILE] [--default yes|no] [--json]
      TYPE: trustful (accepts any token: development only), facebook, google, twitter, oidc, or a
      configured custom type; --config is checked against the type's Avro config schema. Prints the
      verifier token (SDK attachUser's third argument; the default verifier needs none)
  latchkey admin verifiers delete --app APP_ID --token VERIFIER_TOKEN [--json]

${ADMIN_ENV_HELP}`,
  'admin server-keys': `Usage (root key; the key ring of the node that answers):
  latchkey admin server-keys list [--json]             id, status and SPKI (base64 DER) of each key;
                                                       endpoints name the active one (SDK serverKey)
  latchkey admin server-keys add [--json]              add a key and make it active
  latchkey admin server-keys retire --id KEY_ID [--json]

${ADMIN_ENV_HELP}`,
  'admin bans': `Usage (root key; bans apply on every node):
  latchkey admin bans list [--json]
  latchkey admin bans add --kind keyHash|ip|app --value VALUE --reason TEXT
                          [--expires-in SECONDS | --expires-at TIME] [--json]
      VALUE: a key hash, an IPv4/IPv6 address or CIDR (10.0.0.0/8), or an application id.
      TIME: ISO 8601 (2030-01-31T12:00:00Z) or milliseconds since the epoch. Without an expiry the
      ban lasts until removed. Matching live sessions end at once (LK_BANNED); an IP ban turns the
      WebSocket upgrade away (HTTP 403), a key hash or application ban refuses the handshake
      before any RSA work. Adding a ban of the same kind and value replaces it.
  latchkey admin bans remove --kind keyHash|ip|app --value VALUE [--json]

${ADMIN_ENV_HELP}`,
  'admin api-keys': `Usage (root key):
  latchkey admin api-keys list [--json]
  latchkey admin api-keys create --name NAME [--tenant TENANT_ID] [--json]   prints the token once
  latchkey admin api-keys delete --id KEY_ID [--json]

${ADMIN_ENV_HELP}`,
};

/** Print the help text the words ask for (`help` itself dropped); an unknown topic is LK_CLI_USAGE. */
export function printHelp(p: Parsed): void {
  const words = p.words[0] === 'help' ? p.words.slice(1) : p.words;
  const topic = words[0] === 'admin' && words[1] ? `admin ${words[1]}` : (words[0] ?? '');
  const texts = topic.startsWith('admin') ? ADMIN_HELP : HELP;
  const text = Object.hasOwn(texts, topic) ? texts[topic] : undefined;
  if (text === undefined) throw new LatchkeyError('LK_CLI_USAGE', `unknown command ${topic}`);
  process.stdout.write(text + '\n');
}
