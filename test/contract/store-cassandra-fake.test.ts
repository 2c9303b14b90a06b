/**
 * CassandraStore over FakeCassandra (store-cassandra-fake.ts), where no Cassandra server can run:
 * the whole Store contract, then what only Cassandra's storage shows and the contract cannot:
 * tombstones a notification read passes, endpoint rows a page reads, partitions an application's
 * endpoints spread over, and decisions after lightweight transactions with unknown outcomes.
 * This checks the store's logic and its CQL shapes against the fake's model of Cassandra 2.2,
 * not that a server accepts the statements; test/contract/store-cassandra.test.ts does that
 * where LATCHKEY_CASSANDRA_CONTACT_POINTS is set.
 */
import { randomBytes } from 'node:crypto';
import { errors, types } from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import { ENDPOINT_BUCKETS, endpointBucket } from '../../src/store/cassandra/partitions.js';
import { CassandraStore } from '../../src/store/store-cassandra.js';
import type { EndpointRecord } from '../../src/store/store.js';
import { FakeCassandra } from './store-cassandra-fake.js';
import { randomKeyHash, storeContract, uid } from './store.contract.js';

/** A store around any client (the constructor is private: open() connects to a cluster). */
function storeOn(client: unknown): CassandraStore {
  const Ctor = CassandraStore as unknown as new (client: unknown, keyspace: string, serial: number) => CassandraStore;
  return new Ctor(client, 'ks', types.consistencies.localSerial);
}

const shared = new FakeCassandra();
storeContract('cassandra on a fake cluster', async () => storeOn(shared.client()));

const note = (text: string): Buffer => Buffer.from(text, 'utf8');

/** The fake's table holding endpoint records (whatever it is called). */
function endpointTable(fake: FakeCassandra): string {
  const t = [...fake.tables.values()].filter((x) => x.columns.has('profile_body'));
  expect(t).toHaveLength(1);
  return t[0]!.name;
}

function endpoint(appId: string, keyHash = randomKeyHash()): EndpointRecord {
  return {
    appId,
    keyHash,
    credentialsId: keyHash,
    publicKey: randomBytes(294),
    profileBody: randomBytes(20),
    profileHash: randomBytes(32),
    serverProfileBody: null,
    createdAt: Date.now(),
    updatedAt: Date.now(),
  };
}

