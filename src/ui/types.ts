/** The admin API's answers as the UI reads them (src/admin/routes.ts `views`). */
export interface Tenant { id: string; name: string; createdAt: number }
export interface Application {
  id: string; tenantId: string; name: string; appToken: string; credentialsService: string; profileSchema: unknown; createdAt: number;
}
export interface Credentials {
  appId: string; credentialsId: string; status: 'AVAILABLE' | 'IN_USE' | 'REVOKED'; endpointId: string | null; publicKey: string | null; createdAt: number; updatedAt: number;
}
export interface Endpoint {
  appId: string; keyHash: string; credentialsId: string; profile: string; profileHash: string; serverProfile: unknown; connected: boolean; createdAt: number; updatedAt: number;
}
export interface LiveSession { sessionId: string; keyHash: string | null; establishedAt: number | null; lastSeen: number; keepAliveSec: number; process?: number }
export interface VerifierType { name: string; description: string; configSchema: { fields?: Array<{ name: string; type: unknown; doc?: string; default?: unknown }>; doc?: string }; custom: boolean }
export interface Verifier {
  verifierToken: string; appId: string; pluginTypeName: string; name: string; description: string; jsonConfiguration: unknown; isDefault: boolean; createdAt: number; updatedAt: number;
}
export interface ServerKey { id: string; status: string; createdAt: number; publicKey: string }
export interface OwnerEndpoint { appId: string; keyHash: string; attachedAt: number }
export interface Items<T> { items: T[]; next?: string | null }
export interface SessionLocation { keyHash: string; node: string; process: number | null; sessionId: string; establishedAt: number }
export interface Propagation { endedHere: number | boolean; log: string; bus: string }
