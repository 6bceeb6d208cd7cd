// Worker entry: the server runs from TypeScript through tsx, whose loader a worker thread does not
// inherit; register it here, then load the worker's module (threads.ts starts every worker here).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
