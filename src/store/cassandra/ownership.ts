/**
 * Ownership area of the Cassandra store: which owner an endpoint is attached to (endpoint_owner,
 * indexed per owner by owner_endpoints), the event classes an endpoint declares, and endpoint
 * access tokens (endpoint_tokens, endpoint_token_current).
 *
 * Ownership across two tables (Cassandra has no multi-partition transactions):
 * - endpoint_owner is the truth; owner_endpoints is an index that may hold extra rows, never lack
 *   one for long. listOwnerEndpoints reads endpoint_owner for every index row and drops rows whose
 *   owner disagrees (as listApiKeys filters its scope index), so an extra row is never listed.
 * - An attach writes the new owner's index row BEFORE its lightweight transaction on
 *   endpoint_owner (a crash after the transaction cannot hide the endpoint from its new owner), and
 *   again after it (a concurrent mover may have removed it in between, see below). The transaction
 *   is conditional on the write_id it read (or IF NOT EXISTS), so of concurrent attaches of one
 *   endpoint each applies against exactly the owner it displaces; losers re-read serially and
 *   retry against the winner, so the last one to apply wins and every displaced owner is known to
 *   exactly one caller.
 * - After the transaction applies, the caller removes the displaced owner's index row, then re-reads
 *   endpoint_owner serially and writes the row back if that owner got the endpoint again meanwhile
 *   (its own before/after writes may have preceded the removal). Detach does the same. A crash or
 *   failure between the transaction and the removal leaves an extra row for the old owner:
 *   filtered out on listing, so the moved endpoint is never listed under the old owner even then
 *   (Kaa's bug). The removal is best effort for that reason. (Like deleteApiKey, the write-back
 *   relies on cell timestamps following real time, i.e. on synchronized clocks.)
 * - A conditional attach that loses removes its own pre-written row the same way.
 *
 * Access tokens: endpoint_tokens is claimed per (tenant, token hash) with lightweight transactions
 * (so two endpoints cannot publish one token); the claim's write_id is then made current in
 * endpoint_token_current, conditional on the previous current write_id, and the previous token's
 * claim is released (conditional on its write_id). A lookup answers only if the claim's write_id
 * is its endpoint's current one, so the old token stops resolving the moment the new one is
 * current, whether or not its release ran; claims that never became current are filtered the same
 * way and may be taken over.
 */
import { types } from 'cassandra-driver';
import { LatchkeyError } from '../../errors.js';
import type { ConditionalAttachResult, OwnerAttachment } from '../store.js';
import { checkAccessToken, checkAttach, checkEventClasses, compareAttachments, validTokenHash } from '../common/ownership.js';
import { validId, validKeyHash } from '../common/values.js';
import { mapLimit, READ_FANOUT, type CassandraContext } from './context.js';
import { cas, MAX_ATTEMPTS, sameId, sameRowId, serialRow, type CasOutcome } from './lwt.js';
import { ms, ownerFrom } from './rows.js';
import { readApp } from './tenancy.js';

/**
 * Attempts at attaching an endpoint whose owner keeps changing under it: every concurrent attach
 * of one endpoint contends for the same row and one wins per round, so n attaches at once need up
 * to n - 1 lost rounds; between them each loser waits a jittered, growing delay (ATTACH_BACKOFF_MS)
 * so they do not keep colliding.
 */
const ATTACH_ATTEMPTS = 24;
const ATTACH_BACKOFF_MS = 4;

export async function attachEndpointToOwner(
  cx: CassandraContext,
  tenantId: string,
  ownerExternalId: string,
  appId: string,
  keyHash: string,
): Promise<{ previousOwner: string | null }> {
  const out = await attach(cx, tenantId, ownerExternalId, appId, keyHash, false);
  if (!out.ok) throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'unconditional attach was refused'); // unreachable
  return { previousOwner: out.previousOwner };
}

export async function attachEndpointIfUnownedOrSameOwner(
  cx: CassandraContext,
  tenantId: string,
  ownerExternalId: string,
  appId: string,
  keyHash: string,
): Promise<ConditionalAttachResult> {
  return attach(cx, tenantId, ownerExternalId, appId, keyHash, true);
}

export async function getEndpointOwner(cx: CassandraContext, appId: string, keyHash: string): Promise<OwnerAttachment | null> {
  if (!validId(appId) || !validKeyHash(keyHash)) return null;
  return cx.guard(async () => {
    const row = await ownerRow(cx, appId, keyHash, false);
    return row ? ownerFrom(row) : null;
  });
}

