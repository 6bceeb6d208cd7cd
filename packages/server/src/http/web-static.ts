import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { publicRoute, type RouteSpec } from './routes.ts';

/** packages/web/dist, where `npm run build -w packages/web` (vite build) writes the browser app. */
export const DEFAULT_WEB_DIST = resolve(dirname(fileURLToPath(import.meta.url)), '../../../web/dist');

/**
 * Paths the server owns: never answered by the browser app, so an unknown API path stays a 404
 * (problem+json, or an OperationOutcome under /fhir).
 */
const SERVER_PATHS = /^\/(api|fhir|health|metrics|openapi\.json|docs)(\/|$)/;

/** createApp's routerOptions.maxParamLength. */
const MAX_PARAM_LENGTH = 200;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/**
 * Serves the browser app from one directory on the API's own port, so one process and one origin
 * give the whole product (and the session cookie, SameSite=Strict, and the CSRF header just work).
 * - /assets/* are content-hashed by the build: cached for a year as immutable.
 * - any other GET that is not an API path is a client route: index.html, revalidated every time
 *   (no-cache), so a new build is picked up at the next load.
 * The security headers (CSP included) come from the app's onSend hook like every other response.
 */
export function webAppRoute(distDir: string = DEFAULT_WEB_DIST): RouteSpec {
  const root = resolve(distDir);
  const serve = webAppHandler(root);
  return publicRoute({
    method: 'GET',
    url: '/*',
    summary:
      'The browser app: index.html for its screens (any path that is not an API path), and its built files',
    access: { public: true },
    async handler({ request, reply }) {
      return serve(request, reply);
    },
  });
}

/** For a bare Fastify instance (tests): the same handler without the route registry. */
export function registerWebStatic(app: FastifyInstance, distDir: string = DEFAULT_WEB_DIST): void {
  const serve = webAppHandler(resolve(distDir));
  app.route({ method: 'GET', url: '/*', handler: serve });
}

function webAppHandler(root: string) {
  const sendFile = async (reply: FastifyReply, file: string, cache: string) => {
    const body = await readFile(file);
    return reply
      .type(TYPES[extname(file)] ?? 'application/octet-stream')
      .header('cache-control', cache)
      .send(body);
  };
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const pathname = decodeSafely(request.url.split('?')[0] ?? '/');
    if (pathname === null) return reply.callNotFound();
    if (SERVER_PATHS.test(pathname)) {
      // An API path no route matched. Fastify matches no route either when a path parameter is over
      // its length limit, and would answer 414; this catch-all must not turn that into a 404.
      if (pathname.split('/').some((segment) => segment.length > MAX_PARAM_LENGTH))
        throw Object.assign(new Error('a part of the path is too long'), {
          code: 'FST_ERR_MAX_PARAM_LENGTH',
          statusCode: 414,
        });
      return reply.callNotFound();
    }
    // A file of the build (hashed asset, favicon): only inside dist, never above it.
    if (extname(pathname) !== '') {
      const file = resolve(root, `.${pathname}`);
      if (!file.startsWith(root + sep) || !(await isFile(file))) return reply.callNotFound();
      const immutable = pathname.startsWith('/assets/');
      return sendFile(reply, file, immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    }
    const index = join(root, 'index.html');
    if (!(await isFile(index))) {
      // A page, not an error: the API works without the browser app; this says how to get it.
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT_PAGE);
    }
    return sendFile(reply, index, 'no-cache');
  };
}

const NOT_BUILT_PAGE = `<!doctype html><html lang="en-GB"><head><meta charset="utf-8"><title>Holdfast</title></head>
<body><main><h1>Holdfast</h1><p>The web app is not built yet. Run <code>npm run build -w packages/web</code>
(<code>npm start</code> does this for you), then reload this page. The API is served under <code>/api/v1</code>.</p></main></body></html>
`;

function decodeSafely(path: string): string | null {
  try {
    const decoded = decodeURIComponent(path);
    return decoded.includes('\0') ? null : decoded;
  } catch {
    return null;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
