/**
 * SFTP replies: encoders (server side) and the decoder (client side).
 */
import { Message } from '../wire/message';
import { SFTPAttributes } from './attributes';
import { FX_MESSAGES, FXP } from './constants';
import { SFTPError } from './errors';
import { beginPacket, finishPacket } from './requests';

/** Bytes before the data of a DATA reply: length, type, id, data length. */
export const DATA_HEADER = 4 + 1 + 4 + 4;

export const encodeReply = {
  /** SSH_FXP_VERSION with extension pairs (name, data). */
  version(version: number, extensions: Array<[string, string | Buffer]>): Buffer {
    const m = beginPacket(FXP.VERSION).addInt(version);
    for (const [k, v] of extensions) m.addString(k).addString(v);
    return finishPacket(m);
  },
  status(id: number, code: number, message: string = FX_MESSAGES[code] ?? '', lang = ''): Buffer {
    return finishPacket(beginPacket(FXP.STATUS, id).addInt(code).addString(message).addString(lang));
  },
  handle(id: number, handle: Buffer): Buffer {
    return finishPacket(beginPacket(FXP.HANDLE, id).addString(handle));
  },
  /** SSH_FXP_DATA by copy; the hot path uses allocDataReply/finishDataReply instead. */
  data(id: number, data: Uint8Array): Buffer {
    const b = allocDataReply(data.length);
    b.set(data, DATA_HEADER);
    return finishDataReply(b, id, data.length);
  },
  /** SSH_FXP_NAME: each entry's filename, longname (toString() when unset) and attributes. */
  name(id: number, entries: SFTPAttributes[]): Buffer {
    const m = beginPacket(FXP.NAME, id).addInt(entries.length);
    for (const e of entries) {
      m.addString(e.filename ?? '').addString(e.longname ?? e.toString());
      e.encode(m);
    }
    return finishPacket(m);
  },
  attrs(id: number, attrs: SFTPAttributes): Buffer {
    return finishPacket(attrs.encode(beginPacket(FXP.ATTRS, id)));
  },
  extendedReply(id: number, fill: (m: Message) => void): Buffer {
    const m = beginPacket(FXP.EXTENDED_REPLY, id);
    fill(m);
    return finishPacket(m);
  },
};

/** A buffer for a DATA reply of up to `capacity` bytes: read the file straight into it at DATA_HEADER. */
export function allocDataReply(capacity: number): Buffer {
  return Buffer.allocUnsafe(DATA_HEADER + capacity);
}

/** Fills in the header for `n` data bytes and returns the packet (a view). */
export function finishDataReply(buf: Buffer, id: number, n: number): Buffer {
  buf.writeUInt32BE(1 + 4 + 4 + n, 0);
  buf[4] = FXP.DATA;
  buf.writeUInt32BE(id, 5);
  buf.writeUInt32BE(n, 9);
  return buf.subarray(0, DATA_HEADER + n);
}

/** A decoded reply (client side). */
export type SftpReply =
  | { kind: 'version'; version: number; extensions: Map<string, string> }
  | { kind: 'status'; id: number; code: number; message: string; lang: string }
  | { kind: 'handle'; id: number; handle: Buffer }
  | { kind: 'data'; id: number; data: Buffer }
  | { kind: 'name'; id: number; names: SFTPAttributes[] }
  | { kind: 'attrs'; id: number; attrs: SFTPAttributes }
  | { kind: 'extended'; id: number; payload: Message };

/**
 * Decodes one reply packet (type byte + payload). DATA is a view of the packet, not a copy.
 * Throws SSHException on truncation and SFTPError on a type a server may not send.
 */
export function decodeReply(packet: Buffer): SftpReply {
  const m = new Message(packet);
  const type = m.getByte();
  if (type === FXP.VERSION) {
    const version = m.getInt();
    const extensions = new Map<string, string>();
    while (m.remaining > 0) extensions.set(m.getText(), m.getText());
    return { kind: 'version', version, extensions };
  }
  const id = m.getInt();
  switch (type) {
    case FXP.STATUS: {
      const code = m.getInt();
      // Servers of draft-00/01 ended STATUS after the code; take the message as optional.
      const message = m.remaining > 0 ? m.getText() : (FX_MESSAGES[code] ?? '');
      const lang = m.remaining > 0 ? m.getText() : '';
      return { kind: 'status', id, code, message, lang };
    }
    case FXP.HANDLE:
      return { kind: 'handle', id, handle: m.getString('a handle') };
    case FXP.DATA:
      return { kind: 'data', id, data: m.getString('data') };
    case FXP.NAME: {
      const count = m.getInt();
      // Each entry takes at least 12 bytes: refuse a count the packet cannot hold before looping.
      if (count > m.remaining / 12) throw new SFTPError(`SSH_FXP_NAME claims ${count} entries in ${m.remaining} bytes`);
      const names: SFTPAttributes[] = [];
      for (let i = 0; i < count; i++) {
        const filename = m.getText();
        const longname = m.getText();
        names.push(SFTPAttributes.decode(m, filename, longname));
      }
      return { kind: 'name', id, names };
    }
    case FXP.ATTRS:
      return { kind: 'attrs', id, attrs: SFTPAttributes.decode(m) };
    case FXP.EXTENDED_REPLY:
      return { kind: 'extended', id, payload: m };
    default:
      throw new SFTPError(`unexpected SFTP packet type ${type} from the server`);
  }
}
