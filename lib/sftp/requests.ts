/**
 * SFTP requests: encoders (client side) and the decoder (server side). Each encoder returns
 * the whole packet, length word included, ready to send.
 */
import { Message } from '../wire/message';
import { SFTPAttributes } from './attributes';
import { FXP } from './constants';
import { readUint64, Uint64, writeUint64 } from './uint64';

export type PathLike = string | Buffer;

/** A message with a length placeholder, the type and (except INIT) the request id. */
export function beginPacket(type: number, id?: number): Message {
  const m = new Message().addInt(0).addByte(type);
  if (id !== undefined) m.addInt(id);
  return m;
}

/** The bytes of a message begun with beginPacket, its length word filled in. */
export function finishPacket(m: Message): Buffer {
  const b = m.asBytes();
  b.writeUInt32BE(b.length - 4, 0);
  return b;
}

const pathPacket = (type: number) => (id: number, path: PathLike) => finishPacket(beginPacket(type, id).addString(path));
const handlePacket = (type: number) => (id: number, handle: Buffer) => finishPacket(beginPacket(type, id).addString(handle));
const emptyAttrs = new SFTPAttributes();

/** Below this, WRITE data is copied into the header's buffer: one send beats two for small writes. */
const WRITE_COPY_LIMIT = 4096;

export const encodeRequest = {
  /** SSH_FXP_INIT: the version and optional extension pairs (none in v3 clients). */
  init(version: number, extensions: Array<[string, string | Buffer]> = []): Buffer {
    const m = beginPacket(FXP.INIT).addInt(version);
    for (const [k, v] of extensions) m.addString(k).addString(v);
    return finishPacket(m);
  },
  open(id: number, path: PathLike, pflags: number, attrs: SFTPAttributes = emptyAttrs): Buffer {
    return finishPacket(attrs.encode(beginPacket(FXP.OPEN, id).addString(path).addInt(pflags)));
  },
  close: handlePacket(FXP.CLOSE),
  /** SSH_FXP_READ, written by hand: it is the hot path of downloads. */
  read(id: number, handle: Buffer, offset: Uint64, length: number): Buffer {
    const b = Buffer.allocUnsafe(4 + 1 + 4 + 4 + handle.length + 8 + 4);
    b.writeUInt32BE(b.length - 4, 0);
    b[4] = FXP.READ;
    b.writeUInt32BE(id, 5);
    b.writeUInt32BE(handle.length, 9);
    handle.copy(b, 13);
    const at = writeUint64(b, offset, 13 + handle.length);
    b.writeUInt32BE(length, at);
    return b;
  },
  /**
   * SSH_FXP_WRITE as [header] or [header, data]: large data is not copied, the caller sends
   * both buffers in order (and must not modify `data` until the write is acknowledged).
   */
  write(id: number, handle: Buffer, offset: Uint64, data: Uint8Array): Buffer[] {
    const headLen = 4 + 1 + 4 + 4 + handle.length + 8 + 4;
    const inline = data.length <= WRITE_COPY_LIMIT;
    const b = Buffer.allocUnsafe(inline ? headLen + data.length : headLen);
    b.writeUInt32BE(headLen - 4 + data.length, 0);
    b[4] = FXP.WRITE;
    b.writeUInt32BE(id, 5);
    b.writeUInt32BE(handle.length, 9);
    handle.copy(b, 13);
    const at = writeUint64(b, offset, 13 + handle.length);
    b.writeUInt32BE(data.length, at);
    if (inline) {
      b.set(data, headLen);
      return [b];
    }
    return [b, Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)];
  },
  lstat: pathPacket(FXP.LSTAT),
  fstat: handlePacket(FXP.FSTAT),
  setstat(id: number, path: PathLike, attrs: SFTPAttributes): Buffer {
    return finishPacket(attrs.encode(beginPacket(FXP.SETSTAT, id).addString(path)));
  },
  fsetstat(id: number, handle: Buffer, attrs: SFTPAttributes): Buffer {
    return finishPacket(attrs.encode(beginPacket(FXP.FSETSTAT, id).addString(handle)));
  },
  opendir: pathPacket(FXP.OPENDIR),
  readdir: handlePacket(FXP.READDIR),
  remove: pathPacket(FXP.REMOVE),
  mkdir(id: number, path: PathLike, attrs: SFTPAttributes = emptyAttrs): Buffer {
    return finishPacket(attrs.encode(beginPacket(FXP.MKDIR, id).addString(path)));
  },
  rmdir: pathPacket(FXP.RMDIR),
  realpath: pathPacket(FXP.REALPATH),
  stat: pathPacket(FXP.STAT),
  rename(id: number, oldPath: PathLike, newPath: PathLike): Buffer {
    return finishPacket(beginPacket(FXP.RENAME, id).addString(oldPath).addString(newPath));
  },
  readlink: pathPacket(FXP.READLINK),
  /**
   * SSH_FXP_SYMLINK in OpenSSH's order: target first, then the link to create. Draft-02 says
   * linkpath then targetpath, but OpenSSH's server (and so nearly every server in use) swapped
   * them long ago and keeps them swapped for compatibility (OpenSSH PROTOCOL section 4.1).
   */
  symlink(id: number, targetPath: PathLike, linkPath: PathLike): Buffer {
    return finishPacket(beginPacket(FXP.SYMLINK, id).addString(targetPath).addString(linkPath));
  },
  /** SSH_FXP_EXTENDED: the request name, then whatever `fill` appends. */
  extended(id: number, name: string, fill?: (m: Message) => void): Buffer {
    const m = beginPacket(FXP.EXTENDED, id).addString(name);
    fill?.(m);
    return finishPacket(m);
  },
};

