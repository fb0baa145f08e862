import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, stat, utimes } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as posix from 'node:path/posix';
import { messageFromErrnoCode, statusFromErrnoCode } from '../../sftp/constants';
import { PathJail, StatusError } from '../../sftp/server-paths';
import type { ChannelCore, ChannelSink } from '../../transport/channel';
import { parseScpEntry, parseScpTimes, SCP_ACK, SCP_FATAL, SCP_MAX_LINE, SCP_OK, SCP_WARNING, scpEntryLine, scpErrorReply, scpGlob, scpTimesLine } from '../../wire/scp';

/**
 * SCP served by the embedded server inside its SFTP jail (`SSHServer({ sftp: { root }, scp:
 * true })`): exec requests that run `scp -t` (receive files) or `scp -f` (send files) are
 * answered here, in the worker, with the same root, read-only flag and umask as SFTP, instead
 * of by a local scp. The protocol (lib/wire/scp.ts) is the one SCPClient speaks from the
 * other side.
 */

export interface ScpRequest {
  /** 'to': the client sends files (scp -t); 'from': we send them (scp -f). */
  direction: 'to' | 'from';
  recursive: boolean;
  preserve: boolean;
  /** -d: the target must be a directory. */
  targetIsDir: boolean;
  paths: string[];
}

export interface ScpSettings {
  root: string;
  readOnly: boolean;
  umask: number;
  log(line: string): void;
}

