/**
 * The WebSocket constructor outside browsers: the runtime's own (Node 22+, Deno, Bun), else
 * undici's (Node 20 has none without a flag). scripts/build-sdk.mjs builds the browser bundle with
 * websocket.browser.ts in place of this module, so undici is never part of it; package.json's
 * `browser` condition points bundlers at that bundle.
 */
export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocket;

export async function defaultWebSocket(): Promise<WebSocketCtor> {
  const g = globalThis as { WebSocket?: WebSocketCtor };
  if (g.WebSocket) return g.WebSocket;
  // The specifier in a variable: type-checking the SDK (tsconfig.sdk.json, no @types/node) must not
  // load undici's typings, which would bring Node's globals into the SDK's program.
  const undiciModule = 'undici';
  const undici = (await import(undiciModule)) as { WebSocket: WebSocketCtor };
  return undici.WebSocket;
}
