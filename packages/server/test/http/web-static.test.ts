import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWebStatic } from '../../src/http/web-static.ts';

/** The browser app served from a build directory: client routes, hashed assets, nothing outside it. */
describe('web app static serving', () => {
  let dir: string;
  let app: FastifyInstance;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hf-web-'));
    mkdirSync(join(dir, 'dist', 'assets'), { recursive: true });
    writeFileSync(join(dir, 'dist', 'index.html'), '<!doctype html><title>Holdfast</title>');
    writeFileSync(join(dir, 'dist', 'assets', 'index-abc123.js'), 'console.log(1)');
    writeFileSync(join(dir, 'secret.txt'), 'outside the build');
    app = Fastify();
    app.setNotFoundHandler((_request, reply) => reply.code(404).send({ code: 'no_such_route' }));
    app.get('/api/v1/known', async () => ({ ok: true }));
    registerWebStatic(app, join(dir, 'dist'));
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers index.html for client routes, revalidated each time', async () => {
    for (const url of [
      '/',
      '/queue',
      '/cases/8f1e2d3c-0000-4000-8000-000000000000',
      '/sign-in?next=%2Fqueue',
    ]) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(200);
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(r.headers['cache-control']).toBe('no-cache');
      expect(r.body).toContain('<title>Holdfast</title>');
    }
  });

  it('serves hashed assets as immutable with their type', async () => {
    const r = await app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(r.body).toBe('console.log(1)');
  });

  it('leaves API paths to the API, and missing or escaping files are not found', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/v1/known' })).json()).toEqual({ ok: true });
    for (const url of [
      '/api/v1/unknown',
      '/health/x',
      '/assets/missing.js',
      '/assets/..%2f..%2fsecret.txt',
      '/..%2fsecret.txt',
    ]) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(404);
      expect(r.body, url).not.toContain('outside the build');
    }
  });

  it('leaves an over-long API path parameter to the 414 it would get without the web app', async () => {
    const r = await app.inject({ method: 'GET', url: `/api/v1/cases/${'a'.repeat(300)}` });
    expect(r.statusCode).toBe(414);
  });

  it('refuses a path that is not valid percent-encoding', async () => {
    const r = await app.inject({ method: 'GET', url: '/%E0%A4%A' });
    expect([400, 404]).toContain(r.statusCode);
  });

  it('says how to build the app when it is not built', async () => {
    const bare = Fastify();
    registerWebStatic(bare, join(dir, 'nothing-here'));
    const r = await bare.inject({ method: 'GET', url: '/queue' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.body).toContain('npm run build -w packages/web');
    await bare.close();
  });
});
