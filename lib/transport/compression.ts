import type * as Pako from 'pako';
import { SSHException } from '../errors';
import type { PayloadTransform } from './packet';
import { MAX_PACKET_LENGTH } from './packet';

/** zlib flush modes (zlib.h). */
const Z_PARTIAL_FLUSH = 1;
const Z_SYNC_FLUSH = 2;

/**
 * zlib compression of packet payloads (RFC 4253 section 6.2; `zlib@openssh.com` is the same,
 * started after authentication): one stream per direction for the whole connection, each
 * payload ended with a partial flush, as OpenSSH does.
 *
 * pako, because the packet codec is synchronous and Node's zlib has no synchronous streaming
 * call (its `*Sync` functions close the stream after one chunk). Compression is off by
 * default; docs/dependencies.md has the reasoning. Loaded with the first compressed
 * connection: a process that never compresses does not load it (~3 ms of every first connect).
 */
let pako: typeof Pako | null = null;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const zlib = (): typeof Pako => (pako ??= require('pako') as typeof Pako);

export function compressorFor(name: string, direction: 'compress' | 'decompress'): PayloadTransform | null {
  if (name === 'none') return null;
  if (name !== 'zlib' && name !== 'zlib@openssh.com') throw new SSHException(`unknown compression ${name}`);
  if (direction === 'compress') {
    const z = new (zlib().Deflate)({ level: 6 });
    let out: Uint8Array[] = [];
    z.onData = (chunk) => out.push(chunk);
    return (payload) => {
      z.push(payload, Z_PARTIAL_FLUSH);
      if (z.err) throw new SSHException(`compression failed: ${z.msg}`);
      const result = Buffer.concat(out);
      out = [];
      return result;
    };
  }
  const z = new (zlib().Inflate)();
  let out: Uint8Array[] = [];
  let size = 0;
  z.onData = (chunk) => {
    size += chunk.length;
    // A payload may not inflate past the packet limit: refuses zip bombs.
    if (size > MAX_PACKET_LENGTH) throw new SSHException(`decompressed payload exceeds ${MAX_PACKET_LENGTH} bytes`);
    out.push(chunk);
  };
  return (payload) => {
    size = 0;
    z.push(payload, Z_SYNC_FLUSH);
    if (z.err) throw new SSHException(`decompression failed: ${z.msg || `zlib error ${z.err}`}`);
    const result = Buffer.concat(out);
    out = [];
    return result;
  };
}
