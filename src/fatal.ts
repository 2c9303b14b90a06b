/**
 * The last line of defence: an error that escaped every handler (a bug, or a plugin that throws
 * from a timer) must not leave a zombie that holds its ports and serves nothing.
 *
 * On `uncaughtException` / `unhandledRejection` the process logs LK_FATAL, stops listening at once
 * (both ports are free for a restarted process within milliseconds), ends its sessions and closes
 * the store and workers, then exits with code 70 (EX_SOFTWARE) for its supervisor to restart it;
 * if that close failed, or the error came before the server was built, it kills itself instead.
 *
 * Why not exit at once: measured on this code (issue 9), `process.exit` while an LMDB write
 * transaction is in flight can hang for ever in `uv_thread_join`: lmdb-js joins its write thread
 * at exit, and that thread waits for a JavaScript callback that an exiting process no longer runs
 * (4 of 6 runs with 16 concurrent credential POSTs). Closing the store first lets that callback
 * run. If the orderly close itself does not finish within FATAL_CLOSE_MS, the process kills itself
 * (SIGKILL): LMDB is crash-safe (an acknowledged write is durable, an unfinished one is rolled
 * back), and a process that cannot close is exactly the zombie this file exists to prevent.
 */
import type { Logger } from 'pino';

export const FATAL_EXIT_CODE = 70;
export const FATAL_CLOSE_MS = 3000;

export interface FatalHooks {
  /** Free the listen sockets now (synchronous). */
  stopListening(): void;
  /** End sessions, close workers and the store. */
  close(): Promise<void>;
}

export function installFatalHandler(log: Logger, hooks: () => FatalHooks | null): void {
  let dying = false;
  const die = (kind: string, err: unknown): void => {
    if (dying) {
      log.error({ err, kind }, 'another error while exiting after LK_FATAL');
      return;
    }
    dying = true;
    try {
      log.fatal({ err, kind, code: 'LK_FATAL' }, `LK_FATAL: ${kind}; exiting with code ${FATAL_EXIT_CODE}`);
    } catch {
      // The logger itself failed: exit anyway.
    }
    const h = hooks();
    const kill = setTimeout(() => {
      try {
        log.fatal({ code: 'LK_FATAL', closeMs: FATAL_CLOSE_MS }, 'orderly close did not finish in time: killing the process');
        log.flush();
      } finally {
        process.kill(process.pid, 'SIGKILL');
      }
    }, FATAL_CLOSE_MS);
    try {
      h?.stopListening();
    } catch (e) {
      log.error({ err: e }, 'stopListening failed after LK_FATAL');
    }
    void (async () => {
      let closed = h !== null;
      try {
        await h?.close();
      } catch (e) {
        closed = false;
        log.error({ err: e }, 'close failed after LK_FATAL');
      }
      clearTimeout(kill);
      log.flush();
      // Only a fully closed store makes process.exit safe from the lmdb join (see above); otherwise
      // (close failed, or the error came before the server was built) kill: LMDB is crash-safe.
      if (closed) process.exit(FATAL_EXIT_CODE);
      process.kill(process.pid, 'SIGKILL');
    })();
  };
  process.on('uncaughtException', (err) => die('uncaughtException', err));
  process.on('unhandledRejection', (err) => die('unhandledRejection', err));
}
