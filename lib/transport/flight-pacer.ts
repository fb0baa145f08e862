/**
 * How much of the peer's channel window a sender uses, on a local link.
 *
 * The window is what the peer is prepared to buffer; a sender faster than the program reading
 * the peer's end (OpenSSH's `ssh` writing to `sftp` through a pipe, say) keeps all of it queued
 * there. On loopback that queue gains nothing (the round trip is far shorter than the time it
 * takes to drain) and costs the peer dearly: OpenSSH's client, holding 2 MiB of our data in its
 * channel buffer, spent twice the CPU per byte (four times the page faults) and downloaded from
 * our SFTP server at 0.5-0.73x of sshd's rate; sshd is slower to send and never gets that far
 * ahead. With about 1 MiB in flight it ran at sshd's rate or better. sshd receiving an upload
 * is the same: holding our whole 2 MiB window it spent ~1.3 s of CPU while the file grew by 1-3
 * MiB (for OpenSSH's `sftp` as for us), its round trips stretching to 25 ms; held to about half
 * the window it never did, and a 1 GiB put took ~1 s less.
 *
 * So a limit applies while
 * - the path is local: the socket's peer is this machine (PacingHints.loopback) and no
 *   REMOTE_SAMPLES round trips have shown otherwise, or the quickest window adjust came back
 *   within LOCAL_RTT_MS of the data it acknowledged, and
 * - the peer returns window in small steps: some adjust gave back under an eighth of its window,
 *   so it reads as data comes (OpenSSH's client and server, every three packets; Paramiko, every
 *   tenth of its window). A peer that returns a quarter of its window or more at a time
 *   (paramiko-ts itself, AsyncSSH) keeps a buffer of its own and is left alone.
 * Bytes in flight (sent, not yet given back by WINDOW_ADJUST) are then held to the floor: half
 * the peer's largest window plus a packet (at least MIN_FLOOR), so a peer that adjusts once half
 * its window is used always gets enough data to send that adjust.
 *
 * Until the path is known the limit applies too (a slow start), unless an adjust has shown large
 * steps: for SAMPLES_BEFORE_PACING round trips, and while none came back within LOCAL_RTT_MS, for
 * REMOTE_SAMPLES of them. A peer's own queue stretches its round trips: sshd's were 10-25 ms over
 * its first 300 on loopback when it held a whole window, which is why a loopback peer is taken as
 * local from the start. But a loopback socket may be a tunnel whose far end is remote (ssh -L, a
 * SOCKS proxy, kubectl port-forward): if none of its first REMOTE_SAMPLES round trips came back
 * within LOCAL_RTT_MS (or none of CLEARLY_REMOTE_SAMPLES within CLEARLY_REMOTE_RTT_MS), the path
 * is remote after all and the limit is lifted. (Held to the loopback cap, sshd's quickest round
 * trip came within 2 ms by the 4th-30th, with both vCPUs busy too; through a relay adding 20 ms,
 * a put held to the cap ran at a third of `sftp`'s rate.)
 * A remote path pays a moment at half a window (a tunnel: at the loopback cap) for the slow start.
 *
 * On loopback, a peer that adjusts in small steps is held tighter still, to LOOPBACK_CAP or twice
 * its largest adjust (whichever is more, at most the floor): sshd held at 256 KiB spent a quarter
 * of the CPU it spent at 1 MiB on a 64 MiB upload, and arrived sooner. OpenSSH (by its version
 * string) is taken to adjust in small steps from the start, as it does (every three packets), so
 * its first burst is that small too; for anyone else the first burst is the floor.
 *
 * If no adjust arrives within START_HOLD_MS while data is held before the peer's first (sshd took
 * 80 ms to return its first window), the whole window may be used until that adjust: a peer that
 * waits for more before it adjusts is never left waiting for data we hold. A peer that has adjusted
 * in small steps gives window back as it reads, so it is held for as long as it reads nothing; but
 * if SAFETY_HOLD_MS pass with held data and no adjust, the pacer misjudged it (or its program
 * paused), and no limit applies for the rest of the channel. A wrong guess about a peer then costs
 * a second, never a stalled transfer (a peer that needs more than the cap before it adjusts would
 * otherwise wait for good: a window grow taken for a small step once held a 16 MiB put that way).
 */

