/**
 * Lightweight transactions of the Cassandra store and their unknown outcomes: run one (or a
 * conditional batch) and answer applied, not applied or 'unknown'; decide an unknown one by a
 * serial read of the row's write_id; tell from a driver error whether the request may have applied
 * (outcomeUnknown); back off between contended attempts. See store-cassandra.ts, "Consistency".
 */
import { errors, types } from 'cassandra-driver';
import { LatchkeyError } from '../../errors.js';
import type { CassandraContext } from './context.js';

export type CasOutcome = { applied: boolean } | 'unknown';

/** Attempts at a lightweight transaction that keeps losing to concurrent changes. */
export const MAX_ATTEMPTS = 5;

/** Run a lightweight transaction; 'unknown' when it may or may not have applied. */
export async function cas(cx: CassandraContext, query: string, params: unknown[]): Promise<CasOutcome> {
  try {
    const rs = await cx.client.execute(query, params, cx.CAS);
    return { applied: rs.wasApplied() };
  } catch (err) {
    if (outcomeUnknown(err)) return 'unknown';
    throw err;
  }
}

/**
 * Decide an unknown outcome with a serial read of the row `query` selects: applied if its
 * write_id is ours, not applied if the row is someone else's; LK_STORE_UNAVAILABLE if there is
 * no row (the transaction did not apply, and a conflict cannot be told from a failure then).
 */
export async function resolve(cx: CassandraContext, query: string, params: unknown[], writeId: types.Uuid): Promise<boolean> {
  const row = await serialRow(cx, query, params);
  if (row === null) throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'lightweight transaction timed out and did not apply');
  return sameId(row, writeId);
}

/** Run a conditional batch (one partition); 'unknown' when it may or may not have applied. */
export async function casBatch(cx: CassandraContext, queries: Array<{ query: string; params: unknown[] }>): Promise<CasOutcome> {
  try {
    const rs = await cx.client.batch(queries, cx.CAS);
    return { applied: rs.wasApplied() };
  } catch (err) {
    if (outcomeUnknown(err)) return 'unknown';
    throw err;
  }
}

export async function serialRow(cx: CassandraContext, query: string, params: unknown[]): Promise<types.Row | null> {
  return (await cx.client.execute(query, params, cx.SERIAL_READ)).first() ?? null;
}

/**
 * Server errors that prove the coordinator did not apply the request: it refused it before any
 * replica was asked (bad request, no permission, schema or protocol trouble, a coordinator still
 * bootstrapping) or found too few replicas alive before its Paxos round (unavailable; the driver
 * itself retries these whatever the request's idempotence). Every other server error may come
 * after replicas accepted a proposal or a write: server error, overloaded (raised while writes are
 * being sent), write timeout, write failure, and read timeout/failure, which a lightweight
 * transaction can also report (being conservative there costs one serial read).
 */
const NOT_APPLIED_CODES: ReadonlySet<number> = new Set([
  types.responseErrorCodes.protocolError,
  types.responseErrorCodes.badCredentials,
  types.responseErrorCodes.unavailableException,
  types.responseErrorCodes.isBootstrapping,
  types.responseErrorCodes.truncateError,
  types.responseErrorCodes.syntaxError,
  types.responseErrorCodes.unauthorized,
  types.responseErrorCodes.invalid,
  types.responseErrorCodes.configError,
  types.responseErrorCodes.alreadyExists,
  types.responseErrorCodes.unprepared,
]);

/**
 * Whether a failed lightweight transaction may still have applied (its outcome is then decided by
 * a serial read, never by the error). Only errors that prove the request was not applied answer
 * false; anything unrecognised from the driver counts as unknown.
 * - A socket closed after the request was written ("Socket was closed": the driver sets
 *   isSocketError, and requestNotWritten only for requests still queued on the connection) is
 *   unknown like a timeout: the coordinator may have run the whole Paxos round (against a
 *   Cassandra 2.2 server, 9 of 200 writes refused this way had applied).
 * - OperationTimedOutError (the driver's read timeout) and DriverInternalError: unknown.
 * - BusyConnectionError, ArgumentError, NotSupportedError, AuthenticationError, and errors that are
 *   not DriverErrors (parameter encoding, connection set-up): nothing was sent.
 * - NoHostAvailableError: unknown if the attempt on any host was.
 */
export function outcomeUnknown(err: unknown): boolean {
  if (!(err instanceof errors.DriverError)) return false;
  if (err instanceof errors.NoHostAvailableError) {
    const inner = (err.innerErrors ?? {}) as Record<string, unknown>;
    return Object.values(inner).some((e) => outcomeUnknown(e));
  }
  const flags = err as { isSocketError?: boolean; requestNotWritten?: boolean };
  if (flags.isSocketError === true) return flags.requestNotWritten !== true;
  if (err instanceof errors.ResponseError) return !NOT_APPLIED_CODES.has(err.code);
  if (
    err instanceof errors.BusyConnectionError ||
    err instanceof errors.ArgumentError ||
    err instanceof errors.NotSupportedError ||
    err instanceof errors.AuthenticationError
  ) {
    return false;
  }
  return true;
}

/** Whether `row` was written by the call that generated `writeId`. */
export function sameId(row: types.Row, writeId: types.Uuid): boolean {
  const id = row.get('write_id') as types.Uuid | null;
  return id !== null && id !== undefined && id.toString() === writeId.toString();
}

/** Whether two rows of one table carry the same write_id. */
export function sameRowId(a: types.Row, b: types.Row): boolean {
  const x = a.get('write_id') as types.Uuid | null;
  const y = b.get('write_id') as types.Uuid | null;
  return x != null && y != null && x.toString() === y.toString();
}

/** Jittered exponential backoff before retrying a contended lightweight transaction (at most 100 ms). */
export function backoff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(100, 2 ** attempt)));
}
