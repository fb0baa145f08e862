/**
 * Objects of the worker made and not yet garbage-collected, by kind: what the leak tests count
 * through the bridge service's `live` (which collects first when the process runs with
 * --expose-gc). Kinds: connection, channel (the main thread's rings), forward (a socket joined
 * to a channel), listener (a port forward's or the server's remote forward's socket server),
 * sftp (client sessions), sftp-server, session (the server's exec/shell channels). A finished
 * one that stays counted is held by something: a timer, a table, a pending wait.
 */
const counts = new Map<string, number>();
const registry = new FinalizationRegistry<string>((kind) => counts.set(kind, (counts.get(kind) ?? 1) - 1));

/** Counts `object` under `kind` until it is collected. */
export function track(kind: string, object: object): void {
  counts.set(kind, (counts.get(kind) ?? 0) + 1);
  registry.register(object, kind);
}

/** The kinds with objects not yet collected, and how many. */
export function liveCounts(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [kind, n] of counts) if (n > 0) out[kind] = n;
  return out;
}
