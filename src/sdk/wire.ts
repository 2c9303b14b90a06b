/**
 * The SDK's codecs for the wire schemas: the same schema data the server parses with avsc
 * (src/protocol/wire-schemas.ts), compiled by the SDK's own small codec (avro.ts), bytes as
 * Uint8Array. One registry, request before response: SyncResponse refers to `Event` by name.
 */
import { avroCodec, type AvroRegistry } from './avro.js';
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
  type AccessPointList,
  type BootstrapRequest,
  type BootstrapResponse,
  type Connack,
  type Connect,
  type ConnectBody,
  type Disconnect,
  type Resume,
  type ResumeBody,
  type SyncFrame,
  type SyncRequest,
  type SyncResponse,
  type Ticket,
} from '../protocol/wire-schemas.js';

const registry: AvroRegistry = new Map();

const wire = {
  connectBody: avroCodec<ConnectBody>(connectBodySchema, registry),
  connect: avroCodec<Connect>(connectSchema, registry),
  connack: avroCodec<Connack>(connackSchema, registry),
  resumeBody: avroCodec<ResumeBody>(resumeBodySchema, registry),
  resume: avroCodec<Resume>(resumeSchema, registry),
  ticket: avroCodec<Ticket>(ticketSchema, registry),
  sync: avroCodec<SyncFrame>(syncFrameSchema, registry),
  disconnect: avroCodec<Disconnect>(disconnectSchema, registry),
  syncRequest: avroCodec<SyncRequest>(syncRequestSchema, registry),
  syncResponse: avroCodec<SyncResponse>(syncResponseSchema, registry),
  bootstrapRequest: avroCodec<BootstrapRequest>(bootstrapRequestSchema, registry),
  accessPointList: avroCodec<AccessPointList>(accessPointListSchema, registry),
  bootstrapResponse: avroCodec<BootstrapResponse>(bootstrapResponseSchema, registry),
};

export default wire;
