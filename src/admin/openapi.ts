/**
 * The OpenAPI 3 document of the admin API, generated from the route table (routes.ts), so the two
 * cannot disagree; test/e2e/admin.test.ts also checks that every documented operation answers.
 */
import { ERRORS } from '../errors.js';
import type { JsonSchema, Route } from './http.js';

function toOpenApi(s: JsonSchema): Record<string, unknown> {
  const out: Record<string, unknown> = { ...s };
  if (s.properties) out.properties = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, toOpenApi(v)]));
  if (s.items) out.items = toOpenApi(s.items);
  if (s.required && s.required.length === 0) delete out.required;
  return out;
}

export function openapiDocument(routes: Route[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const params = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const query = Object.entries(r.query ?? {}).map(([name, schema]) => ({ name, in: 'query', required: false, schema: toOpenApi(schema), description: schema.description }));
    const responses: Record<string, unknown> = {};
    for (const [status, v] of Object.entries(r.responses)) responses[status] = { description: v.description, ...(status === '204' ? {} : { content: { 'application/json': { schema: v.schema ? toOpenApi(v.schema) : { type: 'object' } } } }) };
    if (r.scope !== 'public') {
      for (const status of ['400', '401', '403', '404', '409', '413', '503']) responses[status] = { $ref: `#/components/responses/Error` };
    }
    (paths[r.path] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary,
      operationId: `${r.method.toLowerCase()}${r.path.replace(/[^A-Za-z0-9]+(\w)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      ...(r.scope === 'public' ? { security: [] } : {}),
      'x-latchkey-scope': r.scope,
      ...(params.length || query.length ? { parameters: [...params, ...query] } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: toOpenApi(r.body) } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'latchkey admin API',
      version,
      description: 'JSON over HTTP on the admin listener. Authenticate with `Authorization: Bearer lk_<id>.<secret>`. Errors are `{ code, message }` with a code from docs/errors.md.',
    },
    security: [{ apiKey: [] }],
    paths,
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', bearerFormat: 'lk_<id>.<secret>' } },
      responses: {
        Error: {
          description: 'error from the catalogue',
          content: { 'application/json': { schema: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string', enum: Object.keys(ERRORS) }, message: { type: 'string' } } } } },
        },
      },
    },
  };
}
