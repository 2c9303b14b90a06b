/** Copies of registration and endpoint records (store.ts RegistrationStore) shared by every Store backend. */
import type { EndpointRecord, RegistrationRecord } from '../store.js';

export function copyRegistration(r: RegistrationRecord): RegistrationRecord {
  return {
    appId: r.appId,
    credentialsId: r.credentialsId,
    serverProfileBody: r.serverProfileBody ?? null,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

export function copyEndpoint(e: EndpointRecord): EndpointRecord {
  return {
    appId: e.appId,
    keyHash: e.keyHash,
    credentialsId: e.credentialsId,
    publicKey: Buffer.from(e.publicKey),
    profileBody: Buffer.from(e.profileBody),
    profileHash: Buffer.from(e.profileHash),
    serverProfileBody: e.serverProfileBody ?? null,
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
  };
}
