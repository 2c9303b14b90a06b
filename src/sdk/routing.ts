/**
 * Where the client's sessions go: the configured gateway, or (bootstrap mode) the signed access
 * point list, tried by priority and weight with failover, resolved again when it expires or every
 * access point failed; and REDIRECTs, which move the client to a named access point.
 */
import type { AccessPoint } from '../protocol/wire-schemas.js';
import { BootstrapError, orderAccessPoints, resolveAccessPoints, type ResolvedAccessPoints } from './bootstrap.js';
import { spkiOf, type WebCrypto } from './crypto.js';
import { ClientError } from './errors.js';
import { sayGoodbye } from './frames.js';
import { Listeners } from './listeners.js';
import type { ClientOptions, ConnectResult, Target } from './types.js';

/** Opens one session on `target` (the client's connectOnce). */
export type OpenSession = (target: Target) => Promise<ConnectResult>;

export interface RedirectResult {
  accessPointId: number;
  result: ConnectResult;
}

export class Router {
  /** A REDIRECT moved (or tried to move) the client. */
  readonly redirectListeners = new Listeners<RedirectResult>();
  /** A REDIRECT is being followed: the session's close connects again at once. */
  redirecting = false;
  /** The configured gateway; null in bootstrap mode. */
  private readonly gateway: Target | null = null;
  /** The checked access point list (bootstrap mode). */
  private accessList: ResolvedAccessPoints | null = null;
  /** A REDIRECT named this access point: tried first at the next connect. */
  private preferredAccessPoint: number | null = null;

  /** Checks the options that say where to connect (keys given as strings too). `closed`: close() was called. */
  constructor(private readonly opts: ClientOptions, private readonly c: WebCrypto, private readonly closed: () => boolean) {
    // Keys given as strings are checked now: a file that is not PEM fails here, with what was expected.
    const checkKey = (what: string, key: Uint8Array | string): void => {
      try {
        spkiOf(key);
      } catch (err) {
        throw err instanceof ClientError ? new ClientError(err.code, `${what}: ${err.message.slice(err.code.length + 2)}`) : err;
      }
    };
    if (opts.bootstrap) {
      if (opts.bootstrap.urls.length === 0) throw new ClientError('LK_SDK_BOOTSTRAP_FAILED', 'bootstrap.urls is empty');
      checkKey('bootstrap.publicKey', opts.bootstrap.publicKey);
    } else if (opts.url && opts.serverKey) {
      checkKey('serverKey.spki', opts.serverKey.spki);
      this.gateway = { url: opts.url, serverKey: opts.serverKey };
    } else {
      throw new ClientError('LK_SDK_CONNECTION_FAILED', 'give url and serverKey, or bootstrap');
    }
  }

  /** The checked access point list, resolving it when there is none or it expired. */
  async accessPoints(force = false): Promise<ResolvedAccessPoints> {
    const now = (this.opts.now ?? Date.now)();
    if (force || !this.accessList || this.accessList.expiresAt <= now) {
      this.accessList = await resolveAccessPoints(this.opts.bootstrap!, this.opts.appToken, this.opts.now ?? Date.now, this.c);
    }
    return this.accessList;
  }

  /** One session: on the gateway, or on the first access point that accepts (`accepted` is told which). */
  connect(open: OpenSession, accepted: (ap: AccessPoint) => void): Promise<ConnectResult> {
    return this.gateway ? open(this.gateway) : this.connectViaBootstrap(open, accepted);
  }

  /** Bootstrap mode: try access points in order until one accepts; resolve again once if all fail. */
  private async connectViaBootstrap(open: OpenSession, accepted: (ap: AccessPoint) => void): Promise<ConnectResult> {
    let last: ConnectResult | null = null;
    for (let round = 0; round < 2; round++) {
      let list: ResolvedAccessPoints;
      try {
        list = await this.accessPoints(round > 0);
      } catch (err) {
        const e = err instanceof BootstrapError ? err : new BootstrapError('LK_SDK_BOOTSTRAP_FAILED', String(err));
        return last ?? { ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: e.message, retryable: !e.terminal, bootstrapCode: e.code };
      }
      const ordered = orderAccessPoints(list.accessPoints);
      const preferred = ordered.findIndex((p) => p.id === this.preferredAccessPoint);
      if (preferred > 0) ordered.unshift(...ordered.splice(preferred, 1));
      this.preferredAccessPoint = null;
      for (const ap of ordered) {
        const res = await open({ url: ap.url, serverKey: { id: ap.serverKeyId, spki: ap.serverPublicKey } });
        if (res.ok) {
          accepted(ap);
          return res;
        }
        last = res;
        if (this.closed()) return res;
        // Try the next access point unless every node would give the same answer (the endpoint's
        // credentials, application or key are refused). A node that cannot be reached, is
        // overloaded, does not know the key the list names, fails its key confirmation or breaks
        // the protocol is this node's problem.
        const failover = res.kind === 'failed'
          ? res.code !== 'LK_SDK_CLOSED'
          : res.code === 'REFUSE_SERVER_UNAVAILABLE' || res.errorCode === 'LK_HS_UNKNOWN_SERVER_KEY' || res.errorCode === 'LK_HS_REPLAYED_NONCE';
        if (!failover) return res;
      }
    }
    return last!;
  }

  /**
   * A node told this endpoint to move: leave the session on `ws` and connect to that access point.
   * `current()` is the client's socket now; the session's close then calls followRedirect().
   */
  redirect(accessPointId: number, ws: WebSocket, current: () => WebSocket | null): void {
    if (!this.opts.bootstrap || this.redirecting || this.closed() || ws.readyState !== 1) return;
    this.redirecting = true;
    this.preferredAccessPoint = accessPointId;
    // An access point missing from the list (or an expired list) means resolving again.
    if (!this.accessList?.accessPoints.some((p) => p.id === accessPointId)) this.accessList = null;
    // Stay on this session (events keep arriving) for a short random delay, so that a drained
    // node's endpoints do not all land on the next node in the same millisecond; then leave and
    // connect at once: the gap without a session is one handshake.
    const jitterMs = Math.random() * (this.opts.redirectJitterMs ?? 500);
    setTimeout(() => {
      if (current() !== ws) return; // closed meanwhile (by the server, or close()): onclose handled it
      try {
        sayGoodbye(ws);
      } catch {
        // already closing: onclose follows
      }
    }, jitterMs);
  }

  /**
   * The session being redirected closed: connect at once (redirect() already waited) to the named
   * access point, then the others; tell the redirect listeners, then `after` with the result.
   */
  followRedirect(connect: () => Promise<ConnectResult>, after: (result: ConnectResult) => void): void {
    const accessPointId = this.preferredAccessPoint ?? -1;
    void Promise.resolve()
      .then((): Promise<ConnectResult> =>
        this.closed()
          ? Promise.resolve({ ok: false, kind: 'failed', code: 'LK_SDK_CLOSED', detail: 'closed while redirecting', retryable: false })
          : connect(),
      )
      .catch((err: unknown): ConnectResult => ({ ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: String(err), retryable: true }))
      .then((result) => {
        this.redirecting = false;
        this.redirectListeners.emit({ accessPointId, result });
        after(result);
      });
  }
}
