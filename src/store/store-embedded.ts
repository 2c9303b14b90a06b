/**
 * EmbeddedStore: the Store on LMDB (lmdb-js), the default backend. See store.ts for the contract.
 *
 * This class only wires: it opens the environment (embedded/lmdb.ts: databases, durability and
 * concurrency rules, the read and write transaction helpers) and hands each Store method to the
 * module of its area under embedded/ (tenancy, credentials, registration, api-keys, ownership,
 * verifiers, notifications, protection), each of which documents its databases and key shapes.
 * Key encoding shared by the areas is embedded/keys.ts.
 */
import type {
  ApiKeyRecord,
  Application,
  BanKind,
  BanRecord,
  BindResult,
  ConditionalAttachResult,
  ControlEntry,
  CredentialsListOptions,
  CredentialsRecord,
  EndpointRecord,
  OwnerAttachment,
  Page,
  PendingNotification,
  ProvisionOptions,
  RegistrationRecord,
  Store,
  Tenant,
  VerifierRecord,
} from './store.js';
import * as apiKeys from './embedded/api-keys.js';
import * as credentials from './embedded/credentials.js';
import { Lmdb } from './embedded/lmdb.js';
import * as notifications from './embedded/notifications.js';
import * as ownership from './embedded/ownership.js';
import * as protection from './embedded/protection.js';
import * as registration from './embedded/registration.js';
import * as tenancy from './embedded/tenancy.js';
import * as verifiers from './embedded/verifiers.js';

export class EmbeddedStore implements Store {
  private constructor(private readonly cx: Lmdb) {}

  /**
   * Open (creating if needed) the store in `dir`. Several processes may open the same directory at
   * once; LMDB coordinates them through `store.lmdb-lock`.
   */
  static async open(dir: string): Promise<EmbeddedStore> {
    return new EmbeddedStore(await Lmdb.open(dir));
  }

  // --- TenancyStore: embedded/tenancy.ts ---

  createTenant(tenant: Tenant): Promise<Tenant> {
    return tenancy.createTenant(this.cx, tenant);
  }

  getTenant(id: string): Promise<Tenant | null> {
    return tenancy.getTenant(this.cx, id);
  }

  listTenants(): Promise<Tenant[]> {
    return tenancy.listTenants(this.cx);
  }

  createApplication(app: Application): Promise<Application> {
    return tenancy.createApplication(this.cx, app);
  }

  getApplication(id: string): Promise<Application | null> {
    return tenancy.getApplication(this.cx, id);
  }

  getApplicationByToken(appToken: string): Promise<Application | null> {
    return tenancy.getApplicationByToken(this.cx, appToken);
  }

  listApplications(tenantId: string): Promise<Application[]> {
    return tenancy.listApplications(this.cx, tenantId);
  }


  // --- CredentialsStore: embedded/credentials.ts ---

  provisionCredentials(appId: string, credentialsId: string, publicKey: Buffer | null, opts?: ProvisionOptions): Promise<CredentialsRecord> {
    return credentials.provisionCredentials(this.cx, appId, credentialsId, publicKey, opts);
  }

  getCredentials(appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
    return credentials.getCredentials(this.cx, appId, credentialsId);
  }

  listCredentials(appId: string, opts: CredentialsListOptions): Promise<Page<CredentialsRecord>> {
    return credentials.listCredentials(this.cx, appId, opts);
  }

  bindCredentials(appId: string, credentialsId: string, endpointId: string, createWithKey?: Buffer): Promise<BindResult> {
    return credentials.bindCredentials(this.cx, appId, credentialsId, endpointId, createWithKey);
  }

  revokeCredentials(appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
    return credentials.revokeCredentials(this.cx, appId, credentialsId);
  }


  // --- RegistrationStore: embedded/registration.ts ---

  provisionRegistration(appId: string, credentialsId: string, serverProfileBody: string | null): Promise<RegistrationRecord> {
    return registration.provisionRegistration(this.cx, appId, credentialsId, serverProfileBody);
  }

  getRegistration(appId: string, credentialsId: string): Promise<RegistrationRecord | null> {
    return registration.getRegistration(this.cx, appId, credentialsId);
  }

  getEndpoint(appId: string, keyHash: string): Promise<EndpointRecord | null> {
    return registration.getEndpoint(this.cx, appId, keyHash);
  }

  saveEndpoint(endpoint: EndpointRecord): Promise<EndpointRecord> {
    return registration.saveEndpoint(this.cx, endpoint);
  }

  listEndpoints(appId: string, limit: number, cursor?: string | null): Promise<Page<EndpointRecord>> {
    return registration.listEndpoints(this.cx, appId, limit, cursor);
  }


  // --- ApiKeyStore: embedded/api-keys.ts ---

  createApiKey(apiKey: ApiKeyRecord): Promise<ApiKeyRecord> {
    return apiKeys.createApiKey(this.cx, apiKey);
  }

  getApiKey(id: string): Promise<ApiKeyRecord | null> {
    return apiKeys.getApiKey(this.cx, id);
  }

