/** Live sessions of the application on this node (every process of it), refreshed every 2 s; kick one. */
import type { Page } from '../app.js';
import { seg } from '../api.js';
import { clear, code, confirmButton, h, table, time } from '../dom.js';
import { section } from '../forms.js';
import type { Items, LiveSession, Propagation } from '../types.js';

const REFRESH_MS = 2000;

export const sessionsPage: Page = {
  id: 'sessions',
  title: 'Live sessions',
  needs: 'app',
  async render(ctx) {
    const app = ctx.app!;
    const base = `/admin/v1/applications/${seg(app.id)}`;
    const holder = h('div', { id: 'sessions-list' });
    const count = h('span', { class: 'muted' });
    const draw = async (): Promise<void> => {
      const { items } = await ctx.api.get<Items<LiveSession>>(`${base}/sessions`);
      const t = table(['Endpoint key hash', 'Session', 'Established', 'Last seen', 'Keepalive', 'Process', ''], items.map((s) => [
        s.keyHash ? code(s.keyHash) : '—', code(s.sessionId, true), time(s.establishedAt), time(s.lastSeen), `${s.keepAliveSec} s`, s.process ?? '—',
        s.keyHash ? confirmButton('Kick', 'Really kick?', async () => {
          try {
            const r = await ctx.api.call<{ propagation: Propagation }>('DELETE', `${base}/sessions/${seg(s.keyHash!)}`);
            ctx.flash(`Kicked ${s.keyHash}: ${String(r.propagation.endedHere)} session(s) ended here (the endpoint may reconnect).`);
            await draw();
          } catch (e) {
            ctx.flash(e, 'error');
          }
        }) : '',
      ]), 'No live session of this application on this node.');
      t.querySelectorAll('tbody tr').forEach((tr, i) => tr.setAttribute('data-key-hash', items[i]!.keyHash ?? ''));
      count.textContent = ` ${items.length} live`;
      // Keep an armed button armed: skip redrawing while the operator is confirming.
      if (holder.querySelector('button.armed')) return;
      clear(holder);
      holder.append(t);
    };
    await draw();
    ctx.every(REFRESH_MS, draw);
    return section(`Sessions of ${app.name}`, h('p', { class: 'muted' }, `Refreshed every ${REFRESH_MS / 1000} s.`, count), holder);
  },
};
