/**
 * What every area module of the Cassandra store works with: the store's context (driver client,
 * statements, statement options, its guard) and the few helpers the areas share. Area modules are
 * sets of functions taking this context as their first argument; CassandraStore
 * (store-cassandra.ts) builds one and delegates each Store method to its area.
 */
import { types, type Client, type QueryOptions } from 'cassandra-driver';
import type { Queries } from './cql.js';

const { consistencies } = types;

/** One per CassandraStore. */
export interface CassandraContext {
  readonly client: Client;
  readonly q: Queries;
  /** Plain reads (see statementOptions). */
  readonly READ: QueryOptions;
  /** Plain upserts and deletes. */
  readonly UPSERT: QueryOptions;
  /** Lightweight transactions. */
  readonly CAS: QueryOptions;
  /** Linearizable reads (complete any Paxos round in flight). */
  readonly SERIAL_READ: QueryOptions;
  /** app_endpoint_buckets rows this process wrote, as `${bucket}:${appId}` (never deleted, so never stale). */
  readonly knownBuckets: Set<string>;
  /** Run fn unless the store is closed; driver errors become LatchkeyErrors (storeError). */
  guard<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * Options of every statement the store runs, by kind. isIdempotent tells the driver whether it may
 * send a request again (to the same or the next coordinator) after a socket error, a client
 * timeout or an overloaded answer, when the first attempt may have been applied:
 * - Reads, plain and serial, are idempotent. A serial read may complete a Paxos round another
 *   caller left in flight, which any later serial read would complete the same way.
 * - Plain upserts and deletes are idempotent: each sets whole cells to values fixed by the caller,
 *   at the client timestamp the driver picked for the first attempt (a retry reuses it), so a late
 *   retry cannot overwrite a newer write. The store has no counters and no list appends, which
 *   would not be.
 * - Lightweight transactions (single statements and conditional batches) are NOT: a second
 *   attempt of one that applied would answer "not applied". Their unknown outcomes are decided
 *   here by a serial read instead (outcomeUnknown, lwt.ts).
 */
export function statementOptions(serial: number): { READ: QueryOptions; SERIAL_READ: QueryOptions; UPSERT: QueryOptions; CAS: QueryOptions } {
  const localQuorum = consistencies.localQuorum;
  return {
    READ: { prepare: true, consistency: localQuorum, isIdempotent: true },
    SERIAL_READ: { prepare: true, consistency: serial, isIdempotent: true },
    UPSERT: { prepare: true, consistency: localQuorum, isIdempotent: true },
    CAS: { prepare: true, consistency: localQuorum, serialConsistency: serial, isIdempotent: false },
  };
}

/** Row reads listApplications runs at once. */
export const READ_FANOUT = 16;
/** LIMIT is a 32-bit int in CQL. */
export const MAX_CQL_LIMIT = 2 ** 31 - 1;

export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
