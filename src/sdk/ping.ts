/**
 * ping(): PINGREQ -> PINGRESP round trips. The waiters belong to the client, not to one session:
 * a PINGRESP answers every ping waiting, and a ping whose session ended fails only at its timeout.
 */
import { ClientError } from './errors.js';

export class Pings {
  private waiters: Array<() => void> = [];

  /** Round trip in ms: `send` sends the PINGREQ; fails with LK_SDK_TIMEOUT after `timeoutMs`. */
  roundTrip(send: () => void, timeoutMs: number): Promise<number> {
    const t0 = Date.now();
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        clearTimeout(timer);
        resolve(Date.now() - t0);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new ClientError('LK_SDK_TIMEOUT', 'no PINGRESP'));
      }, timeoutMs);
      this.waiters.push(waiter);
      send();
    });
  }

  /** A PINGRESP arrived. */
  pong(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
