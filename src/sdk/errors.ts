/** The SDK's own failures; every `code` is in the error catalogue (src/errors.ts, docs/errors.md). */

/** Client-side failures (codes from the error catalogue). */
export type ClientErrorCode = 'LK_SDK_CONNECTION_FAILED' | 'LK_SDK_TIMEOUT' | 'LK_SDK_CONFIRMATION_FAILED' | 'LK_SDK_PROTOCOL_ERROR' | 'LK_SDK_CLOSED' | 'LK_SDK_BAD_KEY';

export class ClientError extends Error {
  constructor(readonly code: ClientErrorCode | string, message: string) {
    super(`${code}: ${message}`);
    this.name = 'ClientError';
  }
}
