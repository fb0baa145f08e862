/**
 * Packet protection: how one direction of a connection encrypts and authenticates binary
 * packets (RFC 4253 section 6). Each mode (plain, encrypt-and-MAC, encrypt-then-MAC, AES-GCM,
 * chacha20-poly1305) implements these two interfaces; the packet codec stays mode-agnostic.
 *
 * A packet in plaintext is `uint32 length || byte padding_length || payload || padding`.
 */

/** Protects outgoing packets for one direction. */
export interface Sealer {
  /** Padding aligns to this (the cipher's block size, at least 8). */
  readonly blockSize: number;
  /**
   * True when the 4-byte length travels outside the aligned, encrypted body (ETM, AEAD and
   * chacha20-poly1305): padding then aligns `padding_length || payload || padding` only.
   */
  readonly lengthExcluded: boolean;
  /** Bytes appended after the packet (MAC or tag). */
  readonly macLength: number;
  /**
   * Returns the wire bytes of a fully formed plaintext packet with sequence number `seq`.
   * May transform `packet` in place.
   */
  seal(seq: number, packet: Buffer): Buffer;
  /**
   * The same wire bytes as pieces to write in order (no concatenation copy): sealers whose
   * cipher and MAC produce separate buffers implement it.
   */
  sealParts?(seq: number, packet: Buffer): Buffer[];
  /**
   * True when the wire bytes never share memory with `packet`, so the caller may build the next
   * packet in the same buffer as soon as `seal` returns (the packet codec then reuses one).
   */
  readonly freshOutput?: boolean;
  /**
   * Writes the wire bytes (`packet.length + macLength` of them) at the start of `out`, memory
   * the caller owns (the packet writer's WireArena). Never aliases `packet`.
   */
  sealInto?(seq: number, packet: Buffer, out: Buffer): void;
}

/** Removes protection from incoming packets for one direction. */
export interface Opener {
  /** Bytes of the wire packet needed before its length can be read. */
  readonly headerLength: number;
  /** Bytes after the packet (MAC or tag). */
  readonly macLength: number;
  /** Whether the length is outside the aligned body (for the block-multiple check). */
  readonly lengthExcluded: boolean;
  readonly blockSize: number;
  /**
   * Reads the packet length field from the first `headerLength` wire bytes. May keep state
   * (a stream cipher that decrypted the first block) for the `open` that must follow.
   */
  peekLength(seq: number, header: Buffer): number;
  /**
   * Authenticates and decrypts a whole wire packet (`4 + length + macLength` bytes), returning
   * the plaintext from the padding-length byte on, in memory of its own (never a view of
   * `wire`, which may be a reused buffer). Throws `SSHException` when the MAC or tag does not
   * verify.
   */
  open(seq: number, wire: Buffer): Buffer;
  /**
   * As `open`, but into a buffer the opener reuses: the result is valid only until the next
   * call. The packet reader uses it for channel data, which the channel copies on arrival.
   */
  openTransient?(seq: number, wire: Buffer): Buffer;
}

/** Keys derived for one direction by key exchange (RFC 4253 section 7.2). */
export interface DirectionKeys {
  iv: Buffer;
  key: Buffer;
  macKey: Buffer;
}
