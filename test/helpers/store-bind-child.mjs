/**
 * Child process for the multi-process bind test (test/contract/store-embedded.test.ts).
 *
 *   node store-bind-child.mjs <dataDir> <appId> <endpointId> <credentialsId>...
 *
 * Opens the COMPILED EmbeddedStore (dist/, built by `npm run build` / pretest) on the shared data
 * directory, prints "ready", waits for "go" on stdin so every child starts binding at once, then
 * binds all credentials ids concurrently to its own endpoint id and prints one JSON line:
 * { endpointId, results: { [credentialsId]: { ok, reason } } }.
 */
import { createInterface } from 'node:readline';

const [dir, appId, endpointId, ...credentialsIds] = process.argv.slice(2);
const { EmbeddedStore } = await import(new URL('../../dist/src/store/store-embedded.js', import.meta.url).href);

const store = await EmbeddedStore.open(dir);
const lines = createInterface({ input: process.stdin });
const go = new Promise((resolve) => lines.on('line', (line) => line.trim() === 'go' && resolve()));
process.stdout.write('ready\n');
await go;
lines.close();

const settled = await Promise.all(
  credentialsIds.map((id) =>
    store.bindCredentials(appId, id, endpointId).then(
      (r) => [id, { ok: r.ok, reason: r.ok ? null : r.reason }],
      (err) => [id, { ok: false, reason: `error ${err?.code ?? err}` }],
    ),
  ),
);
await store.close();
process.stdout.write(JSON.stringify({ endpointId, results: Object.fromEntries(settled) }) + '\n');
