/** This node as bootstrap lists show it, and drain (leave the lists, REDIRECT every endpoint). */
import type { Page } from '../app.js';
import { badge, confirmButton, h, pretty } from '../dom.js';
import { section } from '../forms.js';

export const nodePage: Page = {
  id: 'node',
  title: 'Bootstrap node',
  rootOnly: true,
  async render(ctx) {
    const info = await ctx.api.get<Record<string, unknown>>('/admin/v1/node');
    const facts = h('dl', { class: 'facts' }, ...Object.entries(info).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'object' && v !== null ? h('pre', { class: 'small' }, pretty(v)) : String(v))]));
    const drain = info.draining === true
      ? h('p', {}, badge('draining'), ' This node has left the bootstrap lists until it restarts.')
      : h('p', {}, confirmButton('Drain this node', 'Really drain?', async () => {
        try {
          const r = await ctx.api.call<{ redirected: number }>('POST', '/admin/v1/node/drain');
          ctx.flash(`Draining: ${r.redirected} endpoint(s) told to move to another node.`);
          await ctx.refresh();
        } catch (e) {
          ctx.flash(e, 'error');
        }
      }));
    return section('This node', facts, drain);
  },
};
