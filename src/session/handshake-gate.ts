/**
 * Handshakes yield to established sessions. A CONNECT is not handled in the socket callback that
 * brought it: it is queued, and the queue is worked in setImmediate turns of at most `budgetMs` of
 * synchronous handshake work each. Between two turns the event loop polls the sockets, so a frame of
 * an established session waits behind at most one turn of handshakes, however many new connections
 * arrive at once.
 *
 * Why: uWS hands the process every ready socket of one poll in a row. When a flood of new
 * connections lands (bench/flood: ~1,000 at once from 50 addresses, before their bans are in
 * force), the CONNECTs of one poll cost ~300 µs of JavaScript each, and a PINGREQ of a legit session
 * polled together with them waited for all of them (p99 ~100 ms in the flood's first second).
 *
 * A turn is measured with what its jobs run as microtasks (most of a refused handshake runs after
 * its first await): every turn is queued together with a second immediate, which runs once the
 * turn's microtasks are drained and reads the clock; the number of jobs per turn then follows the
 * budget (halving or growing by at most 2x a turn, between 1 and 256). What a job awaits from
 * other threads (the crypto pool, the store's reads) runs when it comes back, as before. Jobs run
 * in arrival order. A job whose session has
 * gone by its turn returns at once (Session checks its state). The queue holds at most one job per
 * open socket in HANDSHAKING, so maxConnections bounds it.
 */
export class HandshakeGate {
  private queue: Array<(() => void) | undefined> = [];
  private head = 0;
  private scheduled = false;
  /** Jobs started per turn; follows the measured cost of the last turn. */
  private perTurn = 4;
  private turnStartedAt = 0;
  private turnJobs = 0;

  /** `budgetMs` <= 0: no gate, every job runs at once (in the callback that brought it). */
  constructor(
    private readonly budgetMs: number,
    private readonly onError: (err: unknown) => void,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Jobs waiting for their turn. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Jobs the next turn starts (tests, metrics). */
  get jobsPerTurn(): number {
    return this.perTurn;
  }

  run(job: () => void): void {
    if (this.budgetMs <= 0) return this.runOne(job);
    this.queue.push(job);
    if (!this.scheduled) this.schedule();
  }

  private schedule(): void {
    this.scheduled = true;
    // Both run in the same check phase of the next loop turn, `measured` after the turn's microtasks.
    setImmediate(this.turn);
    setImmediate(this.measured);
  }

  private readonly turn = (): void => {
    this.turnStartedAt = this.clock();
    const n = Math.min(this.perTurn, this.queue.length - this.head);
    for (let i = 0; i < n; i++) {
      const job = this.queue[this.head]!;
      this.queue[this.head++] = undefined;
      this.runOne(job);
    }
    this.turnJobs = n;
  };

  private readonly measured = (): void => {
    const cost = this.clock() - this.turnStartedAt;
    if (this.turnJobs >= this.perTurn) {
      // Only a full turn says whether more would fit; a turn cut short by an empty queue says nothing.
      const fit = cost > 0 ? this.perTurn * (this.budgetMs / cost) : this.perTurn * 2;
      this.perTurn = Math.max(1, Math.min(256, Math.round(Math.min(fit, this.perTurn * 2))));
    } else if (cost > this.budgetMs) {
      this.perTurn = Math.max(1, Math.floor(this.turnJobs * (this.budgetMs / cost)));
    }
    if (this.head < this.queue.length) {
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.schedule();
      return;
    }
    this.queue = [];
    this.head = 0;
    this.scheduled = false;
  };

  private runOne(job: () => void): void {
    try {
      job();
    } catch (err) {
      this.onError(err);
    }
  }
}
