/**
 * Events among the endpoints of one owner: A and B attach to the same owner, B listens to
 * org.example.Chat, A finds the listeners and sends to all of them; B answers A alone (a targeted
 * event).
 *
 *   LATCHKEY_SDK_URL=... LATCHKEY_SDK_APP_TOKEN=... LATCHKEY_SDK_SERVER_KEY_ID=... \
 *   LATCHKEY_SDK_SERVER_KEY_SPKI=... node examples/events.mjs
 *
 * Settings and the owner verifier as in attach.mjs (LATCHKEY_SDK_OWNER, default alice).
 */
import { EndpointClient } from 'latchkey/sdk';
import { check, endpointKeys, serverKey, setting, text, untext } from './settings.mjs';

const CHAT = 'org.example.Chat';
const owner = setting('owner', 'alice');

async function endpoint(name) {
  const client = new EndpointClient({ url: setting('url'), appToken: setting('app-token'), serverKey: serverKey(), keys: await endpointKeys(name === 'A' ? undefined : '') });
  check(`connect ${name}`, await client.connect({ profile: text(JSON.stringify({ name })) }));
  const r = await client.attachUser(owner, setting('owner-token', 'dev-token'), setting('verifier-token', '') || undefined);
  if (!r.ok) {
    console.error(`attachUser ${name} failed: ${r.code}: add an owner verifier (see examples/attach.mjs)`);
    process.exit(1);
  }
  await client.listenEvents([CHAT]);
  return client;
}

/** The next event `client` receives, or a failure after 5 s. */
function nextEvent(client) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no event in 5 s')), 5000);
    const off = client.onEvent((e) => {
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

const a = await endpoint('A');
const b = await endpoint('B');
console.log(`listeners of ${CHAT} seen by A: ${(await a.findEventListeners([CHAT])).join(', ')}`);

const atB = nextEvent(b);
await a.sendEvent(CHAT, text('hello from A'));
const e1 = await atB;
console.log(`B got ${e1.eventClassFQN} "${untext(e1.data)}" from ${e1.source}`);

const atA = nextEvent(a);
await b.sendEvent(CHAT, text('hi A, B here'), e1.source);
const e2 = await atA;
console.log(`A got ${e2.eventClassFQN} "${untext(e2.data)}" from ${e2.source} (to ${e2.target})`);
await a.close();
await b.close();
