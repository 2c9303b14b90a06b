/**
 * Endpoint registration and profile sync (Kaa's profile sync semantics):
 * - A SyncRequest with a ProfileSyncRequest registers the endpoint (first time) or replaces its
 *   profile. The body must match the application's Avro profile schema when one is declared
 *   (LK_PROFILE_SCHEMA_MISMATCH otherwise, status FAILURE, nothing stored). At first registration a
 *   server-side profile provisioned against the credentials is copied into the endpoint profile.
 *   responseStatus is DELTA when the stored profile changed, NO_DELTA when it was identical.
 * - A SyncRequest without a profile from an endpoint that is not registered gets PROFILE_RESYNC
 *   (errorCode LK_PROFILE_REQUIRED): the endpoint must send its full profile.
 * - A metadata profileHash that differs from the stored SHA-256 of the profile gets PROFILE_RESYNC.
 */
import { sha256 } from '../crypto/keys.js';
import { emptySyncResponse, type SyncRequest, type SyncResponse } from '../protocol/schemas.js';
import type { ApplicationDirectory } from '../tenancy/applications.js';
import type { Application, EndpointRecord, Store } from '../store/store.js';

export interface EndpointIdentity {
  app: Application;
  keyHash: string;
  publicKey: Buffer;
}

export class RegistrationService {
  constructor(
    private readonly store: Store,
    private readonly apps: ApplicationDirectory,
  ) {}

  /** Registered endpoint record, or null. */
  getEndpoint(id: EndpointIdentity): Promise<EndpointRecord | null> {
    return this.store.getEndpoint(id.app.id, id.keyHash);
  }

  /** Validate a profile body against the application's profile schema. */
  profileMatches(app: Application, body: Buffer): boolean {
    const type = this.apps.profileType(app);
    if (!type) return true;
    try {
      const res = type.decode(body, 0);
      return res.offset === body.length;
    } catch {
      return false;
    }
  }

  /**
   * Profile part of one SyncRequest. `known` is the endpoint record the session holds (or null);
   * returns the response and the endpoint record after the request.
   */
  async syncProfile(id: EndpointIdentity, req: SyncRequest, known: EndpointRecord | null): Promise<{ response: SyncResponse; endpoint: EndpointRecord | null }> {
    const res = emptySyncResponse(req.requestId);
    const profile = req.profileSyncRequest;
    let endpoint = known ?? (await this.getEndpoint(id));
    if (profile) {
      if (!this.profileMatches(id.app, profile.profileBody)) {
        res.status = 'FAILURE';
        res.errorCode = 'LK_PROFILE_SCHEMA_MISMATCH';
        return { response: res, endpoint };
      }
      const hash = sha256(profile.profileBody);
      if (endpoint && endpoint.profileHash.equals(hash)) {
        res.profileSyncResponse = { responseStatus: 'NO_DELTA' };
        return { response: res, endpoint };
      }
      const now = Date.now();
      let serverProfileBody = endpoint?.serverProfileBody ?? null;
      if (!endpoint) {
        const reg = await this.store.getRegistration(id.app.id, id.keyHash);
        serverProfileBody = reg?.serverProfileBody ?? null;
      }
      endpoint = await this.store.saveEndpoint({
        appId: id.app.id,
        keyHash: id.keyHash,
        credentialsId: id.keyHash,
        publicKey: id.publicKey,
        profileBody: Buffer.from(profile.profileBody),
        profileHash: hash,
        serverProfileBody,
        createdAt: endpoint?.createdAt ?? now,
        updatedAt: now,
      });
      res.profileSyncResponse = { responseStatus: 'DELTA' };
      return { response: res, endpoint };
    }
    if (!endpoint) {
      res.status = 'PROFILE_RESYNC';
      res.errorCode = 'LK_PROFILE_REQUIRED';
      return { response: res, endpoint };
    }
    const claimed = req.syncRequestMetaData?.profileHash;
    if (claimed && !endpoint.profileHash.equals(claimed)) {
      res.status = 'PROFILE_RESYNC';
      res.profileSyncResponse = { responseStatus: 'RESYNC' };
    }
    return { response: res, endpoint };
  }
}
