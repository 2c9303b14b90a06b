/**
 * Register an endpoint profile: the first profile rides in CONNECT (its answer in CONNACK), an
 * update goes as a profile sync of the open session.
 *
 *   LATCHKEY_SDK_URL=... LATCHKEY_SDK_APP_TOKEN=... LATCHKEY_SDK_SERVER_KEY_ID=... \
 *   LATCHKEY_SDK_SERVER_KEY_SPKI=... node examples/register.mjs
 *
 * Settings as in connect.mjs (settings.mjs). The demo application takes any profile bytes; an
 * application with a profile schema refuses a profile that does not match it (LK_PROFILE_INVALID).
 */
import { EndpointClient } from 'latchkey/sdk';
import { check, endpointKeys, serverKey, setting, text } from './settings.mjs';

const keys = await endpointKeys();
const client = new EndpointClient({ url: setting('url'), appToken: setting('app-token'), serverKey: serverKey(), keys });
const r = check('connect', await client.connect({ profile: text(JSON.stringify({ model: 'T-1000', firmware: '1.0.0' })) }));
console.log(`registered in CONNECT: ${r.sync?.status} ${r.sync?.profileSyncResponse?.responseStatus ?? ''}`);
const update = await client.register(text(JSON.stringify({ model: 'T-1000', firmware: '1.0.1' })));
console.log(`profile update: ${update.status}${update.errorCode ? ` ${update.errorCode}` : ''} ${update.profileSyncResponse?.responseStatus ?? ''}`);
await client.close();
if (r.sync?.status !== 'SUCCESS' || update.status !== 'SUCCESS') process.exit(1);