  listApiKeys(tenantId?: string | null): Promise<ApiKeyRecord[]> {
    return apiKeys.listApiKeys(this.cx, tenantId);
  }

  deleteApiKey(id: string): Promise<boolean> {
    return apiKeys.deleteApiKey(this.cx, id);
  }

  countApiKeys(): Promise<number> {
    return apiKeys.countApiKeys(this.cx);
  }


  // --- OwnershipStore: embedded/ownership.ts ---

  attachEndpointToOwner(tenantId: string, ownerExternalId: string, appId: string, keyHash: string): Promise<{ previousOwner: string | null }> {
    return ownership.attachEndpointToOwner(this.cx, tenantId, ownerExternalId, appId, keyHash);
  }

  attachEndpointIfUnownedOrSameOwner(tenantId: string, ownerExternalId: string, appId: string, keyHash: string): Promise<ConditionalAttachResult> {
    return ownership.attachEndpointIfUnownedOrSameOwner(this.cx, tenantId, ownerExternalId, appId, keyHash);
  }

  getEndpointOwner(appId: string, keyHash: string): Promise<OwnerAttachment | null> {
    return ownership.getEndpointOwner(this.cx, appId, keyHash);
  }

  detachEndpoint(appId: string, keyHash: string): Promise<string | null> {
    return ownership.detachEndpoint(this.cx, appId, keyHash);
  }

  listOwnerEndpoints(tenantId: string, ownerExternalId: string): Promise<OwnerAttachment[]> {
    return ownership.listOwnerEndpoints(this.cx, tenantId, ownerExternalId);
  }

  setEventClasses(appId: string, keyHash: string, classes: string[]): Promise<void> {
    return ownership.setEventClasses(this.cx, appId, keyHash, classes);
  }

  getEventClasses(appId: string, keyHash: string): Promise<string[] | null> {
    return ownership.getEventClasses(this.cx, appId, keyHash);
  }

  setEndpointAccessToken(appId: string, keyHash: string, tokenHash: Buffer, expiresAt: number): Promise<void> {
    return ownership.setEndpointAccessToken(this.cx, appId, keyHash, tokenHash, expiresAt);
  }

  findEndpointByAccessToken(tenantId: string, tokenHash: Buffer, now: number): Promise<{ appId: string; keyHash: string } | null> {
    return ownership.findEndpointByAccessToken(this.cx, tenantId, tokenHash, now);
  }


  // --- VerifierStore: embedded/verifiers.ts ---

  createVerifier(rec: VerifierRecord): Promise<VerifierRecord> {
    return verifiers.createVerifier(this.cx, rec);
  }

  getVerifier(appId: string, verifierToken: string): Promise<VerifierRecord | null> {
    return verifiers.getVerifier(this.cx, appId, verifierToken);
  }

  listVerifiers(appId: string): Promise<VerifierRecord[]> {
    return verifiers.listVerifiers(this.cx, appId);
  }

  updateVerifier(rec: VerifierRecord): Promise<VerifierRecord> {
    return verifiers.updateVerifier(this.cx, rec);
  }

  deleteVerifier(appId: string, verifierToken: string): Promise<boolean> {
    return verifiers.deleteVerifier(this.cx, appId, verifierToken);
  }

  setDefaultVerifier(appId: string, verifierToken: string | null): Promise<void> {
    return verifiers.setDefaultVerifier(this.cx, appId, verifierToken);
  }

  getDefaultVerifier(appId: string): Promise<string | null> {
    return verifiers.getDefaultVerifier(this.cx, appId);
  }


  // --- NotificationStore: embedded/notifications.ts ---

  enqueueNotification(appId: string, keyHash: string, payload: Buffer, max: number): Promise<{ seq: number; dropped: number }> {
    return notifications.enqueueNotification(this.cx, appId, keyHash, payload, max);
  }

  listNotifications(appId: string, keyHash: string, limit: number): Promise<PendingNotification[]> {
    return notifications.listNotifications(this.cx, appId, keyHash, limit);
  }

  ackNotifications(appId: string, keyHash: string, uptoSeq: number): Promise<void> {
    return notifications.ackNotifications(this.cx, appId, keyHash, uptoSeq);
  }


  // --- ProtectionStore: embedded/protection.ts ---

  putBan(ban: BanRecord): Promise<BanRecord> {
    return protection.putBan(this.cx, ban);
  }

  deleteBan(kind: BanKind, value: string): Promise<boolean> {
    return protection.deleteBan(this.cx, kind, value);
  }

  listBans(now: number): Promise<BanRecord[]> {
    return protection.listBans(this.cx, now);
  }

  appendControl(entry: ControlEntry): Promise<void> {
    return protection.appendControl(this.cx, entry);
  }

  listControlSince(sinceMs: number, limit: number): Promise<ControlEntry[]> {
    return protection.listControlSince(this.cx, sinceMs, limit);
  }

  close(): Promise<void> {
    return this.cx.close();
  }
}
