import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread running one of the server's TypeScript modules. The server runs from
 * source through tsx, whose loader a worker does not inherit: every worker starts from
 * worker-boot.mjs, which registers it and then imports `module`. The restore's checking worker and
 * verify's workers both start here. The worker reads `workerData.data`.
 */
export function startWorker(module: URL, data: unknown): Worker {
  return new Worker(new URL('./worker-boot.mjs', import.meta.url), {
    workerData: { module: module.href, data },
  });
}
