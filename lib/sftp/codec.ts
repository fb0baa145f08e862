/**
 * The SFTP v3 codec in one import: framing, requests (encode for clients, decode for servers)
 * and replies (encode for servers, decode for clients). No I/O.
 */
export { PacketFramer } from './framing';
export { beginPacket, decodeRequest, encodeRequest, finishPacket, peekId } from './requests';
export type { PathLike, SftpRequest } from './requests';
export { allocDataReply, DATA_HEADER, decodeReply, encodeReply, finishDataReply } from './replies';
export type { SftpReply } from './replies';
