/**
 * Entry point of the transport worker (compiled to dist/worker/main.js and started by
 * lib/bridge/client.ts). Everything protocol-related runs in this thread.
 */
import { isMainThread, workerData } from 'node:worker_threads';
import type { WorkerInit } from '../bridge/protocol';
import { markRunning, registerService, startWorkerSide } from '../bridge/worker-side';

if (isMainThread || !workerData?.port) {
  throw new Error('dist/worker/main.js is the transport worker of paramiko-ts: it is started by the library, not run directly');
}

startWorkerSide(workerData as WorkerInit);

// Loaded only now, with the crash handlers in place. Each service's module is loaded at its
// first request (a module that fails to load fails that request with its cause).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { loadService, services } = require('./services') as typeof import('./services');
for (const entry of services) registerService(entry.name, () => loadService(entry));
markRunning();
