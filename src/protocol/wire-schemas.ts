/**
 * The wire schemas as plain data, and the TypeScript shapes of the decoded records: no avsc here,
 * so the endpoint SDK (src/sdk/avro.ts, a small codec of its own, checked against avsc by
 * test/unit/sdk-avro.test.ts) and its browser bundle take the same schemas the server parses with
 * avsc in schemas.ts. The shapes (wire-types.ts) are generated from these schemas by
 * test/helpers/gen-wire-types.ts (`npm run docs`; test/unit/wire-types.test.ts fails when they
 * drift), generic over the bytes type: the server's avsc decodes to Buffer (schemas.ts fixes
 * B = Buffer), the SDK to Uint8Array.
 */
const NS = 'org.latchkey.protocol.v1';

export const connectBodySchema = {
  type: 'record',
  name: 'ConnectBody',
  namespace: NS,
  fields: [
    { name: 'protocolVersion', type: 'int' },
    { name: 'appToken', type: 'string' },
    { name: 'serverKeyId', type: 'string' },
    { name: 'keyHash', type: { type: 'fixed', name: 'KeyHash', size: 32 } },
    { name: 'publicKey', type: ['null', 'bytes'], default: null },
    { name: 'wrappedSecret', type: 'bytes' },
    { name: 'timestamp', type: 'long' },
    { name: 'nonce', type: { type: 'fixed', name: 'Nonce', size: 16 } },
    { name: 'keepAliveSec', type: 'int' },
  ],
} as const;

export const connectSchema = {
  type: 'record',
  name: 'Connect',
  namespace: NS,
  fields: [
    { name: 'body', type: 'bytes' },
    { name: 'signature', type: 'bytes' },
    { name: 'sync', type: ['null', 'bytes'], default: null },
  ],
} as const;

export const connackSchema = {
  type: 'record',
  name: 'Connack',
  namespace: NS,
  fields: [
    { name: 'returnCode', type: 'int' },
    { name: 'errorCode', type: ['null', 'string'], default: null },
    { name: 'confirmation', type: ['null', 'bytes'], default: null },
    { name: 'sessionId', type: ['null', 'string'], default: null },
    { name: 'keepAliveSec', type: 'int', default: 0 },
    { name: 'sync', type: ['null', 'bytes'], default: null },
  ],
} as const;

/** RESUME (docs/protocol.md 4.6): what the endpoint proves with the resumption secret. Self-contained (its own fixed types), so it parses on its own. */
export const resumeBodySchema = {
  type: 'record',
  name: 'ResumeBody',
  namespace: NS,
  fields: [
    { name: 'protocolVersion', type: 'int' },
    { name: 'appToken', type: 'string' },
    { name: 'keyHash', type: { type: 'fixed', name: 'ResumeKeyHash', size: 32 } },
    { name: 'ticket', type: 'bytes' },
    { name: 'timestamp', type: 'long' },
    { name: 'nonce', type: { type: 'fixed', name: 'ResumeNonce', size: 16 } },
    { name: 'keepAliveSec', type: 'int' },
  ],
} as const;

export const resumeSchema = {
  type: 'record',
  name: 'Resume',
  namespace: NS,
  fields: [
    { name: 'body', type: 'bytes' },
    { name: 'proof', type: 'bytes' },
    { name: 'sync', type: ['null', 'bytes'], default: null },
  ],
} as const;

/** TICKET (server -> endpoint, the answer to TICKETREQ): an opaque ticket and how long it may be used. */
export const ticketSchema = {
  type: 'record',
  name: 'Ticket',
  namespace: NS,
  fields: [
    { name: 'ticket', type: 'bytes' },
    { name: 'lifetimeSec', type: 'int' },
  ],
} as const;

export const syncFrameSchema = {
  type: 'record',
  name: 'Sync',
  namespace: NS,
  fields: [
    { name: 'counter', type: 'long' },
    { name: 'ciphertext', type: 'bytes' },
  ],
} as const;

export const disconnectSchema = {
  type: 'record',
  name: 'Disconnect',
  namespace: NS,
  fields: [
    { name: 'reason', type: 'int' },
    { name: 'errorCode', type: ['null', 'string'], default: null },
  ],
} as const;

const syncResponseResultType = {
  type: 'enum',
  name: 'SyncResponseResultType',
  symbols: ['SUCCESS', 'FAILURE', 'PROFILE_RESYNC', 'REDIRECT'],
} as const;

const syncResponseStatus = {
  type: 'enum',
  name: 'SyncResponseStatus',
  symbols: ['NO_DELTA', 'DELTA', 'RESYNC'],
} as const;

