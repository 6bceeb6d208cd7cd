#!/usr/bin/env node
// `npm start` runs this first: builds the web app (packages/web/dist) when it is missing or older
// than any of its sources, so a fresh clone's `npm install && npm start` serves the whole product.
// `--force` always builds.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const web = 'packages/web';
const built = join(web, 'dist', 'index.html');
/**
 * Written beside a build made here. Vite builds React's development bundle when the caller's
 * NODE_ENV is not `production` (vitest sets `test`), so the browser tests drove a different app from
 * the one `npm start` serves, and a slower one (React's development checks took about a quarter of
 * the browser's CPU in the web tests). A dist/ without this file is built again.
 */
const mode = join(web, 'dist', '.build-mode');

function newestMtime(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

const sources = ['src', 'index.html', 'vite.config.ts', 'package.json', '../core/src'].map((p) =>
  join(web, p),
);
const stale =
  process.argv.includes('--force') ||
  !existsSync(built) ||
  !existsSync(mode) ||
  readFileSync(mode, 'utf8').trim() !== 'production' ||
  statSync(built).mtimeMs < Math.max(...sources.filter((p) => existsSync(p)).map(newestMtime));

if (!stale) {
  console.log('web app is up to date (packages/web/dist)');
} else {
  console.log('building the web app (packages/web/dist)…');
  const r = spawnSync('npm', ['run', 'build', '-w', web], {
    stdio: 'inherit',
    env: { ...process.env, NODE_ENV: 'production' },
  });
  if (r.status === 0) writeFileSync(mode, 'production\n');
  process.exit(r.status ?? 1);
}
