/**
 * Applications of the selected tenant: credentials service, profile schema and app token of each,
 * and creating one. Ids and app tokens are global, so only root keys may choose them (the API
 * answers 403 to a tenant key that tries); the form offers them to root keys only.
 */
import type { Page } from '../app.js';
import { code, field, h, pretty, table, time } from '../dom.js';
import { form, jsonObject, section, wideSection } from '../forms.js';
import { seg } from '../api.js';
import type { Application, Items } from '../types.js';

export const applicationsPage: Page = {
  id: 'applications',
  title: 'Applications',
  needs: 'tenant',
  async render(ctx) {
    const tenantId = ctx.tenantId!;
    const { items } = await ctx.api.get<Items<Application>>(`/admin/v1/tenants/${seg(tenantId)}/applications`);
    const list = table(['Name', 'Id', 'Credentials service', 'App token', 'Profile schema', 'Created', ''], items.map((a) => [
      h('strong', {}, a.name), code(a.id, true), a.credentialsService, code(a.appToken),
      a.profileSchema ? h('details', {}, h('summary', {}, 'Avro schema'), h('pre', {}, pretty(a.profileSchema))) : h('span', { class: 'muted' }, 'opaque'),
      time(a.createdAt),
      a.id === ctx.app?.id ? h('span', { class: 'muted' }, 'selected') : h('button', { type: 'button', onclick: () => void ctx.reloadContext({ appId: a.id }) }, 'Select'),
    ]), 'No applications in this tenant yet.');

    const name = h('input', { name: 'name', placeholder: 'Thermostats', autocomplete: 'off' });
    const service = h('input', { name: 'credentialsService', list: 'credentials-services', placeholder: 'trustful', autocomplete: 'off' });
    const services = h('datalist', { id: 'credentials-services' }, h('option', { value: 'trustful' }), h('option', { value: 'internal' }));
    const schema = h('textarea', { name: 'profileSchema', rows: 5, spellcheck: 'false', placeholder: '{"type":"record","name":"Profile","fields":[{"name":"model","type":"string"}]}' });
    const id = h('input', { name: 'id', autocomplete: 'off', placeholder: 'generated' });
    const token = h('input', { name: 'appToken', autocomplete: 'off', placeholder: 'generated' });
    const result = h('div', {});
    const create = form({ id: 'app-create' }, [
      field('Name', name, null, true),
      field('Credentials service', service, 'trustful: any endpoint may connect; internal: only credentials provisioned beforehand; or a configured plugin', false),
      services,
      field('Profile schema', schema, 'Avro schema of endpoint profiles (JSON); empty for opaque profiles'),
      ...(ctx.root ? [field('Id', id, 'root keys only; ids are global across tenants'), field('App token', token, 'root keys only; 8-128 characters')] : []),
      result,
    ], 'Create application', async () => {
      const body: Record<string, unknown> = { name: name.value };
      if (service.value.trim()) body.credentialsService = service.value.trim();
      const ps = jsonObject(schema.value, 'Profile schema');
      if (ps) body.profileSchema = ps;
      if (ctx.root && id.value.trim()) body.id = id.value.trim();
      if (ctx.root && token.value.trim()) body.appToken = token.value.trim();
      const a = await ctx.api.call<Application>('POST', `/admin/v1/tenants/${seg(tenantId)}/applications`, body);
      ctx.flash(`Application ${a.name} created; its app token is ${a.appToken}`);
      await ctx.reloadContext({ appId: a.id });
    });
    const selected = ctx.app
      ? section(`Selected: ${ctx.app.name}`, h('dl', { class: 'facts' },
        h('dt', {}, 'Application id'), h('dd', {}, code(ctx.app.id)),
        h('dt', {}, 'App token'), h('dd', { id: 'app-token' }, code(ctx.app.appToken)),
        h('dt', {}, 'Credentials service'), h('dd', {}, ctx.app.credentialsService),
        h('dt', {}, 'Profile schema'), h('dd', {}, ctx.app.profileSchema ? h('pre', {}, pretty(ctx.app.profileSchema)) : 'opaque (none)')),
        h('p', {}, h('a', { href: `demo/token.html?app=${encodeURIComponent(ctx.app.id)}`, id: 'demo-link' }, 'Endpoint access token demo'), ' — a browser endpoint of this application shows its access token as a QR code.'))
      : null;
    return h('div', { class: 'grid' }, wideSection('Applications', list), selected ?? h('span', {}), section('New application', create));
  },
};
