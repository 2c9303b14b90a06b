/**
 * GET and HEAD /metrics on the admin listener: the Prometheus text format of a prom-client
 * registry (src/metrics.ts), as an HttpHandler (http.ts; mounted with http-uws.ts mountHttp, which
 * drops the answer of a client that went away while the registry collected). HEAD answers the
 * content type without collecting (a scrape's cost for nothing).
 */
import type { Logger } from 'pino';
import { ERRORS } from '../errors.js';
import type client from 'prom-client';
import type { HttpHandler, HttpReply, HttpRequest } from './http.js';

export class MetricsHandler implements HttpHandler {
  readonly paths = ['/metrics'];
  readonly maxBodyBytes = 0;

  /**
   * `text` replaces the registry's own text (a multi-process node: the metrics of every process,
   * aggregated by the primary); the content type stays the registry's.
   */
  constructor(
    private readonly registry: client.Registry,
    private readonly log: Logger,
    private readonly text: () => Promise<string> = () => registry.metrics(),
  ) {}

  wantsBody(): boolean {
    return false;
  }

  async handle(req: HttpRequest): Promise<HttpReply> {
    const type = { 'content-type': this.registry.contentType };
    if (req.method === 'HEAD') return { status: 200, headers: type, body: null };
    if (req.method !== 'GET') {
      return { status: 405, headers: { allow: 'GET, HEAD', 'content-type': 'application/json' }, body: JSON.stringify({ code: 'LK_METHOD_NOT_ALLOWED', message: `${ERRORS.LK_METHOD_NOT_ALLOWED.message}: ${req.method} /metrics` }) };
    }
    try {
      return { status: 200, headers: type, body: await this.text() };
    } catch (err) {
      this.log.error({ err }, 'metrics failed');
      return { status: 500, headers: {}, body: null };
    }
  }
}
