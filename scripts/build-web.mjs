#!/usr/bin/env node
// `npm start` runs this first: builds the web app (packages/web/dist) when it is missing or older
// than any of its sources, so a fresh clone's `npm install && npm start` serves the whole product.
// `--force` always builds.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const web = 'packages/web';
const built = join(web, 'dist', 'index.html');

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
  statSync(built).mtimeMs < Math.max(...sources.filter((p) => existsSync(p)).map(newestMtime));

if (!stale) {
  console.log('web app is up to date (packages/web/dist)');
} else {
  console.log('building the web app (packages/web/dist)…');
  const r = spawnSync('npm', ['run', 'build', '-w', web], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
