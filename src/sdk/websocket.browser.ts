/** The browser bundle's websocket.ts (scripts/build-sdk.mjs swaps it in): the page's WebSocket only. */
import { ClientError } from './errors.js';
import type { WebSocketCtor } from './websocket.js';

export async function defaultWebSocket(): Promise<WebSocketCtor> {
  const g = globalThis as { WebSocket?: WebSocketCtor };
  if (g.WebSocket) return g.WebSocket;
  throw new ClientError('LK_SDK_CONNECTION_FAILED', 'this runtime has no WebSocket: pass options.WebSocket');
}
