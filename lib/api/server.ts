import { getBridge, runAsync, until } from '../bridge';
import type { PKey } from '../keys';
import type { Message } from '../wire/message';
import {
  AUTH_FAILED,
  OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
} from '../transport/constants';
import type { Channel } from './channel';
import type { Transport } from './transport';

/**
 * Paramiko's InteractiveQuery: one round of keyboard-interactive prompts, returned by
 * `checkAuthInteractive` / `checkAuthInteractiveResponse`. Prompts are text or `[text, echo]`.
 */
export class InteractiveQuery {
  readonly prompts: Array<[string, boolean]> = [];

  constructor(
    public name = '',
    public instructions = '',
    ...prompts: Array<string | [string, boolean]>
  ) {
    for (const p of prompts) {
      if (typeof p === 'string') this.addPrompt(p);
      else this.addPrompt(p[0], p[1]);
    }
  }

  /** Adds a prompt; `echo` false hides what the user types (passwords). */
  addPrompt(prompt: string, echo = true): void {
    this.prompts.push([prompt, echo]);
  }
}

/** What `checkAuthInteractive` and `checkAuthInteractiveResponse` may return. */
export type InteractiveResult = number | InteractiveQuery;

/** A value in the reply of an accepted global request (Paramiko's tuple items). */
export type GlobalReplyItem = string | number | bigint | boolean | Buffer;

/**
 * Paramiko's ServerInterface: subclass it and override the checks your server allows; every
 * default refuses, as in Paramiko. The methods run on the main thread, called by the transport
 * worker while the main thread waits in any blocking call (`accept`, `Event.wait`, `recv`...) or,
 * when it is idle, from its event loop; they must return at once (no promises while blocked).
 * A method that throws refuses the request; the error is printed and kept for
 * `Transport.getException()`, and the connection goes on.
 */
export class ServerInterface {
  /** An OPEN_* code for a channel the client opens (OPEN_SUCCEEDED = 0 accepts). */
  checkChannelRequest(_kind: string, _chanid: number): number {
    return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED;
  }

  /** The auth methods `username` may use, comma-separated (Paramiko's default: "password"). */
  getAllowedAuths(_username: string): string {
    return 'password';
  }

  checkAuthNone(_username: string): number {
    return AUTH_FAILED;
  }

  /**
   * Whether `password` logs `username` in (an AUTH_* value). Beyond Paramiko (AsyncSSH's
   * validate_password): throw PasswordChangeRequired(prompt) for an expired password, and the
   * client is asked for a new one, which comes to checkAuthPasswordChange.
   */
  checkAuthPassword(_username: string, _password: string): number {
    return AUTH_FAILED;
  }

  /**
   * Beyond Paramiko (AsyncSSH's change_password): the client sends `newPassword` for
   * `oldPassword`, after a PasswordChangeRequired or on its own (RFC 4252 section 8). Return an
   * AUTH_* value (success logs in with the new password), or throw PasswordChangeRequired(prompt)
   * to refuse this new password and ask for another. By default refused (AUTH_FAILED).
   */
  checkAuthPasswordChange(_username: string, _oldPassword: string, _newPassword: string): number {
    return AUTH_FAILED;
  }

  /**
   * Whether `key` may log in as `username`. Called first for the client's "would you accept
   * this key?" query, then for the signed request; the library verifies the signature.
   */
  checkAuthPublickey(_username: string, _key: PKey): number {
    return AUTH_FAILED;
  }

  checkAuthInteractive(_username: string, _submethods: string): InteractiveResult {
    return AUTH_FAILED;
  }

  checkAuthInteractiveResponse(_responses: string[]): InteractiveResult {
    return AUTH_FAILED;
  }

  /** The port bound for a tcpip-forward request (the requested one, or the one picked for 0), or false. */
  checkPortForwardRequest(_address: string, _port: number): number | false {
    return false;
  }

  cancelPortForwardRequest(_address: string, _port: number): void {}

  /** Other global requests: false refuses, true accepts, a list is sent back in the reply. */
  checkGlobalRequest(_kind: string, _msg: Message): boolean | GlobalReplyItem[] {
    return false;
  }

