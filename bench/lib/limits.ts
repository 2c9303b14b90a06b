/**
 * Capacity benches (handshake, events, revocation) drive one server from one loopback address as
 * hard as it goes, reusing keys: exactly what the default per-address and per-key limits exist to
 * refuse. They measure the server's ceiling, so they turn those limits off; bench/flood measures
 * the defaults under attack.
 */
export const LIMITS_OFF: Record<string, string> = {
  LATCHKEY_IP_CONNECT_RATE_PER_SEC: '0',
  LATCHKEY_KEY_HANDSHAKES_PER_MIN: '0',
  LATCHKEY_FLAPPING_MAX_COUNT: '0',
  LATCHKEY_IP_MAX_FAILED_HANDSHAKES: '0',
  LATCHKEY_SESSION_MESSAGES_PER_SEC: '0',
  LATCHKEY_SESSION_BYTES_PER_SEC: '0',
  LATCHKEY_TRUSTFUL_NEW_CREDENTIALS_PER_SEC: '0',
};
