import { RedisBus } from '../../src/bus/bus-redis.js';
import { busContract } from './bus.contract.js';

const REDIS_URL = process.env.LATCHKEY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
// A prefix per run, so parallel runs on one Redis do not see each other's messages.
const prefix = `latchkey-test-${process.pid}-${Date.now()}:`;

busContract('redis', () => RedisBus.connect(REDIS_URL, { prefix }), { shared: true });
