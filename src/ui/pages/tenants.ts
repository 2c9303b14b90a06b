/** Tenants: the list (a tenant key sees its own), and creating one (root keys). */
import type { Page } from '../app.js';
import { code, field, h, table, time } from '../dom.js';
import { form, section, wideSection } from '../forms.js';
import type { Items, Tenant } from '../types.js';

export const tenantsPage: Page = {
  id: 'tenants',
  title: 'Tenants',
  async render(ctx) {
    const { items } = await ctx.api.get<Items<Tenant>>('/admin/v1/tenants');
    const list = table(['Id', 'Name', 'Created', ''], items.map((t) => [
      code(t.id), t.name, time(t.createdAt),
      t.id === ctx.tenantId ? h('span', { class: 'muted' }, 'selected') : h('button', { type: 'button', onclick: () => void ctx.reloadContext({ tenantId: t.id }) }, 'Select'),
    ]), 'No tenants yet.');
    if (!ctx.root) return h('div', {}, section('Your tenant', list), h('p', { class: 'muted' }, 'This API key administers one tenant; creating tenants needs a root key.'));
    const id = h('input', { name: 'id', placeholder: 'acme', autocomplete: 'off' });
    const name = h('input', { name: 'name', placeholder: 'Acme Corp', autocomplete: 'off' });
    const create = form({ id: 'tenant-create' }, [
      field('Id', id, 'letters, digits, . _ - (generated when empty)'),
      field('Name', name, null, true),
    ], 'Create tenant', async () => {
      const t = await ctx.api.call<Tenant>('POST', '/admin/v1/tenants', { name: name.value, ...(id.value.trim() ? { id: id.value.trim() } : {}) });
      ctx.flash(`Tenant ${t.id} created.`);
      await ctx.reloadContext({ tenantId: t.id });
    });
    return h('div', { class: 'grid' }, wideSection('All tenants', list), section('New tenant', create));
  },
};
