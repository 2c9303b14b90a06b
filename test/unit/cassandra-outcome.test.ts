/**
 * outcomeUnknown: which cassandra-driver errors leave a lightweight transaction's outcome unknown
 * (decided by a serial read) and which prove it was not applied. Fake driver errors, built the way
 * the driver builds them (connection.js, writers.js, request-execution.js); no cluster needed.
 */
import { errors, types } from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import { outcomeUnknown } from '../../src/store/cassandra/lwt.js';

// DriverError is abstract in the typings only; the driver itself constructs it.
const DriverError = errors.DriverError as unknown as new (message: string) => errors.DriverError;

/** As Connection.clearAndInvokePending: the socket closed while the request was in flight. */
function socketClosedAfterSend(): errors.DriverError {
  return Object.assign(new DriverError('Socket was closed'), { isSocketError: true });
}

/** As WriteQueue.setWriteError: the socket failed before the request was written. */
function socketClosedBeforeSend(): errors.DriverError {
  return Object.assign(new DriverError('Socket was closed'), { isSocketError: true, requestNotWritten: true, innerError: new Error('EPIPE') });
}

const codes = types.responseErrorCodes;

describe('outcomeUnknown (Cassandra driver errors)', () => {
  it('a socket closed after the request was sent is an unknown outcome', () => {
    expect(outcomeUnknown(socketClosedAfterSend())).toBe(true);
  });

  it('a socket that failed before the request was written proves it was not applied', () => {
    expect(outcomeUnknown(socketClosedBeforeSend())).toBe(false);
  });

  it('timeouts are unknown: the driver read timeout and a server write timeout', () => {
    expect(outcomeUnknown(new errors.OperationTimedOutError('The host 10.0.0.1:9042 did not reply before timeout 12000 ms', '10.0.0.1:9042'))).toBe(true);
    expect(outcomeUnknown(new errors.ResponseError(codes.writeTimeout, 'Operation timed out - received only 1 responses.'))).toBe(true);
  });

  it('server errors that may follow accepted writes are unknown', () => {
    for (const code of [codes.serverError, codes.overloaded, codes.writeFailure, codes.readTimeout, codes.readFailure, codes.functionFailure]) {
      expect(outcomeUnknown(new errors.ResponseError(code, `code ${code}`)), `code 0x${code.toString(16)}`).toBe(true);
    }
  });

  it('refusals before any replica was asked prove the request was not applied', () => {
    for (const code of [
      codes.unavailableException,
      codes.isBootstrapping,
      codes.syntaxError,
      codes.invalid,
      codes.unauthorized,
      codes.configError,
      codes.alreadyExists,
      codes.unprepared,
      codes.protocolError,
      codes.badCredentials,
    ]) {
      expect(outcomeUnknown(new errors.ResponseError(code, `code ${code}`)), `code 0x${code.toString(16)}`).toBe(false);
    }
  });

  it('client-side refusals and non-driver errors were never sent', () => {
    expect(outcomeUnknown(new errors.BusyConnectionError('10.0.0.1:9042', 2048, 1))).toBe(false);
    expect(outcomeUnknown(new errors.ArgumentError('bad parameter'))).toBe(false);
    expect(outcomeUnknown(new errors.NotSupportedError('not supported'))).toBe(false);
    expect(outcomeUnknown(new errors.AuthenticationError('bad credentials'))).toBe(false);
    expect(outcomeUnknown(new TypeError('Not a valid list value'))).toBe(false);
    expect(outcomeUnknown(new Error('connect ECONNREFUSED 10.0.0.1:9042'))).toBe(false);
    expect(outcomeUnknown('not an error')).toBe(false);
  });

  it('an unrecognised driver error is unknown', () => {
    expect(outcomeUnknown(new DriverError('something new'))).toBe(true);
    expect(outcomeUnknown(new errors.DriverInternalError('bug'))).toBe(true);
  });

  it('NoHostAvailableError is unknown when the attempt on any host was', () => {
    const refused = new errors.NoHostAvailableError({ '10.0.0.1:9042': new Error('connect ECONNREFUSED'), '10.0.0.2:9042': socketClosedBeforeSend() });
    expect(outcomeUnknown(refused)).toBe(false);
    const maybe = new errors.NoHostAvailableError({ '10.0.0.1:9042': new Error('connect ECONNREFUSED'), '10.0.0.2:9042': socketClosedAfterSend() });
    expect(outcomeUnknown(maybe)).toBe(true);
    expect(outcomeUnknown(new errors.NoHostAvailableError(undefined as unknown as object))).toBe(false);
  });
});
