/** A dependency-free SVG line chart for bench results (one x axis, one or more series). */
export interface Series {
  name: string;
  points: Array<[number, number]>;
  color: string;
}

export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[], width = 720, height = 360): string {
  const pad = { l: 64, r: 16, t: 36, b: 48 };
  const all = series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p[0]));
  const yMax = Math.max(1e-9, ...all.map((p) => p[1])) * 1.1;
  const x = (v: number): number => pad.l + (v / xMax) * (width - pad.l - pad.r);
  const y = (v: number): number => height - pad.b - (v / yMax) * (height - pad.t - pad.b);
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = f * yMax;
    return `<line x1="${pad.l}" x2="${width - pad.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${pad.l - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${v >= 100 ? v.toFixed(0) : v.toFixed(2)}</text>`;
  });
  const lines = series.map((s) => `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')}"/>`);
  const legend = series.map((s, i) => `<text x="${pad.l + 10 + i * 160}" y="${pad.t - 8}" font-size="12" fill="${s.color}">■ ${esc(s.name)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="18" font-size="14" text-anchor="middle">${esc(title)}</text>
${ticks.join('\n')}
<line x1="${pad.l}" x2="${pad.l}" y1="${pad.t}" y2="${height - pad.b}" stroke="#333"/>
<line x1="${pad.l}" x2="${width - pad.r}" y1="${height - pad.b}" y2="${height - pad.b}" stroke="#333"/>
<text x="${width / 2}" y="${height - 10}" font-size="12" text-anchor="middle">${esc(xLabel)} (0-${xMax.toFixed(0)})</text>
<text x="14" y="${height / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${height / 2})">${esc(yLabel)}</text>
${lines.join('\n')}
${legend.join('\n')}
</svg>
`;
}

/** Charts made by lineChart, one above the other, as one SVG document. */
export function stackCharts(charts: string[]): string {
  let y = 0;
  let width = 0;
  const parts = charts.map((svg) => {
    const w = Number(/<svg[^>]*\swidth="(\d+)"/.exec(svg)?.[1] ?? 720);
    const h = Number(/<svg[^>]*\sheight="(\d+)"/.exec(svg)?.[1] ?? 360);
    const part = svg.replace('<svg ', `<svg y="${y}" `);
    y += h;
    width = Math.max(width, w);
    return part;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}">\n${parts.join('')}</svg>\n`;
}