describe('CassandraStore on a fake cluster: what the contract cannot see', () => {
  it('reads of a notification queue pass no tombstones of acknowledged entries (3,000 enqueue + ack cycles)', { timeout: 60_000 }, async () => {
    const fake = new FakeCassandra();
    const store = storeOn(fake.client());
    const ep = randomKeyHash();
    for (let i = 0; i < 3000; i++) {
      const { seq } = await store.enqueueNotification('app', ep, note(`n${i}`), 100);
      await store.ackNotifications('app', ep, seq);
      if (i % 500 === 499) expect(await store.listNotifications('app', ep, 10)).toEqual([]);
    }
    const next = await store.enqueueNotification('app', ep, note('last'), 100);
    expect(next.seq).toBe(3001);
    expect((await store.listNotifications('app', ep, 10)).map((n) => n.payload.toString())).toEqual(['last']);
    // Before the acknowledged entries were read past by a lower bound, the reads of the last
    // cycles passed ~3,000 tombstones each (Cassandra 3.x/4.x fail a read at 100,000).
    expect(Math.max(...fake.reads.map((r) => r.tombstones))).toBeLessThanOrEqual(1);
  });

  it('trims of a full queue pass no tombstones either (3,000 enqueues at max 10)', { timeout: 60_000 }, async () => {
    const fake = new FakeCassandra();
    const store = storeOn(fake.client());
    const ep = randomKeyHash();
    const dropped: number[] = [];
    for (let i = 0; i < 3000; i++) dropped.push((await store.enqueueNotification('app', ep, note(`n${i}`), 10)).dropped);
    expect(dropped.slice(0, 10).every((d) => d === 0) && dropped.slice(10).every((d) => d === 1)).toBe(true);
    expect((await store.listNotifications('app', ep, 100)).map((n) => n.payload.toString())).toEqual(
      Array.from({ length: 10 }, (_, i) => `n${2990 + i}`),
    );
    expect(Math.max(...fake.reads.map((r) => r.tombstones))).toBeLessThanOrEqual(1);
  });

  it('trims more entries than one batch deletes when max shrinks, leaving no stored leftovers', async () => {
    const fake = new FakeCassandra();
    const store = storeOn(fake.client());
    const ep = randomKeyHash();
    for (let i = 0; i < 150; i++) await store.enqueueNotification('app', ep, note(`n${i}`), 1000);
    expect(await store.enqueueNotification('app', ep, note('new'), 1)).toEqual({ seq: 151, dropped: 150 });
    expect((await store.listNotifications('app', ep, 1000)).map((n) => n.payload.toString())).toEqual(['new']);
    // Every trimmed row was deleted, not only hidden below the head: the head row and the new one remain.
    const [queue] = fake.partitions('notification_queue', 'app');
    const live = queue!.rows.filter((r) => r.marker !== null || r.cells.size > 0);
    expect(live).toHaveLength(2);
  });

  it('decides enqueues and acks whose lightweight transactions time out, applied or not', async () => {
    const fake = new FakeCassandra();
    const inner = fake.client() as { execute: unknown; shutdown: unknown; batch: (q: unknown[], o: unknown) => Promise<unknown> };
    let n = 0;
    const timeout = () => new errors.ResponseError(types.responseErrorCodes.writeTimeout, 'fake CAS write timeout');
    // Every third conditional batch times out after applying, every third one after that before.
    const client = {
      ...inner,
      batch: async (queries: unknown[], opts: unknown) => {
        const k = n++ % 3;
        if (k === 2) throw timeout();
        const out = await inner.batch(queries, opts);
        if (k === 1) throw timeout();
        return out;
      },
    };
    const store = storeOn(client);
    const ep = randomKeyHash();
    const seqs: number[] = [];
    for (let i = 0; i < 30; i++) seqs.push((await store.enqueueNotification('app', ep, note(`n${i}`), 100)).seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(30);
    const listed = await store.listNotifications('app', ep, 100);
    expect(listed.map((x) => x.seq)).toEqual(seqs);
    expect(listed.map((x) => x.payload.toString())).toEqual(seqs.map((_, i) => `n${i}`));
    await store.ackNotifications('app', ep, seqs[19]!);
    expect((await store.listNotifications('app', ep, 100)).map((x) => x.seq)).toEqual(seqs.slice(20));
    await store.ackNotifications('app', ep, Number.MAX_SAFE_INTEGER);
    expect(await store.listNotifications('app', ep, 100)).toEqual([]);
  });

  it('buckets endpoints by the first two key hash characters, in key hash order', () => {
    expect(ENDPOINT_BUCKETS).toBe(4096);
    const keys = Array.from({ length: 2000 }, () => randomKeyHash()).concat(['-', 'z', 'A', 'A-', 'AB', '__', 'zz']);
    keys.sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    const buckets = keys.map(endpointBucket);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!).toBeGreaterThanOrEqual(buckets[i - 1]!);
    expect(Math.min(...buckets)).toBe(0);
    expect(endpointBucket('zz')).toBe(4095);
  });

  it('spreads one application\'s endpoints over thousands of partitions, not 64', async () => {
    const fake = new FakeCassandra();
    const store = storeOn(fake.client());
    const appId = uid('a');
    for (let i = 0; i < 600; i++) await store.saveEndpoint(endpoint(appId));
    const parts = fake.partitions(endpointTable(fake), appId);
    // 600 random key hashes in 4,096 buckets: about 558 distinct ones.
    expect(parts.length).toBeGreaterThan(400);
    expect(Math.max(...parts.map((p) => p.rows.length))).toBeLessThan(10);
  });

  it('reads at most limit + 1 endpoint rows per page, small and large pages alike', async () => {
    const fake = new FakeCassandra();
    const store = storeOn(fake.client());
    const appId = uid('a');
    const saved: string[] = [];
    for (let i = 0; i < 300; i++) saved.push((await store.saveEndpoint(endpoint(appId))).keyHash);
    // Keys sharing a bucket, so a page also continues within one.
    for (const suffix of ['a', 'b', 'c', 'd', 'e']) saved.push((await store.saveEndpoint(endpoint(appId, `AA${suffix}${randomKeyHash().slice(3)}`))).keyHash);
    saved.sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    const table = endpointTable(fake);
    for (const limit of [1, 7, 10, 100, 1000]) {
      const listed: string[] = [];
      let cursor: string | null = null;
      do {
        fake.resetStats();
        const page: Awaited<ReturnType<CassandraStore['listEndpoints']>> = await store.listEndpoints(appId, limit, cursor);
        const rowsRead = fake.reads.filter((r) => r.table === table).reduce((sum, r) => sum + r.rows, 0);
        expect(rowsRead, `limit ${limit}`).toBeLessThanOrEqual(limit + 1);
        listed.push(...page.items.map((e) => e.keyHash));
        cursor = page.next;
      } while (cursor !== null);
      expect(listed, `limit ${limit}`).toEqual(saved);
    }
  });

  it('sent no CQL the fake refuses (shapes Cassandra 2.2 accepts, bound values of the column types)', () => {
    expect(shared.invalid).toEqual([]);
  });
});
