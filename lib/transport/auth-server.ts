import { SSHException } from '../errors';
import { PKey } from '../keys';
import { Message } from '../wire/message';
import { AUTH_FAILED, AUTH_PARTIALLY_SUCCESSFUL, AUTH_SUCCESSFUL, DISCONNECT, MSG } from './constants';

/** A keyboard-interactive round: Paramiko's InteractiveQuery (prompts are [text, echo]). */
export interface InteractiveQueryData {
  name: string;
  instructions: string;
  prompts: Array<[string, boolean]>;
}

/** A password decision: an AUTH_* value, or a request for a new password (RFC 4252 section 8). */
export type PasswordDecision = number | { passwordChange: { prompt: string; lang: string } };

/** An AUTH_* result, or a query for another keyboard-interactive round. */
export type AuthDecision = number | InteractiveQueryData;

/**
 * The decisions of ServerInterface's auth methods, asynchronous so they can run in the worker
 * (the embedded server) or on the main thread through a bridge callback (user code).
 */
export interface ServerAuthPolicy {
  allowedAuths(username: string): string[] | Promise<string[]>;
  authNone(username: string): number | Promise<number>;
  /** May ask for a new password instead (an expired one). */
  authPassword(username: string, password: string): PasswordDecision | Promise<PasswordDecision>;
  /** A new password for the old one; without this method every change is refused. */
  authPasswordChange?(username: string, oldPassword: string, newPassword: string): PasswordDecision | Promise<PasswordDecision>;
  /** Called with `signed: false` for the "would you accept this key?" query; the signature is checked here. */
  authPublickey(username: string, key: PKey, signed: boolean): number | Promise<number>;
  authInteractive(username: string, submethods: string): AuthDecision | Promise<AuthDecision>;
  authInteractiveResponse(responses: string[]): AuthDecision | Promise<AuthDecision>;
  /** The pre-auth banner, sent once before the first answer. */
  banner?(): string | null | Promise<string | null>;
}

export interface ServerAuthTransport {
  send(payload: Buffer): void;
  sessionId(): Buffer;
  /** Success: delayed compression starts, the connection layer opens. */
  authenticated(username: string): void;
  disconnect(reason: number, text: string): void;
}

/** OpenSSH's MaxAuthTries default: the connection drops at this many failures. */
export const DEFAULT_MAX_AUTH_TRIES = 6;
const SERVICE = 'ssh-connection';

/**
 * Server side of user authentication (RFC 4252, RFC 4256): answers each request through the
 * policy, one at a time and in order, verifies publickey signatures itself (ServerInterface
 * never sees an unverified signature), counts failures, and sends the banner.
 */
export class ServerAuth {
  username: string | null = null;
  authenticated = false;
  private failures = 0;
  private bannerSent = false;
  private chain: Promise<void> = Promise.resolve();
  private interactiveUser: string | null = null;
  private serviceAccepted = false;

  constructor(
    private readonly t: ServerAuthTransport,
    private readonly policy: ServerAuthPolicy,
    private readonly maxTries = DEFAULT_MAX_AUTH_TRIES,
  ) {}

  /** Feeds SERVICE_REQUEST and messages 50-79; returns false for others. */
  handle(type: number, msg: Message): boolean {
    if (type === MSG.SERVICE_REQUEST) {
      const name = msg.getText();
      if (name !== 'ssh-userauth' || this.serviceAccepted) {
        this.t.disconnect(DISCONNECT.SERVICE_NOT_AVAILABLE, `service ${name} is not available`);
        return true;
      }
      this.serviceAccepted = true;
      this.t.send(new Message().addByte(MSG.SERVICE_ACCEPT).addString(name).asBytes());
      return true;
    }
    if (type === MSG.USERAUTH_REQUEST || type === MSG.USERAUTH_INFO_RESPONSE) {
      if (!this.serviceAccepted) throw new SSHException('authentication request before the ssh-userauth service was accepted');
      // After success, further requests are ignored (RFC 4252 section 5.1).
      if (this.authenticated) return true;
      const payload = Buffer.from(msg.asBytes());
      this.chain = this.chain.then(() => this.process(type, new Message(payload))).catch((e) =>
        this.t.disconnect(DISCONNECT.PROTOCOL_ERROR, (e as Error).message),
      );
      return true;
    }
    return false;
  }

  private async sendBanner(): Promise<void> {
    if (this.bannerSent) return;
    this.bannerSent = true;
    const text = (await this.policy.banner?.()) ?? null;
    if (text) this.t.send(new Message().addByte(MSG.USERAUTH_BANNER).addString(text).addString('').asBytes());
  }

