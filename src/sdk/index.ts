/** Public entry point of the endpoint SDK. */
export * from './client.js';
export { generateEndpointKeys, loadEndpointKeys, exportEndpointKeys, type EndpointKeys } from './crypto.js';
export type { SyncRequest, SyncResponse } from '../protocol/schemas.js';
export { resolveAccessPoints, verifyAccessPointList, orderAccessPoints, BootstrapError, type BootstrapOptions, type ResolvedAccessPoints } from './bootstrap.js';
