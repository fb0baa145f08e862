/**
 * SFTPAttributes: a file's metadata as SFTP v3 carries it (draft-02 section 5), in Paramiko's
 * shape. The field names stay snake_case (`st_size`, `st_mode`...) because they mirror
 * Python's os.stat_result, which Paramiko's users index by name.
 */
import type { BigIntStats, Stats } from 'node:fs';
import { Message } from '../wire/message';
import { ATTR } from './constants';
import { readUint64, Uint64, writeUint64 } from './uint64';

const S_IFMT = 0o170000;
const FILE_TYPES: Record<number, string> = {
  0o010000: 'p',
  0o020000: 'c',
  0o040000: 'd',
  0o060000: 'b',
  0o100000: '-',
  0o120000: 'l',
  0o140000: 's',
};
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** Paramiko shows the year instead of the time for dates more than 6 months (180 days) away. */
const SIX_MONTHS = 15_552_000;

/** Paramiko's _rwx: three permission letters with setuid/setgid/sticky folded into the x. */
function rwx(n: number, special: boolean, sticky = false): string {
  const s = special ? 2 : 0;
  return '-r'[n >> 2] + '-w'[(n >> 1) & 1] + (sticky ? '-xTt' : '-xSs')[s + (n & 1)];
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** A uint32 as C's (u_int32_t) cast makes it: times before 1970 or after 2106 wrap, as in OpenSSH. */
const u32 = (n: number): number => Math.trunc(n) >>> 0;

export class SFTPAttributes {
  static readonly FLAG_SIZE = ATTR.SIZE;
  static readonly FLAG_UIDGID = ATTR.UIDGID;
  static readonly FLAG_PERMISSIONS = ATTR.PERMISSIONS;
  static readonly FLAG_AMTIME = ATTR.ACMODTIME;
  static readonly FLAG_EXTENDED = ATTR.EXTENDED;

  /** Size in bytes: a number while exact (below 2^53), a bigint beyond. */
  st_size?: Uint64;
  st_uid?: number;
  st_gid?: number;
  /** Type and permission bits, as os.stat's st_mode. */
  st_mode?: number;
  /** Seconds since the epoch (SFTP v3 has whole seconds only). */
  st_atime?: number;
  st_mtime?: number;
  /** Extended attributes (name to raw value), sent in the order of the map. */
  attr: Map<string, Buffer> = new Map();
  /** Set on entries of a directory listing. */
  filename?: string;
  /** The server's `ls -l` line for a directory entry. */
  longname?: string;
  /** Link count: local only (not on the wire), used by server-side long names. */
  st_nlink?: number;

  /** Attributes from a local fs.Stats, as Paramiko's from_stat(os.stat(...)). */
  static fromStat(st: Stats | BigIntStats, filename?: string): SFTPAttributes {
    const a = new SFTPAttributes();
    const size = st.size;
    a.st_size = typeof size === 'bigint' ? (size <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(size) : size) : size;
    a.st_uid = Number(st.uid);
    a.st_gid = Number(st.gid);
    a.st_mode = Number(st.mode);
    a.st_atime = Math.floor(Number(st.atimeMs) / 1000);
    a.st_mtime = Math.floor(Number(st.mtimeMs) / 1000);
    a.st_nlink = Number(st.nlink);
    if (filename !== undefined) a.filename = filename;
    return a;
  }

  /** Reads attributes from a message at its current position. */
  static decode(m: Message, filename?: string, longname?: string): SFTPAttributes {
    const a = new SFTPAttributes();
    const flags = m.getInt();
    if (flags & ATTR.SIZE) a.st_size = readUint64(m.getBytes(8), 0);
    if (flags & ATTR.UIDGID) {
      a.st_uid = m.getInt();
      a.st_gid = m.getInt();
    }
    if (flags & ATTR.PERMISSIONS) a.st_mode = m.getInt();
    if (flags & ATTR.ACMODTIME) {
      a.st_atime = m.getInt();
      a.st_mtime = m.getInt();
    }
    if (flags & ATTR.EXTENDED) {
      const count = m.getInt();
      for (let i = 0; i < count; i++) {
        const name = m.getString('an extended attribute name').toString('utf8');
        a.attr.set(name, m.getString('an extended attribute value'));
      }
    }
    if (filename !== undefined) a.filename = filename;
    if (longname !== undefined) a.longname = longname;
    return a;
  }

  /** The flags word for the fields that are set (only those go on the wire). */
  get flags(): number {
    let f = 0;
    if (this.st_size !== undefined) f |= ATTR.SIZE;
    if (this.st_uid !== undefined && this.st_gid !== undefined) f |= ATTR.UIDGID;
    if (this.st_mode !== undefined) f |= ATTR.PERMISSIONS;
    if (this.st_atime !== undefined && this.st_mtime !== undefined) f |= ATTR.ACMODTIME;
    if (this.attr.size > 0) f |= ATTR.EXTENDED;
    return f >>> 0;
  }

  /** Appends the wire form to a message. */
  encode(m: Message): Message {
    const flags = this.flags;
    m.addInt(flags);
    if (flags & ATTR.SIZE) {
      const b = Buffer.allocUnsafe(8);
      writeUint64(b, this.st_size!, 0);
      m.addBytes(b);
    }
    if (flags & ATTR.UIDGID) m.addInt(u32(this.st_uid!)).addInt(u32(this.st_gid!));
    if (flags & ATTR.PERMISSIONS) m.addInt(u32(this.st_mode!));
    if (flags & ATTR.ACMODTIME) m.addInt(u32(this.st_atime!)).addInt(u32(this.st_mtime!));
    if (flags & ATTR.EXTENDED) {
      m.addInt(this.attr.size);
      for (const [k, v] of this.attr) m.addString(k).addString(v);
    }
    return m;
  }

  /** The wire form alone (Paramiko's asbytes). */
  asBytes(): Buffer {
    return this.encode(new Message()).asBytes();
  }

  /** File-type tests on st_mode (false when the mode is unknown). */
  isDirectory(): boolean {
    return this.st_mode !== undefined && (this.st_mode & S_IFMT) === 0o040000;
  }
  isFile(): boolean {
    return this.st_mode !== undefined && (this.st_mode & S_IFMT) === 0o100000;
  }
  isSymbolicLink(): boolean {
    return this.st_mode !== undefined && (this.st_mode & S_IFMT) === 0o120000;
  }

  /** The `ls -l` style line of Paramiko's __str__: `-rw-r--r--   1 1000     1000         1234 05 Mar 12:00 name`. */
  /**
   * `ls -l` style, as Paramiko's str(); `names` puts the owner's and group's names in place of
   * the numbers (as OpenSSH's sftp-server's long names have them).
   */
  toString(now: number = Date.now() / 1000, names?: { user: string | null; group: string | null }): string {
    let ks: string;
    if (this.st_mode !== undefined) {
      const mode = this.st_mode;
      ks = FILE_TYPES[mode & S_IFMT] ?? '?';
      ks += rwx((mode & 0o700) >> 6, (mode & 0o4000) !== 0);
      ks += rwx((mode & 0o70) >> 3, (mode & 0o2000) !== 0);
      ks += rwx(mode & 7, (mode & 0o1000) !== 0, true);
    } else {
      ks = '?---------';
    }
    let datestr: string;
    if (this.st_mtime === undefined || this.st_mtime === 0xffffffff) {
      datestr = '(unknown date)';
    } else {
      const d = new Date(this.st_mtime * 1000);
      const day = `${pad2(d.getDate())} ${MONTHS[d.getMonth()]}`;
      datestr =
        Math.abs(now - this.st_mtime) > SIX_MONTHS
          ? `${day} ${d.getFullYear()}`
          : `${day} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
    }
    const uid = (names?.user ?? String(this.st_uid ?? 0)).padEnd(8);
    const gid = (names?.group ?? String(this.st_gid ?? 0)).padEnd(8);
    const size = String(this.st_size ?? 0).padStart(8);
    const nlink = String(this.st_nlink ?? 1).padStart(4);
    return `${ks}${nlink} ${uid} ${gid} ${size} ${datestr.padEnd(12)} ${this.filename ?? '?'}`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `<SFTPAttributes: ${this.toString()}>`;
  }
}
