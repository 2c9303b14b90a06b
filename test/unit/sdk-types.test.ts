/**
 * The SDK's TypeScript declarations as a user's project meets them: `import ... from 'latchkey/sdk'`
 * resolves through package.json's `types` condition, and type-checks strictly with no @types/node,
 * only the ES2022 library (the declarations bring the DOM typings they need) and skipLibCheck off.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/root.js';

const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');

const CONSUMER = `import { EndpointClient, generateEndpointKeys, ClientError, type ConnectResult, type SyncResponse } from 'latchkey/sdk';
const keys = await generateEndpointKeys();
const c = new EndpointClient({ url: 'ws://127.0.0.1:9443', appToken: 't', serverKey: { id: 'k', spki: new Uint8Array(1) }, keys, reconnect: true });
const r: ConnectResult = await c.connect({ profile: new TextEncoder().encode('{}') });
const s: SyncResponse | null = r.ok ? r.sync : null;
const data: Uint8Array | null | undefined = s?.eventSyncResponse?.events?.[0]?.eventData;
c.onEvent((e) => void e.data?.byteLength);
export const out = [data, ClientError];
`;

describe('SDK declarations', () => {
  it('a strict TypeScript project without @types/node type-checks against latchkey/sdk', () => {
    const emit = spawnSync(process.execPath, [TSC, '-p', path.join(ROOT, 'tsconfig.sdk.json')], { encoding: 'utf8' });
    expect(emit.status, emit.stdout + emit.stderr).toBe(0);
    // Inside the package (self-reference through exports); test/artifacts is ignored by git.
    fs.mkdirSync(path.join(ROOT, 'test/artifacts'), { recursive: true });
    const dir = fs.mkdtempSync(path.join(ROOT, 'test/artifacts/sdk-types-'));
    try {
      fs.writeFileSync(path.join(dir, 'consumer.ts'), CONSUMER);
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: [], lib: ['ES2022'], skipLibCheck: false },
        files: ['consumer.ts'],
      }));
      const r = spawnSync(process.execPath, [TSC, '-p', dir], { encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
