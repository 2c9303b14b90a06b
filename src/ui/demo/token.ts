/**
 * The endpoint access token flow as Kaa pictures it, with a browser endpoint (the SDK's browser
 * bundle, dist/sdk/latchkey-sdk.browser.mjs, loaded as a separate module):
 *
 *   this page (endpoint B)                          another endpoint A (a second tab of this page,
 *   connect, register, publish an access token       or a Node endpoint such as examples/)
 *   and show it as a QR code            --------->   A is attached to an owner; it presents B's token
 *   "attached to owner alice by A"      <---------   A sees the attach succeed (B's key hash)
 *
 * The connection settings (endpoint URL, app token, server key) come from the query string, or,
 * when the Administration UI is signed in in this tab with a root key, from the admin API (this
 * node, its active server key, the application chosen in the UI); they can be edited.
 *
 * The second half of the page is endpoint A's side for a browser-only demo: attach this tab's
 * endpoint to an owner (the application's verifier checks the owner's access token) and attach an
 * endpoint by its access token.
 */
import qrcode from 'qrcode-generator';
import { EndpointClient, generateEndpointKeys, type EndpointKeys } from '../../sdk/index.js';
import { clear, field, h } from '../dom.js';

const root = document.getElementById('demo')!;
const params = new URLSearchParams(location.search);
const logEl = h('div', { class: 'log', id: 'log', 'aria-live': 'polite' });
const log = (line: string): void => {
  logEl.append(`${new Date().toTimeString().slice(0, 8)}  ${line}\n`);
};
const status = h('p', { id: 'status', class: 'muted' }, 'not connected');

interface Settings { url: string; appToken: string; serverKeyId: string; serverKeyPem: string }

/** Best effort: what the signed-in Administration UI of this tab can tell (root keys only). */
async function fromAdmin(): Promise<Partial<Settings>> {
  const key = sessionStorage.getItem('latchkey.adminKey');
  if (!key) return {};
  const get = async <T>(path: string): Promise<T | null> => {
    const r = await fetch(path, { headers: { authorization: `Bearer ${key}` } }).catch(() => null);
    return r && r.ok ? ((await r.json()) as T) : null;
  };
  const out: Partial<Settings> = {};
  const node = await get<{ url: string; serverKeyId: string }>('/admin/v1/node');
  if (node) out.url = node.url;
  const keys = await get<{ items: Array<{ id: string; status: string; publicKey: string }> }>('/admin/v1/server-keys');
  const active = keys?.items.find((k) => k.status === 'active');
  if (active) Object.assign(out, { serverKeyId: active.id, serverKeyPem: active.publicKey });
  let appId = params.get('app');
  if (!appId) {
    try {
      appId = (JSON.parse(sessionStorage.getItem('latchkey.ui.context') ?? '{}') as { appId?: string }).appId ?? null;
    } catch {
      appId = null;
    }
  }
  if (appId) {
    const app = await get<{ appToken: string }>(`/admin/v1/applications/${encodeURIComponent(appId)}`);
    if (app) out.appToken = app.appToken;
  }
  return out;
}