  checkChannelPtyRequest(
    _channel: Channel,
    _term: string,
    _width: number,
    _height: number,
    _pixelwidth: number,
    _pixelheight: number,
    _modes: Buffer,
  ): boolean {
    return false;
  }

  checkChannelShellRequest(_channel: Channel): boolean {
    return false;
  }

  /** `command` is the client's bytes, as in Paramiko (`command.toString()` for text). */
  checkChannelExecRequest(_channel: Channel, _command: Buffer): boolean {
    return false;
  }

  /**
   * Accepts a subsystem request when a handler is registered for `name` with
   * `Transport.setSubsystemHandler`; the handler starts once the client has the reply.
   */
  checkChannelSubsystemRequest(channel: Channel, name: string): boolean {
    return channel.getTransport().hasSubsystemHandler(name);
  }

  checkChannelWindowChangeRequest(_channel: Channel, _width: number, _height: number, _pixelwidth: number, _pixelheight: number): boolean {
    return false;
  }

  /**
   * The client's x11-req (RFC 4254 6.3.1): the auth protocol and cookie as it sent them (the
   * cookie is hex text), and the screen. True accepts; then `Transport.openX11Channel` forwards
   * each X connection to the client.
   */
  checkChannelX11Request(_channel: Channel, _singleConnection: boolean, _authProtocol: string, _authCookie: string, _screenNumber: number): boolean {
    return false;
  }

  checkChannelForwardAgentRequest(_channel: Channel): boolean {
    return false;
  }

  /** An OPEN_* code for a direct-tcpip channel (the client's local forwarding). */
  checkChannelDirectTcpipRequest(_chanid: number, _origin: [string, number], _destination: [string, number]): number {
    return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED;
  }

  checkChannelEnvRequest(_channel: Channel, _name: string, _value: string): boolean {
    return false;
  }

  /** Beyond Paramiko: the client's "signal" request (RFC 4254 section 6.9), name without SIG. */
  checkChannelSignalRequest(_channel: Channel, _signal: string): boolean {
    return false;
  }

  /** The pre-auth banner: `[text, language]`, or `[null, null]` for none. */
  getBanner(): [string | null, string | null] {
    return [null, null];
  }
}

/**
 * Paramiko's SubsystemHandler: registered with `Transport.setSubsystemHandler(name, Class,
 * ...args)` and constructed as `new Class(channel, name, server, ...args)` for each request.
 * `startSubsystem` runs on the main thread once the client has the reply (Paramiko runs it on a
 * thread of its own); the channel closes when it returns. While it runs, other callbacks of the
 * transport are served only inside its blocking calls (`recv`, `Event.wait`...).
 */
export class SubsystemHandler {
  constructor(
    protected readonly channel: Channel,
    protected readonly name: string,
    protected readonly server: ServerInterface,
  ) {}

  getServer(): ServerInterface {
    return this.server;
  }

  /** Override: serve the subsystem on `channel` until done. */
  startSubsystem(_name: string, _transport: Transport, _channel: Channel): void {}

  /** Ends the subsystem: closes the channel. */
  finishSubsystem(): void {
    this.channel.close();
  }
}

/**
 * Python's threading.Event, for server code that waits for the client's exec or shell request.
 * `wait` serves worker callbacks (the ServerInterface that will `set` it) like every blocking
 * call. The flag lives in shared memory, so the transport worker can set it too
 * (`Transport.startServer(event)`).
 */
export class Event {
  /** @internal shared with the worker */
  readonly sab = new SharedArrayBuffer(4);
  private readonly flag = new Int32Array(this.sab);

  set(): void {
    Atomics.store(this.flag, 0, 1);
  }

  clear(): void {
    Atomics.store(this.flag, 0, 0);
  }

  isSet(): boolean {
    return Atomics.load(this.flag, 0) === 1;
  }

  /** Waits until set or `timeout` seconds pass (null: forever); returns whether it is set. */
  wait(timeout: number | null = null): boolean {
    if (this.isSet()) return true;
    return getBridge().waitUntil(() => this.isSet(), timeout);
  }

  /** The promise twin of wait. */
  waitAsync(timeout: number | null = null): Promise<boolean> {
    return runAsync(until(() => this.isSet(), timeout));
  }
}
