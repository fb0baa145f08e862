export { SSHClient } from './client';
export type { ConnectOptions, ExecOptions, RunOptions, CompletedProcess } from './client';
export { Transport, PortForwarder } from './transport';
export type { TransportOptions, PortForwardHandler, AgentChannelHandler, PasswordAuthOptions } from './transport';
export type { InteractiveHandler, PasswordChangeHandler } from '../transport/auth-client';
export { SecurityOptions } from './security-options';
export { Channel } from './channel';
export type { X11Handler, X11RequestOptions } from './channel';
export { ChannelFile, ChannelStderrFile, ChannelStdinFile } from './channel-file';
export type { Separator } from './channel-file';
export { TERMINAL_MODES } from './terminal-modes';
export type { TerminalModes } from './terminal-modes';
export { select, selectAsync } from './select';
export { MissingHostKeyPolicy, RejectPolicy, AutoAddPolicy, WarningPolicy } from './policy';
export { ProxyCommand } from './proxy';
export { Socket, Listener, MSG_PEEK, createConnection, listen } from './socket';
export type { ListenOptions } from './socket';
export type { SocketLike } from './sock-pump';
export { ServerInterface, InteractiveQuery, SubsystemHandler, Event } from './server';
export type { InteractiveResult, GlobalReplyItem } from './server';
export { SSHServer } from './ssh-server';
export type { SSHServerOptions, SSHServerSftpOptions, SSHServerUser, ExecCallback, ExecResult as SSHServerExecResult } from './ssh-server';
export { SFTPClient, SFTP, SFTPChannel } from './sftp-client';
export type { CopyFileOptions, TransferCallback, ReadableFileLike as SFTPReadable, WritableFileLike as SFTPWritable } from './sftp-client';
export { SFTPFile } from './sftp-file';
export { SCPClient, shQuote } from './scp';
export type { SCPClientOptions, SCPProgress, SCPProgress4, SCPTransferOptions } from './scp';
export type { CheckOptions as SFTPCheckOptions } from './sftp-file';
export {
  SFTPServer,
  SFTPServerInterface,
  SFTPHandle,
  SFTP_OK,
  SFTP_EOF,
  SFTP_NO_SUCH_FILE,
  SFTP_PERMISSION_DENIED,
  SFTP_FAILURE,
  SFTP_BAD_MESSAGE,
  SFTP_NO_CONNECTION,
  SFTP_CONNECTION_LOST,
  SFTP_OP_UNSUPPORTED,
} from './sftp-server';
