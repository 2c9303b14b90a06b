/**
 * Connect an endpoint, measure a ping, disconnect.
 *
 *   LATCHKEY_SDK_URL=... LATCHKEY_SDK_APP_TOKEN=... LATCHKEY_SDK_SERVER_KEY_ID=... \
 *   LATCHKEY_SDK_SERVER_KEY_SPKI=... node examples/connect.mjs
 *
 * The four values are the ones `npm start` prints (settings.mjs lists them and LATCHKEY_SDK_KEY).
 * Exit 0 when the session opened and answered a ping; 1 with the catalogue code otherwise.
 */
import { EndpointClient } from 'latchkey/sdk';
import { check, endpointKeys, serverKey, setting } from './settings.mjs';

const keys = await endpointKeys();
const client = new EndpointClient({ url: setting('url'), appToken: setting('app-token'), serverKey: serverKey(), keys });
const r = check('connect', await client.connect());
console.log(`connected: endpoint ${keys.keyHash}, session ${r.sessionId}, keepalive ${r.keepAliveSec} s`);
console.log(`ping: ${await client.ping()} ms`);
await client.close();
console.log('closed');
