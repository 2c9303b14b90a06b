/**
 * The store commands that need no server: `tenant`, `app`, `credentials`, `registration` and
 * `seed` work directly on the configured store (the embedded LMDB store may be shared with a
 * server running on the same host). `admin create-key` (admin.ts) uses withStore too.
 */
import { pino, type Logger } from 'pino';
import { openStore } from '../backends.js';
import { isKeyHashId, keyHashId, toSpkiDer } from '../crypto/keys.js';
import { LatchkeyError } from '../errors.js';
import { loadCredentialsServices } from '../server.js';
import type { Store } from '../store/store.js';
import { applySeed, createApplication, createTenant, provisionCredentials, provisionRegistration } from '../tenancy/provision.js';
import { configFrom, need, readFile, type Parsed } from './args.js';
import { print } from './output.js';

function quietLogger(): Logger {
  return pino({ level: 'warn' }, pino.destination(2));
}

/** Run `fn` on the configured store with the names of the credentials services; closes the store. */
export async function withStore<T>(p: Parsed, fn: (store: Store, services: string[]) => Promise<T>): Promise<T> {
  const config = configFrom(p);
  const log = quietLogger();
  const store = await openStore(config, log);
  try {
    const services = [...(await loadCredentialsServices(config, store, log)).keys()];
    return await fn(store, services);
  } finally {
    await store.close();
  }
}

export function tenant(p: Parsed): Promise<void> {
  const sub = p.words[1] ?? '';
  return withStore(p, async (store) => {
    if (sub === 'create') {
      const t = await createTenant(store, { name: need(p, 'name'), ...(p.opts.id ? { id: p.opts.id } : {}) });
      print(p, t, [{ id: t.id, name: t.name }]);
    } else if (sub === 'list') {
      const ts = await store.listTenants();
      print(p, ts, ts.map((t) => ({ id: t.id, name: t.name })));
    } else throw new LatchkeyError('LK_CLI_USAGE', 'tenant create|list');
  });
}

export function app(p: Parsed): Promise<void> {
  const sub = p.words[1] ?? '';
  return withStore(p, async (store, services) => {
    if (sub === 'create') {
      const a = await createApplication(
        store,
        {
          tenantId: need(p, 'tenant'),
          name: need(p, 'name'),
          ...(p.opts.id ? { id: p.opts.id } : {}),
          ...(p.opts.token ? { appToken: p.opts.token } : {}),
          ...(p.opts.credentials ? { credentialsService: p.opts.credentials } : {}),
          profileSchema: p.opts['profile-schema'] ? readFile(p.opts['profile-schema']) : null,
        },
        services,
      );
      print(p, a, [{ id: a.id, tenant: a.tenantId, name: a.name, appToken: a.appToken, credentials: a.credentialsService }]);
    } else if (sub === 'list') {
      const as = await store.listApplications(need(p, 'tenant'));
      print(p, as, as.map((a) => ({ id: a.id, name: a.name, appToken: a.appToken, credentials: a.credentialsService })));
    } else throw new LatchkeyError('LK_CLI_USAGE', 'app create|list');
  });
}

export function credentials(p: Parsed): Promise<void> {
  const sub = p.words[1] ?? '';
  return withStore(p, async (store) => {
    const appId = need(p, 'app');
    if (sub === 'provision') {
      const c = await provisionCredentials(store, appId, readFile(need(p, 'key')));
      const reg = p.opts['server-profile'] ? await provisionRegistration(store, appId, c.credentialsId, readFile(p.opts['server-profile'])) : null;
      print(p, { credentials: c, registration: reg }, [{ credentialsId: c.credentialsId, status: c.status, serverProfile: reg ? 'yes' : 'no' }]);
    } else if (sub === 'show') {
      const id = need(p, 'id');
      const c = await store.getCredentials(appId, id);
      if (!c) throw new LatchkeyError('LK_NOT_FOUND', `credentials ${id}`);
      print(p, c, [{ credentialsId: c.credentialsId, status: c.status, endpoint: c.endpointId }]);
    } else throw new LatchkeyError('LK_CLI_USAGE', 'credentials provision|show');
  });
}

export function registration(p: Parsed): Promise<void> {
  const sub = p.words[1] ?? '';
  return withStore(p, async (store) => {
    if (sub !== 'provision') throw new LatchkeyError('LK_CLI_USAGE', 'registration provision');
    const appId = need(p, 'app');
    const id = p.opts.id ?? (p.opts.key ? keyHashId(toSpkiDer(readFile(p.opts.key))) : '');
    if (!isKeyHashId(id)) throw new LatchkeyError('LK_CLI_USAGE', '--id KEY_HASH or --key PUBLIC_KEY.pem is required');
    const r = await provisionRegistration(store, appId, id, readFile(need(p, 'server-profile')));
    print(p, r, [{ credentialsId: r.credentialsId, serverProfile: r.serverProfileBody }]);
  });
}

export function seed(p: Parsed): Promise<void> {
  return withStore(p, async (store, services) => {
    const file = p.words[1];
    if (!file) throw new LatchkeyError('LK_CLI_USAGE', 'seed FILE');
    const res = await applySeed(store, file, services);
    print(p, res, [{ ...res }]);
  });
}
