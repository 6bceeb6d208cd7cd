import { gunzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';

/** `fetch` into a Fastify app without a socket (the site's enrolment and sync calls to its hub). */
export function fetchInto(app: FastifyInstance): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const body = init?.body;
    const res = await app.inject({
      method: (init?.method ?? 'GET') as 'GET',
      url: url.pathname + url.search,
      headers: Object.fromEntries(new Headers(init?.headers).entries()),
      ...(body !== undefined && body !== null ? { payload: body as string | Buffer } : {}),
    });
    const headers = new Headers();
    for (const [k, v] of Object.entries(res.headers))
      if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : String(v));
    // As fetch does: a gzip answer is handed over inflated.
    const gzipped = headers.get('content-encoding') === 'gzip';
    headers.delete('content-encoding');
    headers.delete('content-length');
    const payload = gzipped ? gunzipSync(res.rawPayload) : res.rawPayload;
    const empty = res.statusCode === 204 || res.statusCode === 304;
    return new Response(empty ? null : payload, { status: res.statusCode, headers });
  }) as typeof fetch;
}