export async function detachEndpoint(cx: CassandraContext, appId: string, keyHash: string): Promise<string | null> {
  if (!validId(appId) || !validKeyHash(keyHash)) return null;
  return cx.guard(async () => {
    let row = await ownerRow(cx, appId, keyHash, true);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (row === null) return null;
      const seen = row;
      // Conditional on the attachment seen, so the index row removed below is that owner's.
      const out = await cas(cx, cx.q.deleteOwner, [appId, keyHash, seen.get('write_id')]);
      let done = out !== 'unknown' && out.applied;
      if (!done) {
        row = await ownerRow(cx, appId, keyHash, true);
        // Unknown outcome and no row left: count it as ours. A row with another write_id is a
        // newer attachment (ours did not apply, or applied before it): detach that one too.
        done = out === 'unknown' && row === null;
      }
      if (done) {
        const previous = ownerFrom(seen);
        await dropOwnerIndexRow(cx, previous.tenantId, previous.ownerExternalId, appId, keyHash);
        return previous.ownerExternalId;
      }
    }
    throw new LatchkeyError('LK_STORE_UNAVAILABLE', `owner of endpoint ${keyHash} kept changing during detach`);
  });
}

export async function setEventClasses(cx: CassandraContext, appId: string, keyHash: string, classes: string[]): Promise<void> {
  checkEventClasses(appId, keyHash, classes);
  // A whole-value overwrite (frozen list): idempotent, last writer wins; only the endpoint's own
  // session declares. An INSERT, not an UPDATE: cassandra-driver encodes an empty list as null
  // (encoder.js encodeList), and an UPDATE setting the only regular column to null leaves no
  // live cell, so a declaration cleared with [] read back as "never declared". An INSERT also
  // writes the row marker, which keeps the row alive with classes null; the read maps that to [].
  // Rows written by the earlier UPDATE with a non-empty list have a live classes cell and read
  // as before; a declaration that UPDATE cleared left no row and reads as undeclared until the
  // endpoint declares again.
  await cx.guard(() => cx.client.execute(cx.q.upsertEventClasses, [appId, keyHash, [...classes]], cx.UPSERT));
}

export async function getEventClasses(cx: CassandraContext, appId: string, keyHash: string): Promise<string[] | null> {
  if (!validId(appId) || !validKeyHash(keyHash)) return null;
  return cx.guard(async () => {
    const row = (await cx.client.execute(cx.q.selectEventClasses, [appId, keyHash], cx.READ)).first();
    if (!row) return null;
    // A live row with classes null is a declaration cleared with [] (see setEventClasses).
    return [...((row.get('classes') as string[] | null) ?? [])];
  });
}

export async function listOwnerEndpoints(cx: CassandraContext, tenantId: string, ownerExternalId: string): Promise<OwnerAttachment[]> {
  if (!validId(tenantId) || !validId(ownerExternalId)) return [];
  return cx.guard(async () => {
    const keys: Array<[string, string]> = [];
    const rs = await cx.client.execute(cx.q.selectOwnerEndpoints, [tenantId, ownerExternalId], { ...cx.READ, fetchSize: 1000 });
    for await (const row of rs) keys.push([row.get('app_id') as string, row.get('key_hash') as string]);
    const rows = await mapLimit(keys, READ_FANOUT, ([appId, keyHash]) => ownerRow(cx, appId, keyHash, false));
    // Index rows left by a move, detach or lost conditional attach that did not finish cleaning
    // up name an endpoint whose endpoint_owner row disagrees: never listed.
    return rows
      .filter((r): r is types.Row => r !== null)
      .map(ownerFrom)
      .filter((o) => o.tenantId === tenantId && o.ownerExternalId === ownerExternalId)
      .sort(compareAttachments);
  });
}

