/**
 * Let the endpoint find its server: resolve the signed access point list from a bootstrap URL,
 * check it against the bootstrap public key, connect to the access point it names.
 *
 *   npx latchkey bootstrap-key > bootstrap.pub.pem
 *   LATCHKEY_SDK_BOOTSTRAP_URL=http://127.0.0.1:9443 LATCHKEY_SDK_BOOTSTRAP_KEY=bootstrap.pub.pem \
 *   LATCHKEY_SDK_APP_TOKEN=... node examples/bootstrap.mjs
 *
 * LATCHKEY_SDK_BOOTSTRAP_URL (--bootstrap-url): the "bootstrap URL" `npm start` prints (the
 * endpoint port); LATCHKEY_SDK_BOOTSTRAP_KEY (--bootstrap-key): a file with the bootstrap public
 * key PEM. No server URL or server key: the list carries them. LATCHKEY_SDK_KEY as in connect.mjs.
 */
import fs from 'node:fs';
import { EndpointClient } from 'latchkey/sdk';
import { check, endpointKeys, setting } from './settings.mjs';

const client = new EndpointClient({
  appToken: setting('app-token'),
  keys: await endpointKeys(),
  bootstrap: { urls: [setting('bootstrap-url')], publicKey: fs.readFileSync(setting('bootstrap-key'), 'utf8') },
});
const list = await client.accessPoints();
console.log(`access points (signed, expires ${new Date(list.expiresAt).toISOString()}): ${list.accessPoints.map((p) => `${p.url} key ${p.serverKeyId} priority ${p.priority}`).join('; ')}`);
check('connect', await client.connect());
console.log(`connected to ${client.accessPoint?.url}, session ${client.sessionId}; ping ${await client.ping()} ms`);
await client.close();
