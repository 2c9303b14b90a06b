/**
 * TypeScript shapes of the decoded wire records of wire-schemas.ts (bytes: Uint8Array in the SDK,
 * Buffer on the server, through the type parameter B). Written by hand from the schemas: nothing
 * yet checks the two agree field by field (generating these from the schemas is still to do). No
 * runtime code: browser-safe.
 */

export type SyncResponseResultType = 'SUCCESS' | 'FAILURE' | 'PROFILE_RESYNC' | 'REDIRECT';
export type SyncResponseStatus = 'NO_DELTA' | 'DELTA' | 'RESYNC';
export type UserAttachErrorCode =
  | 'NO_VERIFIER_CONFIGURED' | 'TOKEN_INVALID' | 'TOKEN_EXPIRED' | 'INTERNAL_ERROR'
  | 'CONNECTION_ERROR' | 'REMOTE_ERROR' | 'OTHER';

export interface ConnectBody<B extends Uint8Array = Uint8Array> {
  protocolVersion: number;
  appToken: string;
  serverKeyId: string;
  keyHash: B;
  publicKey: B | null;
  wrappedSecret: B;
  timestamp: number;
  nonce: B;
  keepAliveSec: number;
}

export interface Connect<B extends Uint8Array = Uint8Array> {
  body: B;
  signature: B;
  sync: B | null;
}

export interface Connack<B extends Uint8Array = Uint8Array> {
  returnCode: number;
  errorCode: string | null;
  confirmation: B | null;
  sessionId: string | null;
  keepAliveSec: number;
  sync: B | null;
}

export interface ResumeBody<B extends Uint8Array = Uint8Array> {
  protocolVersion: number;
  appToken: string;
  keyHash: B;
  ticket: B;
  timestamp: number;
  nonce: B;
  keepAliveSec: number;
}

export interface Resume<B extends Uint8Array = Uint8Array> {
  body: B;
  proof: B;
  sync: B | null;
}

export interface Ticket<B extends Uint8Array = Uint8Array> {
  ticket: B;
  lifetimeSec: number;
}

export interface SyncFrame<B extends Uint8Array = Uint8Array> {
  counter: number;
  ciphertext: B;
}

export interface Disconnect {
  reason: number;
  errorCode: string | null;
}

export interface WireEvent<B extends Uint8Array = Uint8Array> {
  seqNum: number;
  eventClassFQN: string;
  eventData: B | null;
  source: string | null;
  target: string | null;
}

export interface SyncRequest<B extends Uint8Array = Uint8Array> {
  requestId: number;
  syncRequestMetaData: { profileHash: B | null; timeout: number | null } | null;
  profileSyncRequest: { profileBody: B; endpointAccessToken: string | null } | null;
  userSyncRequest: {
    userAttachRequest: { userVerifierId: string | null; userExternalId: string; userAccessToken: string } | null;
    endpointAttachRequests: Array<{ requestId: number; endpointAccessToken: string }> | null;
    endpointDetachRequests: Array<{ requestId: number; endpointKeyHash: string }> | null;
  } | null;
  eventSyncRequest: {
    eventListenersRequests: Array<{ requestId: number; eventClassFQNs: string[] }> | null;
    events: WireEvent<B>[] | null;
    listenedEventClassFQNs: string[] | null;
  } | null;
}

export interface SyncResponse<B extends Uint8Array = Uint8Array> {
  requestId: number;
  status: SyncResponseResultType;
  errorCode: string | null;
  profileSyncResponse: { responseStatus: SyncResponseStatus } | null;
  userSyncResponse: {
    userAttachResponse: { result: SyncResponseResultType; errorCode: UserAttachErrorCode | null; errorReason: string | null } | null;
    userAttachNotification: { userExternalId: string; endpointKeyHash: string } | null;
    userDetachNotification: { endpointKeyHash: string } | null;
    endpointAttachResponses: Array<{ requestId: number; endpointKeyHash: string | null; result: SyncResponseResultType }> | null;
    endpointDetachResponses: Array<{ requestId: number; result: SyncResponseResultType }> | null;
  } | null;
  eventSyncResponse: {
    eventListenersResponses: Array<{ requestId: number; listeners: string[] | null; result: SyncResponseResultType }> | null;
    events: WireEvent<B>[] | null;
  } | null;
  redirectSyncResponse: { accessPointId: number } | null;
}

/** A SyncResponse with every optional part empty. */
export interface BootstrapRequest {
  appToken: string;
  protocolVersions: number[];
}

export interface AccessPoint<B extends Uint8Array = Uint8Array> {
  id: number;
  url: string;
  serverKeyId: string;
  serverPublicKey: B;
  priority: number;
  weight: number;
  load: number;
}

export interface AccessPointList<B extends Uint8Array = Uint8Array> {
  appTokenHash: B;
  protocolVersion: number;
  issuedAt: number;
  expiresAt: number;
  nodeSetVersion: string;
  accessPoints: AccessPoint<B>[];
}

export interface BootstrapResponse<B extends Uint8Array = Uint8Array> {
  list: B;
  bootstrapKeyId: string;
  signature: B;
}
