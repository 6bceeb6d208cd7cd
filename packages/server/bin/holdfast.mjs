#!/usr/bin/env node
// Entry point for `holdfast` / `npx holdfast`. The server runs from TypeScript source through tsx,
// so there is no build step between a checkout and a running node.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
