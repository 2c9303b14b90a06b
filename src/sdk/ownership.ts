/**
 * Ownership, the client's side (Kaa client API: attachUser, attachEndpoint, detachEndpoint, the
 * endpoint access token): the SyncRequests that ask for it and the notifications the server pushes.
 * No state of its own: the requests go through the client's sync, the access token rides with the
 * profile the client registered last.
 */
import type { SyncResponse } from '../protocol/wire-schemas.js';
import { ClientError } from './errors.js';
import type { SyncFn } from './requests.js';

/** EndpointClient.attachUser. */
export async function attachUser(sync: SyncFn, externalId: string, accessToken: string, verifierToken?: string): Promise<{ ok: true } | { ok: false; code: string; reason: string | null }> {
  const res = await sync((req) => {
    req.userSyncRequest = { userAttachRequest: { userExternalId: externalId, userAccessToken: accessToken, userVerifierId: verifierToken ?? null }, endpointAttachRequests: null, endpointDetachRequests: null };
  });
  const a = res.userSyncResponse?.userAttachResponse;
  if (a?.result === 'SUCCESS') return { ok: true };
  // No attach answer at all (the request failed as a whole): the sync's own code, never a made-up verifier result.
  return { ok: false, code: a?.errorCode ?? res.errorCode ?? 'LK_SDK_PROTOCOL_ERROR', reason: a?.errorReason ?? (a ? null : `SyncResponse ${res.status} without a userAttachResponse`) };
}

/** EndpointClient.setEndpointAccessToken: `profile` is the one registered last (null: none yet). */
export async function setEndpointAccessToken(sync: SyncFn, profile: Uint8Array | null, token: string): Promise<void> {
  if (!profile) throw new ClientError('LK_PROFILE_REQUIRED', 'register a profile before publishing an access token');
  const res = await sync((req) => {
    req.profileSyncRequest = { profileBody: profile, endpointAccessToken: token };
  });
  if (res.status !== 'SUCCESS') throw new ClientError(res.errorCode ?? 'LK_SDK_PROTOCOL_ERROR', `access token not accepted (${res.status})`);
}

/** EndpointClient.attachEndpoint. */
export async function attachEndpoint(sync: SyncFn, endpointAccessToken: string): Promise<string | null> {
  const res = await sync((req) => {
    req.userSyncRequest = { userAttachRequest: null, endpointAttachRequests: [{ requestId: 1, endpointAccessToken }], endpointDetachRequests: null };
  });
  const r = res.userSyncResponse?.endpointAttachResponses?.[0];
  return r?.result === 'SUCCESS' ? r.endpointKeyHash : null;
}

/** EndpointClient.detachEndpoint. */
export async function detachEndpoint(sync: SyncFn, keyHash: string): Promise<boolean> {
  const res = await sync((req) => {
    req.userSyncRequest = { userAttachRequest: null, endpointAttachRequests: null, endpointDetachRequests: [{ requestId: 1, endpointKeyHash: keyHash }] };
  });
  return res.userSyncResponse?.endpointDetachResponses?.[0]?.result === 'SUCCESS';
}

/** A push listener that calls `fn` for attach notifications (EndpointClient.onAttached). */
export function onAttachedPush(fn: (n: { ownerExternalId: string; byEndpointKeyHash: string }) => void): (r: SyncResponse) => void {
  return (r) => {
    const n = r.userSyncResponse?.userAttachNotification;
    if (n) fn({ ownerExternalId: n.userExternalId, byEndpointKeyHash: n.endpointKeyHash });
  };
}

/** A push listener that calls `fn` for detach notifications (EndpointClient.onDetached). */
export function onDetachedPush(fn: (n: { byEndpointKeyHash: string }) => void): (r: SyncResponse) => void {
  return (r) => {
    const n = r.userSyncResponse?.userDetachNotification;
    if (n) fn({ byEndpointKeyHash: n.endpointKeyHash });
  };
}