/** A quickest round trip above this (ms) means a real network: the window is used in full. */
export const LOCAL_RTT_MS = 2;
/** Least in flight when a limit applies (bytes). */
export const MIN_FLOOR = 512 * 1024;
/** Held data before the peer's first adjust, this long (ms), lifts the limit until that adjust. */
export const START_HOLD_MS = 250;
/** Held data, this long (ms) with no adjust from a peer that adjusted before, ends the pacing. */
export const SAFETY_HOLD_MS = 1000;
/** In flight for a loopback peer that adjusts in small steps, at least (bytes). */
export const LOOPBACK_CAP = 256 * 1024;
/** Round-trip samples before a quick one can make the path local. */
export const SAMPLES_BEFORE_PACING = 4;
/** Round-trip samples, none quicker than LOCAL_RTT_MS, that make the path remote. */
export const REMOTE_SAMPLES = 64;
/**
 * Fewer samples suffice when none came within CLEARLY_REMOTE_RTT_MS: a local peer's queue
 * stretched its first round trips to 10-28 ms, but among its first 16 some came within 4 ms
 * (sshd, both vCPUs busy), while a path 20 ms long never does.
 */
export const CLEARLY_REMOTE_SAMPLES = 16;
export const CLEARLY_REMOTE_RTT_MS = 10;
/** Sends remembered for round-trip samples at most (a 256 MiB window of 32 KiB packets). */
const MAX_LOG = 8192;

/** What the connection knows of the peer before any adjust (see FlightPacer's constructor). */
export interface PacingHints {
  loopback?: boolean;
  smallStepPeer?: boolean;
}

export class FlightPacer {
  private readonly loopback: boolean;
  private readonly smallStepPeer: boolean;
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
  /** The fewest and the most bytes an adjust has acknowledged. */
  private minReturned = Infinity;
  private maxReturned = 0;
  /** Set when a held peer sent no first adjust in time: the window is used in full until one comes. */
  private released = false;
  /**
   * Set when a peer that had adjusted left held data waiting SAFETY_HOLD_MS: no limit ever again.
   * How much was in flight then.
   */
  private stalled = false;
  private stalledAt = 0;
  /** The most in flight at once while a limit applied (0: it never applied). */
  pacedPeak = 0;

  /**
   * `loopback`: the socket's peer is this machine, so the path is local without measuring it.
   * `smallStepPeer`: the peer is known to adjust in small steps (OpenSSH), until an adjust says
   * otherwise.
   */
  constructor(
    private readonly maxPacket: number,
    window: number,
    private readonly now: () => number = () => performance.now(),
    { loopback = false, smallStepPeer = false }: PacingHints = {},
  ) {
    this.loopback = loopback;
    this.smallStepPeer = smallStepPeer;
    this.peakWindow = window;
  }

  /** Bytes sent and not yet given back. */
  get inFlight(): number {
    return this.sent - this.acked;
  }

  /** Whether any adjust has acknowledged data yet (before one, only the hints say anything). */
  private get adjusted(): boolean {
    return this.minReturned !== Infinity;
  }

  /** Whether the measured limit applies now: a local path, a peer that adjusts in small steps. */
  get pacing(): boolean {
    if (this.released || this.stalled || !this.smallSteps) return false;
    if (this.loopback) return !this.measuredRemote;
    return this.samples >= SAMPLES_BEFORE_PACING && this.minRtt < LOCAL_RTT_MS;
  }

