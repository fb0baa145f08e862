import { SSHException } from '../../errors';

/**
 * The SSH key file armour of RFC 4716 ("SECSH"): what `ssh-keygen -e` and puttygen write for
 * public keys, and ssh.com's (Tectia's) private key files use too.
 *
 *   ---- BEGIN SSH2 PUBLIC KEY ----
 *   Comment: "a comment"            (headers: `Tag: value`, a trailing \ continues a line)
 *   AAAAC3NzaC1lZDI1NTE5AAAA...     (base64)
 *   ---- END SSH2 PUBLIC KEY ----
 */
export const SECSH_PUBLIC = 'SSH2 PUBLIC KEY';
export const SECSH_PRIVATE = 'SSH2 ENCRYPTED PRIVATE KEY';

export function isSecshBlock(text: string, label: string): boolean {
  return text.trimStart().startsWith(`---- BEGIN ${label} ----`);
}

/** The base64 body and the Comment header (its quotes removed; '' when there is none). */
export function decodeSecshBlock(text: string, label: string): { blob: string; comment: string } {
  const lines = text.trimStart().split(/\r\n|\r|\n/).map((l) => l.trim());
  const endLine = `---- END ${label} ----`;
  const end = lines.indexOf(endLine);
  if (end < 0) throw new SSHException(`not an RFC 4716 ${label.toLowerCase()}: no "${endLine}" line`);
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
  if (!blob) throw new SSHException(`not an RFC 4716 ${label.toLowerCase()}: no key data between its BEGIN and END lines`);
  return { blob, comment };
}
