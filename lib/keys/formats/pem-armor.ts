import { SSHException } from '../../errors';

/** PEM-style armor: `-----BEGIN <label>-----`, base64 lines of 70 (as ssh-keygen) or 64 chars. */
export function pemArmor(label: string, der: Buffer, lineLength = 70): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += lineLength) lines.push(b64.slice(i, i + lineLength));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export interface PemBlock {
  label: string;
  headers: Map<string, string>;
  body: Buffer;
  /** The block's text, from BEGIN to END inclusive. */
  text: string;
}

/** Finds the first PEM block in `text`. Returns null when there is no BEGIN line. */
export function findPemBlock(text: string): PemBlock | null {
  const begin = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text);
  if (!begin) return null;
  const label = begin[1];
  const endMarker = `-----END ${label}-----`;
  const end = text.indexOf(endMarker, begin.index);
  if (end < 0) throw new SSHException(`truncated key file: no "${endMarker}" line`);
  const inner = text.slice(begin.index + begin[0].length, end).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const headers = new Map<string, string>();
  let i = 0;
  for (; i < inner.length && inner[i].includes(':'); i++) {
    const c = inner[i].indexOf(':');
    headers.set(inner[i].slice(0, c).trim(), inner[i].slice(c + 1).trim());
  }
  const b64 = inner.slice(i).join('');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw new SSHException(`corrupt key file: invalid base64 inside the ${label} block`);
  }
  return { label, headers, body: Buffer.from(b64, 'base64'), text: text.slice(begin.index, end + endMarker.length) };
}
