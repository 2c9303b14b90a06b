/**
 * The protection layer of one process, assembled from config: the ban list (kept in step with the
 * store and the other nodes) and admission (caps, rates, automatic bans). server.ts builds one and
 * hands `admission` to the gateway, the handshake and the sessions.
 */
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.js';
import os from 'node:os';
import { processCount, type Config } from '../config/config.js';
import type { Stats } from '../metrics.js';
import type { ProtectionStore } from '../store/store.js';
import { Admission } from './admission.js';
import { BanList, endBanned, type BannedSessions } from './bans.js';

/** Bans are reloaded from the store this many control polls apart (and at once on `bans.changed`). */
const BAN_REFRESH_POLLS = 5;

export interface Protection {
  admission: Admission;
  bans: BanList;
  close(): Promise<void>;
}

export async function startProtection(d: {
  config: Config;
  store: ProtectionStore;
  bus: Bus;
  stats: Stats;
  log: Logger;
  nodeId: string;
  /** Ends the live sessions a ban covers with LK_BANNED (the session registry). */
  bannedSessions: BannedSessions;
}): Promise<Protection> {
  const { config: c, log } = d;
  const bans = new BanList({
    store: d.store,
    log,
    announce: () => d.bus.publish('sessions', { type: 'bans.changed', origin: d.nodeId }),
    onAdded: (ban) => d.stats.count(d.stats.bansAdded, ban.createdBy === 'flapping' || ban.createdBy === 'failed-handshakes' ? ban.createdBy : 'admin'),
    onBanned: (ban) => {
      const ended = endBanned(ban, d.bannedSessions);
      if (ended > 0) log.info({ ban: { kind: ban.kind, value: ban.value }, ended }, 'ban in force: matching sessions ended');
    },
  });
  try {
    await bans.refresh();
  } catch (err) {
    // Start anyway: the store is also what every handshake needs, and the next refresh retries.
    log.warn({ err }, 'ban list not loaded at start; retried at the next refresh');
  }
  const admission = new Admission(
    {
      maxConnections: c.maxConnections,
      maxPendingHandshakes: c.maxPendingHandshakes,
      handshakeQueueTargetMs: c.handshakeQueueTargetMs,
      busyRetryMaxMs: c.busyRetryMaxSec * 1000,
      cpuShare: os.availableParallelism() / processCount(c),
      connectionFdReserve: c.connectionFdReserve,
      ipConnectRatePerSec: c.ipConnectRatePerSec,
      ipConnectBurst: c.ipConnectBurst,
      keyHandshakesPerMin: c.keyHandshakesPerMin,
      flappingMaxCount: c.flappingMaxCount,
      flappingWindowSec: c.flappingWindowSec,
      flappingBanSec: c.flappingBanSec,
      ipMaxFailedHandshakes: c.ipMaxFailedHandshakes,
      attackRefusalsPerSec: c.attackRefusalsPerSec,
      ipMaxFailedHandshakesUnderAttack: c.ipMaxFailedHandshakesUnderAttack,
      probationMs: c.handshakeProbationMs,
      badSignatureMemory: c.badSignatureMemory,
      badSignatureTtlMs: c.handshakeWindowSec * 2000,
      trustfulNewCredentialsPerSec: c.trustfulNewCredentialsPerSec,
    },
    bans,
    d.stats,
    log,
  );
  log.info({ maxConnections: admission.maxConnections, maxPendingHandshakes: c.maxPendingHandshakes, handshakeQueueTargetMs: c.handshakeQueueTargetMs, ipConnectRatePerSec: c.ipConnectRatePerSec, keyHandshakesPerMin: c.keyHandshakesPerMin, ipMaxFailedHandshakes: c.ipMaxFailedHandshakes, flappingMaxCount: c.flappingMaxCount, bans: bans.list().length }, 'protection limits');
  d.stats.bansActive = () => bans.counts();
  // Single flight: announcements arriving while a reload runs ask for one more reload, not one each
  // (a flood of automatic bans on another node must not turn into a flood of full reloads here).
  let running = false;
  let again = false;
  const refresh = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    bans.refresh()
      .catch((err: unknown) => log.warn({ err }, 'ban list refresh failed; retried'))
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  };
  const unsubscribe = await d.bus.subscribe('sessions', (msg) => {
    if (msg.type === 'bans.changed' && msg.origin !== d.nodeId) refresh();
  });
  const timer = setInterval(refresh, c.controlPollMs * BAN_REFRESH_POLLS);
  timer.unref();
  return {
    admission,
    bans,
    async close() {
      clearInterval(timer);
      await unsubscribe();
    },
  };
}
