/**
 * A live view of this node from its /metrics (the Prometheus text every process contributes to):
 * open sessions, accepted handshakes per second and events per second, polled every second, with
 * the last two minutes drawn as sparklines. Rates are differences of counters between two polls;
 * a counter that went down (a process restarted) counts as a fresh start, not a negative rate.
 */
import type { Page } from '../app.js';
import { ApiError } from '../api.js';
import { h } from '../dom.js';
import { section } from '../forms.js';
import { parseMetrics, total, type Samples } from '../metrics.js';

const POLL_MS = 1000;
const POINTS = 120;
const SVG = 'http://www.w3.org/2000/svg';

interface Series { label: string; unit: string; values: number[]; el: HTMLElement; line: SVGPolylineElement; now: HTMLElement }

function series(id: string, label: string, unit: string): Series {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${POINTS} 40`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'spark');
  const line = document.createElementNS(SVG, 'polyline');
  svg.append(line);
  const now = h('div', { class: 'big', id: `live-${id}` }, '—');
  const el = h('div', { class: 'card metric' }, h('div', { class: 'muted' }, label), now, h('div', { class: 'unit muted' }, unit), svg as unknown as HTMLElement);
  return { label, unit, values: [], el, line, now };
}

function draw(s: Series, v: number): void {
  s.values.push(v);
  if (s.values.length > POINTS) s.values.shift();
  s.now.textContent = Number.isInteger(v) ? String(v) : v.toFixed(1);
  const max = Math.max(1, ...s.values);
  const off = POINTS - s.values.length;
  s.line.setAttribute('points', s.values.map((x, i) => `${off + i},${(40 - (x / max) * 38 - 1).toFixed(1)}`).join(' '));
}

async function scrape(): Promise<Samples> {
  let res: Response;
  try {
    res = await fetch('/metrics', { cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'NETWORK', `GET /metrics did not answer (${(e as Error).message})`);
  }
  if (!res.ok) throw new ApiError(res.status, `HTTP_${res.status}`, 'GET /metrics failed');
  return parseMetrics(await res.text());
}

export const livePage: Page = {
  id: 'live',
  title: 'Live view',
  async render(ctx) {
    const sessions = series('sessions', 'Open sessions', 'sessions on this node');
    const handshakes = series('handshakes', 'Handshakes', 'accepted per second');
    const refused = series('refused', 'Refused handshakes', 'per second');
    const events = series('events', 'Events', 'received per second');
    let last: { at: number; hs: number; refused: number; ev: number } | null = null;
    const rate = (now: number, before: number, sec: number): number => (now >= before && sec > 0 ? (now - before) / sec : 0);
    const poll = async (): Promise<void> => {
      const s = await scrape();
      const at = performance.now();
      const hsAll = total(s, 'latchkey_handshakes_total');
      const hs = total(s, 'latchkey_handshakes_total', { result: 'accepted' });
      const ev = total(s, 'latchkey_events_received_total');
      draw(sessions, total(s, 'latchkey_sessions_open'));
      if (last) {
        const sec = (at - last.at) / 1000;
        draw(handshakes, rate(hs, last.hs, sec));
        draw(refused, rate(hsAll - hs, last.refused, sec));
        draw(events, rate(ev, last.ev, sec));
      }
      last = { at, hs, refused: hsAll - hs, ev };
    };
    await poll();
    ctx.every(POLL_MS, poll);
    return section('This node, from /metrics', h('div', { class: 'metrics' }, sessions.el, handshakes.el, refused.el, events.el),
      h('p', { class: 'muted' }, `Polled every ${POLL_MS / 1000} s; the lines show the last ${POINTS} polls. A multi-process node sums every process.`));
  },
};
