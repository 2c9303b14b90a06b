/** The configuration table of docs/operations.md, rendered from the config schema. */
import { configSchema } from '../../src/config/config.js';

const kebab = (k: string): string => k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

export function renderConfigTable(): string {
  const rows = Object.entries(configSchema).map(([k, s]) => {
    const spec = s as { type: string; default: unknown; env: string; doc: string; min?: number; max?: number; choices?: readonly string[] };
    let d: unknown = spec.default;
    if (Array.isArray(d)) d = d.length ? d.join(',') : '(empty)';
    else if (typeof d === 'object') d = JSON.stringify(d);
    else if (d === '') d = '(empty)';
    let range = '';
    if (spec.min !== undefined) range = ` (${spec.min}-${spec.max})`;
    if (spec.choices) range = ` (${spec.choices.join(', ')})`;
    return `| \`${k}\` | \`${spec.env}\` | \`--${kebab(k)}\` | ${spec.type}${range} | \`${String(d)}\` | ${spec.doc} |`;
  });
  return '| field | environment | flag | type | default | meaning |\n|---|---|---|---|---|---|\n' + rows.join('\n');
}

export function configSection(doc: string): string {
  const b = '<!-- config:begin -->\n';
  const e = '\n<!-- config:end -->';
  return doc.slice(doc.indexOf(b) + b.length, doc.indexOf(e));
}
