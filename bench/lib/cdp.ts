/**
 * A small Chrome DevTools Protocol client for the benches that measure a server's memory: attach to
 * a Node process's inspector (`--inspect=127.0.0.1:0`, its URL printed on stderr), reach its worker
 * threads through NodeWorker, force full garbage collections everywhere, read process.memoryUsage()
 * and stream heap snapshots. Used by bench/lib/session-memory.ts and bench/sessions.
 */
import fs from 'node:fs';
import { WebSocket } from 'undici';
import { sleep } from './run.js';

type Params = Record<string, unknown>;
type Handler = (params: Params) => void;

export interface CdpTarget {
  readonly name: string;
  call<T = Params>(method: string, params?: Params): Promise<T>;
  on(event: string, h: Handler): () => void;
}

/** One CDP session: numbered calls and their answers, events to handlers. `post` sends a message text. */
abstract class Session implements CdpTarget {
  abstract readonly name: string;
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (v: Params) => void; reject: (e: Error) => void }>();
  private readonly handlers = new Map<string, Set<Handler>>();

  protected abstract post(text: string, reject: (e: Error) => void): void;

  onMessage(text: string): void {
    const m = JSON.parse(text) as { id?: number; result?: Params; error?: { message: string }; method?: string; params?: Params };
    if (m.id !== undefined) {
      const c = this.calls.get(m.id);
      this.calls.delete(m.id);
      if (m.error) c?.reject(new Error(m.error.message));
      else c?.resolve(m.result ?? {});
    } else if (m.method) {
      for (const h of this.handlers.get(m.method) ?? []) h(m.params ?? {});
    }
  }

  call<T = Params>(method: string, params: Params = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: Params) => void, reject });
      this.post(JSON.stringify({ id, method, params }), reject);
    });
  }

  on(event: string, h: Handler): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(h);
    return () => set.delete(h);
  }
}

/** A process's main thread, over the inspector's WebSocket; its worker threads in `workers`. */
export class Cdp extends Session {
  readonly name = 'main';
  readonly workers = new Map<string, WorkerTarget>();

  private constructor(private readonly ws: WebSocket) {
    super();
    ws.addEventListener('message', (ev) => this.onMessage(String(ev.data)));
  }

  static async connect(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve());
      ws.addEventListener('error', (e) => reject(new Error(`inspector: ${String((e as { message?: string }).message ?? 'connection failed')}`)));
    });
    const cdp = new Cdp(ws);
    cdp.on('NodeWorker.attachedToWorker', (p) => {
      const id = p.sessionId as string;
      cdp.workers.set(id, new WorkerTarget(cdp, id, `worker ${(p.workerInfo as { title?: string }).title ?? id}`));
    });
    cdp.on('NodeWorker.detachedFromWorker', (p) => cdp.workers.delete(p.sessionId as string));
    cdp.on('NodeWorker.receivedMessageFromWorker', (p) => cdp.workers.get(p.sessionId as string)?.onMessage(p.message as string));
    await cdp.call('NodeWorker.enable', { waitForDebuggerOnStart: false });
    return cdp;
  }

  protected post(text: string): void {
    this.ws.send(text);
  }

  close(): void {
    this.ws.close();
  }
}

/** A worker thread, reached through its parent's NodeWorker domain. */
export class WorkerTarget extends Session {
  constructor(
    private readonly parent: Cdp,
    private readonly sessionId: string,
    readonly name: string,
  ) {
    super();
  }

  protected post(text: string, reject: (e: Error) => void): void {
    this.parent.call('NodeWorker.sendMessageToWorker', { sessionId: this.sessionId, message: text }).catch(reject);
  }
}

export interface HeapUse {
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export async function memoryUsage(t: CdpTarget): Promise<HeapUse> {
  const r = await t.call<{ result: { value: string } }>('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
  return JSON.parse(r.result.value) as HeapUse;
}

/** Two full GCs in every thread, with a pause for V8's concurrent sweeping and for frees to land. */
export async function gcAll(cdp: Cdp): Promise<void> {
  for (let i = 0; i < 2; i++) {
    await cdp.call('HeapProfiler.collectGarbage');
    for (const w of cdp.workers.values()) await w.call('HeapProfiler.collectGarbage');
    await sleep(500);
  }
}

/** Heap snapshot of a thread, streamed to `file`. */
export async function heapSnapshot(t: CdpTarget, file: string): Promise<void> {
  const out = fs.createWriteStream(file);
  const off = t.on('HeapProfiler.addHeapSnapshotChunk', (p) => out.write(p.chunk as string));
  try {
    await t.call('HeapProfiler.takeHeapSnapshot', { reportProgress: false, captureNumericValue: false });
  } finally {
    off();
    await new Promise<void>((r) => out.end(r));
  }
}
