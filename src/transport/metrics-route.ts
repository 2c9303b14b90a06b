/**
 * GET and HEAD /metrics on the admin listener: the Prometheus text format of a prom-client
 * registry (src/metrics.ts). The answer is written once the registry has collected; a client that
 * went away meanwhile gets nothing (onAborted is registered before the await).
 */
import type uWS from 'uWebSockets.js';
import type { Logger } from 'pino';
import type client from 'prom-client';
import type { Gateway } from './gateway.js';

/**
 * `text` replaces the registry's own text (a multi-process node: the metrics of every process,
 * aggregated by the primary); the content type stays the registry's.
 */
export function mountMetrics(app: uWS.TemplatedApp, guard: Gateway['httpGuard'], registry: client.Registry, log: Logger, text: () => Promise<string> = () => registry.metrics()): void {
  app.head('/metrics', guard('admin.metrics', (res) => {
    res.cork(() => res.writeHeader('content-type', registry.contentType).endWithoutBody());
  }));
  app.get('/metrics', guard('admin.metrics', (res) => {
    let aborted = false;
    res.onAborted(() => (aborted = true));
    text().then(
      (text) => {
        if (!aborted) res.cork(() => res.writeHeader('content-type', registry.contentType).end(text));
      },
      (err: unknown) => {
        log.error({ err }, 'metrics failed');
        if (!aborted) res.cork(() => res.writeStatus('500 Internal Server Error').end());
      },
    ).catch((err: unknown) => log.error({ err }, 'metrics answer could not be written'));
  }));
}
