/**
 * Fixed-size secrets kept for the life of a session outside the JavaScript heap's object graph:
 * slots in 8 KiB slabs, zeroed when freed. Used for each session's resumption secret (32 bytes,
 * docs/protocol.md 4.6): one Buffer per session would cost ~100 bytes of heap each and a GC
 * object; a slot costs its 32 bytes.
 */
export class SecretSlots {
  private readonly slabs: Buffer[] = [];
  private readonly freed: number[] = [];
  private used = 0;
  private readonly perSlab: number;

  constructor(private readonly bytes: number) {
    this.perSlab = Math.max(1, Math.floor(8192 / bytes));
  }

  put(secret: Uint8Array): number {
    if (secret.byteLength !== this.bytes) throw new RangeError(`secret must be ${this.bytes} bytes`);
    let slot = this.freed.pop();
    if (slot === undefined) {
      slot = this.used++;
      if (Math.floor(slot / this.perSlab) === this.slabs.length) this.slabs.push(Buffer.alloc(this.bytes * this.perSlab));
    }
    this.view(slot).set(secret);
    return slot;
  }

  /** The secret of `slot` (a view: use it before free()). */
  view(slot: number): Buffer {
    const at = (slot % this.perSlab) * this.bytes;
    return this.slabs[Math.floor(slot / this.perSlab)]!.subarray(at, at + this.bytes);
  }

  free(slot: number): void {
    this.view(slot).fill(0);
    this.freed.push(slot);
  }
}
