/**
 * A small typed client of the admin REST API (src/admin/routes.ts) for `latchkey admin ...`.
 *
 * - Base URL: `--admin-url` or LATCHKEY_ADMIN_URL (default http://127.0.0.1:9444); API key:
 *   LATCHKEY_API_KEY or `--api-key` (the environment is preferred: flags show up in `ps`).
 * - Every request is bounded by a timeout (AbortSignal.timeout).
 * - Error answers `{ code, message }` with a catalogue code become a LatchkeyError with that code;
 *   an unreachable server, a timeout or an answer that is not the admin API's become
 *   LK_ADMIN_UNREACHABLE naming the URL.
 */
import { ERRORS, LatchkeyError, isErrorCode } from '../errors.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9444';
export const DEFAULT_ADMIN_TIMEOUT_MS = 15_000;

export interface TenantView {
  id: string;
  name: string;
  createdAt: number;
}

export interface ApplicationView {
  id: string;
  tenantId: string;
  name: string;
  appToken: string;
  credentialsService: string;
  profileSchema: unknown;
  createdAt: number;
}

export interface CredentialsView {
  appId: string;
  credentialsId: string;
  status: 'AVAILABLE' | 'IN_USE' | 'REVOKED';
  endpointId: string | null;
  /** SPKI PEM, or null when provisioned without a key (plugins). */
  publicKey: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface ProvisionView {
  credentials: CredentialsView;
  registration: { credentialsId: string; serverProfile: unknown } | null;
}

export interface RegistrationView {
  credentialsId: string;
  serverProfile: unknown;
  updatedAt: number;
}

export interface EndpointView {
  appId: string;
  keyHash: string;
  credentialsId: string;
  /** Profile body, base64. */
  profile: string;
  /** SHA-256 of the profile body, hex. */
  profileHash: string;
  serverProfile: unknown;
  connected: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface SessionView {
  sessionId: string;
  keyHash: string | null;
  establishedAt: number | null;
  lastSeen: number;
  keepAliveSec: number;
}

export interface VerifierView {
  verifierToken: string;
  appId: string;
  pluginTypeName: string;
  name: string;
  description: string;
  jsonConfiguration: unknown;
  isDefault: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface ServerKeyView {
  id: string;
  status: 'active' | 'valid' | 'retired';
  createdAt: number;
  publicKey: string;
}

export interface ApiKeyView {
  id: string;
  tenantId: string | null;
  name: string;
  createdAt: number;
}

export interface NewApiKeyView extends ApiKeyView {
  /** `lk_<id>.<secret>`: shown once, only its hash is stored. */
  token: string;
}

export interface BanView {
  kind: 'keyHash' | 'ip' | 'app';
  /** Canonical: an IP ban of one address has no prefix, a CIDR is its network address. */
  value: string;
  reason: string;
  createdAt: number;
  /** null: until lifted. */
  expiresAt: number | null;
  /** The API key id that set it, or flapping / failed-handshakes for automatic bans. */
  createdBy: string;
}

export interface Items<T> {
  items: T[];
}

export interface Page<T> extends Items<T> {
  next: string | null;
}

export interface AdminClientOptions {
  /** Base URL of the admin listener, e.g. http://127.0.0.1:9444 (a path prefix is kept). */
  url: string;
  /** `lk_<id>.<secret>`. */
  apiKey: string;
  timeoutMs?: number;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

const seg = encodeURIComponent;

/** The detail part of a catalogue error message (`<catalogue message>: <detail>`), or undefined. */
function detailOf(code: keyof typeof ERRORS, message: unknown): string | undefined {
  if (typeof message !== 'string' || message === '') return undefined;
  const base = ERRORS[code].message;
  if (message === base) return undefined;
  return message.startsWith(`${base}: `) ? message.slice(base.length + 2) : message;
}

export class AdminClient {
  readonly url: string;
  private readonly apiKey: string;
  private readonly timeoutMs: number;