/** Attach, moving from any previous owner; `conditional`: refuse an endpoint owned by another. */
async function attach(
  cx: CassandraContext,
  tenantId: string,
  ownerExternalId: string,
  appId: string,
  keyHash: string,
  conditional: boolean,
): Promise<ConditionalAttachResult> {
  checkAttach(tenantId, ownerExternalId, appId, keyHash);
  return cx.guard(async (): Promise<ConditionalAttachResult> => {
    // Application rows never change, so a LOCAL_QUORUM read decides the tenant for good.
    const app = await readApp(cx, appId, false);
    if (app === null || app.tenantId !== tenantId) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
    const indexRow = [tenantId, ownerExternalId, appId, keyHash];
    let current = await ownerRow(cx, appId, keyHash, true);
    const same = (row: types.Row) => row.get('tenant_id') === tenantId && row.get('owner_external_id') === ownerExternalId;
    // Answers that change nothing leave the index alone, except that a re-attach rewrites its own
    // (legitimate) index row, which repairs one lost to a partial failure.
    if (current !== null && same(current)) {
      await cx.client.execute(cx.q.insertOwnerEndpoint, indexRow, cx.UPSERT);
      return { ok: true, previousOwner: ownerExternalId };
    }
    if (conditional && current !== null) return { ok: false, currentOwner: current.get('owner_external_id') as string };
    // Index row first (see the file comment).
    await cx.client.execute(cx.q.insertOwnerEndpoint, indexRow, cx.UPSERT);
    for (let attempt = 0; attempt < ATTACH_ATTEMPTS; attempt++) {
      if (current !== null && same(current)) return { ok: true, previousOwner: ownerExternalId }; // a concurrent twin won
      if (conditional && current !== null) {
        await dropOwnerIndexRow(cx, tenantId, ownerExternalId, appId, keyHash);
        return { ok: false, currentOwner: current.get('owner_external_id') as string };
      }
      const writeId = types.Uuid.random();
      const attachedAt = new Date();
      const out =
        current === null
          ? await cas(cx, cx.q.insertOwner, [appId, keyHash, tenantId, ownerExternalId, attachedAt, writeId])
          : await cas(cx, cx.q.moveOwner, [tenantId, ownerExternalId, attachedAt, writeId, appId, keyHash, current.get('write_id')]);
      let applied = out !== 'unknown' && out.applied;
      if (!applied) {
        const row = await ownerRow(cx, appId, keyHash, true);
        // A serial read completes any round in flight: our write_id there means it applied.
        applied = out === 'unknown' && row !== null && sameId(row, writeId);
        if (!applied) {
          current = row;
          await new Promise((r) => setTimeout(r, Math.random() * ATTACH_BACKOFF_MS * (attempt + 1)));
          continue;
        }
      }
      if (current !== null) {
        const previous = ownerFrom(current);
        await dropOwnerIndexRow(cx, previous.tenantId, previous.ownerExternalId, appId, keyHash);
      }
      await cx.client.execute(cx.q.insertOwnerEndpoint, indexRow, cx.UPSERT);
      return { ok: true, previousOwner: current === null ? null : (current.get('owner_external_id') as string) };
    }
    throw new LatchkeyError('LK_STORE_UNAVAILABLE', `owner of endpoint ${keyHash} kept changing during attach`);
  });
}

/**
 * Remove an owner's index row for an endpoint, then put it back if a serial read shows that owner
 * holds the endpoint after all (an attach to it raced with the removal: see the file comment).
 * Best effort, called once the endpoint_owner change has applied: a row left behind is filtered
 * out on listing, so a failure here must not turn an applied change into an error.
 */
async function dropOwnerIndexRow(
  cx: CassandraContext,
  tenantId: string,
  ownerExternalId: string,
  appId: string,
  keyHash: string,
): Promise<void> {
  const indexRow = [tenantId, ownerExternalId, appId, keyHash];
  try {
    await cx.client.execute(cx.q.deleteOwnerEndpoint, indexRow, cx.UPSERT);
    const now = await ownerRow(cx, appId, keyHash, true);
    if (now !== null && now.get('tenant_id') === tenantId && now.get('owner_external_id') === ownerExternalId) {
      await cx.client.execute(cx.q.insertOwnerEndpoint, indexRow, cx.UPSERT);
    }
  } catch {
    // See above.
  }
}

async function ownerRow(cx: CassandraContext, appId: string, keyHash: string, serial: boolean): Promise<types.Row | null> {
  return (await cx.client.execute(cx.q.selectOwner, [appId, keyHash], serial ? cx.SERIAL_READ : cx.READ)).first() ?? null;
}

// --- endpoint access tokens (see the file comment) ---

