/**
 * The bridge between the main thread and the transport worker (DESIGN.md section 2).
 *
 * Main thread: `getBridge()` and the `Bridge` class (blocking calls, promise twins, callbacks),
 * `SharedRing` (channel data). Worker side: import './worker-side' (registerService, callback,
 * mainDoorbell...) from service modules in lib/worker/services/.
 */
export {
  Bridge,
  DEFAULT_DEADLINE_MARGIN,
  DEFAULT_WEDGE_TIMEOUT,
  getBridge,
  shutdownBridge,
  type BridgeOptions,
  type CallbackHandler,
} from './client';
export { MAX_RING_CAPACITY, SharedRing, type Doorbell, type RingOptions } from './ring';
export { lookupErrorClass, registerErrorClass, toBuffer } from './errors-wire';
export { request, runAsync, runSync, until, type Op, type Step } from './op';
export { isThenable } from './protocol';