  private async process(type: number, m: Message): Promise<void> {
    m.getByte();
    await this.sendBanner();
    if (type === MSG.USERAUTH_INFO_RESPONSE) {
      if (!this.interactiveUser) throw new SSHException('keyboard-interactive response without a request');
      const n = m.getInt();
      if (n > 256) throw new SSHException(`${n} keyboard-interactive responses`);
      const responses: string[] = [];
      for (let i = 0; i < n; i++) responses.push(m.getText());
      await this.decide(this.interactiveUser, await this.policy.authInteractiveResponse(responses));
      return;
    }
    const username = m.getText();
    const service = m.getText();
    const method = m.getText();
    this.interactiveUser = null;
    if (service !== SERVICE) {
      this.t.disconnect(DISCONNECT.SERVICE_NOT_AVAILABLE, `service ${service} is not available`);
      return;
    }
    if (this.username !== null && this.username !== username) {
      // OpenSSH refuses a change of user in the middle of authentication.
      this.t.disconnect(DISCONNECT.PROTOCOL_ERROR, 'the user name changed during authentication');
      return;
    }
    this.username = username;
    const allowed = await this.policy.allowedAuths(username);
    if (method !== 'none' && !allowed.includes(method)) {
      await this.fail(username, false);
      return;
    }
    switch (method) {
      case 'none': {
        // Clients send 'none' to learn the methods: it is no failed attempt (as OpenSSH).
        const r = await this.policy.authNone(username);
        if (r === AUTH_FAILED) await this.fail(username, false, false);
        else await this.decide(username, r);
        return;
      }
      case 'password': {
        const change = m.getBoolean();
        const password = m.getText();
        let d: PasswordDecision;
        if (change) {
          const newPassword = m.getText();
          d = this.policy.authPasswordChange ? await this.policy.authPasswordChange(username, password, newPassword) : AUTH_FAILED;
        } else {
          d = await this.policy.authPassword(username, password);
        }
        if (typeof d === 'object') {
          // No FAILURE (the client answers with a new password or tries another method), but an
          // attempt all the same: a client cannot go round the change requests without end.
          if (++this.failures >= this.maxTries) {
            this.t.disconnect(DISCONNECT.NO_MORE_AUTH_METHODS_AVAILABLE, 'too many authentication failures');
            return;
          }
          const { prompt, lang } = d.passwordChange;
          this.t.send(new Message().addByte(MSG.USERAUTH_PASSWD_CHANGEREQ).addString(prompt).addString(lang).asBytes());
          return;
        }
        await this.decide(username, d);
        return;
      }
      case 'publickey':
        await this.publickey(username, m);
        return;
      case 'keyboard-interactive': {
        m.getText(); // language
        const submethods = m.getText();
        this.interactiveUser = username;
        await this.decide(username, await this.policy.authInteractive(username, submethods));
        return;
      }
      default:
        await this.fail(username, false);
    }
  }

  private async publickey(username: string, m: Message): Promise<void> {
    const signed = m.getBoolean();
    const algorithm = m.getText();
    const blob = Buffer.from(m.getString());
    let key: PKey;
    try {
      key = PKey.fromBlob(blob);
    } catch {
      await this.fail(username, false);
      return;
    }
    const keyType = key.publicBlob ? key.publicBlob.keyType : key.getName();
    const sigAlg = algorithm.replace(/-cert-v01@openssh\.com$/, '');
    const baseType = keyType.replace(/-cert-v01@openssh\.com$/, '');
    const algOk = sigAlg === baseType || (baseType === 'ssh-rsa' && (sigAlg === 'rsa-sha2-256' || sigAlg === 'rsa-sha2-512'));
    if (!algOk) {
      await this.fail(username, false);
      return;
    }
    if (!signed) {
      const r = await this.policy.authPublickey(username, key, false);
      if (r === AUTH_SUCCESSFUL || r === AUTH_PARTIALLY_SUCCESSFUL) {
        this.t.send(new Message().addByte(MSG.USERAUTH_PK_OK).addString(algorithm).addString(blob).asBytes());
      } else {
        await this.fail(username, false, false); // a query, not an attempt
      }
      return;
    }
    const signature = Buffer.from(m.getString());
    const data = new Message()
      .addString(this.t.sessionId())
      .addByte(MSG.USERAUTH_REQUEST)
      .addString(username)
      .addString(SERVICE)
      .addString('publickey')
      .addBoolean(true)
      .addString(algorithm)
      .addString(blob)
      .asBytes();
    const sigName = new Message(signature).getText();
    if (sigName !== sigAlg || !key.verifySshSig(data, signature)) {
      await this.fail(username, false);
      return;
    }
    await this.decide(username, await this.policy.authPublickey(username, key, true));
  }

  private async decide(username: string, d: AuthDecision): Promise<void> {
    if (typeof d === 'object') {
      const m = new Message().addByte(MSG.USERAUTH_INFO_REQUEST).addString(d.name).addString(d.instructions).addString('');
      m.addInt(d.prompts.length);
      for (const [text, echo] of d.prompts) m.addString(text).addBoolean(echo);
      this.t.send(m.asBytes());
      return;
    }
    this.interactiveUser = null;
    if (d === AUTH_SUCCESSFUL) {
      this.authenticated = true;
      this.t.send(Buffer.from([MSG.USERAUTH_SUCCESS]));
      this.t.authenticated(username);
      return;
    }
    await this.fail(username, d === AUTH_PARTIALLY_SUCCESSFUL);
  }

  private async fail(username: string, partial: boolean, counts = true): Promise<void> {
    if (!partial && counts && ++this.failures >= this.maxTries) {
      this.t.disconnect(DISCONNECT.NO_MORE_AUTH_METHODS_AVAILABLE, 'too many authentication failures');
      return;
    }
    const allowed = await this.policy.allowedAuths(username);
    this.t.send(new Message().addByte(MSG.USERAUTH_FAILURE).addList(allowed).addBoolean(partial).asBytes());
  }
}
