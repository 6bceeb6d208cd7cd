import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

describe('API description', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('sqlite', { providers: ['northshire'] });
  });
  afterAll(async () => t?.close());

  it('describes every registered route with its permission and schemas at /openapi.json', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(r.statusCode).toBe(200);
    const doc = r.json() as {
      openapi: string;
      paths: Record<string, Record<string, { 'x-permission': string; requestBody?: unknown }>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    for (const route of t.registry.routes) {
      const op = doc.paths[route.url.replace(/:([A-Za-z]+)/g, '{$1}')]?.[route.method.toLowerCase()];
      expect(op, `${route.method} ${route.url}`).toBeDefined();
      expect(op!['x-permission']).toBe(
        'permission' in route.access
          ? route.access.permission
          : 'public' in route.access
            ? 'public'
            : 'second-factor stage',
      );
      expect(Boolean(op!.requestBody)).toBe(Boolean(route.body));
    }
    const create = doc.paths['/api/v1/admin/users']!.post as {
      requestBody: { content: { 'application/json': { schema: { required: string[] } } } };
    };
    expect(create.requestBody.content['application/json'].schema.required).toEqual(
      expect.arrayContaining(['username', 'roles', 'password']),
    );
  });

  it('serves a readable page at /docs that runs under the CSP (no scripts)', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/docs' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toContain('text/html');
    expect(r.body).toContain('/api/v1/patients/:patientId');
    expect(r.body).not.toContain('<script');
  });
});
