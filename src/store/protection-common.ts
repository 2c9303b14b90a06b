/**
 * The protection area's shared checks and copies (common/protection.ts), for the importers that
 * still name this file: admin/route-kit.ts, admin/routes-operations.ts and the Cassandra backend.
 * New code imports common/protection.ts; this file goes once those importers have moved.
 */
export * from './common/protection.js';
