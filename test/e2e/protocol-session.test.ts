/**
 * docs/protocol.md sections 4.4 and 5, where an independent implementer had to guess (issue 11),
 * pinned against a real server with the document's own reference client (test/helpers/wire-client):
 * LK_CRED_IN_USE never comes from the built-in credentials services; request ids are echoed
 * unchecked and pushes carry -1; the top-level status of failed attaches; an events-only request
 * from an unregistered endpoint is told to register; a targeted event reaches only a target that
 * declared the class; an operator's detach sends no notification; the server-side profile is a
 * separate field.
 *
 * "Nothing arrived" is shown without sleeping: frames to one session leave in order, so when the
 * PINGRESP to a PINGREQ sent after the fact is the next frame, nothing was sent before it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refusalFor } from '../../src/credentials/credentials.js';
import { ConnackCode } from '../../src/errors.js';
import { decodeSyncResponse } from '../../src/protocol/frames.js';
import { emptySyncRequest, type SyncRequest, type SyncResponse, type WireEvent } from '../../src/protocol/schemas.js';
import type { Application } from '../../src/store/store.js';
import { provisionRegistration } from '../../src/tenancy/provision.js';
import { adminApi, startHarness, trustfulDefaultVerifier, type Harness } from '../helpers/harness.js';
import { makeEndpointKey, openSync, prepareConnect, syncFrame, type NodeEndpointKey } from '../helpers/wire-client.js';
import { openRaw, withTimeout, type RawSocket } from '../helpers/ws.js';

let h: Harness;
let app: Application;
let verifierToken = '';
const CHAT = 'org.example.Chat';

beforeAll(async () => {
  h = await startHarness();
  app = await h.app();
  verifierToken = await trustfulDefaultVerifier(h, app.id);
});
afterAll(async () => {
  await h?.close();
});

interface Ep {
  key: NodeEndpointKey;
  s: RawSocket;
  /** The answer in CONNACK.sync, if CONNECT carried a SyncRequest and it was answered. */
  embedded: SyncResponse | null;
  send(req: SyncRequest): void;
  /** The next frame, which must be a SYNC: its SyncResponse. */
  next(): Promise<SyncResponse>;
  /** Send a PINGREQ and expect the PINGRESP as the very next frame (nothing else was sent before it). */
  quiet(): Promise<void>;
}

const profile = (req: SyncRequest, token: string | null = null): SyncRequest => ({ ...req, profileSyncRequest: { profileBody: Buffer.from('{}'), endpointAccessToken: token } });
const declare = (req: SyncRequest, classes: string[]): SyncRequest => ({ ...req, eventSyncRequest: { eventListenersRequests: null, events: null, listenedEventClassFQNs: classes } });
const events = (requestId: number, evs: Array<Partial<WireEvent>>): SyncRequest => ({
  ...emptySyncRequest(requestId),
  eventSyncRequest: { eventListenersRequests: null, listenedEventClassFQNs: null, events: evs.map((e, i) => ({ seqNum: i, eventClassFQN: CHAT, eventData: null, source: null, target: null, ...e })) },
});
const attachUser = (req: SyncRequest, owner: string, verifier: string | null): SyncRequest => ({
  ...req,
  userSyncRequest: { userAttachRequest: { userVerifierId: verifier, userExternalId: owner, userAccessToken: 'token' }, endpointAttachRequests: null, endpointDetachRequests: null },
});
const listenersQuery = (requestId: number): SyncRequest => ({ ...emptySyncRequest(requestId), eventSyncRequest: { eventListenersRequests: [{ requestId, eventClassFQNs: [CHAT] }], events: null, listenedEventClassFQNs: null } });

async function connect(o: { key?: NodeEndpointKey; sync?: SyncRequest; onto?: Application } = {}): Promise<Ep> {
  const key = o.key ?? makeEndpointKey();
  const p = prepareConnect({ appToken: (o.onto ?? app).appToken, serverKeyId: h.serverKeyId, serverPublicKey: h.serverSpki, key, ...(o.sync ? { sync: o.sync } : {}) });
  const s = await openRaw(h.url);
  s.send(p.frame);
  const f = await s.decoded(0);
  if (f.type !== 'CONNACK') throw new Error(`expected CONNACK, got ${f.type}`);
  expect(f.connack.returnCode).toBe(ConnackCode.ACCEPTED);
  let embedded: SyncResponse | null = null;
  if (f.connack.sync) {
    const plain = p.rx.open(0, f.connack.sync);
    const r = plain && decodeSyncResponse(plain);
    if (!r || !r.ok) throw new Error('CONNACK.sync does not open');
    embedded = r.value;
  }
  let out = o.sync ? 1 : 0;
  let index = 1;
  return {
    key,
    s,
    embedded,
    send: (req) => s.send(syncFrame(p.tx, out++, req)),
    next: async () => openSync(p.rx, await s.frame(index++)).response,
    quiet: async () => {
      s.send(Buffer.from([0x0c]));
      const fr = await s.frame(index++);
      expect(fr.toString('hex'), 'the next frame is the PINGRESP').toBe('0d');
    },
  };
}

