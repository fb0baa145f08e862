/**
 * Python's socket timeout trio, shared by the socket-like classes (Socket, Channel): null blocks
 * forever, a number of seconds bounds each wait, 0 never waits. Anything else is a TypeError, as
 * in Python.
 */
export abstract class SocketTimeouts {
  protected timeout: number | null = null;

  settimeout(timeout: number | null): void {
    if (timeout !== null && (typeof timeout !== 'number' || timeout < 0 || Number.isNaN(timeout))) {
      throw new TypeError(`timeout must be null or a non-negative number of seconds, not ${timeout}`);
    }
    this.timeout = timeout;
  }

  gettimeout(): number | null {
    return this.timeout;
  }

  setblocking(blocking: boolean | number): void {
    this.settimeout(blocking ? null : 0);
  }
}
