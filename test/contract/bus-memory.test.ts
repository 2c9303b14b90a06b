import { MemoryBus } from '../../src/bus/bus-memory.js';
import { busContract } from './bus.contract.js';

busContract('memory', async (nodeId) => new MemoryBus({ nodeId }));
