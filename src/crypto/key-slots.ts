/**
 * Frame keys at rest. An established session keeps its two 32-byte keys until it first needs its
 * ciphers, which many never do (they only ping for hours). As views of the crypto pool's 96-byte
 * answer the pair cost ~500 B per session (its own ArrayBuffer, backing store and typed arrays;
 * docs/performance.md "Per-session memory budget"). Here a pair is one 64-byte slot (c2s || s2c) of
 * a shared 16 KiB slab: 64 B per session plus a small integer in the session. A slot is zeroed when
 * it is freed. Slabs are never returned: they are the high-water mark of concurrent sessions x 64 B,
 * reused by later sessions (freed slots first, so the slabs in use stay dense).
 *
 * A slot number is only valid until free(); a holder must forget it then (Session sets it to -1).
 */
export class KeySlots {
  static readonly SLOT_BYTES = 64;
  static readonly SLOTS_PER_SLAB = 256; // 16 KiB slabs
  private readonly slabs: Buffer[] = [];
  /** One byte per slot: 1 while it holds keys (a stale or doubly freed slot throws instead of leaking another session's keys). */
  private readonly inUse: Uint8Array[] = [];
  private readonly freed: number[] = [];
  private used = 0;

  /** Store c2s || s2c (32 bytes each); returns the slot. */
  put(c2s: Uint8Array, s2c: Uint8Array): number {
    if (c2s.byteLength !== 32 || s2c.byteLength !== 32) throw new RangeError('frame keys are 32 bytes each');
    let slot = this.freed.pop();
    if (slot === undefined) {
      slot = this.used++;
      if (slot >>> 8 === this.slabs.length) {
        this.slabs.push(Buffer.alloc(KeySlots.SLOT_BYTES * KeySlots.SLOTS_PER_SLAB));
        this.inUse.push(new Uint8Array(KeySlots.SLOTS_PER_SLAB));
      }
    }
    this.inUse[slot >>> 8]![slot & 0xff] = 1;
    const at = this.offset(slot);
    const slab = this.slabs[slot >>> 8]!;
    slab.set(c2s, at);
    slab.set(s2c, at + 32);
    return slot;
  }

  /** The endpoint -> server key of `slot` (a view: use it before free()). */
  c2s(slot: number): Buffer {
    const at = this.offset(slot);
    return this.slabs[slot >>> 8]!.subarray(at, at + 32);
  }

  /** The server -> endpoint key of `slot` (a view: use it before free()). */
  s2c(slot: number): Buffer {
    const at = this.offset(slot);
    return this.slabs[slot >>> 8]!.subarray(at + 32, at + 64);
  }

  /** Zero the slot and make it available again. */
  free(slot: number): void {
    const at = this.offset(slot);
    this.slabs[slot >>> 8]!.fill(0, at, at + KeySlots.SLOT_BYTES);
    this.inUse[slot >>> 8]![slot & 0xff] = 0;
    this.freed.push(slot);
  }

  /** Slots holding keys now (for tests and memory accounting). */
  get size(): number {
    return this.used - this.freed.length;
  }

  private offset(slot: number): number {
    if (!(Number.isInteger(slot) && slot >= 0 && slot < this.used) || this.inUse[slot >>> 8]![slot & 0xff] !== 1) throw new RangeError(`key slot ${slot} holds no keys`);
    return (slot & 0xff) * KeySlots.SLOT_BYTES;
  }
}
