/**
 * CassandraStore: the Store contract against a real cluster. Skipped unless
 * LATCHKEY_CASSANDRA_CONTACT_POINTS is set (comma-separated host[:port] list), e.g.
 *
 *   docker run -d -p 9042:9042 cassandra:4.1
 *   LATCHKEY_CASSANDRA_CONTACT_POINTS=127.0.0.1 npx vitest run test/contract/store-cassandra.test.ts
 *
 * LATCHKEY_CASSANDRA_LOCAL_DC defaults to datacenter1 (the docker image's DC) and
 * LATCHKEY_CASSANDRA_KEYSPACE to latchkey_test. The keyspace is kept between runs: every test
 * uses random ids, and reopening the same keyspace is what the persistence test checks.
 */
import { CassandraStore } from '../../src/store/store-cassandra.js';
import { storeContract } from './store.contract.js';

const contactPoints = (process.env.LATCHKEY_CASSANDRA_CONTACT_POINTS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

storeContract(
  'cassandra',
  () =>
    CassandraStore.open({
      contactPoints,
      localDataCenter: process.env.LATCHKEY_CASSANDRA_LOCAL_DC || 'datacenter1',
      keyspace: process.env.LATCHKEY_CASSANDRA_KEYSPACE || 'latchkey_test',
      ...(process.env.LATCHKEY_CASSANDRA_USERNAME
        ? { username: process.env.LATCHKEY_CASSANDRA_USERNAME, password: process.env.LATCHKEY_CASSANDRA_PASSWORD ?? '' }
        : {}),
    }),
  { skip: contactPoints.length === 0 },
);
