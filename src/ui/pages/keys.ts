/** Server keys of this node: list, rotate (add a new active key; the old one stays valid), retire. */
import type { Page } from '../app.js';
import { seg } from '../api.js';
import { badge, code, confirmButton, h, table, time } from '../dom.js';
import { section } from '../forms.js';
import type { Items, ServerKey } from '../types.js';

export const keysPage: Page = {
  id: 'server-keys',
  title: 'Server keys',
  rootOnly: true,
  async render(ctx) {
    const { items } = await ctx.api.get<Items<ServerKey>>('/admin/v1/server-keys');
    const act = (fn: () => Promise<unknown>, done: string) => async (): Promise<void> => {
      try {
        await fn();
        ctx.flash(done);
        await ctx.refresh();
      } catch (e) {
        ctx.flash(e, 'error');
      }
    };
    const list = table(['Key id', 'Status', 'Created', 'Public key', ''], items.map((k) => [
      code(k.id), badge(k.status), time(k.createdAt),
      h('details', {}, h('summary', {}, 'PEM'), h('pre', { class: 'small' }, k.publicKey)),
      k.status === 'active' || k.status === 'retired' ? '' : confirmButton('Retire', 'Really retire?', act(() => ctx.api.call('POST', `/admin/v1/server-keys/${seg(k.id)}/retire`), `Key ${k.id} retired: CONNECTs naming it are refused from now on.`)),
    ]));
    const rotate = confirmButton('Rotate: add a new active key', 'Really rotate?', act(() => ctx.api.call('POST', '/admin/v1/server-keys'), 'New server key added and active; the previous one stays valid until retired.'), 'primary');
    return section('Key ring of this node', h('p', { class: 'muted' }, 'Endpoints name the key they encrypt to; several keys are valid at once, so rotation drops no session.'), list, h('p', {}, rotate));
  },
};
