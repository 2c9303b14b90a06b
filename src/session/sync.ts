/**
 * What one SyncRequest of an established session does (docs/protocol.md 5): the profile and
 * registration part (registration/), the user part (ownership/: attach, detach, notifications),
 * the event part (events/relay.ts), in that order, into one SyncResponse. The session (session.ts)
 * owns the order of requests, the counters and the ciphers; this file owns what a request means.
 */
import { syncErrorCode } from '../errors.js';
import type { EventPeer } from '../events/relay.js';
import { isEventOnly } from '../events/relay.js';
import { handleUserSync } from '../ownership/ownership.js';
import { emptySyncResponse, type SyncRequest, type SyncResponse } from '../protocol/schemas.js';
import type { Application, EndpointRecord } from '../store/store.js';
import type { SessionHost } from './types.js';

/** The session as a SyncRequest sees it. */
export interface SyncSubject extends EventPeer {
  readonly app: Application | null;
  readonly keyHash: string | null;
  readonly state: string;
  /** The endpoint's record, once the session has read it. */
  readonly endpointRecord: EndpointRecord | null;
  /** The endpoint's public key: the record's, else the one the handshake brought. */
  publicKeyBytes(): Buffer;
  /** The endpoint's record was read (null: not registered); `keepKnown`: keep one already held. */
  learnEndpoint(endpoint: EndpointRecord | null, keepKnown?: boolean): void;
}

/**
 * Answer one SyncRequest of an established session: processSync, with a failure turned into the
 * request's FAILURE answer (or, for events only, into dropped events and no answer).
 */
export async function answerSync(host: SessionHost, s: SyncSubject & { readonly id: string }, req: SyncRequest): Promise<SyncResponse | null> {
  try {
    return await processSync(host, s, req);
  } catch (err) {
    // A backend failure is this request's FAILURE, not the session's end: the endpoint keeps its
    // session and retries the request (nothing was stored).
    const { code, endpointFault } = syncErrorCode(err);
    if (endpointFault) host.log.debug({ session: s.id, code }, 'sync refused');
    else host.log.warn({ err, session: s.id, code }, 'sync failed');
    // Events only: no answer even now (the endpoint expects none; the events are lost, as events
    // to an unreachable owner are).
    if (host.events && isEventOnly(req)) {
      host.stats.eventDropped('error', req.eventSyncRequest!.events!.length);
      return null;
    }
    const res = emptySyncResponse(req.requestId, 'FAILURE');
    res.errorCode = code;
    return res;
  }
}

/**
 * Answer the SyncRequest embedded in a CONNECT or RESUME. The endpoint's own mistake (e.g. a
 * malformed declaration) is a FAILURE answer in CONNACK and the session goes on (docs/protocol.md
 * 5.4), as for a SYNC; a backend failure throws (the handshake is refused, so the endpoint retries).
 */
export async function answerEmbeddedSync(host: SessionHost, s: SyncSubject, req: SyncRequest): Promise<SyncResponse | null> {
  try {
    return await processSync(host, s, req);
  } catch (err) {
    const { code, endpointFault } = syncErrorCode(err);
    if (!endpointFault) throw err;
    const res = emptySyncResponse(req.requestId, 'FAILURE');
    res.errorCode = code;
    return res;
  }
}

/** Process one SyncRequest; null when it gets no SyncResponse (events only). */
export async function processSync(host: SessionHost, s: SyncSubject, req: SyncRequest): Promise<SyncResponse | null> {
  host.stats.syncRequests++;
  const events = host.events;
  if (s.state === 'CLOSED') return null;
  if (events && isEventOnly(req)) {
    // Events only get no answer, except from an endpoint that is not registered: it gets what any
    // other request of it gets (PROFILE_RESYNC, LK_PROFILE_REQUIRED) and its events are dropped,
    // so it learns to register instead of sending into silence (docs/protocol.md 5.2, 5.4). Only
    // the first such request of a registered endpoint's session reads the store: the fast path
    // (Session.onSync) takes the later ones.
    if (!(await registered(host, s))) {
      host.stats.eventDropped('no_owner', req.eventSyncRequest!.events!.length);
      const res = emptySyncResponse(req.requestId, 'PROFILE_RESYNC');
      res.errorCode = 'LK_PROFILE_REQUIRED';
      return res;
    }
    await events.handle(s, req.eventSyncRequest!, null);
    return null;
  }
  const { response, endpoint } = await host.registration.syncProfile({ app: s.app!, keyHash: s.keyHash!, publicKey: s.publicKeyBytes() }, req, s.endpointRecord);
  s.learnEndpoint(endpoint);
  // An endpoint that is not registered gets PROFILE_RESYNC and nothing else is done for it (as in
  // Kaa: register first); a registered one whose profile hash is stale still gets the rest.
  if (!endpoint) return response;
  if (host.ownership) await handleUserSync(host.ownership, s.app!, s.keyHash!, req, response);
  // The session may have closed while the store answered: handle() checks isOpen.
  if (events && req.eventSyncRequest) await events.handle(s, req.eventSyncRequest, response);
  return response;
}

/** Whether the endpoint is registered; reads its record (once) when the session does not hold it yet. */
async function registered(host: SessionHost, s: SyncSubject): Promise<boolean> {
  if (s.endpointRecord) return true;
  const endpoint = await host.registration.getEndpoint({ app: s.app!, keyHash: s.keyHash!, publicKey: Buffer.alloc(0) });
  if (!endpoint) return false;
  s.learnEndpoint(endpoint, true);
  return true;
}