  constructor(o: AdminClientOptions) {
    let u: URL;
    try {
      u = new URL(o.url);
    } catch {
      throw new LatchkeyError('LK_CLI_USAGE', `admin URL ${JSON.stringify(o.url)} is not a URL (e.g. ${DEFAULT_ADMIN_URL})`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new LatchkeyError('LK_CLI_USAGE', `admin URL ${o.url} must be http:// or https://`);
    if (u.username || u.password || u.search || u.hash) throw new LatchkeyError('LK_CLI_USAGE', `admin URL ${o.url} must be scheme://host:port[/prefix] (no credentials, query or fragment)`);
    this.url = u.toString().replace(/\/+$/, '');
    if (!o.apiKey) throw new LatchkeyError('LK_AUTH_REQUIRED', 'set LATCHKEY_API_KEY (or pass --api-key)');
    this.apiKey = o.apiKey;
    this.timeoutMs = o.timeoutMs ?? DEFAULT_ADMIN_TIMEOUT_MS;
  }

  /** One request; resolves to the parsed JSON answer (undefined for 204). */
  async request<T>(method: Method, path: string, opts: { body?: unknown; query?: Record<string, string | undefined> } = {}): Promise<T> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) qs.set(k, v);
    const search = qs.toString();
    const target = `${this.url}${path}${search ? `?${search}` : ''}`;
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}`, accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      res = await fetch(target, {
        method,
        headers,
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'error',
      });
      text = await res.text();
    } catch (err) {
      throw this.unreachable(err);
    }
    let parsed: unknown = undefined;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (res.ok) {
      if (res.status === 204) return undefined as T;
      if (parsed === undefined) throw new LatchkeyError('LK_ADMIN_UNREACHABLE', `${method} ${target}: HTTP ${res.status} answer is not JSON (is ${this.url} the latchkey admin listener?)`);
      return parsed as T;
    }
    const e = parsed as { code?: unknown; message?: unknown } | undefined;
    if (e && typeof e === 'object' && isErrorCode(e.code)) throw new LatchkeyError(e.code, detailOf(e.code, e.message));
    throw new LatchkeyError('LK_ADMIN_UNREACHABLE', `${method} ${target}: HTTP ${res.status} without a latchkey error (is ${this.url} the latchkey admin listener?)`);
  }

  private unreachable(err: unknown): LatchkeyError {
    const name = (err as { name?: string })?.name;
    if (name === 'TimeoutError' || name === 'AbortError') {
      return new LatchkeyError('LK_ADMIN_UNREACHABLE', `admin API at ${this.url} did not answer within ${this.timeoutMs} ms`, { cause: err });
    }
    // fetch() reports network failures as TypeError('fetch failed') with the system error as cause.
    const cause = (err as { cause?: { code?: unknown; message?: unknown } })?.cause;
    let why = typeof cause?.message === 'string' ? cause.message : typeof cause?.code === 'string' ? cause.code : (err as Error)?.message ?? String(err);
    if (why === 'bad port') why = `fetch refuses port ${new URL(this.url).port}, a "bad port" of the Fetch standard`;
    return new LatchkeyError('LK_ADMIN_UNREACHABLE', `cannot reach the admin API at ${this.url} (${why}); set LATCHKEY_ADMIN_URL or --admin-url`, { cause: err });
  }

  // --- tenants ---
  createTenant(b: { name: string; id?: string }): Promise<TenantView> {
    return this.request('POST', '/admin/v1/tenants', { body: b });
  }
  listTenants(): Promise<Items<TenantView>> {
    return this.request('GET', '/admin/v1/tenants');
  }
  getTenant(id: string): Promise<TenantView> {
    return this.request('GET', `/admin/v1/tenants/${seg(id)}`);
  }

  // --- applications ---
  createApplication(tenantId: string, b: { name: string; id?: string; appToken?: string; credentialsService?: string; profileSchema?: object | null }): Promise<ApplicationView> {
    return this.request('POST', `/admin/v1/tenants/${seg(tenantId)}/applications`, { body: b });
  }
  listApplications(tenantId: string): Promise<Items<ApplicationView>> {
    return this.request('GET', `/admin/v1/tenants/${seg(tenantId)}/applications`);
  }
  getApplication(appId: string): Promise<ApplicationView> {
    return this.request('GET', `/admin/v1/applications/${seg(appId)}`);
  }

  // --- credentials and registrations ---
  provisionCredentials(appId: string, b: { publicKey: string; serverProfile?: object | null }): Promise<ProvisionView> {
    return this.request('POST', `/admin/v1/applications/${seg(appId)}/credentials`, { body: b });
  }
  listCredentials(appId: string, page: { limit?: string; cursor?: string; status?: string } = {}): Promise<Page<CredentialsView>> {
    return this.request('GET', `/admin/v1/applications/${seg(appId)}/credentials`, { query: { limit: page.limit, cursor: page.cursor, status: page.status } });
  }
  credentialsStatus(appId: string, credentialsId: string): Promise<CredentialsView> {
    return this.request('GET', `/admin/v1/applications/${seg(appId)}/credentials/${seg(credentialsId)}`);
  }
  revokeCredentials(appId: string, credentialsId: string): Promise<CredentialsView> {
    return this.request('POST', `/admin/v1/applications/${seg(appId)}/credentials/${seg(credentialsId)}/revoke`);
  }
  notifyRevoked(appId: string, credentialsId: string): Promise<void> {
    return this.request('POST', `/admin/v1/applications/${seg(appId)}/credentials/${seg(credentialsId)}/notify-revoked`);
  }
  provisionRegistration(appId: string, credentialsId: string, serverProfile: object | null): Promise<RegistrationView> {
    return this.request('PUT', `/admin/v1/applications/${seg(appId)}/registrations/${seg(credentialsId)}`, { body: { serverProfile } });
  }

  // --- endpoints and sessions ---
  listEndpoints(appId: string, page: { limit?: string; cursor?: string } = {}): Promise<Page<EndpointView>> {
    return this.request('GET', `/admin/v1/applications/${seg(appId)}/endpoints`, { query: { limit: page.limit, cursor: page.cursor } });
  }
  getEndpoint(appId: string, keyHash: string): Promise<EndpointView> {
    return this.request('GET', `/admin/v1/applications/${seg(appId)}/endpoints/${seg(keyHash)}`);
  }
  listSessions(appId: string): Promise<Items<SessionView>> {
    return this.request('GET', `/admin/v1/applications/${seg(appId)}/sessions`);
  }
  kickSession(appId: string, keyHash: string): Promise<void> {
    return this.request('DELETE', `/admin/v1/applications/${seg(appId)}/sessions/${seg(keyHash)}`);
  }

  // --- owner verifiers ---
  listVerifiers(appId: string): Promise<Items<VerifierView> & { defaultVerifierToken: string | null }> {
    return this.request('GET', `/admin/v1/applications/${seg(appId)}/verifiers`);
  }
  createVerifier(appId: string, b: { pluginTypeName: string; name: string; jsonConfiguration: object; isDefault: boolean }): Promise<VerifierView> {
    return this.request('POST', `/admin/v1/applications/${seg(appId)}/verifiers`, { body: b });
  }
  deleteVerifier(appId: string, verifierToken: string): Promise<void> {
    return this.request('DELETE', `/admin/v1/applications/${seg(appId)}/verifiers/${seg(verifierToken)}`);
  }

  // --- server keys ---
  listServerKeys(): Promise<Items<ServerKeyView>> {
    return this.request('GET', '/admin/v1/server-keys');
  }
  addServerKey(): Promise<ServerKeyView> {
    return this.request('POST', '/admin/v1/server-keys');
  }
  retireServerKey(id: string): Promise<ServerKeyView> {
    return this.request('POST', `/admin/v1/server-keys/${seg(id)}/retire`);
  }

  // --- this node (bootstrap) ---

  nodeInfo(): Promise<Record<string, unknown>> {
    return this.request('GET', '/admin/v1/node');
  }

  drainNode(): Promise<{ redirected: number }> {
    return this.request('POST', '/admin/v1/node/drain');
  }

  // --- bans (root keys) ---
  listBans(): Promise<Items<BanView>> {
    return this.request('GET', '/admin/v1/bans');
  }
  addBan(b: { kind: string; value: string; reason: string; expiresInSec?: number; expiresAt?: number }): Promise<BanView> {
    return this.request('POST', '/admin/v1/bans', { body: b });
  }
  /** The value is percent-encoded here: a CIDR's slash travels as %2F. */
  removeBan(kind: string, value: string): Promise<void> {
    return this.request('DELETE', `/admin/v1/bans/${seg(kind)}/${seg(value)}`);
  }

  // --- API keys ---
  listApiKeys(): Promise<Items<ApiKeyView>> {
    return this.request('GET', '/admin/v1/api-keys');
  }
  createApiKey(b: { name: string; tenantId?: string }): Promise<NewApiKeyView> {
    return this.request('POST', '/admin/v1/api-keys', { body: b });
  }
  deleteApiKey(id: string): Promise<void> {
    return this.request('DELETE', `/admin/v1/api-keys/${seg(id)}`);
  }
}