const userAttachErrorCode = {
  type: 'enum',
  name: 'UserAttachErrorCode',
  symbols: ['NO_VERIFIER_CONFIGURED', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'INTERNAL_ERROR', 'CONNECTION_ERROR', 'REMOTE_ERROR', 'OTHER'],
} as const;

const event = {
  type: 'record',
  name: 'Event',
  fields: [
    { name: 'seqNum', type: 'int' },
    { name: 'eventClassFQN', type: 'string' },
    { name: 'eventData', type: ['null', 'bytes'], default: null },
    { name: 'source', type: ['null', 'string'], default: null },
    { name: 'target', type: ['null', 'string'], default: null },
  ],
} as const;

export const syncRequestSchema = {
  type: 'record',
  name: 'SyncRequest',
  namespace: NS,
  fields: [
    { name: 'requestId', type: 'int' },
    {
      name: 'syncRequestMetaData',
      type: ['null', {
        type: 'record',
        name: 'SyncRequestMetaData',
        fields: [
          { name: 'profileHash', type: ['null', 'bytes'], default: null },
          { name: 'timeout', type: ['null', 'long'], default: null },
        ],
      }],
      default: null,
    },
    {
      name: 'profileSyncRequest',
      type: ['null', {
        type: 'record',
        name: 'ProfileSyncRequest',
        fields: [
          { name: 'profileBody', type: 'bytes' },
          { name: 'endpointAccessToken', type: ['null', 'string'], default: null },
        ],
      }],
      default: null,
    },
    {
      name: 'userSyncRequest',
      type: ['null', {
        type: 'record',
        name: 'UserSyncRequest',
        fields: [
          {
            name: 'userAttachRequest',
            type: ['null', {
              type: 'record',
              name: 'UserAttachRequest',
              fields: [
                { name: 'userVerifierId', type: ['null', 'string'], default: null },
                { name: 'userExternalId', type: 'string' },
                { name: 'userAccessToken', type: 'string' },
              ],
            }],
            default: null,
          },
          {
            name: 'endpointAttachRequests',
            type: ['null', { type: 'array', items: {
              type: 'record',
              name: 'EndpointAttachRequest',
              fields: [
                { name: 'requestId', type: 'int' },
                { name: 'endpointAccessToken', type: 'string' },
              ],
            } }],
            default: null,
          },
          {
            name: 'endpointDetachRequests',
            type: ['null', { type: 'array', items: {
              type: 'record',
              name: 'EndpointDetachRequest',
              fields: [
                { name: 'requestId', type: 'int' },
                { name: 'endpointKeyHash', type: 'string' },
              ],
            } }],
            default: null,
          },
        ],
      }],
      default: null,
    },
    {
      name: 'eventSyncRequest',
      type: ['null', {
        type: 'record',
        name: 'EventSyncRequest',
        fields: [
          {
            name: 'eventListenersRequests',
            type: ['null', { type: 'array', items: {
              type: 'record',
              name: 'EventListenersRequest',
              fields: [
                { name: 'requestId', type: 'int' },
                { name: 'eventClassFQNs', type: { type: 'array', items: 'string' } },
              ],
            } }],
            default: null,
          },
          { name: 'events', type: ['null', { type: 'array', items: event }], default: null },
          // latchkey: the event classes this endpoint listens to (replaces its declaration; [] = none).
          { name: 'listenedEventClassFQNs', type: ['null', { type: 'array', items: 'string' }], default: null },
        ],
      }],
      default: null,
    },
  ],
} as const;

