/**
 * Graceful stop of a serving process (a single-process node, or one gateway process): on the
 * first of `signals` (or a call of the returned function) close the server, log, exit 0; exit 1
 * if the close failed. Later signals are ignored while it closes.
 */
import type { Logger } from 'pino';

export function stopOnSignals(close: () => Promise<void>, log: Logger, signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): (why: string) => void {
  let stopping = false;
  const stop = (why: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: why }, 'shutting down');
    close().then(
      () => {
        log.info('stopped');
        log.flush();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  for (const s of signals) process.on(s, () => stop(s));
  return stop;
}