/** A decoded request (server side). `kind` is the lower-case packet name. */
export type SftpRequest =
  | { kind: 'init'; version: number; extensions: Map<string, Buffer> }
  | { kind: 'open'; id: number; path: string; pflags: number; attrs: SFTPAttributes }
  | { kind: 'close' | 'fstat' | 'readdir'; id: number; handle: Buffer }
  | { kind: 'read'; id: number; handle: Buffer; offset: Uint64; length: number }
  | { kind: 'write'; id: number; handle: Buffer; offset: Uint64; data: Buffer }
  | { kind: 'lstat' | 'stat' | 'opendir' | 'remove' | 'rmdir' | 'realpath' | 'readlink'; id: number; path: string }
  | { kind: 'setstat' | 'mkdir'; id: number; path: string; attrs: SFTPAttributes }
  | { kind: 'fsetstat'; id: number; handle: Buffer; attrs: SFTPAttributes }
  | { kind: 'rename'; id: number; oldPath: string; newPath: string }
  | { kind: 'symlink'; id: number; targetPath: string; linkPath: string }
  | { kind: 'extended'; id: number; name: string; payload: Message }
  | { kind: 'unknown'; id: number; type: number };

const PATH_KINDS: Record<number, 'lstat' | 'stat' | 'opendir' | 'remove' | 'rmdir' | 'realpath' | 'readlink'> = {
  [FXP.LSTAT]: 'lstat',
  [FXP.STAT]: 'stat',
  [FXP.OPENDIR]: 'opendir',
  [FXP.REMOVE]: 'remove',
  [FXP.RMDIR]: 'rmdir',
  [FXP.REALPATH]: 'realpath',
  [FXP.READLINK]: 'readlink',
};
const HANDLE_KINDS: Record<number, 'close' | 'fstat' | 'readdir'> = {
  [FXP.CLOSE]: 'close',
  [FXP.FSTAT]: 'fstat',
  [FXP.READDIR]: 'readdir',
};

/**
 * Decodes one request packet (type byte + payload). Throws SSHException on a truncated
 * packet; the caller reads the id first (`peekId`) to answer it before ending the session.
 * Trailing bytes are ignored, as OpenSSH's server does.
 */
export function decodeRequest(packet: Buffer): SftpRequest {
  const m = new Message(packet);
  const type = m.getByte();
  if (type === FXP.INIT) {
    const version = m.getInt();
    const extensions = new Map<string, Buffer>();
    while (m.remaining > 0) extensions.set(m.getText(), m.getString());
    return { kind: 'init', version, extensions };
  }
  const id = m.getInt();
  const text = () => m.getText();
  const pathKind = PATH_KINDS[type];
  if (pathKind) return { kind: pathKind, id, path: text() };
  const handleKind = HANDLE_KINDS[type];
  if (handleKind) return { kind: handleKind, id, handle: m.getString('a handle') };
  switch (type) {
    case FXP.OPEN: {
      const path = text();
      const pflags = m.getInt();
      return { kind: 'open', id, path, pflags, attrs: SFTPAttributes.decode(m) };
    }
    case FXP.READ: {
      const handle = m.getString('a handle');
      const offset = readUint64(m.getBytes(8), 0);
      return { kind: 'read', id, handle, offset, length: m.getInt() };
    }
    case FXP.WRITE: {
      const handle = m.getString('a handle');
      const offset = readUint64(m.getBytes(8), 0);
      return { kind: 'write', id, handle, offset, data: m.getString('write data') };
    }
    case FXP.SETSTAT:
    case FXP.MKDIR: {
      const path = text();
      return { kind: type === FXP.MKDIR ? 'mkdir' : 'setstat', id, path, attrs: SFTPAttributes.decode(m) };
    }
    case FXP.FSETSTAT: {
      const handle = m.getString('a handle');
      return { kind: 'fsetstat', id, handle, attrs: SFTPAttributes.decode(m) };
    }
    case FXP.RENAME: {
      const oldPath = text();
      return { kind: 'rename', id, oldPath, newPath: text() };
    }
    case FXP.SYMLINK: {
      // OpenSSH's order: target first (see encodeRequest.symlink).
      const targetPath = text();
      return { kind: 'symlink', id, targetPath, linkPath: text() };
    }
    case FXP.EXTENDED: {
      const name = text();
      return { kind: 'extended', id, name, payload: m };
    }
    default:
      return { kind: 'unknown', id, type };
  }
}

/** The request id of a packet, or undefined when it has none (INIT, or too short). */
export function peekId(packet: Buffer): number | undefined {
  if (packet.length < 5 || packet[0] === FXP.INIT) return undefined;
  return packet.readUInt32BE(1);
}
