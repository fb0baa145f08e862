/**
 * How much of the peer's channel window a sender uses, on a local link.
 *
 * The window is what the peer is prepared to buffer; a sender faster than the program reading
 * the peer's end (OpenSSH's `ssh` writing to `sftp` through a pipe, say) keeps all of it queued
 * there. On loopback that queue gains nothing (the round trip is far shorter than the time it
 * takes to drain) and costs the peer dearly: OpenSSH's client, holding 2 MiB of our data in its
 * channel buffer, spent twice the CPU per byte (four times the page faults) and downloaded from
 * our SFTP server at 0.5-0.73x of sshd's rate; sshd is slower to send and never gets that far
 * ahead. With about 1 MiB in flight it ran at sshd's rate or better.
 *
 * So a limit applies while
 * - the path looks local: the quickest window adjust came back within LOCAL_RTT_MS of the data
 *   it acknowledged, and
 * - the peer returns window in small steps: some adjust gave back under a quarter of its window,
 *   so it reads as data comes (OpenSSH's client). A peer that only ever returns half its window
 *   at a time (paramiko-ts itself) keeps a buffer of its own and is left alone.
 * Bytes in flight (sent, not yet given back by WINDOW_ADJUST) are then held to
 * `max(floor, 2 x delivery rate x shortest round trip)`: twice what the link itself holds, and at
 * least the floor, half the peer's largest window plus a packet, so a peer that adjusts once half
 * its window is used always gets enough data to send that adjust. A remote path, or one not
 * measured yet, is never limited. If no adjust arrives within HOLD_TIMEOUT_MS while data is held
 * (a slow reader, or a peer waiting for more before it adjusts), the whole window may be used
 * until the next adjust: no peer is ever left waiting for data we hold.
 */

/** A quickest round trip above this (ms) means a real network: the window is used in full. */
export const LOCAL_RTT_MS = 2;
/** Least in flight once pacing (bytes). */
export const MIN_FLOOR = 512 * 1024;
/** Held data with no adjust for this long (ms) lifts the limit until the next adjust. */
export const HOLD_TIMEOUT_MS = 50;
/** Round-trip samples before any limit applies. */
const SAMPLES_BEFORE_PACING = 4;
/** Delivery rate is measured over intervals of at least this (ms). */
const RATE_INTERVAL_MS = 1;
/** Sends remembered for round-trip samples at most (a 256 MiB window of 32 KiB packets). */
const MAX_LOG = 8192;

export class FlightPacer {
  /** Bytes sent / given back since the channel opened. */
  private sent = 0;
  private acked = 0;
  /** End offsets (cumulative bytes sent) and times of each send, oldest first from `head`. */
  private readonly ends: number[] = [];
  private readonly times: number[] = [];
  private head = 0;
  private samples = 0;
  private minRtt = Infinity;
  /** The largest window the peer has offered (what it allows in flight at once). */
  private peakWindow = 0;
  /** The fewest bytes an adjust has acknowledged. */
  private minReturned = Infinity;
  /** Bytes per ms, a max filter that decays by a tenth per interval. */
  private rate = 0;
  private rateAt = -1;
  private rateAcked = 0;
  /** Set when a held peer sent no adjust in time: the window is used in full until one comes. */
  private released = false;
  /** The most in flight at once while a limit applied (0: it never applied). */
  pacedPeak = 0;
  /** Times the limit was lifted for want of an adjust. */
  private releases = 0;

  constructor(
    private readonly maxPacket: number,
    window: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.peakWindow = window;
  }

  /** Bytes sent and not yet given back. */
  get inFlight(): number {
    return this.sent - this.acked;
  }

  /** Whether a limit applies now. */
  get pacing(): boolean {
    if (this.released || this.samples < SAMPLES_BEFORE_PACING) return false;
    return this.minRtt < LOCAL_RTT_MS && this.minReturned < this.peakWindow / 4;
  }

  /** The most that may be in flight now (Infinity when not pacing). */
  get cap(): number {
    if (!this.pacing) return Infinity;
    const floor = Math.max(MIN_FLOOR, Math.ceil(this.peakWindow / 2) + this.maxPacket);
    return Math.max(floor, Math.floor(2 * this.rate * this.minRtt));
  }

  /** Of `window` bytes the peer allows, how many may be sent now. */
  allowance(window: number): number {
    // Without a limit the cap is Infinity: the whole window.
    return Math.max(0, Math.min(window, this.cap - this.inFlight));
  }

  /** `n` bytes went out (one packet). */
  onSent(n: number): void {
    if (n <= 0) return;
    this.sent += n;
    if (this.pacing && this.inFlight > this.pacedPeak) this.pacedPeak = this.inFlight;
    // A peer with a huge window that seldom adjusts: the log stops growing (later samples then
    // come out longer, never shorter, than the true round trip).
    if (this.ends.length - this.head >= MAX_LOG) return;
    this.ends.push(this.sent);
    this.times.push(this.now());
  }

  /** The peer gave back `n` bytes of window, which is now `window` (not counting what is in flight). */
  onAdjust(n: number, window: number): void {
    const t = this.now();
    this.released = false;
    // A peer may grow its window beyond what we sent (OpenSSH's client opens a session with a
    // small window and grows it at once): only bytes in flight are acknowledged.
    const returned = Math.min(n, this.sent - this.acked);
    this.acked += returned;
    if (returned > 0 && returned < this.minReturned) this.minReturned = returned;
    this.peakWindow = Math.max(this.peakWindow, window + this.sent - this.acked);
    let sentAt = -1;
    while (this.head < this.ends.length && this.ends[this.head] <= this.acked) sentAt = this.times[this.head++];
    if (this.head > 256 && this.head * 2 > this.ends.length) {
      this.ends.splice(0, this.head);
      this.times.splice(0, this.head);
      this.head = 0;
    }
    if (sentAt >= 0) {
      this.samples++;
      this.minRtt = Math.min(this.minRtt, t - sentAt);
    }
    if (this.rateAt < 0) {
      this.rateAt = t;
      this.rateAcked = this.acked;
    } else if (t - this.rateAt >= RATE_INTERVAL_MS) {
      this.rate = Math.max((this.acked - this.rateAcked) / (t - this.rateAt), this.rate * 0.9);
      this.rateAt = t;
      this.rateAcked = this.acked;
    }
  }

  /** The held peer did not adjust in time (see HOLD_TIMEOUT_MS): no limit until it does. */
  release(): void {
    this.released = true;
    this.releases++;
  }

  /** For a log line: how much pacing held in flight, or why it never applied (null: nothing sent). */
  get summary(): string | null {
    if (this.sent === 0) return null;
    if (this.pacedPeak > 0) return `paced: at most ${this.pacedPeak} in flight`;
    if (this.samples < SAMPLES_BEFORE_PACING) return `not paced: ${this.samples} round trips measured`;
    if (this.minRtt >= LOCAL_RTT_MS) return `not paced: quickest round trip ${this.minRtt.toFixed(2)} ms`;
    if (this.minReturned >= this.peakWindow / 4) return 'not paced: the peer returns window in large steps';
    if (this.releases > 0) return `not paced: released ${this.releases} times (no adjust within ${HOLD_TIMEOUT_MS} ms)`;
    return 'not paced';
  }
}