export async function setEndpointAccessToken(
  cx: CassandraContext,
  appId: string,
  keyHash: string,
  tokenHash: Buffer,
  expiresAt: number,
): Promise<void> {
  checkAccessToken(appId, keyHash, tokenHash, expiresAt);
  const hash = Buffer.from(tokenHash);
  return cx.guard(async () => {
    const app = await readApp(cx, appId, false);
    if (app === null) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
    const tenantId = app.tenantId;
    const claim = await claimAccessToken(cx, tenantId, hash, appId, keyHash, expiresAt);
    let current = await serialRow(cx, cx.q.selectTokenCurrent, [appId, keyHash]);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const now = new Date();
      const out =
        current === null
          ? await cas(cx, cx.q.insertTokenCurrent, [appId, keyHash, tenantId, hash, new Date(expiresAt), now, claim])
          : await cas(cx, cx.q.updateTokenCurrent, [tenantId, hash, new Date(expiresAt), now, claim, appId, keyHash, current.get('write_id')]);
      if (out === 'unknown' || !out.applied) {
        const row = await serialRow(cx, cx.q.selectTokenCurrent, [appId, keyHash]);
        // Unknown outcome and our claim is current: applied (by us or a concurrent set of the
        // same token, which writes the same claim).
        if (!(out === 'unknown' && row !== null && sameId(row, claim))) {
          current = row;
          continue;
        }
      }
      // Release the replaced token's claim unless it is the one just made current, or was taken
      // over (its write_id then differs). A claim left behind no longer resolves anyway.
      if (current !== null && !sameId(current, claim)) {
        await cas(cx, cx.q.releaseTokenIdx, [current.get('tenant_id'), current.get('token_hash'), current.get('write_id')]).catch(() => undefined);
      }
      return;
    }
    // Best effort: our claim never became current, so it resolves to nothing; free it for others.
    await cas(cx, cx.q.releaseTokenIdx, [tenantId, hash, claim]).catch(() => undefined);
    throw new LatchkeyError('LK_STORE_UNAVAILABLE', `access token of endpoint ${keyHash} kept changing`);
  });
}

export async function findEndpointByAccessToken(
  cx: CassandraContext,
  tenantId: string,
  tokenHash: Buffer,
  now: number,
): Promise<{ appId: string; keyHash: string } | null> {
  if (!Number.isFinite(now)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'now must be a finite number');
  if (!validId(tenantId) || !validTokenHash(tokenHash)) return null;
  const hash = Buffer.from(tokenHash);
  return cx.guard(async () => {
    const claim = (await cx.client.execute(cx.q.selectTokenIdx, [tenantId, hash], cx.READ)).first();
    if (!claim || now >= ms(claim.get('expires_at'))) return null;
    const appId = claim.get('app_id') as string;
    const keyHash = claim.get('key_hash') as string;
    const current = (await cx.client.execute(cx.q.selectTokenCurrent, [appId, keyHash], cx.READ)).first();
    // Only the endpoint's current claim resolves: a rotated-away or never-completed one does not.
    return current && sameRowId(current, claim) ? { appId, keyHash } : null;
  });
}

/**
 * Claim (tenantId, tokenHash) in endpoint_tokens for the endpoint and return the claim's
 * write_id: a new claim, the endpoint's existing claim of the same token (its expiry updated), or
 * a claim taken over from another endpoint whose token expired or is no longer its current one.
 * LK_CONFLICT if another endpoint's current, unexpired token has this hash.
 */
async function claimAccessToken(
  cx: CassandraContext,
  tenantId: string,
  hash: Buffer,
  appId: string,
  keyHash: string,
  expiresAt: number,
): Promise<types.Uuid> {
  const writeId = types.Uuid.random();
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const holder = await serialRow(cx, cx.q.selectTokenIdx, [tenantId, hash]);
    let claim = writeId;
    let out: CasOutcome;
    if (holder === null) {
      out = await cas(cx, cx.q.claimTokenIdx, [tenantId, hash, appId, keyHash, new Date(expiresAt), writeId]);
    } else if (sameId(holder, writeId)) {
      return writeId; // an earlier attempt with an unknown outcome applied
    } else if (holder.get('app_id') === appId && holder.get('key_hash') === keyHash) {
      claim = holder.get('write_id') as types.Uuid;
      out = await cas(cx, cx.q.refreshTokenIdx, [new Date(expiresAt), tenantId, hash, claim]);
    } else {
      const holderCurrent = (await cx.client.execute(cx.q.selectTokenCurrent, [holder.get('app_id'), holder.get('key_hash')], cx.READ)).first();
      if (Date.now() < ms(holder.get('expires_at')) && holderCurrent && sameRowId(holderCurrent, holder)) {
        throw new LatchkeyError('LK_CONFLICT', 'another endpoint of the tenant holds this access token');
      }
      out = await cas(cx, cx.q.takeTokenIdx, [appId, keyHash, new Date(expiresAt), writeId, tenantId, hash, holder.get('write_id')]);
    }
    // Not applied or unknown: the next serial read shows where the claim stands.
    if (out !== 'unknown' && out.applied) return claim;
  }
  throw new LatchkeyError('LK_STORE_UNAVAILABLE', `access token claim for endpoint ${keyHash} kept changing`);
}
