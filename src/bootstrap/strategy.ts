/**
 * Bootstrap strategies: how the live, non-draining nodes become a prioritised, weighted list.
 * Endpoints try lower `priority` values first and pick at random by `weight` among equals (the SDK
 * does this; docs/protocol.md, bootstrap).
 *
 * - priority-weighted (default): each node's configured nodePriority and nodeWeight.
 * - least-loaded: the least loaded nodes first (load in 10 % steps, so small swings do not reorder
 *   the list and re-sign it), configured weights among equals.
 * - custom: config bootstrapStrategyPlugin = {"module": "/abs/path.mjs", "config": {...}}; the
 *   module is a plugin of kind `bootstrapStrategy` (src/plugins/descriptor.ts) whose
 *   create(config, { log }) returns { place(nodes, { appId }) } giving [{ nodeId, priority, weight }].
 */
import type { Logger } from 'pino';
import { LatchkeyError } from '../errors.js';
import { loadPlugin } from '../plugins/plugin.js';
import { parsePluginSpec } from '../plugins/spec.js';
import type { NodeInfo } from './nodes.js';

export interface Placement {
  nodeId: string;
  priority: number;
  weight: number;
}

export type Strategy = (nodes: readonly NodeInfo[], ctx: { appId: string }) => Placement[];

/** Load rounded to a 10 % step: what lists carry and what orders least-loaded. */
export function loadStep(n: NodeInfo): number {
  const load = n.capacity > 0 ? n.sessions / n.capacity : 1;
  return Math.min(1, Math.round(load * 10) / 10);
}

export const priorityWeighted: Strategy = (nodes) => nodes.map((n) => ({ nodeId: n.id, priority: n.priority, weight: n.weight }));

export const leastLoaded: Strategy = (nodes) => {
  const steps = [...new Set(nodes.map(loadStep))].sort((a, b) => a - b);
  return nodes.map((n) => ({ nodeId: n.id, priority: steps.indexOf(loadStep(n)), weight: n.weight }));
};

/** Whether a strategy's output depends on load (then load steps are part of the node-set version). */
export interface LoadedStrategy {
  place: Strategy;
  loadSensitive: boolean;
  name: string;
}

export async function loadStrategy(name: string, plugin: unknown, log: Logger): Promise<LoadedStrategy> {
  if (name === 'priority-weighted') return { place: priorityWeighted, loadSensitive: false, name };
  if (name === 'least-loaded') return { place: leastLoaded, loadSensitive: true, name };
  if (name !== 'custom') throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `bootstrapStrategy: priority-weighted, least-loaded or custom, not ${JSON.stringify(name)}`);
  const { instance: loaded } = await loadPlugin<{ place: Strategy }>('bootstrapStrategy', parsePluginSpec('bootstrapStrategyPlugin', plugin), {
    configuredAs: 'custom',
    ctx: { log: log.child({ plugin: 'bootstrapStrategy' }) },
    requiredMethods: ['place'],
  });
  const place: Strategy = (nodes, ctx) => {
    const out = loaded.place(nodes, ctx);
    const ids = new Set(nodes.map((n) => n.id));
    if (!Array.isArray(out) || !out.every((p) => p && ids.has(p.nodeId) && Number.isInteger(p.priority) && Number.isInteger(p.weight) && p.weight >= 0)) {
      throw new LatchkeyError('LK_PLUGIN_INVALID', 'bootstrap strategy place() must return [{ nodeId (a listed node), priority (int), weight (int >= 0) }]');
    }
    return out;
  };
  // A custom strategy may look at anything: treat it as load sensitive.
  return { place, loadSensitive: true, name: 'custom' };
}
