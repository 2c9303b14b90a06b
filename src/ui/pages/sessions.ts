/**
 * Live sessions of the application on this node (every process of it), refreshed every 2 s; kick
 * one. "Where is this endpoint": the node, process and session holding an endpoint's session
 * anywhere in the cluster (the cluster directory; this node alone without Redis).
 */
import type { Page } from '../app.js';
import { ApiError, seg } from '../api.js';
import { clear, code, confirmButton, field, h, table, time } from '../dom.js';
import { form, section } from '../forms.js';
import type { Items, LiveSession, Propagation, SessionLocation } from '../types.js';

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
    const keyHash = h('input', { name: 'keyHash', required: true, placeholder: '43 base64url characters', autocomplete: 'off', spellcheck: false });
    const found = h('div', { id: 'session-where' });
    const where = form({ id: 'where-form' }, [field('Endpoint key hash', keyHash)], 'Find', async () => {
      clear(found);
      try {
        const at = await ctx.api.get<SessionLocation>(`${base}/sessions/${seg(keyHash.value.trim())}`);
        found.append(table(['Node', 'Process', 'Session', 'Established'], [[code(at.node), at.process ?? '—', code(at.sessionId, true), time(at.establishedAt)]]));
      } catch (e) {
        if (!(e instanceof ApiError) || e.code !== 'LK_NOT_FOUND') throw e;
        found.append(h('p', { class: 'muted' }, 'No live session of this endpoint on any live node.'));
      }
    });
    return h('div', {},
      section(`Sessions of ${app.name}`, h('p', { class: 'muted' }, `Refreshed every ${REFRESH_MS / 1000} s.`, count), holder),
      section('Where is this endpoint?', h('p', { class: 'muted' }, 'The node and process holding its session, anywhere in the cluster.'), where, found));
  },
};
