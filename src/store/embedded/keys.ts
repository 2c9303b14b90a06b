/**
 * Key encoding of the embedded store, shared by every area: binary keys built by {@link key}, in
 * which every id but the last is length-prefixed and the last is raw UTF-8, so keys sharing a
 * leading id are contiguous and ordered by the last id byte-wise (which is code-point order, and
 * equal to JS string order for the ASCII ids latchkey uses). An area's own key shapes (control log,
 * owner index, access tokens, notification seqs) live in that area's module.
 *
 * Ids are at most MAX_ID_BYTES (500) UTF-8 bytes (common/values.ts): composite keys hold two ids
 * plus a 2-byte length, so 500 keeps every key under LMDB's 1978-byte key limit (lmdb-js build).
 */

/** Binary key: each id but the last as u16be length + UTF-8, then the last id's UTF-8. */
export function key(...ids: string[]): Buffer {
  const parts: Buffer[] = [];
  ids.forEach((id, i) => {
    const bytes = Buffer.from(id, 'utf8');
    if (i < ids.length - 1) {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(bytes.length);
      parts.push(len);
    }
    parts.push(bytes);
  });
  return Buffer.concat(parts);
}

/** Range over every key whose leading ids are `ids`, i.e. keys starting with key(...ids, ''). */
export function prefixRange(...ids: string[]): { start: Buffer; end: Buffer } {
  const start = key(...ids, '');
  // UTF-8 never contains 0xff and the length prefix is < 0xffff, so bumping the last byte yields
  // the smallest key greater than every key with this prefix.
  const end = Buffer.from(start);
  end[end.length - 1] += 1;
  return { start, end };
}
