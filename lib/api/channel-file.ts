import type { Channel } from './channel';

/** A file-like object's read side: Python's BufferedFile semantics over a byte source. */
abstract class BufferedReader {
  private rbuf: Buffer = Buffer.alloc(0);
  private eof = false;
  closed = false;
  constructor(readonly mode: string) {}

  /** One chunk from the source: empty at EOF. */
  protected abstract fill(): Buffer;

  private more(): boolean {
    if (this.eof) return false;
    const chunk = this.fill();
    if (chunk.length === 0) {
      this.eof = true;
      return false;
    }
    this.rbuf = this.rbuf.length ? Buffer.concat([this.rbuf, chunk]) : chunk;
    return true;
  }

  /** Reads `size` bytes, or everything to EOF when `size` is omitted or negative. */
  read(size?: number | null): Buffer {
    if (size === undefined || size === null || size < 0) {
      const parts = [this.rbuf];
      this.rbuf = Buffer.alloc(0);
      while (!this.eof) {
        const chunk = this.fill();
        if (chunk.length === 0) this.eof = true;
        else parts.push(chunk);
      }
      return Buffer.concat(parts);
    }
    while (this.rbuf.length < size && this.more());
    const out = this.rbuf.subarray(0, size);
    this.rbuf = this.rbuf.subarray(out.length);
    return out;
  }

  /** One line including its '\n' (text unless the mode has 'b'); '' / empty at EOF. */
  readline(size?: number | null): string | Buffer {
    let nl = this.rbuf.indexOf(0x0a);
    while (nl < 0 && (size === undefined || size === null || this.rbuf.length < size) && this.more()) {
      nl = this.rbuf.indexOf(0x0a);
    }
    let end = nl < 0 ? this.rbuf.length : nl + 1;
    if (size !== undefined && size !== null && size >= 0) end = Math.min(end, size);
    const line = this.rbuf.subarray(0, end);
    this.rbuf = this.rbuf.subarray(end);
    return this.mode.includes('b') ? Buffer.from(line) : line.toString('utf8');
  }

  readlines(): Array<string | Buffer> {
    const out: Array<string | Buffer> = [];
    for (const line of this) out.push(line);
    return out;
  }

  *[Symbol.iterator](): Iterator<string | Buffer> {
    for (;;) {
      const line = this.readline();
      if (line.length === 0) return;
      yield line;
    }
  }
}

/**
 * Paramiko's ChannelFile: `read()` gives bytes, `readline()` and iteration give text (UTF-8)
 * unless the mode has 'b'. Closing it only flushes; the channel lives on (`stdout.channel`).
 */
export class ChannelFile extends BufferedReader {
  constructor(
    readonly channel: Channel,
    mode = 'r',
    readonly bufsize = -1,
  ) {
    super(mode);
  }

  protected fill(): Buffer {
    return this.channel.recv(1 << 20);
  }

  write(data: string | Buffer): void {
    this.channel.sendall(data);
  }

  writelines(lines: Iterable<string | Buffer>): void {
    for (const l of lines) this.write(l);
  }

  flush(): void {}

  close(): void {
    this.closed = true;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Reads the stderr stream (Paramiko's ChannelStderrFile); writes go to stderr (server side). */
export class ChannelStderrFile extends ChannelFile {
  protected override fill(): Buffer {
    return this.channel.recvStderr(1 << 20);
  }

  override write(data: string | Buffer): void {
    this.channel.sendallStderr(data);
  }
}

/** The command's stdin (Paramiko's ChannelStdinFile): `close()` sends EOF to the command. */
export class ChannelStdinFile extends ChannelFile {
  override close(): void {
    if (this.closed) return;
    super.close();
    this.channel.shutdownWrite();
  }
}
