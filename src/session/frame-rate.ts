/**
 * Per-session rate buckets (SessionLimits messagesPerSec / bytesPerSec, docs/operations.md): a
 * session past either is ended with LK_SESSION_RATE_LIMITED. The state is two numbers kept on the
 * session itself, not an object per session (docs/performance.md "Per-session memory budget").
 */
import type { SessionLimits } from './types.js';

/** Buckets hold this many seconds of the configured rate (the burst a session may send). */
export const RATE_BURST_SEC = 2;

/** Tokens left in a session's buckets; negative msgTokens: not started (full at the first frame). */
export interface FrameRateState {
  msgTokens: number;
  byteTokens: number;
}

/**
 * Take one frame of `bytes` from the buckets; false when either is empty. The buckets were last
 * refilled at `previous` (the previous frame, or CONNACK, which only makes the refill smaller by
 * the handshake's duration).
 */
export function takeFrame(st: FrameRateState, limits: SessionLimits, now: number, previous: number, bytes: number): boolean {
  const { messagesPerSec: mps, bytesPerSec: bps } = limits;
  if (mps <= 0 && bps <= 0) return true;
  if (st.msgTokens < 0) {
    st.msgTokens = mps * RATE_BURST_SEC;
    st.byteTokens = bps * RATE_BURST_SEC;
  } else {
    const dt = (now - previous) / 1000;
    st.msgTokens = Math.min(mps * RATE_BURST_SEC, st.msgTokens + dt * mps);
    st.byteTokens = Math.min(bps * RATE_BURST_SEC, st.byteTokens + dt * bps);
  }
  if (mps > 0 && (st.msgTokens -= 1) < 0) return false;
  if (bps > 0 && (st.byteTokens -= bytes) < 0) return false;
  return true;
}
