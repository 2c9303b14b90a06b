/**
 * Registrations and endpoint profiles: registered endpoints of the application (paged by key hash)
 * with their profile (decoded when it is text), server-side profile and whether they are online;
 * provisioning a server-side profile against credentials (Kaa provisionRegistration).
 */
import type { Page } from '../app.js';
import { seg } from '../api.js';
import { badge, code, field, h, pretty, table, time } from '../dom.js';
import { form, jsonObject, section, wideSection } from '../forms.js';
import type { Endpoint, Items } from '../types.js';

/** A profile body (base64) as text when it is UTF-8 without control characters, else its size and hex. */
function profileText(b64: string): string {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  if (bytes.length === 0) return '(empty)';
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    // eslint-disable-next-line no-control-regex
    if (!/[\u0000-\u0008\u000e-\u001f]/.test(text)) return text;
  } catch {
    // binary (an Avro record): fall through
  }
  const hex = [...bytes.slice(0, 32)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return `${bytes.length} bytes: ${hex}${bytes.length > 32 ? ' …' : ''}`;
}

export const endpointsPage: Page = {
  id: 'endpoints',
  title: 'Endpoints & profiles',
  needs: 'app',
  async render(ctx) {
    const app = ctx.app!;
    const base = `/admin/v1/applications/${seg(app.id)}`;
    const cursor = new URLSearchParams(location.hash.split('?')[1] ?? '').get('cursor');
    const page = await ctx.api.get<Items<Endpoint>>(`${base}/endpoints?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);

    const credId = h('input', { name: 'credentialsId', autocomplete: 'off', spellcheck: 'false', placeholder: 'key hash (43 characters)' });
    const profile = h('textarea', { name: 'serverProfile', rows: 4, spellcheck: 'false', placeholder: '{"room":"kitchen"} (empty: clear it)' });
    const provision = form({ id: 'registration-provision' }, [
      field('Credentials id', credId, 'the credentials need not exist yet', true),
      field('Server-side profile', profile, 'JSON object; empty clears it. Registration copies it to the endpoint, so a registered endpoint sees it when it registers again'),
    ], 'Save server-side profile', async () => {
      const sp = jsonObject(profile.value, 'Server-side profile') ?? null;
      await ctx.api.call('PUT', `${base}/registrations/${seg(credId.value.trim())}`, { serverProfile: sp });
      ctx.flash(`Server-side profile of ${credId.value.trim()} saved: the endpoint gets it when it next registers.`);
      await ctx.refresh();
    });
    const edit = (e: Endpoint): void => {
      credId.value = e.credentialsId;
      profile.value = e.serverProfile === null ? '' : pretty(e.serverProfile);
      profile.focus();
    };

    const list = table(['Key hash', 'Online', 'Profile', 'Server-side profile (as registered)', 'Registered', 'Updated', ''], page.items.map((e) => [
      code(e.keyHash), e.connected ? badge('online') : badge('offline'),
      h('pre', { class: 'small' }, profileText(e.profile)),
      h('pre', { class: 'small' }, pretty(e.serverProfile)),
      time(e.createdAt), time(e.updatedAt),
      h('button', { type: 'button', class: 'edit', onclick: () => edit(e) }, 'Edit server profile'),
    ]), 'No endpoint of this application has registered yet.');
    const pager = h('p', { class: 'pager' },
      cursor ? h('a', { href: '#/endpoints' }, '« first page') : null,
      page.next ? h('a', { href: `#/endpoints?cursor=${encodeURIComponent(page.next)}` }, 'next page »') : null);
    return h('div', { class: 'grid' }, wideSection(`Registered endpoints of ${app.name}`, list, pager), section('Provision a registration', provision));
  },
};
