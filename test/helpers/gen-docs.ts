/**
 * Regenerate the generated sections of docs/ and the generated TypeScript of the wire records
 * (src/protocol/wire-types.ts) from the code: `npm run docs`. The unit tests fail when a generated
 * part is out of date, so run this after changing schemas, errors or config.
 */
import fs from 'node:fs';
import path from 'node:path';
import { renderConfigTable } from './config-doc.js';
import { renderTable } from './errors-doc.js';
import { renderWireTypes, WIRE_TYPES_FILE } from './gen-wire-types.js';
import { renderProtocolDoc, replaceSection, ROOT } from './protocol-example.js';

function rewrite(rel: string, fn: (doc: string) => string): void {
  const file = path.join(ROOT, rel);
  const before = fs.readFileSync(file, 'utf8');
  const after = fn(before);
  if (after !== before) fs.writeFileSync(file, after);
  process.stdout.write(`${rel}: ${after === before ? 'up to date' : 'updated'}\n`);
}

rewrite('docs/protocol.md', renderProtocolDoc);
rewrite('docs/errors.md', (d) => replaceSection(d, 'table', renderTable()));
rewrite('docs/operations.md', (d) => replaceSection(d, 'config', renderConfigTable()));
rewrite(WIRE_TYPES_FILE, () => renderWireTypes());
