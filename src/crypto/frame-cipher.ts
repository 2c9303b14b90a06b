/**
 * The FrameCipher a session gets: WasmGcmCipher (aead-wasm.ts) when the WebAssembly kernel loads
 * and passes its known-answer check, NodeGcmCipher (aead.ts) otherwise. Same frames either way.
 */
import { NodeGcmCipher, type FrameCipher } from './aead.js';
import { frameKernel, WasmGcmCipher } from './aead-wasm.js';

export type FrameCipherKind = 'wasm' | 'node';

/** Which FrameCipher createFrameCipher returns in this process: 'wasm' (WasmGcmCipher) or 'node' (NodeGcmCipher, the fallback). */
export function frameCipherKind(): FrameCipherKind {
  return frameKernel() ? 'wasm' : 'node';
}

export function createFrameCipher(key: Uint8Array): FrameCipher {
  const k = frameKernel();
  return k ? new WasmGcmCipher(key, { kernel: k }) : new NodeGcmCipher(key);
}
