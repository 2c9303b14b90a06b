/**
 * The SVG of bench/flood: legit ping round trip (p50/p99 per second) over time with the phases as
 * shaded bands, on a logarithmic y axis (a flood can move p99 by orders of magnitude; linear would
 * flatten the baseline to a line on the axis). Dependency-free, in the style of bench/lib/chart.ts.
 */
import type { Series } from './chart.js';

export interface Band {
  from: number;
  to: number;
  label: string;
  color: string;
}

export function phaseChart(title: string, xLabel: string, yLabel: string, series: Series[], bands: Band[], width = 900, height = 420): string {
  const pad = { l: 64, r: 16, t: 56, b: 48 };
  const all = series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p[0]), ...bands.map((b) => b.to));
  const positive = all.map((p) => p[1]).filter((v) => v > 0);
  const yMinRaw = positive.length ? Math.min(...positive) : 0.1;
  const yMaxRaw = positive.length ? Math.max(...positive) : 1;
  const lo = Math.floor(Math.log10(Math.max(1e-3, yMinRaw)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(yMaxRaw, 1e-3))));
  const x = (v: number): number => pad.l + (v / xMax) * (width - pad.l - pad.r);
  const y = (v: number): number => {
    const l = Math.log10(Math.max(v, 10 ** lo));
    return height - pad.b - ((l - lo) / (hi - lo)) * (height - pad.t - pad.b);
  };
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const ticks: string[] = [];
  for (let e = lo; e <= hi; e++) {
    const v = 10 ** e;
    ticks.push(`<line x1="${pad.l}" x2="${width - pad.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/><text x="${pad.l - 6}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end">${v >= 1 ? v.toFixed(0) : v.toString()}</text>`);
  }
  const xt: string[] = [];
  const step = xMax > 120 ? 20 : 10;
  for (let v = 0; v <= xMax; v += step) xt.push(`<text x="${x(v).toFixed(1)}" y="${height - pad.b + 14}" font-size="10" text-anchor="middle">${v}</text>`);
  const bandEls = bands.map(
    (b) =>
      `<rect x="${x(b.from).toFixed(1)}" y="${pad.t}" width="${Math.max(1, x(b.to) - x(b.from)).toFixed(1)}" height="${height - pad.t - pad.b}" fill="${b.color}" opacity="0.18"/>` +
      `<text x="${((x(b.from) + x(b.to)) / 2).toFixed(1)}" y="${pad.t + 12}" font-size="10" text-anchor="middle" fill="#333">${esc(b.label)}</text>`,
  );
  const lines = series.map((s) => {
    const pts = s.points.filter((p) => p[1] > 0);
    return `<polyline fill="none" stroke="${s.color}" stroke-width="1.6" points="${pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')}"/>`;
  });
  const legend = series.map((s, i) => `<text x="${pad.l + 10 + (i % 3) * 270}" y="${pad.t - 24 + Math.floor(i / 3) * 14}" font-size="12" fill="${s.color}">■ ${esc(s.name)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="16" font-size="14" text-anchor="middle">${esc(title)}</text>
${bandEls.join('\n')}
${ticks.join('\n')}
${xt.join('\n')}
<line x1="${pad.l}" x2="${pad.l}" y1="${pad.t}" y2="${height - pad.b}" stroke="#333"/>
<line x1="${pad.l}" x2="${width - pad.r}" y1="${height - pad.b}" y2="${height - pad.b}" stroke="#333"/>
<text x="${width / 2}" y="${height - 10}" font-size="12" text-anchor="middle">${esc(xLabel)}</text>
<text x="14" y="${height / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${height / 2})">${esc(yLabel)} (log scale)</text>
${lines.join('\n')}
${legend.join('\n')}
</svg>
`;
}
