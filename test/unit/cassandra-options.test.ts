/**
 * Statement options of the Cassandra store: reads (plain and serial) and plain writes are marked
 * idempotent, so the driver may retry them on another coordinator; lightweight transactions are
 * not. Checked on the options themselves and on every statement a set of store calls runs through
 * a fake client (no cluster: the fake answers every read with no rows and every transaction with
 * "applied").
 */
import { randomUUID } from 'node:crypto';
import { types, type QueryOptions } from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import { statementOptions } from '../../src/store/cassandra/context.js';
import { CassandraStore } from '../../src/store/store-cassandra.js';

interface Call {
  query: string;
  opts: QueryOptions;
}

function emptyResult() {
  return {
    rows: [],
    first: () => null,
    wasApplied: () => true,
    async *[Symbol.asyncIterator]() {},
  };
}

function fakeStore(): { store: CassandraStore; calls: Call[] } {
  const calls: Call[] = [];
  const client = {
    execute: async (query: string, _params: unknown[], opts: QueryOptions) => {
      calls.push({ query, opts });
      return emptyResult();
    },
    batch: async (queries: Array<{ query: string }>, opts: QueryOptions) => {
      // One call: a batch with a condition on any statement is a lightweight transaction as a whole.
      calls.push({ query: queries.map((q) => q.query).join(';\n'), opts });
      return emptyResult();
    },
    shutdown: async () => undefined,
  };
  // The constructor is private (open() connects to a cluster); build one around the fake.
  const Ctor = CassandraStore as unknown as new (client: unknown, keyspace: string, serial: number) => CassandraStore;
  return { store: new Ctor(client, 'ks', types.consistencies.localSerial), calls };
}

const KEY = 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde';

describe('Cassandra statement options', () => {
  it('reads and plain writes are idempotent, lightweight transactions are not; all prepared', () => {
    for (const serial of [types.consistencies.localSerial, types.consistencies.serial]) {
      const o = statementOptions(serial);
      expect(o.READ).toMatchObject({ prepare: true, isIdempotent: true, consistency: types.consistencies.localQuorum });
      expect(o.SERIAL_READ).toMatchObject({ prepare: true, isIdempotent: true, consistency: serial });
      expect(o.UPSERT).toMatchObject({ prepare: true, isIdempotent: true, consistency: types.consistencies.localQuorum });
      expect(o.CAS).toMatchObject({ prepare: true, isIdempotent: false, serialConsistency: serial });
    }
  });

  it('every statement the store runs carries the options of its kind', async () => {
    const { store, calls } = fakeStore();
    // "Not found" answers are fine here; a refused argument would mean the call ran no statement.
    const settle = (p: Promise<unknown>) =>
      p.catch((err: { code?: string }) => {
        if (err.code === 'LK_BAD_ARGUMENT') throw err;
      });
    await Promise.all(
      [
        store.getTenant('t1'),
        store.listTenants(),
        store.getApplication('a1'),
        store.getApplicationByToken('tok'),
        store.listApplications('t1'),
        store.getCredentials('a1', 'c1'),
        store.listCredentials('a1', { limit: 10 }),
        store.getRegistration('a1', 'c1'),
        store.getEndpoint('a1', KEY),
        store.listEndpoints('a1', 10),
        store.getEndpointOwner('a1', KEY),
        store.getEventClasses('a1', KEY),
        store.listOwnerEndpoints('t1', 'o1'),
        store.findEndpointByAccessToken('t1', Buffer.alloc(32, 1), Date.now()),
        store.getVerifier('a1', 'v1'),
        store.listVerifiers('a1'),
        store.getDefaultVerifier('a1'),
        store.listNotifications('a1', KEY, 10),
        store.getApiKey('k1'),
        store.listApiKeys(),
        store.listApiKeys('t1'),
        store.countApiKeys(),
        store.listBans(Date.now()),
        store.listControlSince(Date.now() - 1000, 10),
        store.bindCredentials('a1', 'c1', 'e1'),
        store.revokeCredentials('a1', 'c1'),
        store.detachEndpoint('a1', KEY),
        store.deleteApiKey('k1'),
        store.deleteBan('ip', '192.0.2.1'),
        store.putBan({ kind: 'ip', value: '192.0.2.2', reason: 'test', createdAt: Date.now(), expiresAt: null, createdBy: 'cli' }),
        store.createTenant({ id: 't2', name: 'T', createdAt: Date.now() }),
        store.setEventClasses('a1', KEY, []),
        store.enqueueNotification('a1', KEY, Buffer.from('x'), 10),
        store.appendControl({ id: randomUUID(), type: 'kick', appId: 'a1', keyHash: KEY, at: Date.now() }),
        store.saveEndpoint({
          appId: 'a1',
          keyHash: KEY,
          credentialsId: 'c1',
          publicKey: Buffer.alloc(32),
          profileBody: Buffer.alloc(0),
          profileHash: Buffer.alloc(32),
          serverProfileBody: null,
          createdAt: Date.now(),
          updatedAt: Date.now(),
        }),
      ].map(settle),
    );
    const kinds = new Set<string>();
    for (const { query, opts } of calls) {
      const q = query.trim();
      const conditional = /\sIF\s/.test(q);
      if (/^SELECT\s/i.test(q)) {
        kinds.add('read');
        expect(opts.isIdempotent, q).toBe(true);
      } else if (conditional) {
        kinds.add('lwt');
        expect(opts.isIdempotent, q).toBe(false);
      } else {
        kinds.add('write');
        expect(opts.isIdempotent, q).toBe(true);
      }
      expect(opts.prepare, q).toBe(true);
    }
    expect([...kinds].sort()).toEqual(['lwt', 'read', 'write']);
    expect(calls.length).toBeGreaterThan(30);
  });
});
