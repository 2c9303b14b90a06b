/**
 * Owner verifiers of the application, and Kaa's "Add user verifier": pick a type, fill a form
 * generated from that type's Avro configuration schema (GET /admin/v1/verifier-types). The server
 * validates the configuration; its refusal (LK_BAD_VERIFIER_CONFIG and the reason) shows under the
 * form.
 */
import type { Page } from '../app.js';
import { seg } from '../api.js';
import { recordForm } from '../avro-form.js';
import { badge, clear, code, confirmButton, field, h, pretty, table, time } from '../dom.js';
import { form, section, wideSection } from '../forms.js';
import type { Items, Verifier, VerifierType } from '../types.js';

export const verifiersPage: Page = {
  id: 'verifiers',
  title: 'Owner verifiers',
  needs: 'app',
  async render(ctx) {
    const app = ctx.app!;
    const base = `/admin/v1/applications/${seg(app.id)}`;
    const [types, verifiers] = await Promise.all([
      ctx.api.get<Items<VerifierType>>('/admin/v1/verifier-types'),
      ctx.api.get<Items<Verifier> & { defaultVerifierToken: string | null }>(`${base}/verifiers`),
    ]);
    const act = (fn: () => Promise<unknown>, done: string) => async (): Promise<void> => {
      try {
        await fn();
        ctx.flash(done);
        await ctx.refresh();
      } catch (e) {
        ctx.flash(e, 'error');
      }
    };
    const list = table(['Name', 'Type', 'Verifier token', 'Default', 'Configuration', 'Created', ''], verifiers.items.map((v) => [
      h('strong', {}, v.name), v.pluginTypeName, code(v.verifierToken), v.isDefault ? badge('default') : '',
      h('details', {}, h('summary', {}, 'show'), h('pre', { class: 'small' }, pretty(v.jsonConfiguration))),
      time(v.createdAt),
      h('span', { class: 'row-actions' },
        v.isDefault
          ? h('button', { type: 'button', onclick: act(() => ctx.api.call('PUT', `${base}/default-verifier`, { verifierToken: null }), 'Default verifier cleared.') }, 'Clear default')
          : h('button', { type: 'button', onclick: act(() => ctx.api.call('PUT', `${base}/default-verifier`, { verifierToken: v.verifierToken }), `${v.name} is now the default verifier.`) }, 'Make default'),
        confirmButton('Delete', 'Really delete?', act(() => ctx.api.call('DELETE', `${base}/verifiers/${seg(v.verifierToken)}`), `Verifier ${v.name} deleted.`))),
    ]), 'No owner verifier yet: endpoints of this application cannot attach to owners (NO_VERIFIER_CONFIGURED).');

    // --- Add user verifier ---
    const typeSelect = h('select', { name: 'pluginTypeName', id: 'verifier-type' },
      ...types.items.map((t) => h('option', { value: t.name }, `${t.name}${t.custom ? ' (custom)' : ''}`)));
    const typeDoc = h('p', { class: 'help type-doc' });
    const configArea = h('fieldset', { class: 'config', id: 'verifier-config' });
    let config = recordForm({});
    const showType = (): void => {
      const t = types.items.find((x) => x.name === typeSelect.value);
      clear(configArea);
      typeDoc.textContent = t?.description ?? '';
      config = recordForm(t?.configSchema ?? {}, '');
      configArea.append(h('legend', {}, `${t?.name ?? ''} configuration`), config.element);
    };
    typeSelect.addEventListener('change', showType);
    showType();
    const name = h('input', { name: 'name', autocomplete: 'off', placeholder: 'Google sign-in' });
    const description = h('input', { name: 'description', autocomplete: 'off' });
    const isDefault = h('input', { type: 'checkbox', name: 'isDefault', checked: verifiers.items.length === 0 });
    const add = form({ id: 'verifier-add' }, [
      field('Type', typeSelect, null, true), typeDoc,
      field('Name', name, null, true),
      field('Description', description),
      h('label', { class: 'check' }, isDefault, ' Make it the application\'s default verifier'),
      configArea,
    ], 'Add verifier', async () => {
      const cfg = config.read();
      if (!cfg.ok) throw new Error(`${cfg.field} ${cfg.message}`);
      const v = await ctx.api.call<Verifier>('POST', `${base}/verifiers`, {
        pluginTypeName: typeSelect.value, name: name.value, ...(description.value ? { description: description.value } : {}),
        jsonConfiguration: cfg.value, isDefault: isDefault.checked,
      });
      ctx.flash(`Verifier ${v.name} added; its verifier token is ${v.verifierToken}.`);
      await ctx.refresh();
    });
    return h('div', { class: 'grid' }, wideSection(`Owner verifiers of ${app.name}`, list), section('Add owner verifier', add));
  },
};
