/**
 * Credentials of the selected application (Kaa provisionCredentials / credentialsStatus /
 * revokeCredentials): provision from a pasted or uploaded PEM public key with an optional
 * server-side profile, list with status, revoke (ends the live session at once: DISCONNECT
 * CREDENTIALS_REVOKED on every node).
 *
 * The admin API has no "list credentials" call (the store lists endpoints, not credentials), so the
 * list is the credentials of the registered endpoints and of the live sessions, plus those
 * provisioned or looked up in this tab (kept in sessionStorage per application), each with its
 * status as the API reports it now.
 */
import type { Page, PageCtx } from '../app.js';
import { ApiError, seg } from '../api.js';
import { badge, code, confirmButton, field, h, table, time } from '../dom.js';
import { form, jsonObject, section, wideSection } from '../forms.js';
import type { Credentials, Endpoint, Items, LiveSession, Propagation } from '../types.js';

const KNOWN = (appId: string): string => `latchkey.ui.credentials.${appId}`;

function known(appId: string): string[] {
  try {
    const v = JSON.parse(sessionStorage.getItem(KNOWN(appId)) ?? '[]') as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

function remember(appId: string, id: string): void {
  const ids = known(appId).filter((x) => x !== id);
  ids.unshift(id);
  sessionStorage.setItem(KNOWN(appId), JSON.stringify(ids.slice(0, 200)));
}

async function statuses(ctx: PageCtx, appId: string): Promise<Credentials[]> {
  const [endpoints, sessions] = await Promise.all([
    ctx.api.get<Items<Endpoint>>(`/admin/v1/applications/${seg(appId)}/endpoints?limit=100`),
    ctx.api.get<Items<LiveSession>>(`/admin/v1/applications/${seg(appId)}/sessions`),
  ]);
  const live = sessions.items.map((s) => s.keyHash).filter((k): k is string => k !== null);
  const ids = [...new Set([...known(appId), ...live, ...endpoints.items.map((e) => e.credentialsId)])];
  const out: Credentials[] = [];
  // A few at a time: a tab should not flood the admin listener.
  for (let i = 0; i < ids.length; i += 8) {
    const batch = await Promise.all(ids.slice(i, i + 8).map((id) => ctx.api.get<Credentials>(`/admin/v1/applications/${seg(appId)}/credentials/${seg(id)}`).catch((e: unknown) => {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    })));
    for (const c of batch) if (c) out.push(c);
  }
  return out;
}

export const credentialsPage: Page = {
  id: 'credentials',
  title: 'Credentials',
  needs: 'app',
  async render(ctx) {
    const app = ctx.app!;
    const base = `/admin/v1/applications/${seg(app.id)}`;
    const pem = h('textarea', { name: 'publicKey', rows: 7, spellcheck: 'false', placeholder: '-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----' });
    const file = h('input', { type: 'file', name: 'publicKeyFile', accept: '.pem,.pub,.txt,text/plain,application/x-pem-file' });
    file.addEventListener('change', () => {
      const f = file.files?.[0];
      if (f) void f.text().then((t) => (pem.value = t));
    });
    const serverProfile = h('textarea', { name: 'serverProfile', rows: 3, spellcheck: 'false', placeholder: '{"room":"kitchen"}' });
    const provision = form({ id: 'credentials-provision' }, [
      field('Public key (PEM)', pem, 'RSA-2048, SubjectPublicKeyInfo or PKCS#1; paste it or choose a file', true),
      field('…or upload a PEM file', file),
      field('Server-side profile', serverProfile, 'optional JSON object, copied to the endpoint when it registers'),
    ], 'Provision', async () => {
      const sp = jsonObject(serverProfile.value, 'Server-side profile');
      const r = await ctx.api.call<{ credentials: Credentials }>('POST', `${base}/credentials`, { publicKey: pem.value, ...(sp ? { serverProfile: sp } : {}) });
      remember(app.id, r.credentials.credentialsId);
      ctx.flash(`Credentials ${r.credentials.credentialsId} provisioned (${r.credentials.status}).`);
      await ctx.refresh();
    });

    const lookupId = h('input', { name: 'credentialsId', autocomplete: 'off', spellcheck: 'false', placeholder: 'key hash (43 characters)' });
    const lookup = form({ id: 'credentials-lookup', class: 'inline' }, [field('Credentials id', lookupId)], 'Look up', async () => {
      const c = await ctx.api.get<Credentials>(`${base}/credentials/${seg(lookupId.value.trim())}`);
      remember(app.id, c.credentialsId);
      await ctx.refresh();
    });

    const items = await statuses(ctx, app.id);
    const list = table(['Credentials id', 'Status', 'Endpoint', 'Created', 'Updated', ''], items.map((c) => [
      code(c.credentialsId), badge(c.status), c.endpointId ? code(c.endpointId, true) : '—', time(c.createdAt), time(c.updatedAt),
      c.status === 'REVOKED' ? h('span', { class: 'muted' }, 'terminal') : confirmButton('Revoke', 'Really revoke?', async () => {
        // Keep it listed after its session ended: it is not an endpoint's or a live one any more.
        remember(app.id, c.credentialsId);
        try {
          const r = await ctx.api.call<Credentials & { propagation: Propagation }>('POST', `${base}/credentials/${seg(c.credentialsId)}/revoke`);
          ctx.flash(`Revoked ${c.credentialsId}: ${String(r.propagation.endedHere)} live session(s) ended here; control log ${r.propagation.log}, bus ${r.propagation.bus}.`);
          await ctx.refresh();
        } catch (e) {
          ctx.flash(e, 'error');
        }
      }),
    ]), 'No credentials known yet: provision some, or look one up.');
    const row = (tr: HTMLElement, id: string): void => tr.setAttribute('data-credentials-id', id);
    list.querySelectorAll('tbody tr').forEach((tr, i) => row(tr as HTMLElement, items[i]!.credentialsId));
    return h('div', { class: 'grid' },
      wideSection(`Credentials of ${app.name}`, h('p', { class: 'muted' }, 'Credentials of registered endpoints and live sessions, and those provisioned or looked up in this tab.'), lookup, list),
      section('Provision credentials', provision));
  },
};