/** Splits a command line as a POSIX shell would (quotes and backslashes; no expansions). */
function shellWords(command: string): string[] | null {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) return null;
      cur += command.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < command.length && command[j] !== '"'; j++) {
        if (command[j] === '\\' && j + 1 < command.length && '"\\$`'.includes(command[j + 1])) j++;
        cur += command[j];
      }
      if (j >= command.length) return null;
      i = j;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 < command.length) cur += command[++i];
      inWord = true;
    } else if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else if (';&|<>()`$'.includes(c)) {
      return null; // more than one plain command: not ours to interpret
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/** The scp invocation in an exec command, or null when it is something else. */
export function parseScpCommand(command: string): ScpRequest | null {
  const words = shellWords(command);
  if (!words || words.length < 2 || posix.basename(words[0]) !== 'scp') return null;
  const r: ScpRequest = { direction: 'to', recursive: false, preserve: false, targetIsDir: false, paths: [] };
  let direction: ScpRequest['direction'] | null = null;
  let i = 1;
  for (; i < words.length; i++) {
    const w = words[i];
    if (w === '--') {
      i++;
      break;
    }
    if (!w.startsWith('-') || w === '-') break;
    for (const flag of w.slice(1)) {
      if (flag === 't') direction = 'to';
      else if (flag === 'f') direction = 'from';
      else if (flag === 'r') r.recursive = true;
      else if (flag === 'p') r.preserve = true;
      else if (flag === 'd') r.targetIsDir = true;
      else if (flag !== 'v' && flag !== 'q' && flag !== 'E') return null;
    }
  }
  r.paths = words.slice(i);
  if (!direction || r.paths.length === 0 || (direction === 'to' && r.paths.length !== 1)) return null;
  r.direction = direction;
  return r;
}

const CHUNK = 256 * 1024;

/** A reason to stop the whole transfer (the client is told with \2). */
class Fatal extends Error {}

function reason(e: unknown): string {
  if (e instanceof StatusError || e instanceof Fatal) return e.message; // the jail's own texts carry no path
  // The strerror text the SFTP server sends: Node's own messages name the real (unjailed) path.
  const code = (e as NodeJS.ErrnoException)?.code;
  return messageFromErrnoCode(code, statusFromErrnoCode(code));
}

/** One scp run on a session channel: the channel's sink until it ends with an exit status. */
export class ScpServerChannel implements ChannelSink {
  private readonly jail: PathJail;
  private input: Buffer[] = [];
  private inputEnded = false;
  private closedFlag = false;
  private wake: (() => void) | null = null;
  private errors = 0;

  constructor(
    private readonly core: ChannelCore,
    private readonly settings: ScpSettings,
    private readonly req: ScpRequest,
  ) {
    this.jail = new PathJail(settings.root);
    // The session channel stays the core's sink and hands its events on to this one.
    setImmediate(() => void this.run());
  }

  // ---- ChannelSink ----

  data(chunk: Buffer, stream: 0 | 1): void {
    if (stream !== 0) {
      this.core.consumed(chunk.length);
      return;
    }
    this.input.push(Buffer.from(chunk));
    this.poke();
  }

  eof(): void {
    this.inputEnded = true;
    this.poke();
  }

  closed(): void {
    this.closedFlag = true;
    this.poke();
  }

  writable(): void {
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private waitEvent(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  // ---- input ----

  /** Up to `max` bytes from the client; null at EOF. The window reopens as they are taken. */
  private async take(max: number): Promise<Buffer | null> {
    while (this.input.length === 0) {
      if (this.inputEnded || this.closedFlag) return null;
      await this.waitEvent();
    }
    const head = this.input[0];
    const out = head.subarray(0, max);
    if (out.length === head.length) this.input.shift();
    else this.input[0] = head.subarray(out.length);
    this.core.consumed(out.length);
    return out;
  }

  private async line(): Promise<string | null> {
    const parts: Buffer[] = [];
    let length = 0;
    for (;;) {
      const b = await this.take(1);
      if (!b) {
        if (length === 0) return null;
        throw new Fatal('protocol error: unexpected end of input');
      }
      if (b[0] === 0x0a) return Buffer.concat(parts).toString('utf8');
      parts.push(b);
      if (++length > SCP_MAX_LINE) throw new Fatal('protocol error: line too long');
    }
  }

  /** The client's answer to what we sent: true for \0, false for \1 (message logged). */
  private async ack(): Promise<boolean> {
    const b = await this.take(1);
    if (!b) throw new Fatal('the client went away');
    if (b[0] === SCP_OK) return true;
    if (b[0] === SCP_WARNING || b[0] === SCP_FATAL) {
      const message = (await this.line()) ?? '';
      this.settings.log(`scp: the client reported: ${message}`);
      if (b[0] === SCP_FATAL) throw new Fatal(message);
      return false;
    }
    throw new Fatal('protocol error: bad acknowledgement');
  }

  // ---- output ----

  private async send(data: Buffer | string): Promise<void> {
    let buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    while (buf.length) {
      if (this.closedFlag || this.core.state !== 'open') throw new Fatal('the channel closed');
      const n = this.core.write(buf);
      buf = buf.subarray(n);
      if (buf.length) await this.waitEvent();
    }
  }

  private async warn(message: string): Promise<void> {
    this.errors++;
    this.settings.log(`scp: ${message}`);
    await this.send(scpErrorReply(SCP_WARNING, message));
  }

  // ---- the run ----

  private async run(): Promise<void> {
    let status = 0;
    try {
      if (this.req.direction === 'to') await this.receive();
      else await this.transmit();
      status = this.errors ? 1 : 0;
    } catch (e) {
      status = 1;
      const message = e instanceof Fatal ? e.message : reason(e);
      this.settings.log(`scp: ${message}`);
      if (!this.closedFlag && this.core.state === 'open') {
        try {
          await this.send(scpErrorReply(SCP_FATAL, message));
        } catch {
          // the channel is gone: nothing to tell
        }
      }
    }
    if (this.core.state !== 'open' || this.core.closeSent) return;
    void this.core.request('exit-status', false, (m) => m.addInt(status));
    this.core.sendEof();
    this.core.close();
  }

  /** scp -t: the client sends files into the target. */
  private async receive(): Promise<void> {
    const target = this.req.paths[0];
    const real = await this.jail.resolve(target, true);
    const st = await stat(real).catch(() => null);
    const targetIsDir = !!st?.isDirectory();
    if (this.req.targetIsDir && !targetIsDir) throw new Fatal(`${target}: Not a directory`);
    await this.send(SCP_ACK);
    const dirs: Array<{ real: string; times: [number, number] | null }> = [];
    let times: [number, number] | null = null;
    for (;;) {
      const line = await this.line();
      if (line === null) return;
      const kind = line.charCodeAt(0);
      if (kind === SCP_WARNING || kind === SCP_FATAL) {
        this.settings.log(`scp: the client reported: ${line.slice(1)}`);
        if (kind === SCP_FATAL) return;
        continue;
      }
      if (line[0] === 'T') {
        const t = parseScpTimes(line);
        if (!t) throw new Fatal('protocol error: bad time line');
        times = [t.atime, t.mtime];
        await this.send(SCP_ACK);
        continue;
      }
      if (line === 'E') {
        const dir = dirs.pop();
        if (!dir) throw new Fatal('protocol error: E outside a directory');
        if (dir.times && this.req.preserve) await utimes(dir.real, dir.times[0], dir.times[1]).catch(() => undefined);
        await this.send(SCP_ACK);
        continue;
      }
      const entry = parseScpEntry(line);
      if (!entry) throw new Fatal('protocol error: unknown control line');
      const { type, mode, size, name } = entry;
      if (size === null) throw new Fatal('protocol error: size out of range');
      if (name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw new Fatal(`protocol error: bad name ${JSON.stringify(name)}`);
      const parent = dirs.length ? dirs[dirs.length - 1].real : targetIsDir ? real : null;
      const path = parent ? posix.join(parent, name) : real;
      if (type === 'D') {
        if (!this.req.recursive) throw new Fatal('received a directory without -r');
        const made = await this.makeDirectory(path, mode);
        if (!made) {
          // OpenSSH's sink gives up on a directory it cannot make: so do we
          throw new Fatal(`${name}: cannot create directory`);
        }
        dirs.push({ real: path, times });
        times = null;
        await this.send(SCP_ACK);
        continue;
      }
      await this.receiveFile(path, name, mode, size, times);
      times = null;
    }
  }

  private async makeDirectory(path: string, mode: number): Promise<boolean> {
    const existing = await lstat(path).catch(() => null);
    if (existing?.isDirectory()) return true;
    if (this.settings.readOnly || existing) {
      await this.warn(`${posix.basename(path)}: ${this.settings.readOnly ? 'Permission denied' : 'File exists'}`);
      return false;
    }
    try {
      await mkdir(path, { mode: mode & 0o777 & ~this.settings.umask });
      return true;
    } catch (e) {
      await this.warn(`${posix.basename(path)}: ${reason(e)}`);
      return false;
    }
  }

  private async receiveFile(path: string, name: string, mode: number, size: number, times: [number, number] | null): Promise<void> {
    let fh: FileHandle | null = null;
    let failure: string | null = this.settings.readOnly ? 'Permission denied' : null;
    if (!failure) {
      try {
        // O_NOFOLLOW: a link planted in the target may not lead the write out of the root
        fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, mode & 0o777 & ~this.settings.umask);
      } catch (e) {
        failure = reason(e);
      }
    }
    if (failure) {
      // Refused before the data: the client skips this file and goes on.
      await this.warn(`${name}: ${failure}`);
      return;
    }
    try {
      await this.send(SCP_ACK);
      let received = 0;
      while (received < size) {
        const chunk = await this.take(Math.min(CHUNK, size - received));
        if (!chunk) throw new Fatal('the client ended in the middle of a file');
        if (!failure) {
          try {
            await fh!.write(chunk);
          } catch (e) {
            failure = reason(e); // read the rest, then say so
          }
        }
        received += chunk.length;
      }
      const clientOk = await this.ack();
      if (!failure && this.req.preserve) {
        await fh!.chmod(mode & 0o7777).catch(() => undefined);
        if (times) await fh!.utimes(times[0], times[1]).catch(() => undefined);
      }
      if (!clientOk) return; // the client's own read failed; it told us
    } finally {
      await fh?.close();
    }
    if (failure) await this.warn(`${name}: ${failure}`);
    else await this.send(SCP_ACK);
  }

  /** scp -f: we send the named files to the client. */
  private async transmit(): Promise<void> {
    if (!(await this.ack())) return; // the client is ready with \0
    for (const pattern of this.req.paths) {
      const matches = await this.expand(pattern);
      if (!matches.length) {
        await this.warn(`${pattern}: No such file or directory`);
        continue;
      }
      for (const path of matches) await this.sendPath(path);
    }
  }

  /** A source path, with * and ? in its last component matched in its directory. */
  private async expand(pattern: string): Promise<string[]> {
    const base = posix.basename(pattern);
    if (!/[*?]/.test(base)) return [pattern];
    const dir = posix.dirname(pattern);
    try {
      const names = await readdir(await this.jail.resolve(dir, true));
      const re = scpGlob(base);
      return names.filter((n) => re.test(n) && !n.startsWith('.')).sort().map((n) => posix.join(dir, n));
    } catch {
      return [];
    }
  }

  private async sendPath(path: string): Promise<void> {
    let real: string;
    try {
      real = await this.jail.resolve(path, true);
    } catch (e) {
      await this.warn(`${path}: ${reason(e)}`);
      return;
    }
    const st = await stat(real).catch((e: unknown) => e as Error);
    if (st instanceof Error) {
      await this.warn(`${path}: ${reason(st)}`);
      return;
    }
    // `dir/.` is `dir`; the root (`/`) goes by its real directory's name.
    const name = posix.basename(posix.normalize(path)) || posix.basename(real) || 'root';
    if (/[\n\r]/.test(name)) {
      await this.warn(`${JSON.stringify(name)}: name holds a line break`);
      return;
    }
    if (st.isDirectory()) {
      if (!this.req.recursive) {
        await this.warn(`${path}: not a regular file`);
        return;
      }
      if (this.req.preserve && !(await this.sendTimes(st.mtimeMs, st.atimeMs))) return;
      await this.send(scpEntryLine('D', st.mode, 0, name));
      if (!(await this.ack())) return;
      let entries: string[] = [];
      try {
        entries = (await readdir(real)).sort();
      } catch (e) {
        await this.warn(`${path}: ${reason(e)}`);
      }
      for (const entry of entries) await this.sendPath(posix.join(path, entry));
      await this.send('E\n');
      await this.ack();
      return;
    }
    if (!st.isFile()) {
      await this.warn(`${path}: not a regular file`);
      return;
    }
    let fh: FileHandle;
    try {
      fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (e) {
      await this.warn(`${path}: ${reason(e)}`);
      return;
    }
    try {
      if (this.req.preserve && !(await this.sendTimes(st.mtimeMs, st.atimeMs))) return;
      await this.send(scpEntryLine('C', st.mode, st.size, name));
      if (!(await this.ack())) return;
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(st.size, 1)));
      let sent = 0;
      let shortRead = false;
      while (sent < st.size) {
        const want = Math.min(buf.length, st.size - sent);
        let n = 0;
        if (!shortRead) n = (await fh.read(buf, 0, want, sent)).bytesRead;
        if (n === 0) {
          // The file shrank: the promised size is sent anyway (zeros), then the error.
          shortRead = true;
          buf.fill(0, 0, want);
          n = want;
        }
        await this.send(Buffer.from(buf.subarray(0, n)));
        sent += n;
      }
      if (shortRead) await this.warn(`${path}: file changed size`);
      else await this.send(SCP_ACK);
      await this.ack();
    } finally {
      await fh.close();
    }
  }

  private async sendTimes(mtimeMs: number, atimeMs: number): Promise<boolean> {
    await this.send(scpTimesLine(mtimeMs, atimeMs));
    return this.ack();
  }
}
