/**
 * Every check, cursor and copy the Store backends share, gathered from common/ (values.ts, and one
 * module per area of store.ts) for the importers that still name this file: the Cassandra backend,
 * admin/routes.ts, events/relay.ts and ownership/ownership.ts. New code imports the module of its
 * area (or values.ts) instead; this file goes once those importers have moved.
 */
export * from './common/values.js';
export * from './common/tenancy.js';
export * from './common/credentials.js';
export * from './common/registration.js';
export * from './common/api-keys.js';
export * from './common/ownership.js';
export * from './common/verifiers.js';
export * from './common/notifications.js';
