/**
 * The SVG of bench/sessions: panels stacked on one time axis (sessions held, server RSS,
 * handshakes per second), each with its own linear y scale, the phases as shaded bands across all
 * of them. Dependency-free, in the style of bench/lib/chart.ts and flood-chart.ts.
 */
import type { Series } from './chart.js';
import type { Band } from './flood-chart.js';

export interface Panel {
  label: string;
  series: Series[];
}

export function stackedChart(title: string, xLabel: string, panels: Panel[], bands: Band[], width = 900, panelHeight = 170): string {
  const pad = { l: 72, r: 16, t: 40, b: 40, gap: 26 };
  const height = pad.t + panels.length * panelHeight + (panels.length - 1) * pad.gap + pad.b;
  const xs = panels.flatMap((p) => p.series.flatMap((s) => s.points.map((q) => q[0])));
  const xMax = Math.max(1, ...xs, ...bands.map((b) => b.to));
  const x = (v: number): number => pad.l + (v / xMax) * (width - pad.l - pad.r);
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const fmt = (v: number): string => (v >= 10_000 ? `${(v / 1000).toFixed(0)}k` : v >= 100 ? v.toFixed(0) : v.toFixed(1));
  const out: string[] = [];
  panels.forEach((panel, i) => {
    const top = pad.t + i * (panelHeight + pad.gap);
    const bottom = top + panelHeight;
    const yMax = Math.max(1e-9, ...panel.series.flatMap((s) => s.points.map((q) => q[1]))) * 1.1;
    const y = (v: number): number => bottom - (v / yMax) * panelHeight;
    for (const b of bands) {
      out.push(`<rect x="${x(b.from).toFixed(1)}" y="${top}" width="${Math.max(1, x(b.to) - x(b.from)).toFixed(1)}" height="${panelHeight}" fill="${b.color}" opacity="0.15"/>`);
      if (i === 0) out.push(`<text x="${((x(b.from) + x(b.to)) / 2).toFixed(1)}" y="${top + 11}" font-size="10" text-anchor="middle" fill="#333">${esc(b.label)}</text>`);
    }
    for (const f of [0, 0.5, 1]) {
      const v = (f * yMax) / 1.1;
      out.push(`<line x1="${pad.l}" x2="${width - pad.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/><text x="${pad.l - 6}" y="${(y(v) + 4).toFixed(1)}" font-size="10" text-anchor="end">${fmt(v)}</text>`);
    }
    out.push(`<line x1="${pad.l}" x2="${pad.l}" y1="${top}" y2="${bottom}" stroke="#333"/><line x1="${pad.l}" x2="${width - pad.r}" y1="${bottom}" y2="${bottom}" stroke="#333"/>`);
    out.push(`<text x="14" y="${(top + bottom) / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 14 ${(top + bottom) / 2})">${esc(panel.label)}</text>`);
    panel.series.forEach((s, k) => {
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.6" points="${s.points.map((q) => `${x(q[0]).toFixed(1)},${y(q[1]).toFixed(1)}`).join(' ')}"/>`);
      out.push(`<text x="${pad.l + 8 + k * 260}" y="${top - 4}" font-size="11" fill="${s.color}">■ ${esc(s.name)}</text>`);
    });
  });
  const step = xMax > 600 ? 120 : xMax > 240 ? 60 : xMax > 120 ? 20 : 10;
  const last = pad.t + panels.length * panelHeight + (panels.length - 1) * pad.gap;
  for (let v = 0; v <= xMax; v += step) out.push(`<text x="${x(v).toFixed(1)}" y="${last + 14}" font-size="10" text-anchor="middle">${v}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="16" font-size="14" text-anchor="middle">${esc(title)}</text>
${out.join('\n')}
<text x="${width / 2}" y="${height - 8}" font-size="12" text-anchor="middle">${esc(xLabel)}</text>
</svg>
`;
}
