/**
 * Avro schemas of every message on the wire. docs/protocol.md reproduces them; a test checks that the
 * document and these definitions agree (test/unit/protocol-doc.test.ts).
 *
 * Names follow Kaa's endpoint.avsc where Kaa had the concept (SyncRequest, SyncResponse, ProfileSync*,
 * UserSync*, EventSync*, the result and error enums). Differences from Kaa, on purpose:
 * - the application token, key hash and public key travel in CONNECT, not in SyncRequestMetaData;
 * - UserAttachNotification carries the owner's external id and the endpoint key hash in fields that
 *   say so (Kaa put internal ids into fields named userExternalId / endpointAccessToken);
 * - SyncResponse has an `errorCode` string from the latchkey error catalogue.
 *
 * The schemas themselves are plain data in wire-schemas.ts (shared with the SDK, which has no avsc);
 * this module parses them with avsc for the server and fixes the decoded bytes type to Buffer.
 */
import avro from 'avsc';
import type * as W from './wire-schemas.js';
import {
  accessPointListSchema,
  bootstrapRequestSchema,
  bootstrapResponseSchema,
  connackSchema,
  connectBodySchema,
  connectSchema,
  disconnectSchema,
  resumeBodySchema,
  resumeSchema,
  syncFrameSchema,
  syncRequestSchema,
  syncResponseSchema,
  ticketSchema,
} from './wire-schemas.js';
import { AVRO_GUARD_INSTALLED } from './avro-guard.js';
void AVRO_GUARD_INSTALLED;

export {
  accessPointListSchema,
  bootstrapRequestSchema,
  bootstrapResponseSchema,
  connackSchema,
  connectBodySchema,
  connectSchema,
  disconnectSchema,
  resumeBodySchema,
  resumeSchema,
  syncFrameSchema,
  syncRequestSchema,
  syncResponseSchema,
  ticketSchema,
  wireSchemas,
} from './wire-schemas.js';
export type { BootstrapRequest, Disconnect, SyncResponseResultType, SyncResponseStatus, UserAttachErrorCode } from './wire-schemas.js';

// syncResponseSchema refers to `Event` by name, so the request schema (which defines it) registers first.
const registry: Record<string, avro.Type> = {};
function parse(schema: unknown): avro.Type {
  // wrapUnions: false keeps ['null', X] unions as plain values (null or X), which is what every
  // union here is. avsc validates enums, fixed sizes and ints on encode.
  return avro.Type.forSchema(schema as avro.Schema, { registry, wrapUnions: false });
}

export const types = {
  connectBody: parse(connectBodySchema),
  connect: parse(connectSchema),
  connack: parse(connackSchema),
  resumeBody: parse(resumeBodySchema),
  resume: parse(resumeSchema),
  ticket: parse(ticketSchema),
  sync: parse(syncFrameSchema),
  disconnect: parse(disconnectSchema),
  syncRequest: parse(syncRequestSchema),
  syncResponse: parse(syncResponseSchema),
  bootstrapRequest: parse(bootstrapRequestSchema),
  accessPointList: parse(accessPointListSchema),
  bootstrapResponse: parse(bootstrapResponseSchema),
};

// ---- TypeScript shapes of the decoded records, as avsc gives them (bytes are Buffers) ----

export type ConnectBody = W.ConnectBody<Buffer>;
export type Connect = W.Connect<Buffer>;
export type Connack = W.Connack<Buffer>;
export type ResumeBody = W.ResumeBody<Buffer>;
export type Resume = W.Resume<Buffer>;
export type Ticket = W.Ticket<Buffer>;
export type SyncFrame = W.SyncFrame<Buffer>;
export type WireEvent = W.WireEvent<Buffer>;
export type SyncRequest = W.SyncRequest<Buffer>;
export type SyncResponse = W.SyncResponse<Buffer>;
export type AccessPoint = W.AccessPoint<Buffer>;
export type AccessPointList = W.AccessPointList<Buffer>;
export type BootstrapResponse = W.BootstrapResponse<Buffer>;

/** A SyncResponse with every optional part empty. */
export function emptySyncResponse(requestId: number, status: W.SyncResponseResultType = 'SUCCESS'): SyncResponse {
  return {
    requestId,
    status,
    errorCode: null,
    profileSyncResponse: null,
    userSyncResponse: null,
    eventSyncResponse: null,
    redirectSyncResponse: null,
  };
}

export function emptySyncRequest(requestId: number): SyncRequest {
  return {
    requestId,
    syncRequestMetaData: null,
    profileSyncRequest: null,
    userSyncRequest: null,
    eventSyncRequest: null,
  };
}