export const syncResponseSchema = {
  type: 'record',
  name: 'SyncResponse',
  namespace: NS,
  fields: [
    { name: 'requestId', type: 'int' },
    { name: 'status', type: syncResponseResultType },
    { name: 'errorCode', type: ['null', 'string'], default: null },
    {
      name: 'profileSyncResponse',
      type: ['null', {
        type: 'record',
        name: 'ProfileSyncResponse',
        fields: [{ name: 'responseStatus', type: syncResponseStatus }],
      }],
      default: null,
    },
    {
      name: 'userSyncResponse',
      type: ['null', {
        type: 'record',
        name: 'UserSyncResponse',
        fields: [
          {
            name: 'userAttachResponse',
            type: ['null', {
              type: 'record',
              name: 'UserAttachResponse',
              fields: [
                { name: 'result', type: 'SyncResponseResultType' },
                { name: 'errorCode', type: ['null', userAttachErrorCode], default: null },
                { name: 'errorReason', type: ['null', 'string'], default: null },
              ],
            }],
            default: null,
          },
          {
            name: 'userAttachNotification',
            type: ['null', {
              type: 'record',
              name: 'UserAttachNotification',
              fields: [
                { name: 'userExternalId', type: 'string' },
                { name: 'endpointKeyHash', type: 'string' },
              ],
            }],
            default: null,
          },
          {
            name: 'userDetachNotification',
            type: ['null', {
              type: 'record',
              name: 'UserDetachNotification',
              fields: [{ name: 'endpointKeyHash', type: 'string' }],
            }],
            default: null,
          },
          {
            name: 'endpointAttachResponses',
            type: ['null', { type: 'array', items: {
              type: 'record',
              name: 'EndpointAttachResponse',
              fields: [
                { name: 'requestId', type: 'int' },
                { name: 'endpointKeyHash', type: ['null', 'string'], default: null },
                { name: 'result', type: 'SyncResponseResultType' },
              ],
            } }],
            default: null,
          },
          {
            name: 'endpointDetachResponses',
            type: ['null', { type: 'array', items: {
              type: 'record',
              name: 'EndpointDetachResponse',
              fields: [
                { name: 'requestId', type: 'int' },
                { name: 'result', type: 'SyncResponseResultType' },
              ],
            } }],
            default: null,
          },
        ],
      }],
      default: null,
    },
    {
      name: 'eventSyncResponse',
      type: ['null', {
        type: 'record',
        name: 'EventSyncResponse',
        fields: [
          {
            name: 'eventListenersResponses',
            type: ['null', { type: 'array', items: {
              type: 'record',
              name: 'EventListenersResponse',
              fields: [
                { name: 'requestId', type: 'int' },
                { name: 'listeners', type: ['null', { type: 'array', items: 'string' }], default: null },
                { name: 'result', type: 'SyncResponseResultType' },
              ],
            } }],
            default: null,
          },
          { name: 'events', type: ['null', { type: 'array', items: 'Event' }], default: null },
        ],
      }],
      default: null,
    },
    {
      name: 'redirectSyncResponse',
      type: ['null', {
        type: 'record',
        name: 'RedirectSyncResponse',
        fields: [{ name: 'accessPointId', type: 'int' }],
      }],
      default: null,
    },
  ],
} as const;

/** Bootstrap (HTTP POST /bootstrap/v1/resolve body): the application and the protocol versions the endpoint speaks. */
export const bootstrapRequestSchema = {
  type: 'record',
  name: 'BootstrapRequest',
  namespace: NS,
  fields: [
    { name: 'appToken', type: 'string' },
    { name: 'protocolVersions', type: { type: 'array', items: 'int' } },
  ],
} as const;

/** The signed part of a bootstrap answer: where the application's endpoints may connect. */
export const accessPointListSchema = {
  type: 'record',
  name: 'AccessPointList',
  namespace: NS,
  fields: [
    { name: 'appTokenHash', type: 'bytes' },
    { name: 'protocolVersion', type: 'int' },
    { name: 'issuedAt', type: 'long' },
    { name: 'expiresAt', type: 'long' },
    { name: 'nodeSetVersion', type: 'string' },
    {
      name: 'accessPoints',
      type: { type: 'array', items: {
        type: 'record',
        name: 'AccessPoint',
        fields: [
          { name: 'id', type: 'int' },
          { name: 'url', type: 'string' },
          { name: 'serverKeyId', type: 'string' },
          { name: 'serverPublicKey', type: 'bytes' },
          { name: 'priority', type: 'int' },
          { name: 'weight', type: 'int' },
          { name: 'load', type: 'float' },
        ],
      } },
    },
  ],
} as const;

/** HTTP 200 body of /bootstrap/v1/resolve. */
export const bootstrapResponseSchema = {
  type: 'record',
  name: 'BootstrapResponse',
  namespace: NS,
  fields: [
    { name: 'list', type: 'bytes' },
    { name: 'bootstrapKeyId', type: 'string' },
    { name: 'signature', type: 'bytes' },
  ],
} as const;

/** All wire schemas by record name, as docs/protocol.md lists them. */
export const wireSchemas = {
  ConnectBody: connectBodySchema,
  Connect: connectSchema,
  Connack: connackSchema,
  ResumeBody: resumeBodySchema,
  Resume: resumeSchema,
  Ticket: ticketSchema,
  Sync: syncFrameSchema,
  Disconnect: disconnectSchema,
  SyncRequest: syncRequestSchema,
  SyncResponse: syncResponseSchema,
  BootstrapRequest: bootstrapRequestSchema,
  AccessPointList: accessPointListSchema,
  BootstrapResponse: bootstrapResponseSchema,
} as const;

// The TypeScript shapes of the decoded records, generated into wire-types.ts (re-exported here, so both
// the server and the SDK import one module for a record's schema and its type).
export type * from './wire-types.js';
