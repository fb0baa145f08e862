import { SSHException } from '../../errors';

/**
 * The SSH public key file format of RFC 4716: what `ssh-keygen -e` and puttygen (`-O public`,
 * and PuTTYgen's "Save public key") write.
 *
 *   ---- BEGIN SSH2 PUBLIC KEY ----
 *   Comment: "a comment"            (headers: `Tag: value`, a trailing \ continues a line)
 *   AAAAC3NzaC1lZDI1NTE5AAAA...     (the base64 of the public key blob)
 *   ---- END SSH2 PUBLIC KEY ----
 */
const BEGIN = '---- BEGIN SSH2 PUBLIC KEY ----';
const END = '---- END SSH2 PUBLIC KEY ----';

export function isRfc4716PublicKey(text: string): boolean {
  return text.trimStart().startsWith(BEGIN);
}

/** The blob and the Comment header (its quotes removed; '' when there is none). */
export function decodeRfc4716PublicKey(text: string): { blob: string; comment: string } {
  const lines = text.trimStart().split(/\r\n|\r|\n/).map((l) => l.trim());
  const end = lines.indexOf(END);
  if (end < 0) throw new SSHException(`not an RFC 4716 public key: no "${END}" line`);
  let comment = '';
  let i = 1;
  // Headers run until the first line without a colon; a backslash at the end continues one.
  while (i < end && lines[i].includes(':')) {
    let header = lines[i++];
    while (header.endsWith('\\') && i < end) header = header.slice(0, -1) + lines[i++];
    const colon = header.indexOf(':');
    const tag = header.slice(0, colon).trim();
    if (tag.toLowerCase() === 'comment') comment = header.slice(colon + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  const blob = lines.slice(i, end).join('');
  if (!blob) throw new SSHException('not an RFC 4716 public key: no key data between its BEGIN and END lines');
  return { blob, comment };
}