function randomToken(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The token as a QR code (an SVG drawn by qrcode-generator), and as text to copy. */
function showQr(holder: HTMLElement, token: string): void {
  const qr = qrcode(0, 'M');
  qr.addData(token);
  qr.make();
  clear(holder);
  const img = h('img', { src: qr.createDataURL(6, 2), alt: `QR code of the endpoint access token ${token}`, id: 'qr' });
  holder.append(h('div', { class: 'qr' }, img), h('p', {}, 'Endpoint access token: ', h('code', { id: 'access-token' }, token)));
}

async function main(): Promise<void> {
  const admin = await fromAdmin();
  const val = (k: keyof Settings): string => params.get(k) ?? admin[k] ?? '';
  const url = h('input', { name: 'url', value: val('url'), placeholder: 'ws://127.0.0.1:9443/ep/v1' });
  const appToken = h('input', { name: 'appToken', value: val('appToken'), autocomplete: 'off' });
  const keyId = h('input', { name: 'serverKeyId', value: val('serverKeyId'), autocomplete: 'off' });
  const keyPem = h('textarea', { name: 'serverKeyPem', rows: 4, spellcheck: 'false' }, val('serverKeyPem'));
  const connectButton = h('button', { type: 'submit', class: 'primary', id: 'connect' }, 'Connect this browser endpoint');
  const qrHolder = h('div', { id: 'qr-holder' });
  const owner = h('p', { id: 'owner', class: 'muted' }, 'Not attached to an owner.');
  let client: EndpointClient | null = null;
  let keys: EndpointKeys | null = null;

  const settings = h('form', { class: 'card form panel', id: 'settings' },
    field('Endpoint WebSocket URL', url, null, true),
    field('App token', appToken, 'of a trustful application, or one that has credentials for this browser\'s key', true),
    field('Server key id', keyId, null, true),
    field('Server public key (PEM)', keyPem, null, true),
    h('div', { class: 'actions' }, connectButton));
  settings.addEventListener('submit', (ev) => {
    ev.preventDefault();
    connectButton.disabled = true;
    void (async () => {
      keys ??= await generateEndpointKeys();
      log(`generated an RSA-2048 key pair in the browser: key hash ${keys.keyHash}`);
      client = new EndpointClient({ url: url.value.trim(), appToken: appToken.value.trim(), serverKey: { id: keyId.value.trim(), spki: keyPem.value }, keys });
      client.onAttached((n) => {
        owner.textContent = `Attached to owner ${n.ownerExternalId} by endpoint ${n.byEndpointKeyHash}`;
        owner.className = 'ok';
        log(`notification: attached to owner ${n.ownerExternalId} by ${n.byEndpointKeyHash}`);
      });
      client.onDetached((n) => {
        owner.textContent = 'Not attached to an owner.';
        owner.className = 'muted';
        log(`notification: detached by ${n.byEndpointKeyHash}`);
      });
      client.onDisconnect((d) => {
        status.textContent = `disconnected: ${d.reason ?? ''} ${d.errorCode ?? ''}`.trim();
        log(`disconnected (${d.reason ?? 'no reason'}, ${d.errorCode ?? 'no code'})`);
      });
      const r = await client.connect({ profile: new TextEncoder().encode(JSON.stringify({ demo: 'browser endpoint', userAgent: navigator.userAgent.slice(0, 60) })) });
      if (!r.ok) {
        const detail = r.kind === 'refused' ? (r.errorCode ?? '') : r.detail;
        status.textContent = `${r.kind}: ${r.code} ${detail}`;
        log(`connect ${r.kind}: ${r.code} ${detail}`);
        connectButton.disabled = false;
        return;
      }
      status.textContent = `connected as ${keys.keyHash}`;
      status.className = 'ok';
      status.id = 'status';
      log('connected and registered');
      await publish();
    })().catch((e: unknown) => {
      log(`error: ${(e as { code?: string }).code ?? ''} ${(e as Error).message}`);
      connectButton.disabled = false;
    });
  });

  const publish = async (): Promise<void> => {
    if (!client) return;
    const token = randomToken();
    await client.setEndpointAccessToken(token);
    showQr(qrHolder, token);
    log('published a new endpoint access token');
  };
  const rotate = h('button', { type: 'button', id: 'rotate', onclick: () => void publish().catch((e: unknown) => log(`error: ${(e as Error).message}`)) }, 'New token');

  // Endpoint A's side, for a second tab.
  const ownerId = h('input', { name: 'ownerExternalId', placeholder: 'alice' });
  const ownerToken = h('input', { name: 'ownerAccessToken', placeholder: 'her identity provider\'s token (any, with a trustful verifier)' });
  const otherToken = h('input', { name: 'endpointAccessToken', placeholder: 'the other endpoint\'s access token' });
  const attachUser = h('button', { type: 'button', id: 'attach-user' }, 'Attach this endpoint to the owner');
  attachUser.addEventListener('click', () => {
    void (async () => {
      if (!client) return log('connect first');
      const r = await client.attachUser(ownerId.value.trim(), ownerToken.value);
      log(r.ok ? `attached to owner ${ownerId.value.trim()}` : `owner attach refused: ${r.code} ${r.reason ?? ''}`);
    })();
  });
  const attachOther = h('button', { type: 'button', id: 'attach-endpoint' }, 'Attach that endpoint to my owner');
  attachOther.addEventListener('click', () => {
    void (async () => {
      if (!client) return log('connect first');
      const k = await client.attachEndpoint(otherToken.value.trim());
      log(k ? `attached endpoint ${k} to my owner` : 'endpoint attach refused (unknown or expired token, or it has another owner)');
    })();
  });

  clear(root);
  root.append(
    h('h1', {}, 'Endpoint access token ', h('span', { class: 'muted' }, 'demo')),
    h('p', { class: 'muted' }, 'A browser endpoint shows its endpoint access token as a QR code; another endpoint of an owner presents the token and this one joins that owner. Both are told. ', h('a', { href: '../#/applications' }, 'Back to the Administration UI')),
    settings,
    h('section', { class: 'panel' }, h('h3', {}, 'This endpoint'), status, owner, qrHolder, h('p', {}, rotate)),
    h('section', { class: 'panel' }, h('h3', {}, 'Or be the other endpoint (second tab)'),
      field('Owner external id', ownerId), field('Owner access token', ownerToken), h('p', {}, attachUser),
      field('Endpoint access token to attach', otherToken), h('p', {}, attachOther)),
    h('section', { class: 'panel' }, h('h3', {}, 'Log'), logEl));
}

void main().catch((e: unknown) => {
  clear(root);
  root.append(h('div', { class: 'error', role: 'alert' }, h('strong', { class: 'code' }, 'UI_ERROR'), ' ', (e as Error).message));
});
