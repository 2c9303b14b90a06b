/**
 * Application lookups on the handshake path (by app token) with a small in-process cache: every
 * CONNECT names an application and the set of applications is small and changes rarely. Entries
 * live `ttlMs` (unknown tokens `negativeTtlMs`, so a flood of bad tokens costs one store read per
 * token per interval, and an application created by the CLI in another process is seen within that
 * interval). Changes made through this process call invalidate().
 */
import avro from 'avsc';
import { LatchkeyError } from '../errors.js';
import type { Application, Store } from '../store/store.js';

interface Entry {
  app: Application | null;
  expires: number;
}

export class ApplicationDirectory {
  private readonly byToken = new Map<string, Entry>();
  private readonly profileTypes = new Map<string, { schema: string; type: avro.Type }>();

  constructor(
    private readonly store: Store,
    private readonly ttlMs: number,
    private readonly negativeTtlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  /** The cached answer for `token` if it is fresh (null = known unknown), undefined on a miss. */
  peek(token: string): Application | null | undefined {
    const hit = this.byToken.get(token);
    return hit && hit.expires > Date.now() ? hit.app : undefined;
  }

  async byAppToken(token: string): Promise<Application | null> {
    const now = Date.now();
    const hit = this.byToken.get(token);
    if (hit && hit.expires > now) return hit.app;
    let app: Application | null;
    try {
      app = await this.store.getApplicationByToken(token);
    } catch (err) {
      throw new LatchkeyError('LK_SERVER_UNAVAILABLE', `application lookup: ${(err as Error).message}`, { cause: err });
    }
    if (this.byToken.size >= this.maxEntries) this.byToken.clear();
    this.byToken.set(token, { app, expires: now + (app ? this.ttlMs : this.negativeTtlMs) });
    return app;
  }

  invalidate(token?: string): void {
    if (token === undefined) this.byToken.clear();
    else this.byToken.delete(token);
  }

  /** Parsed Avro type of the application's profile schema, or null for opaque profiles. */
  profileType(app: Application): avro.Type | null {
    if (!app.profileSchema) return null;
    const cached = this.profileTypes.get(app.id);
    if (cached && cached.schema === app.profileSchema) return cached.type;
    const type = parseProfileSchema(app.profileSchema);
    this.profileTypes.set(app.id, { schema: app.profileSchema, type });
    return type;
  }
}

/** Parse an application profile schema (Avro JSON text). LK_BAD_PROFILE_SCHEMA when invalid. */
export function parseProfileSchema(schema: string): avro.Type {
  try {
    return avro.Type.forSchema(JSON.parse(schema) as avro.Schema, { wrapUnions: false });
  } catch (err) {
    throw new LatchkeyError('LK_BAD_PROFILE_SCHEMA', (err as Error).message);
  }
}
