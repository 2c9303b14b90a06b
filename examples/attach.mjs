/**
 * Ownership, as in Kaa: endpoint A attaches itself to owner "alice" (the application's default
 * owner verifier checks her token), endpoint B publishes an endpoint access token, and A attaches
 * B to alice with it; B is notified.
 *
 *   LATCHKEY_SDK_URL=... LATCHKEY_SDK_APP_TOKEN=... LATCHKEY_SDK_SERVER_KEY_ID=... \
 *   LATCHKEY_SDK_SERVER_KEY_SPKI=... node examples/attach.mjs
 *
 * Settings as in connect.mjs (settings.mjs), and optionally LATCHKEY_SDK_OWNER (default alice),
 * LATCHKEY_SDK_OWNER_TOKEN (the token her identity provider issued; default dev-token) and
 * LATCHKEY_SDK_VERIFIER_TOKEN (a verifier other than the default). The application needs an owner
 * verifier; for the demo application a trustful one (accepts any token, development only):
 *
 *   LATCHKEY_API_KEY=<the root key the first start printed> \
 *   npx latchkey admin verifiers create --app default --type trustful --default yes
 */
import { EndpointClient } from 'latchkey/sdk';
import { check, endpointKeys, serverKey, setting, text } from './settings.mjs';

async function endpoint(name) {
  const keys = await endpointKeys(name === 'A' ? undefined : '');
  const client = new EndpointClient({ url: setting('url'), appToken: setting('app-token'), serverKey: serverKey(), keys });
  // Registered first: an endpoint access token travels with the profile.
  check(`connect ${name}`, await client.connect({ profile: text(JSON.stringify({ name })) }));
  return client;
}

const owner = setting('owner', 'alice');
const a = await endpoint('A');
const b = await endpoint('B');

const attached = await a.attachUser(owner, setting('owner-token', 'dev-token'), setting('verifier-token', '') || undefined);
if (!attached.ok) {
  console.error(`attachUser failed: ${attached.code}${attached.reason ? ` (${attached.reason})` : ''}`);
  if (attached.code === 'NO_VERIFIER_CONFIGURED') console.error('add an owner verifier: see the top of examples/attach.mjs');
  process.exit(1);
}
console.log(`A ${a.keyHash} attached to owner ${owner}`);

const notified = new Promise((resolve) => b.onAttached(resolve));
const token = `example-${crypto.randomUUID()}`;
await b.setEndpointAccessToken(token);
const attachedB = await a.attachEndpoint(token);
if (attachedB !== b.keyHash) {
  console.error('attachEndpoint refused');
  process.exit(1);
}
const n = await Promise.race([notified, new Promise((_, reject) => setTimeout(() => reject(new Error('no attach notification in 5 s')), 5000))]);
console.log(`B ${b.keyHash} attached by A with its endpoint access token; B was told: owner ${n.ownerExternalId}, by ${n.byEndpointKeyHash}`);
await a.close();
await b.close();
