import { z } from 'zod';
import type { RouteSpec } from './routes.ts';

/**
 * OpenAPI 3.1 description of every registered route, generated from the same zod schemas that
 * validate requests, with each route's access rule (`x-permission`). Served at /openapi.json and,
 * as a readable page, at /docs.
 */
export function openApiDocument(
  routes: readonly RouteSpec[],
  info: { title: string; version: string },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const parameters: unknown[] = [];
    for (const [where, schema] of [
      ['path', route.params],
      ['query', route.query],
    ] as const) {
      if (!schema) continue;
      const json = toJson(schema) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, property] of Object.entries(json.properties ?? {})) {
        parameters.push({
          name,
          in: where,
          required: where === 'path' || (json.required ?? []).includes(name),
          schema: property,
        });
      }
    }
    const access = route.access;
    const operation: Record<string, unknown> = {
      summary: route.summary,
      'x-permission':
        'permission' in access ? access.permission : 'public' in access ? 'public' : 'second-factor stage',
      security: 'public' in access ? [] : [{ session: [] }],
      ...(parameters.length ? { parameters } : {}),
      ...(route.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: toJson(route.body) } } } }
        : {}),
      responses: {
        '200': { description: 'Success' },
        '4XX': {
          description: 'Problem (RFC 9457): what was wrong, with field paths for bad input',
          content: { 'application/problem+json': {} },
        },
      },
    };
    paths[path] = { ...(paths[path] ?? {}), [route.method.toLowerCase()]: operation };
  }
  return {
    openapi: '3.1.0',
    info,
    components: { securitySchemes: { session: { type: 'apiKey', in: 'cookie', name: 'hf_session' } } },
    paths,
  };
}

function toJson(schema: z.ZodType): unknown {
  try {
    return withoutUuidPatterns(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }));
  } catch {
    return {};
  }
}

/** `format: uuid` says it; zod's long uuid pattern (with the nil and max UUIDs) only adds noise. */
function withoutUuidPatterns(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUuidPatterns);
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  const isUuid = entries.some(([k, v]) => k === 'format' && v === 'uuid');
  return Object.fromEntries(
    entries.filter(([k]) => !(isUuid && k === 'pattern')).map(([k, v]) => [k, withoutUuidPatterns(v)]),
  );
}

/** A plain HTML page of the routes: no scripts, so it works under the strict CSP. */
export function docsPage(routes: readonly RouteSpec[]): string {
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const rows = routes
    .map((r) => {
      const access =
        'permission' in r.access
          ? r.access.permission
          : 'public' in r.access
            ? 'public'
            : 'second-factor stage';
      return `<tr><td><code>${r.method}</code></td><td><code>${esc(r.url)}</code></td><td>${esc(access)}</td><td>${esc(r.summary)}</td></tr>`;
    })
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Holdfast API</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#111}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}</style></head>
<body><h1>Holdfast API</h1><p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). Errors are <code>application/problem+json</code>; state-changing requests need the <code>X-CSRF-Token</code> header.</p>
<table><thead><tr><th>method</th><th>path</th><th>permission</th><th>what it does</th></tr></thead><tbody>
${rows}
</tbody></table></body></html>`;
}