/** Registered and attached to `owner`, listening to `classes`. */
async function member(owner: string, classes: string[]): Promise<Ep> {
  const ep = await connect({ sync: declare(attachUser(profile(emptySyncRequest(1)), owner, verifierToken), classes) });
  expect(ep.embedded?.userSyncResponse?.userAttachResponse?.result).toBe('SUCCESS');
  return ep;
}

describe('section 4.4: LK_CRED_IN_USE and the built-in credentials services', () => {
  it('trustful and internal bind credentials to the endpoint holding the key, so the same key always connects again', async () => {
    const internal = await h.app({ credentialsService: 'internal' });
    const k = makeEndpointKey();
    await h.server.store.provisionCredentials(internal.id, k.keyHash, k.spki);
    for (const onto of [app, internal]) {
      for (let i = 0; i < 2; i++) (await connect({ key: k, onto })).s.close();
      const c = await h.server.store.getCredentials(onto.id, k.keyHash);
      expect({ status: c?.status, endpointId: c?.endpointId, credentialsId: c?.credentialsId }).toEqual({ status: 'IN_USE', endpointId: k.keyHash, credentialsId: k.keyHash });
    }
  });
  it('only a view bound to another endpoint id (which only a plugin can report) refuses with LK_CRED_IN_USE', () => {
    expect(refusalFor({ status: 'IN_USE', endpointId: 'k', publicKey: null }, 'k', false)).toBeNull();
    expect(refusalFor({ status: 'IN_USE', endpointId: 'other', publicKey: null }, 'k', false)).toBe('LK_CRED_IN_USE');
  });
});

describe('section 5.1: request ids', () => {
  it('the server echoes any requestId unchecked, negative ones included; pushes carry -1', async () => {
    const a = await connect({ sync: profile(emptySyncRequest(0)) });
    expect(a.embedded?.requestId).toBe(0);
    a.send(emptySyncRequest(-5));
    expect((await a.next()).requestId).toBe(-5);
    a.send(emptySyncRequest(-5));
    expect((await a.next()).requestId).toBe(-5);
    a.s.close();
  });
});

describe('section 5.2 and 5.4: events-only requests from an endpoint that is not registered', () => {
  it('get PROFILE_RESYNC / LK_PROFILE_REQUIRED with their requestId (in a SYNC and in CONNECT), and their events are dropped', async () => {
    const owner = `alice-${Date.now()}`;
    const listener = await member(owner, [CHAT]);
    const a = await connect({ sync: events(3, [{ seqNum: 0 }]) });
    expect(a.embedded).toMatchObject({ requestId: 3, status: 'PROFILE_RESYNC', errorCode: 'LK_PROFILE_REQUIRED' });
    a.send(events(4, [{ seqNum: 1 }]));
    expect(await a.next()).toMatchObject({ requestId: 4, status: 'PROFILE_RESYNC', errorCode: 'LK_PROFILE_REQUIRED' });
    // Registered (and attached to the listener's owner), the same request gets no answer and is relayed.
    a.send(declare(attachUser(profile(emptySyncRequest(5)), owner, verifierToken), [CHAT]));
    expect(await a.next()).toMatchObject({ requestId: 5, status: 'SUCCESS' });
    a.send(events(6, [{ seqNum: 2 }]));
    await a.quiet();
    const got = await listener.next();
    expect(got.requestId).toBe(-1);
    expect(got.eventSyncResponse?.events?.map((e) => e.seqNum)).toEqual([0]); // the receiver's counter: the dropped ones never reached it
    listener.s.close();
    a.s.close();
  });
});

