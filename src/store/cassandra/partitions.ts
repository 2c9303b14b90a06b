/**
 * The partition keys the Cassandra store computes: the app_endpoints bucket of a key hash (4,096
 * per application) and the credentials_by_app bucket of a credentials id (65 per application).
 * Both are monotone in the key, so buckets read in order list keys in CQL text order.
 *
 * Endpoints: app_endpoints is split by the first two key hash characters (4,096 buckets, the
 * base64url alphabet in byte order twice, so bucket order is key hash order). At about 1 KiB a
 * row (a 294-byte key, the profile, metadata), the 64 buckets of the earlier table passed the
 * usual 100 MB partition guideline at about 6M endpoints per application; 4,096 pass it at about
 * 400M. More buckets would make applications of a few thousand endpoints pay more directory rows
 * and round trips per page for no gain at the sizes latchkey serves.
 * How app_endpoint_buckets keeps listings of small applications cheap: registration.ts.
 */

/** The base64url alphabet in ascending character order (= CQL text order for ASCII). */
const BUCKETS = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
/** Partitions of app_endpoints per application: two key hash characters (see the file comment). */
export const ENDPOINT_BUCKETS = BUCKETS.length * BUCKETS.length; // 4,096
/**
 * The app_endpoints bucket of a key hash: its first two characters as a number, in key hash order
 * (a one-character hash shares bucket `c-` with the hashes it sorts before).
 */
export function endpointBucket(keyHash: string): number {
  const at = (i: number) => (i < keyHash.length ? Math.max(0, BUCKETS.indexOf(keyHash[i]!)) : 0);
  return at(0) * BUCKETS.length + at(1);
}

/**
 * credentials_by_app buckets: 0 for ids whose first character sorts before '-', then bucket i + 1
 * for first characters from BUCKETS[i] up to (not including) BUCKETS[i + 1] ('z' and above: the
 * last). Monotone in the id, so buckets visited in order list ids in UTF-8 byte order (CQL text
 * order) for ids of any shape; a key hash's bucket is its first character, as for endpoints.
 */
export const CRED_BUCKETS = BUCKETS.length + 1;
export function credentialsBucket(id: string): number {
  const c = id.codePointAt(0) ?? 0;
  let b = 0;
  while (b < BUCKETS.length && c >= BUCKETS.charCodeAt(b)) b++;
  return b;
}
