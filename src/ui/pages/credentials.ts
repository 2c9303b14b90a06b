/**
 * Credentials of the selected application (Kaa provisionCredentials / credentialsStatus /
 * revokeCredentials): provision from a pasted or uploaded PEM public key with an optional
 * server-side profile; list every credentials of the application by id with its status
 * (`GET .../credentials`, one page at a time, optionally of one status); revoke from the list (ends
 * the live session at once: DISCONNECT CREDENTIALS_REVOKED on every node); look one up by id.
 *
 * An application whose credentials service is a plugin keeps its credentials outside the store:
 * the API answers LK_CRED_LIST_UNSUPPORTED, the page says so and offers the look-up only.
 */
import type { Page } from '../app.js';
import { errorBox } from '../app.js';
import { ApiError, seg } from '../api.js';
import { badge, code, confirmButton, field, h, table, time } from '../dom.js';
import { form, jsonObject, section, wideSection } from '../forms.js';
import type { Credentials, Items, Propagation } from '../types.js';

const STATUSES = ['AVAILABLE', 'IN_USE', 'REVOKED'] as const;
const PAGE_SIZES = [10, 50, 200];

/**
 * Where the list is, kept while the tab stays on one application so a re-render (after a revoke or
 * a provision) shows the same page. `cursors` holds the cursor of every page before the current
 * one, so "Previous page" can go back (the API pages forward only).
 */
interface ListState {
  appId: string;
  status: string;
  limit: number;
  cursor: string | null;
  cursors: Array<string | null>;
  /** Looked up by id in this tab: shown above the list. */
  looked: string | null;
}
let state: ListState | null = null;

function stateFor(appId: string): ListState {
  if (state?.appId !== appId) state = { appId, status: '', limit: 50, cursor: null, cursors: [], looked: null };
  return state;
}

export const credentialsPage: Page = {
  id: 'credentials',
  title: 'Credentials',
  needs: 'app',
  async render(ctx) {
    const app = ctx.app!;
    const base = `/admin/v1/applications/${seg(app.id)}`;
    const st = stateFor(app.id);
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
      ctx.flash(`Credentials ${r.credentials.credentialsId} provisioned (${r.credentials.status}).`);
      await ctx.refresh();
    });

    const lookupId = h('input', { name: 'credentialsId', autocomplete: 'off', spellcheck: 'false', placeholder: 'key hash (43 characters)' });
    const lookup = form({ id: 'credentials-lookup', class: 'inline' }, [field('Credentials id', lookupId)], 'Look up', async () => {
      const c = await ctx.api.get<Credentials>(`${base}/credentials/${seg(lookupId.value.trim())}`);
      st.looked = c.credentialsId;
      await ctx.refresh();
    });

    const rows = (items: Credentials[], empty: string, id?: string): HTMLElement => {
      const list = table(['Credentials id', 'Status', 'Endpoint', 'Created', 'Updated', ''], items.map((c) => [
        code(c.credentialsId), badge(c.status), c.endpointId ? code(c.endpointId, true) : '—', time(c.createdAt), time(c.updatedAt),
        c.status === 'REVOKED' ? h('span', { class: 'muted' }, 'terminal') : confirmButton('Revoke', 'Really revoke?', async () => {
          try {
            const r = await ctx.api.call<Credentials & { propagation: Propagation }>('POST', `${base}/credentials/${seg(c.credentialsId)}/revoke`);
            ctx.flash(`Revoked ${c.credentialsId}: ${String(r.propagation.endedHere)} live session(s) ended here; control log ${r.propagation.log}, bus ${r.propagation.bus}.`);
            await ctx.refresh();
          } catch (e) {
            ctx.flash(e, 'error');
          }
        }),
      ]), empty);
      if (id) list.id = id;
      list.querySelectorAll('tbody tr').forEach((tr, i) => (tr as HTMLElement).setAttribute('data-credentials-id', items[i]!.credentialsId));
      return list;
    };

    // The looked-up credentials, as the API reports them now.
    let looked: HTMLElement | null = null;
    if (st.looked !== null) {
      const c = await ctx.api.get<Credentials>(`${base}/credentials/${seg(st.looked)}`).catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      });
      looked = c ? h('div', { id: 'credentials-looked' }, h('h4', {}, 'Looked up'), rows([c], '')) : null;
    }

    const statusSel = h('select', { name: 'status', id: 'credentials-status' },
      h('option', { value: '' }, 'any status'), ...STATUSES.map((s) => h('option', { value: s }, s)));
    statusSel.value = st.status;
    statusSel.addEventListener('change', () => {
      Object.assign(st, { status: statusSel.value, cursor: null, cursors: [] });
      void ctx.refresh();
    });
    const sizeSel = h('select', { name: 'limit', id: 'credentials-limit' }, ...PAGE_SIZES.map((n) => h('option', { value: String(n) }, `${n} per page`)));
    sizeSel.value = String(st.limit);
    sizeSel.addEventListener('change', () => {
      Object.assign(st, { limit: Number(sizeSel.value), cursor: null, cursors: [] });
      void ctx.refresh();
    });

    let listed: HTMLElement;
    const q = new URLSearchParams({ limit: String(st.limit), ...(st.status ? { status: st.status } : {}), ...(st.cursor ? { cursor: st.cursor } : {}) });
    try {
      const page = await ctx.api.get<Items<Credentials>>(`${base}/credentials?${q.toString()}`);
      const next = page.next ?? null;
      const pager = h('div', { class: 'actions pager' },
        st.cursors.length > 0 ? h('button', { type: 'button', id: 'credentials-prev', onclick: () => {
          st.cursor = st.cursors.pop() ?? null;
          void ctx.refresh();
        } }, 'Previous page') : null,
        next !== null ? h('button', { type: 'button', id: 'credentials-next', onclick: () => {
          st.cursors.push(st.cursor);
          st.cursor = next;
          void ctx.refresh();
        } }, 'Next page') : null,
        h('span', { class: 'muted' }, `page ${st.cursors.length + 1}${next === null ? ' (last)' : ''}`));
      listed = h('div', {},
        rows(page.items, st.status ? `No ${st.status} credentials on this page.` : 'No credentials yet: provision some.', 'credentials-list'),
        pager);
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 'LK_CRED_LIST_UNSUPPORTED')) throw e;
      listed = h('div', { id: 'credentials-list' }, errorBox(e), h('p', { class: 'muted' }, 'Look credentials up by id instead.'));
    }

    return h('div', { class: 'grid' },
      wideSection(`Credentials of ${app.name}`,
        h('p', { class: 'muted' }, 'Every credentials of the application, by id, with its status now. Revoking ends the endpoint\'s live session at once.'),
        lookup, looked,
        h('div', { class: 'inline filters' }, field('Status', statusSel), field('Page size', sizeSel)),
        listed),
      section('Provision credentials', provision));
  },
};