describe('section 5.4: targeted events', () => {
  it('reach the target only if it declared the class in its session, as broadcasts do', async () => {
    const owner = `bob-${Date.now()}`;
    const a = await member(owner, [CHAT]);
    const b = await member(owner, ['org.example.Other']);
    a.send(events(2, [{ seqNum: 0, target: b.key.keyHash }]));
    a.send(listenersQuery(3)); // answered after the events were relayed
    expect((await a.next()).requestId).toBe(3);
    await b.quiet();
    b.send(declare(emptySyncRequest(2), [CHAT]));
    expect((await b.next()).status).toBe('SUCCESS');
    a.send(events(4, [{ seqNum: 1, target: b.key.keyHash }]));
    const got = await b.next();
    expect(got.requestId).toBe(-1);
    expect(got.eventSyncResponse?.events).toMatchObject([{ eventClassFQN: CHAT, source: a.key.keyHash, target: b.key.keyHash, seqNum: 0 }]);
    a.s.close();
    b.s.close();
  });
});

describe('section 5.3: attach and detach outcomes', () => {
  it('failed user and endpoint attaches leave the top-level status SUCCESS; a taken endpoint access token is a top-level FAILURE LK_CONFLICT', async () => {
    const bare = await h.app(); // no owner verifier at all
    const a = await connect({ onto: bare, sync: profile(emptySyncRequest(1)) });
    a.send(attachUser(emptySyncRequest(2), 'carol', null));
    const r = await a.next();
    expect({ status: r.status, errorCode: r.errorCode }).toEqual({ status: 'SUCCESS', errorCode: null });
    expect(r.userSyncResponse?.userAttachResponse).toMatchObject({ result: 'FAILURE', errorCode: 'NO_VERIFIER_CONFIGURED' });
    a.send({ ...emptySyncRequest(3), userSyncRequest: { userAttachRequest: null, endpointAttachRequests: [{ requestId: 30, endpointAccessToken: 'nobody-has-this' }], endpointDetachRequests: [{ requestId: 31, endpointKeyHash: a.key.keyHash }] } });
    const e = await a.next();
    expect({ status: e.status, errorCode: e.errorCode }).toEqual({ status: 'SUCCESS', errorCode: null });
    expect(e.userSyncResponse?.endpointAttachResponses).toEqual([{ requestId: 30, endpointKeyHash: null, result: 'FAILURE' }]);
    expect(e.userSyncResponse?.endpointDetachResponses).toEqual([{ requestId: 31, result: 'FAILURE' }]);

    const token = `tok-${Date.now()}`;
    a.send(profile(emptySyncRequest(4), token));
    expect((await a.next()).status).toBe('SUCCESS');
    const b = await connect({ onto: bare, sync: profile(emptySyncRequest(1), token) });
    expect(b.embedded).toMatchObject({ requestId: 1, status: 'FAILURE', errorCode: 'LK_CONFLICT', profileSyncResponse: { responseStatus: 'DELTA' } });
    a.s.close();
    b.s.close();
  });

  it('an operator detach sends the endpoint no notification; a listeners query then answers FAILURE', async () => {
    const a = await member(`dave-${Date.now()}`, [CHAT]);
    const r = await adminApi(h, 'DELETE', `/admin/v1/applications/${app.id}/endpoints/${a.key.keyHash}/owner`);
    expect(r.status).toBe(204);
    await a.quiet();
    a.send(listenersQuery(2));
    expect((await a.next()).eventSyncResponse?.eventListenersResponses).toEqual([{ requestId: 2, listeners: null, result: 'FAILURE' }]);
    a.s.close();
  });
});

describe('section 5.2: the server-side profile', () => {
  it('is kept in its own field at first registration, not merged into the profile the endpoint sent', async () => {
    const k = makeEndpointKey();
    await provisionRegistration(h.server.store, app.id, k.keyHash, '{"tier":"gold"}');
    const a = await connect({ key: k, sync: { ...emptySyncRequest(1), profileSyncRequest: { profileBody: Buffer.from('{"model":"T-1000"}'), endpointAccessToken: null } } });
    expect(a.embedded?.profileSyncResponse?.responseStatus).toBe('DELTA');
    const rec = await h.server.store.getEndpoint(app.id, k.keyHash);
    expect(rec?.profileBody.toString()).toBe('{"model":"T-1000"}');
    expect(rec?.serverProfileBody).toBe('{"tier":"gold"}');
    a.s.close();
    await withTimeout(a.s.closed, 3000, 'close');
  });
});
