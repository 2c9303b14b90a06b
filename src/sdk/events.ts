/**
 * Events among the endpoints of one owner, the client's side (Kaa client API: event listeners,
 * send, find listeners; docs/protocol.md, events): the declared event classes (declared again in
 * every new session's first SyncRequest), the listeners, and the sequence numbers both ways.
 */
import wire from './wire.js';
import type { SyncRequest, SyncResponse } from '../protocol/wire-schemas.js';
import { ClientError } from './errors.js';
import { Listeners } from './listeners.js';
import { emptyRequest, type SyncFn } from './requests.js';
import type { SessionLink } from './session-link.js';

/** An event delivered to this endpoint (docs/protocol.md, events). */
export interface ReceivedEvent {
  eventClassFQN: string;
  data: Uint8Array | null;
  /** Key hash of the sending endpoint. */
  source: string;
  /** This endpoint's key hash for a targeted event, null for one sent to every listener. */
  target: string | null;
  /** The server's delivery counter for this session (0, 1, 2, ...). */
  seqNum: number;
  /** Events the server dropped for this endpoint (slow-receiver policy) just before this one. */
  missedBefore: number;
}

/** The client's current session as events need it. */
export interface EventSession {
  /** The open session, or null when not connected. */
  live(): SessionLink | null;
  sync: SyncFn;
}

export class Events {
  readonly listeners = new Listeners<ReceivedEvent>();
  /** Event classes declared with listen(); declared again in every new session. */
  private listened: string[] | null = null;
  /** Next seqNum the server will stamp on an event for this session. */
  private rxNext = 0;
  /** Our events' seqNum: strictly increasing within a session. */
  private txSeq = 0;

  constructor(private readonly session: EventSession) {}

  /** A new session was accepted: both sequences start again (the server checks ours per session). */
  sessionStarted(): void {
    this.rxNext = 0;
    this.txSeq = 0;
  }

  /** Adds the declared event classes to a new session's first SyncRequest, so events flow from its first moment. */
  declareIn(req: SyncRequest): void {
    if (this.listened) req.eventSyncRequest = { eventListenersRequests: null, events: null, listenedEventClassFQNs: [...this.listened] };
  }

  get declared(): boolean {
    return this.listened !== null;
  }

  /** EndpointClient.listenEvents. */
  async listen(eventClassFQNs: string[]): Promise<void> {
    const classes = [...new Set(eventClassFQNs)];
    // Checked here first: a declaration the server refuses must not be kept and resent with every CONNECT.
    if (classes.length > 256 || !classes.every((c) => typeof c === 'string' && c.length > 0 && c.length <= 255)) {
      throw new ClientError('LK_EVENT_CLASSES_INVALID', 'at most 256 event class names of 1..255 characters');
    }
    if (!this.session.live()) {
      this.listened = classes;
      return;
    }
    const res = await this.session.sync((req) => {
      req.eventSyncRequest = { eventListenersRequests: null, events: null, listenedEventClassFQNs: [...classes] };
    });
    if (res.status === 'FAILURE') throw new ClientError(res.errorCode ?? 'LK_SDK_PROTOCOL_ERROR', 'event classes not accepted');
    this.listened = classes;
  }

  /** EndpointClient.sendEvent. */
  async send(eventClassFQN: string, data: Uint8Array | null, target: string | null): Promise<void> {
    const link = this.session.live();
    if (!link) throw new ClientError('LK_SDK_CLOSED', 'not connected');
    // Event-only requests get no answer: their requestId is not used (0).
    const req = emptyRequest(0);
    req.eventSyncRequest = {
      eventListenersRequests: null,
      events: [{ seqNum: this.txSeq++, eventClassFQN, eventData: data, source: null, target }],
      listenedEventClassFQNs: null,
    };
    await link.send(wire.syncRequest.toBuffer(req));
  }

  /** EndpointClient.findEventListeners. */
  async findListeners(eventClassFQNs: string[]): Promise<string[]> {
    const res = await this.session.sync((req) => {
      req.eventSyncRequest = { eventListenersRequests: [{ requestId: 1, eventClassFQNs }], events: null, listenedEventClassFQNs: null };
    });
    const r = res.eventSyncResponse?.eventListenersResponses?.[0];
    if (!r || r.result !== 'SUCCESS') throw new ClientError(res.errorCode ?? 'LK_NO_OWNER', 'listeners query failed: is this endpoint attached to an owner?');
    return r.listeners ?? [];
  }

  /** The events of a pushed SyncResponse, to the listeners in delivery order, duplicates dropped. */
  dispatch(res: SyncResponse): void {
    for (const ev of res.eventSyncResponse?.events ?? []) {
      // The server's counter wraps from 2^31 - 1 to 0; a seqNum far below the expected one is a wrap.
      const wrapped = ev.seqNum < this.rxNext && this.rxNext - ev.seqNum > 2 ** 30;
      if (ev.seqNum < this.rxNext && !wrapped) continue; // a duplicate
      const missedBefore = wrapped ? ev.seqNum + 2 ** 31 - this.rxNext : ev.seqNum - this.rxNext;
      this.rxNext = ev.seqNum + 1;
      this.listeners.emit({ eventClassFQN: ev.eventClassFQN, data: ev.eventData, source: ev.source ?? '', target: ev.target, seqNum: ev.seqNum, missedBefore });
    }
  }
}
