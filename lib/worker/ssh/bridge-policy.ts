import { callback } from '../../bridge/worker-side';
import type { PKey } from '../../keys';
import type { AuthDecision, InteractiveQueryData, PasswordDecision } from '../../transport/auth-server';
import { AUTH_FAILED, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED } from '../../transport/constants';
import type { IncomingOpen } from '../../transport/connection';
import { Message } from '../../wire/message';
import type { WorkerChannel } from './channel';
import type { ServerPolicy } from './connection';

/** Decodes the fields of a channel request the client sent (RFC 4254 section 6). */
export function parseChannelRequest(type: string, msg: Message): Record<string, unknown> | null {
  switch (type) {
    case 'pty-req':
      return {
        term: msg.getText(),
        width: msg.getInt(),
        height: msg.getInt(),
        widthPixels: msg.getInt(),
        heightPixels: msg.getInt(),
        modes: Buffer.from(msg.getString()),
      };
    case 'window-change':
      return { width: msg.getInt(), height: msg.getInt(), widthPixels: msg.getInt(), heightPixels: msg.getInt() };
    case 'exec':
      return { command: Buffer.from(msg.getString()) };
    case 'subsystem':
      return { name: msg.getText() };
    case 'env':
      return { name: msg.getText(), value: msg.getText() };
    case 'signal':
      return { signal: msg.getText() };
    case 'break':
      return { msec: msg.getInt() };
    case 'x11-req':
      return { singleConnection: msg.getBoolean(), protocol: msg.getText(), cookie: msg.getText(), screen: msg.getInt() };
    case 'shell':
    case 'auth-agent-req@openssh.com':
      return {};
    default:
      return null;
  }
}

/** Decodes the fields of a channel open (direct-tcpip and forwarded-tcpip: two addresses). */
export function parseChannelOpen(kind: string, msg: Message): Record<string, unknown> {
  if (kind === 'direct-tcpip' || kind === 'forwarded-tcpip') {
    return { dest: [msg.getText(), msg.getInt()], origin: [msg.getText(), msg.getInt()] };
  }
  return {};
}

/** What checkAuthPassword(Change) answered on the main thread: a number, or a change request (PasswordChangeRequired). */
function passwordDecision(d: unknown): PasswordDecision {
  const change = (d as { passwordChange?: { prompt?: unknown; lang?: unknown } } | null)?.passwordChange;
  if (change && typeof change === 'object') return { passwordChange: { prompt: String(change.prompt ?? ''), lang: String(change.lang ?? '') } };
  return Number(d);
}

function isQuery(d: unknown): d is InteractiveQueryData {
  return typeof d === 'object' && d !== null && Array.isArray((d as InteractiveQueryData).prompts);
}

/**
 * The ServerInterface of a Transport started on the main thread: every decision is a callback
 * to the user's object there (run while the main thread waits in any blocking call, or from its
 * event loop when idle). A callback that fails refuses; the main thread reports the error.
 */
export class BridgePolicy implements ServerPolicy {
  constructor(private readonly id: number) {}

  private async ask<T>(method: string, args: Record<string, unknown>, refusal: T): Promise<T> {
    try {
      return (await callback('server', { id: this.id, m: method, a: args })) as T;
    } catch {
      // The main thread has reported it (or is gone): refuse.
      return refusal;
    }
  }

  allowedAuths(username: string): Promise<string[]> {
    return this.ask<string[]>('getAllowedAuths', { username }, []);
  }
  authNone(username: string): Promise<number> {
    return this.ask('checkAuthNone', { username }, AUTH_FAILED);
  }
  async authPassword(username: string, password: string): Promise<PasswordDecision> {
    return passwordDecision(await this.ask<unknown>('checkAuthPassword', { username, password }, AUTH_FAILED));
  }
  async authPasswordChange(username: string, oldPassword: string, newPassword: string): Promise<PasswordDecision> {
    return passwordDecision(await this.ask<unknown>('checkAuthPasswordChange', { username, oldPassword, newPassword }, AUTH_FAILED));
  }
  authPublickey(username: string, key: PKey, signed: boolean): Promise<number> {
    return this.ask('checkAuthPublickey', { username, key: key.asBytes(), cert: key.publicBlob ? key.publicBlob.asBytes() : null, signed }, AUTH_FAILED);
  }
  async authInteractive(username: string, submethods: string): Promise<AuthDecision> {
    const d = await this.ask<unknown>('checkAuthInteractive', { username, submethods }, AUTH_FAILED);
    return isQuery(d) ? d : Number(d);
  }
  async authInteractiveResponse(responses: string[]): Promise<AuthDecision> {
    const d = await this.ask<unknown>('checkAuthInteractiveResponse', { responses }, AUTH_FAILED);
    return isQuery(d) ? d : Number(d);
  }
  banner(): Promise<string | null> {
    return this.ask<string | null>('getBanner', {}, null);
  }

  channelOpen(open: IncomingOpen): Promise<number> {
    const fields = parseChannelOpen(open.kind, open.msg);
    return this.ask('channelOpen', { kind: open.kind, chanid: open.channel.localId, ...fields }, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED);
  }

  async globalRequest(name: string, wantReply: boolean, msg: Message): Promise<boolean | Buffer> {
    let fields: Record<string, unknown> = { data: Buffer.from(msg.getRemainder()) };
    if (name === 'tcpip-forward' || name === 'cancel-tcpip-forward') fields = { address: msg.getText(), port: msg.getInt() };
    const r = await this.ask<boolean | Uint8Array>('globalRequest', { name, wantReply, ...fields }, false);
    return r instanceof Uint8Array ? Buffer.from(r) : Boolean(r);
  }

  async channelRequest(ch: WorkerChannel, type: string, _wantReply: boolean, msg: Message): Promise<boolean> {
    const fields = parseChannelRequest(type, msg);
    if (!fields) return false;
    // 'start': accepted, and a SubsystemHandler registered on the main thread takes the channel.
    const r = await this.ask<boolean | 'start'>('channelRequest', { chan: ch.info(), type, ...fields }, false);
    if (r === 'start') {
      // The handler runs once the client has the reply (it waits for it before sending data).
      setImmediate(() => void this.ask('startSubsystem', { chan: ch.core.localId, name: fields.name }, null));
    }
    return r === true || r === 'start';
  }

  closed(error: Error): void {
    void this.ask('closed', { error: error.message }, null);
  }
}
