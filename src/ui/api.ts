/**
 * The admin REST API as the UI calls it: same origin, `Authorization: Bearer <key>`, JSON in and
 * out. Every refusal becomes an ApiError carrying the catalogue code and message the server sent
 * (docs/errors.md), so pages can show exactly that.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** A catalogue code (LK_...), or NETWORK / HTTP_<status> when the answer was not the API's. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Me {
  id: string;
  name: string | null;
  /** null: a root key. */
  tenantId: string | null;
}

export class Api {
  constructor(private readonly key: string) {}

  async call<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    // No key, no header: the server then answers LK_AUTH_REQUIRED rather than LK_AUTH_INVALID.
    const headers: Record<string, string> = this.key ? { authorization: `Bearer ${this.key}` } : {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), cache: 'no-store' });
    } catch (err) {
      throw new ApiError(0, 'NETWORK', `the admin listener did not answer (${(err as Error).message})`);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new ApiError(res.status, `HTTP_${res.status}`, text.slice(0, 200));
      }
    }
    if (!res.ok) {
      const e = parsed as { code?: unknown; message?: unknown } | undefined;
      if (e && typeof e.code === 'string') throw new ApiError(res.status, e.code, typeof e.message === 'string' ? e.message : '');
      throw new ApiError(res.status, `HTTP_${res.status}`, res.statusText);
    }
    return parsed as T;
  }

  get<T = Record<string, unknown>>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }
}

/** Path segment, percent-encoded (ids may hold `.`, key hashes `-` and `_`, owners anything). */
export const seg = (s: string): string => encodeURIComponent(s);
