/// <reference lib="dom" preserve="true" />
/**
 * Public entry point of the endpoint SDK: `import { EndpointClient } from 'latchkey/sdk'`.
 * Written against WebCrypto and the WHATWG WebSocket (hence the DOM typings above, also for Node
 * users); tsconfig.sdk.json type-checks it and everything it imports without Node's typings.
 */
export * from './client.js';
export { generateEndpointKeys, loadEndpointKeys, exportEndpointKeys, type EndpointKeys } from './crypto.js';
export type { AccessPoint, SyncRequest, SyncResponse, WireEvent } from '../protocol/wire-schemas.js';
export { resolveAccessPoints, verifyAccessPointList, orderAccessPoints, BootstrapError, type BootstrapOptions, type ResolvedAccessPoints } from './bootstrap.js';
