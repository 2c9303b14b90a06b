/**
 * Owners (per tenant, as in Kaa) and their endpoints across the tenant's applications; detach an
 * endpoint from its owner. The API looks owners up by external id (there is no list of owners).
 */
import type { Page } from '../app.js';
import { seg } from '../api.js';
import { code, confirmButton, field, h, table, time } from '../dom.js';
import { form, section } from '../forms.js';
import type { Items, OwnerEndpoint } from '../types.js';

export const ownersPage: Page = {
  id: 'owners',
  title: 'Owners',
  needs: 'tenant',
  async render(ctx) {
    const tenantId = ctx.tenantId!;
    const owner = new URLSearchParams(location.hash.split('?')[1] ?? '').get('owner') ?? '';
    const input = h('input', { name: 'owner', autocomplete: 'off', placeholder: 'alice', value: owner });
    const find = form({ id: 'owner-find', class: 'inline' }, [field('Owner external id', input, null, true)], 'Show endpoints', async () => {
      location.hash = `#/owners?owner=${encodeURIComponent(input.value.trim())}`;
    });
    if (!owner) return h('div', {}, section('Find an owner', find));
    const { items } = await ctx.api.get<Items<OwnerEndpoint>>(`/admin/v1/tenants/${seg(tenantId)}/owners/${seg(owner)}/endpoints`);
    const appName = (id: string): string => ctx.apps.find((a) => a.id === id)?.name ?? id;
    const list = table(['Application', 'Endpoint key hash', 'Attached', ''], items.map((e) => [
      appName(e.appId), code(e.keyHash), time(e.attachedAt),
      confirmButton('Detach', 'Really detach?', async () => {
        try {
          await ctx.api.call('DELETE', `/admin/v1/applications/${seg(e.appId)}/endpoints/${seg(e.keyHash)}/owner`);
          ctx.flash(`Endpoint ${e.keyHash} detached from ${owner}.`);
          await ctx.refresh();
        } catch (err) {
          ctx.flash(err, 'error');
        }
      }),
    ]), `No endpoint is attached to ${owner} in tenant ${tenantId}.`);
    return h('div', {}, section('Find an owner', find), section(`Endpoints of ${owner}`, list));
  },
};
