/**
 * Storm pacing: how many handshakes a process may have in progress, and when a refused endpoint
 * should come back.
 *
 * A reconnect storm brings every endpoint of a fleet back at once. Refused with "retry with
 * backoff", each endpoint retries every few seconds (the SDK's full-jitter backoff, at most 30 s),
 * so 250,000 endpoints make ~15,000 attempts a second for as long as the storm lasts, and a node
 * whose two cores must refuse them as well as serve them never catches up (bench/sessions at 250k:
 * 1.5 M refusals, 878,000 attempts timed out, not converged after 500 s). Two measures here:
 *
 *  - **Queue bound from the measured rate.** A process takes at most rate x queueTargetMs
 *    handshakes in progress (at least MIN_PENDING, at most maxPendingHandshakes), where rate is the
 *    handshakes it established per second lately: by Little's law a handshake it admits then ends
 *    within about queueTargetMs, well inside the endpoint's 10 s attempt timeout, instead of
 *    queueing behind thousands and being abandoned by its endpoint after its work was spent.
 *  - **Appointments.** Each refusal carries a delay (docs/protocol.md 1.1): the process hands out
 *    return times spaced at its rate (PACE_SHARE), so the refused endpoints come back at the pace
 *    it serves them and each is refused about once, not once every few seconds. Appointments are
 *    capped at maxDelayMs; ones past the cap are spread over the cap.
 *
 * The rate is what the process can do, not what it did: while endpoints come back at the pace of
 * their appointments the process establishes only what it let come, and pacing at what it did
 * would never find out that it could do more (bench/sessions, 40k resumed storm on 14 processes:
 * appointments set in the storm's first seconds at the then-measured ~100/s a process spread the
 * storm over 30 s, while the processes completed 4,000/s together when let). So the rate is the
 * greatest of:
 *  - the best CPU estimate of the last RATE_SECONDS: the CPU this process may use (`cpuShare`
 *    cores: the machine's CPUs over the node's gateway processes) over the CPU it spent per
 *    established handshake in a second with at least MIN_SAMPLE of them (all its threads, live
 *    sessions included). The best, not the latest: the seconds in which appointments are made are
 *    the ones whose CPU went to refusing (and, after a restart, to starting), and the cheapest
 *    second is the closest to what a handshake itself costs;
 *  - the most handshakes it established in one second of the last RATE_SECONDS;
 *  - the floor: MIN_RATE_PER_CORE x its cores (MIN_RATE without a share): a process just
 *    restarted has neither, and a storm's appointments are mostly made in its first seconds.
 */

/** Fewest handshakes a process may have in progress, whatever its rate. */
export const MIN_PENDING = 64;
/** Handshakes per second assumed of a process with no history yet (no CPU share known), and the floor of the estimate. */
export const MIN_RATE = 100;
/**
 * The floor per core of the process's share: about what one core does with a mix of full
 * handshakes (~1.5 ms of CPU each under load) and resumed ones (~0.5 ms), measured with
 * bench/sessions; a floor too low sets a storm's first appointments too late, too high costs
 * those endpoints one more refusal.
 */
export const MIN_RATE_PER_CORE = 700;
/** Whole seconds the rate is the best of, and a CPU estimate is kept. */
const RATE_SECONDS = 30;
/** Fewest handshakes in a second for its CPU per handshake to be an estimate. */
const MIN_SAMPLE = 20;
/**
 * Appointments per second, as a share of the rate. Not below 1: an estimate made while the process
 * refuses is low (its CPU went to refusing), an appointment kept too late leaves the process idle
 * for good, and one kept too early only costs one more refusal (a new appointment).
 */
const PACE_SHARE = 1.0;
/** The shortest delay a refusal asks for: the process was full a moment ago. */
export const MIN_DELAY_MS = 1_000;

export interface PacerOptions {
  /** Target time a handshake spends admitted (0: no rate bound, maxPending only). */
  queueTargetMs: number;
  /** Longest delay a refusal asks for. */
  maxDelayMs: number;
  /** Cores this process may use (the machine's CPUs / the node's gateway processes); 0: no CPU estimate. */
  cpuShare?: number;
  /** CPU time this process has used, µs (default: process.cpuUsage(), every thread). */
  cpuUs?: () => number;
  now?: () => number;
  random?: () => number;
}

function processCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

export class Pacer {
  private readonly now: () => number;
  private readonly random: () => number;
  /**
   * What each of the last RATE_SECONDS whole seconds showed the process can do (newest first): the
   * handshakes it established then, or its CPU estimate of that second if higher; and this second's
   * count so far.
   */
  private readonly perSecond = new Array<number>(RATE_SECONDS).fill(0);
  /** The greatest of perSecond, kept as the ring rolls (rate() runs at every upgrade and refusal). */
  private bestWhole = 0;
  private second = 0;
  private thisSecond = 0;
  /** The next free appointment (ms, this process's clock). */
  private nextAt = 0;
  private readonly cpuUs: () => number;
  /** CPU used at the start of this second. */
  private cpuAtSecond = 0;
  /** The rate assumed with no better evidence. */
  private readonly floor: number;

  constructor(private readonly o: PacerOptions) {
    this.now = o.now ?? Date.now;
    this.random = o.random ?? Math.random;
    this.cpuUs = o.cpuUs ?? processCpuUs;
    this.floor = o.cpuShare ? Math.max(10, Math.round(MIN_RATE_PER_CORE * o.cpuShare)) : MIN_RATE;
  }

  /** A handshake was established. */
  established(): void {
    this.roll(this.now());
    this.thisSecond++;
  }

  /** Handshakes per second this process can establish (the greatest of the three above). */
  rate(): number {
    this.roll(this.now());
    return Math.max(this.floor, this.thisSecond, this.bestWhole);
  }

  /** Most handshakes in progress now: rate x queueTargetMs within [MIN_PENDING, maxPending]. */
  pendingLimit(maxPending: number): number {
    if (this.o.queueTargetMs <= 0) return maxPending;
    const byRate = Math.max(MIN_PENDING, Math.ceil((this.rate() * this.o.queueTargetMs) / 1000));
    return maxPending > 0 ? Math.min(maxPending, byRate) : byRate;
  }

  /** The delay (ms) to hand one refused endpoint: the next free appointment, jittered within its slot. */
  appointment(): number {
    const now = this.now();
    const slot = 1000 / (PACE_SHARE * this.rate());
    const at = Math.max(this.nextAt, now + MIN_DELAY_MS);
    this.nextAt = at + slot;
    let delay = at - now + this.random() * slot;
    // Past the cap: spread over the cap rather than all at it (they will be paced again then).
    if (delay > this.o.maxDelayMs) {
      delay = MIN_DELAY_MS + this.random() * Math.max(0, this.o.maxDelayMs - MIN_DELAY_MS);
      this.nextAt = Math.min(this.nextAt, now + this.o.maxDelayMs);
    }
    return Math.round(delay);
  }

  private roll(now: number): void {
    const sec = Math.floor(now / 1000);
    if (sec === this.second) return;
    let shown = this.thisSecond;
    const share = this.o.cpuShare ?? 0;
    if (share > 0) {
      const cpu = this.cpuUs();
      // Only a second just gone counts (a gap means the clock jumped or nothing ran).
      if (this.second !== 0 && sec === this.second + 1 && this.thisSecond >= MIN_SAMPLE) {
        const perHandshake = (cpu - this.cpuAtSecond) / this.thisSecond;
        if (perHandshake > 0) shown = Math.max(shown, (share * 1e6) / perHandshake);
      }
      this.cpuAtSecond = cpu;
    }
    if (this.second !== 0) {
      // Whole seconds gone by: this one, then zeros for any with no handshake at all.
      const gap = Math.min(sec - this.second, RATE_SECONDS);
      for (let i = 0; i < gap; i++) {
        this.perSecond.copyWithin(1, 0, RATE_SECONDS - 1);
        this.perSecond[0] = i === 0 ? shown : 0;
      }
      this.bestWhole = Math.max(...this.perSecond);
    }
    this.second = sec;
    this.thisSecond = 0;
  }
}
