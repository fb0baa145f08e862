export { SSHClient } from './client';
export type { ConnectOptions, ExecOptions } from './client';
export { Transport } from './transport';
export type { TransportOptions } from './transport';
export { SecurityOptions } from './security-options';
export { Channel } from './channel';
export { ChannelFile, ChannelStderrFile, ChannelStdinFile } from './channel-file';
export { MissingHostKeyPolicy, RejectPolicy, AutoAddPolicy, WarningPolicy } from './policy';
export { ProxyCommand } from './proxy';
