/**
 * Row mappers of the Cassandra store: a driver row to the record store.ts defines, and the column
 * value conversions they share (timestamps, blobs, bigints). Rows never leave the store: every
 * answer is one of these fresh records.
 */
import type { types } from 'cassandra-driver';
import type {
  ApiKeyRecord,
  Application,
  BanKind,
  BanRecord,
  ControlEntry,
  ControlType,
  CredentialStatus,
  CredentialsRecord,
  EndpointRecord,
  OwnerAttachment,
  RegistrationRecord,
  Tenant,
  VerifierRecord,
} from '../store.js';

export function ms(value: unknown): number {
  return value instanceof Date ? value.getTime() : 0;
}

export function bytes(value: unknown): Buffer | null {
  return value == null ? null : Buffer.from(value as Buffer);
}

/** A bigint column (types.Long) as a number; seqs stay far below 2^53. */
export function long(value: unknown): number | null {
  if (value == null) return null;
  return typeof value === 'number' ? value : (value as types.Long).toNumber();
}

export function tenantFrom(row: types.Row): Tenant {
  return { id: row.get('id') as string, name: row.get('name') as string, createdAt: ms(row.get('created_at')) };
}

export function appFrom(row: types.Row): Application {
  return {
    id: row.get('id') as string,
    tenantId: row.get('tenant_id') as string,
    name: row.get('name') as string,
    appToken: row.get('app_token') as string,
    credentialsService: row.get('credentials_service') as string,
    profileSchema: (row.get('profile_schema') as string | null) ?? null,
    createdAt: ms(row.get('created_at')),
  };
}

export function credsFrom(row: types.Row): CredentialsRecord {
  return {
    appId: row.get('app_id') as string,
    credentialsId: row.get('credentials_id') as string,
    publicKey: bytes(row.get('public_key')),
    status: row.get('status') as CredentialStatus,
    endpointId: (row.get('endpoint_id') as string | null) ?? null,
    createdAt: ms(row.get('created_at')),
    updatedAt: ms(row.get('updated_at')),
  };
}

export function regFrom(row: types.Row): RegistrationRecord {
  return {
    appId: row.get('app_id') as string,
    credentialsId: row.get('credentials_id') as string,
    serverProfileBody: (row.get('server_profile_body') as string | null) ?? null,
    createdAt: ms(row.get('created_at')),
    updatedAt: ms(row.get('updated_at')),
  };
}

export function apiKeyFrom(row: types.Row): ApiKeyRecord {
  return {
    id: row.get('id') as string,
    tenantId: (row.get('tenant_id') as string | null) ?? null,
    secretHash: bytes(row.get('secret_hash')) ?? Buffer.alloc(0),
    name: row.get('name') as string,
    createdAt: ms(row.get('created_at')),
  };
}

export function ownerFrom(row: types.Row): OwnerAttachment {
  return {
    tenantId: row.get('tenant_id') as string,
    ownerExternalId: row.get('owner_external_id') as string,
    appId: row.get('app_id') as string,
    keyHash: row.get('key_hash') as string,
    attachedAt: ms(row.get('attached_at')),
  };
}

export function verifierFrom(row: types.Row): VerifierRecord {
  return {
    appId: row.get('app_id') as string,
    verifierToken: row.get('verifier_token') as string,
    pluginTypeName: row.get('plugin_type_name') as string,
    name: (row.get('name') as string | null) ?? '',
    description: (row.get('description') as string | null) ?? '',
    jsonConfiguration: (row.get('json_configuration') as string | null) ?? '',
    createdAt: ms(row.get('created_at')),
    updatedAt: ms(row.get('updated_at')),
  };
}

export function endpointFrom(row: types.Row): EndpointRecord {
  return {
    appId: row.get('app_id') as string,
    keyHash: row.get('key_hash') as string,
    credentialsId: row.get('credentials_id') as string,
    publicKey: bytes(row.get('public_key')) ?? Buffer.alloc(0),
    profileBody: bytes(row.get('profile_body')) ?? Buffer.alloc(0),
    profileHash: bytes(row.get('profile_hash')) ?? Buffer.alloc(0),
    serverProfileBody: (row.get('server_profile_body') as string | null) ?? null,
    createdAt: ms(row.get('created_at')),
    updatedAt: ms(row.get('updated_at')),
  };
}

export function banFrom(row: types.Row): BanRecord {
  const expiresAt = row.get('expires_at') as Date | null;
  return {
    kind: row.get('kind') as BanKind,
    value: row.get('ban_value') as string,
    reason: (row.get('reason') as string | null) ?? '',
    createdAt: ms(row.get('created_at')),
    expiresAt: expiresAt == null ? null : ms(expiresAt),
    createdBy: (row.get('created_by') as string | null) ?? '',
  };
}

export function controlFrom(row: types.Row): ControlEntry {
  return {
    id: row.get('id') as string,
    type: row.get('type') as ControlType,
    appId: row.get('app_id') as string,
    keyHash: row.get('key_hash') as string,
    at: long(row.get('at')) ?? 0,
  };
}
