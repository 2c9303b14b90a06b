/** uWS HTTP response helpers shared by the listeners (gateway bootstrap route, admin API, Administration UI). */
import type uWS from 'uWebSockets.js';

/**
 * End a response to HEAD: the status and headers a GET would get, no body (RFC 9110 9.3.2).
 * Content-Length is written as a header and endWithoutBody() given no length: after
 * endWithoutBody(n > 0), uWS 20.30 closed the connection when the next request on it arrived (seen
 * with a raw socket; test/e2e/admin-findings.test.ts sends that next request). It also keeps the
 * connection open after `Connection: close` here; the client closes it or the idle timeout does.
 * uWS's JavaScript fallback has no endWithoutBody; Node's http under it drops HEAD bodies itself.
 */
export function endWithoutBody(res: uWS.HttpResponse, length: number | null): void {
  if (length !== null) res.writeHeader('content-length', String(length));
  try {
    res.endWithoutBody();
  } catch {
    res.end();
  }
}
