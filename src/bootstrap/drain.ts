/**
 * Draining a node: it leaves the bootstrap lists, then every endpoint is told to move (REDIRECT)
 * to another node the bootstrap strategy picks for its application. A session stays until its
 * endpoint leaves, so nothing in flight is cut off.
 */
import type { Logger } from 'pino';
import type { SessionRegistry } from '../session/registry.js';
import type { BootstrapService } from './service.js';

/**
 * Leave the bootstrap lists, then tell every established endpoint to move to another node
 * (REDIRECT). Returns how many were told; 0 when there is no other node. The admin API's
 * `node drain` calls it, and so does shutdown (drainAndDisconnect).
 */
export async function drain(bootstrap: BootstrapService, registry: SessionRegistry, log: Logger): Promise<number> {
  await bootstrap.drain();
  let n = 0;
  for (const s of [...registry.sessions()]) {
    if (s.state !== 'ESTABLISHED' || !s.app) continue;
    let target: ReturnType<BootstrapService['redirectTarget']>;
    try {
      target = bootstrap.redirectTarget(s.app.id);
    } catch (err) {
      // A custom strategy that throws must not stop the shutdown: these sessions just get DISCONNECT.
      log.error({ err }, 'bootstrap strategy failed while draining');
      return n;
    }
    if (target && s.redirect(target.id)) n++;
  }
  if (n > 0) log.info({ redirected: n }, 'draining: endpoints told to move to other nodes');
  return n;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Graceful shutdown of the sessions within `graceMs`: drain, give redirected endpoints up to half
 * of it to leave, then end the rest with DISCONNECT LK_SERVER_SHUTDOWN and wait for their sockets
 * until the grace period is over. Polls every 20 ms.
 */
export async function drainAndDisconnect(bootstrap: BootstrapService, registry: SessionRegistry, graceMs: number, log: Logger): Promise<void> {
  const deadline = Date.now() + graceMs;
  const redirected = await drain(bootstrap, registry, log);
  if (redirected > 0) {
    const redirectDeadline = Date.now() + graceMs / 2;
    while (registry.endpointCount > 0 && Date.now() < redirectDeadline) await sleep(20);
  }
  registry.endAll('LK_SERVER_SHUTDOWN');
  while (registry.size > 0 && Date.now() < deadline) await sleep(20);
}
