/**
 * Metrics of the admin API, registered on the registry passed in (the node's Stats.registry, so they
 * appear on GET /metrics with the rest):
 *
 *   latchkey_admin_requests_total{method,route,status}
 *   latchkey_admin_request_duration_seconds{method,route}
 *
 * Every label value is bounded, whatever clients send: `route` is the route's path template
 * (`/admin/v1/tenants/{tenantId}`), never the raw URL, and `unmatched` for a path no route has;
 * `method` is one of the methods the router answers or `OTHER`; `status` is a status the router
 * writes. A scanner trying a million URLs adds no series.
 *
 * Time runs from the moment the router sees the request to the moment it writes the answer (body
 * reading, authentication and the handler included). Requests the client abandons before an answer
 * are not observed.
 */
import client from 'prom-client';

const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE']);

/** Admin calls are store reads and writes: 1 ms to a few seconds (a store or bus outage). */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const UNMATCHED_ROUTE = 'unmatched';

export class AdminMetrics {
  private readonly requests: client.Counter<'method' | 'route' | 'status'>;
  private readonly seconds: client.Histogram<'method' | 'route'>;

  constructor(registry: client.Registry) {
    this.requests = new client.Counter({
      name: 'latchkey_admin_requests_total',
      help: 'Admin API requests answered, by method, route path template (unmatched: no route has the path) and HTTP status.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
    this.seconds = new client.Histogram({
      name: 'latchkey_admin_request_duration_seconds',
      help: 'Admin API request time, from the request to the written answer, by method and route path template.',
      labelNames: ['method', 'route'],
      buckets: BUCKETS,
      registers: [registry],
    });
  }

  /** One answered request; `route` must be a route template or UNMATCHED_ROUTE. */
  observe(method: string, route: string, status: number, seconds: number): void {
    const m = METHODS.has(method) ? method : 'OTHER';
    this.requests.inc({ method: m, route, status: String(status) });
    this.seconds.observe({ method: m, route }, seconds);
  }
}
