import { runAsync, runSync, until, type Op } from '../bridge';
import { Channel } from './channel';

/** recv (or recvStderr) would return at once: data, EOF, or a closed channel. */
function readable(c: Channel): boolean {
  return c.recvReady() || c.recvStderrReady() || c.eofReceived || c.closed;
}

/**
 * Python's `select.select` over channels, which Paramiko scripts call with channels (their
 * `fileno()` is a pipe made for it; a channel here has no descriptor). Returns the channels of
 * `rlist` that can be read without blocking (data on stdout or stderr, EOF, or closed), those of
 * `wlist` that can take data (`sendReady`), and none of `xlist` (SSH has no out-of-band data).
 * Waits up to `timeout` seconds for one to be ready (null: as long as it takes; 0: looks once),
 * serving the worker's callbacks meanwhile.
 */
export function select<T extends Channel>(
  rlist: readonly T[],
  wlist: readonly T[] = [],
  xlist: readonly T[] = [],
  timeout: number | null = null,
): [T[], T[], T[]] {
  return runSync(selectOp(rlist, wlist, xlist, timeout));
}

/** The promise twin of select: the event loop runs while it waits. */
export function selectAsync<T extends Channel>(
  rlist: readonly T[],
  wlist: readonly T[] = [],
  xlist: readonly T[] = [],
  timeout: number | null = null,
): Promise<[T[], T[], T[]]> {
  return runAsync(selectOp(rlist, wlist, xlist, timeout));
}

function* selectOp<T extends Channel>(rlist: readonly T[], wlist: readonly T[], xlist: readonly T[], timeout: number | null): Op<[T[], T[], T[]]> {
  for (const list of [rlist, wlist, xlist]) {
    if (!Array.isArray(list) || !list.every((c) => c instanceof Channel)) throw new TypeError('select takes arrays of Channels');
  }
  const ready = (): [T[], T[], T[]] => [rlist.filter(readable), wlist.filter((c) => c.sendReady()), []];
  const now = ready();
  if (now[0].length || now[1].length || timeout === 0 || (!rlist.length && !wlist.length && timeout === null)) return now;
  yield* until(() => rlist.some(readable) || wlist.some((c) => c.sendReady()), timeout);
  return ready();
}