  /**
   * REMOTE_SAMPLES round trips none within LOCAL_RTT_MS, or CLEARLY_REMOTE_SAMPLES none within
   * CLEARLY_REMOTE_RTT_MS: a real network, loopback socket or not.
   */
  private get measuredRemote(): boolean {
    if (this.samples >= CLEARLY_REMOTE_SAMPLES && this.minRtt >= CLEARLY_REMOTE_RTT_MS) return true;
    return this.samples >= REMOTE_SAMPLES && this.minRtt >= LOCAL_RTT_MS;
  }

  /** Whether the start's limit applies: the path is not known yet and no adjust was large. */
  get starting(): boolean {
    if (this.released || this.stalled) return false;
    if (!this.adjusted) return true;
    if (!this.smallSteps || this.loopback) return false;
    return this.samples < SAMPLES_BEFORE_PACING || (this.minRtt >= LOCAL_RTT_MS && !this.measuredRemote);
  }

  /**
   * Some adjust gave back under an eighth of the window: the peer reads as data comes. Before
   * any adjust, what the hint says.
   */
  private get smallSteps(): boolean {
    return this.adjusted ? this.minReturned < this.peakWindow / 8 : this.smallStepPeer;
  }

  /** The most that may be in flight now (Infinity when no limit applies). */
  get cap(): number {
    if (!this.pacing && !this.starting) return Infinity;
    const floor = Math.max(MIN_FLOOR, Math.ceil(this.peakWindow / 2) + this.maxPacket);
    // Twice its largest adjust: a peer that adjusts every T bytes always has T to consume.
    if (this.loopback && this.smallSteps) return Math.min(floor, Math.max(LOOPBACK_CAP, 2 * this.maxReturned));
    return floor;
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
    // small window and grows it at once): only bytes in flight are acknowledged. Such a grow
    // says nothing of the peer's steps: counted as one, the few bytes it found in flight made a
    // peer that adjusts a quarter of 16 MiB at a time (our SFTP server, growing its window as the
    // subsystem started while the client's INIT was on its way) a small-step one, held to 256 KiB
    // on loopback, and neither side moved again.
    const inFlight = this.sent - this.acked;
    const returned = Math.min(n, inFlight);
    this.acked += returned;
    if (n <= inFlight) {
      if (returned > 0 && returned < this.minReturned) this.minReturned = returned;
      if (returned > this.maxReturned) this.maxReturned = returned;
    }
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
  }

  /** How long held data may wait for an adjust before release() (ms). */
  get holdTimeout(): number {
    return this.adjusted ? SAFETY_HOLD_MS : START_HOLD_MS;
  }

  /**
   * The held peer did not adjust within holdTimeout: no limit until its first adjust if it has
   * not adjusted yet, none for the rest of the channel if it has. Whether anything was held.
   */
  release(): boolean {
    if (!this.pacing && !this.starting) return false;
    if (this.adjusted) {
      this.stalled = true;
      this.stalledAt = this.inFlight;
    } else {
      this.released = true;
    }
    return true;
  }

  /** For a log line: how much pacing held in flight, or why it never applied (null: nothing sent). */
  get summary(): string | null {
    if (this.sent === 0) return null;
    if (this.stalled) {
      return `paced until the peer left ${this.stalledAt} bytes in flight ${SAFETY_HOLD_MS} ms unacknowledged with window left; not paced after that`;
    }
    if (this.pacedPeak > 0 && this.loopback && this.measuredRemote) {
      return `paced: at most ${this.pacedPeak} in flight until round trips showed a remote path (quickest ${this.minRtt.toFixed(2)} ms of ${this.samples})`;
    }
    if (this.pacedPeak > 0) return `paced: at most ${this.pacedPeak} in flight`;
    if (this.adjusted && !this.smallSteps) return 'not paced: the peer returns window in large steps';
    if (this.samples < SAMPLES_BEFORE_PACING) return `not paced: ${this.samples} round trips measured`;
    if (this.minRtt >= LOCAL_RTT_MS) return `not paced: quickest round trip ${this.minRtt.toFixed(2)} ms`;
    return 'not paced';
  }
}
