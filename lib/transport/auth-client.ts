import { AuthenticationException, BadAuthenticationType, SSHException } from '../errors';
import type { PKey } from '../keys';
import { printable } from '../printable';
import { Message } from '../wire/message';
import { MSG } from './constants';

/** The answer of the server to one authentication request. */
export interface AuthOutcome {
  success: boolean;
  partial: boolean;
  /** Methods that may continue (USERAUTH_FAILURE's list). */
  allowed: string[];
}

/** A keyboard-interactive handler: Paramiko's `handler(title, instructions, [(prompt, echo)])`. */
export type InteractiveHandler = (title: string, instructions: string, prompts: Array<[string, boolean]>) => string[] | Promise<string[]>;

/**
 * Answers a server's request for a new password (RFC 4252 section 8: SSH_MSG_USERAUTH_PASSWD_CHANGEREQ,
 * an expired password): `[oldPassword, newPassword]`, or null to decline. AsyncSSH's
 * `password_change_requested(prompt, lang)`.
 */
export type PasswordChangeHandler = (prompt: string, lang: string) => [string, string] | null | Promise<[string, string] | null>;

/** Rounds of new passwords a server may refuse (by asking again) before the client gives up. */
export const MAX_PASSWORD_CHANGES = 3;

/** Something that can sign for publickey auth: a PKey, or an agent key (async signer). */
export interface AuthSigner {
  key: PKey;
  sign(data: Buffer, algorithm: string): Buffer | Promise<Buffer>;
}

/** What the client auth layer needs from its transport. */
export interface AuthTransport {
  send(payload: Buffer): void;
  sessionId(): Buffer;
  /** server-sig-algs from EXT_INFO, or null when the server sent none. */
  serverSigAlgs(): string[] | null;
  /** Called once on USERAUTH_SUCCESS (delayed compression starts). */
  authenticated(): void;
}

const SERVICE = 'ssh-connection';

/**
 * Client side of user authentication (RFC 4252, RFC 4256): one request at a time, answered by
 * SUCCESS, FAILURE (with partial success) or a method's own messages. Each method resolves to
 * an AuthOutcome; the API layer turns outcomes into Paramiko's return values and exceptions.
 */
export class ClientAuth {
  banner: string | null = null;
  username: string | null = null;
  authenticated = false;
  private serviceAccepted = false;
  private waiter: { resolve(v: Message | number): void; reject(e: Error): void; types: number[] } | null = null;
  private interactive: InteractiveHandler | null = null;
  /** Messages that arrived with no waiter (e.g. SERVICE_ACCEPT before a request). */
  private closedError: Error | null = null;

  constructor(private readonly t: AuthTransport) {}

  /** Feeds a message of the auth service (SERVICE_ACCEPT, 50-79). Returns false if not ours. */
  handle(type: number, msg: Message): boolean {
    if (type === MSG.USERAUTH_BANNER) {
      this.banner = msg.getText();
      return true;
    }
    if (type === MSG.SERVICE_ACCEPT || (type >= 50 && type <= 79)) {
      if (this.interactive && type === MSG.USERAUTH_INFO_REQUEST) {
        void this.answerInfoRequest(msg);
        return true;
      }
      const w = this.waiter;
      if (!w || !w.types.includes(type)) throw new SSHException(`unexpected authentication message ${type}`);
      this.waiter = null;
      if (type === MSG.USERAUTH_SUCCESS && !this.authenticated) {
        // Now, not in the waiter's continuation: delayed compression applies to the very next
        // packet, which may sit later in the same read.
        this.authenticated = true;
        this.t.authenticated();
      }
      w.resolve(type === MSG.USERAUTH_SUCCESS ? type : msg);
      return true;
    }
    return false;
  }

  /** Whether a request waits for the server's answer. */
  get awaitingReply(): boolean {
    return this.waiter !== null;
  }

  /** The transport closed: fail whatever is waiting. */
  abort(error: Error): void {
    this.closedError = error;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(error);
  }

  private expect(types: number[]): Promise<Message | number> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.waiter) return Promise.reject(new SSHException('another authentication request is in progress'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject, types };
    });
  }

  private async ensureService(): Promise<void> {
    if (this.serviceAccepted) return;
    const reply = this.expect([MSG.SERVICE_ACCEPT]);
    this.t.send(new Message().addByte(MSG.SERVICE_REQUEST).addString('ssh-userauth').asBytes());
    const m = (await reply) as Message;
    const name = m.getText();
    if (name !== 'ssh-userauth') throw new SSHException(`server accepted service ${JSON.stringify(name)}, not ssh-userauth`);
    this.serviceAccepted = true;
  }

  private header(username: string, method: string): Message {
    return new Message().addByte(MSG.USERAUTH_REQUEST).addString(username).addString(SERVICE).addString(method);
  }

  /** Sends a request and waits for SUCCESS or FAILURE (plus any extra message types). */
  private async request(username: string, payload: Buffer, extra: number[] = []): Promise<AuthOutcome | Message> {
    await this.ensureService();
    const reply = this.expect([MSG.USERAUTH_SUCCESS, MSG.USERAUTH_FAILURE, ...extra]);
    this.username = username;
    this.t.send(payload);
    return this.outcome(await reply);
  }

  private outcome(reply: Message | number): AuthOutcome | Message {
    if (reply === MSG.USERAUTH_SUCCESS) return { success: true, partial: false, allowed: [] };
    const m = reply as Message;
    if (m.asBytes()[0] !== MSG.USERAUTH_FAILURE) return m;
    const allowed = m.getList();
    const partial = m.getBoolean();
    return { success: false, partial, allowed };
  }

  async authNone(username: string): Promise<AuthOutcome> {
    return (await this.request(username, this.header(username, 'none').asBytes())) as AuthOutcome;
  }

  /**
   * Password auth. A server that answers with a password-change request (the password expired)
   * gets `change`'s new password, sent with the old one; it may refuse that one by asking again
   * (with a new prompt), up to MAX_PASSWORD_CHANGES times. Without `change`, or when it declines,
   * AuthenticationException quoting the server's prompt.
   */
  async authPassword(username: string, password: string, change: PasswordChangeHandler | null = null): Promise<AuthOutcome> {
    const m = this.header(username, 'password').addBoolean(false).addString(password);
    let r = await this.request(username, m.asBytes(), [MSG.USERAUTH_PASSWD_CHANGEREQ]);
    for (let round = 0; r instanceof Message; round++) {
      const prompt = r.getText();
      const lang = r.getText();
      const quoted = prompt ? ` ("${printable(prompt, { backslashes: false })}")` : '';
      if (!change) throw new AuthenticationException(`the server requires a new password${quoted}: pass passwordChange to give one`);
      if (round >= MAX_PASSWORD_CHANGES) throw new AuthenticationException(`the server refused ${round} new passwords${quoted}`);
      const answer = await change(prompt, lang);
      if (!answer) throw new AuthenticationException(`the server requires a new password${quoted}, and passwordChange gave none`);
      const [oldPassword, newPassword] = answer;
      const again = this.header(username, 'password').addBoolean(true).addString(oldPassword).addString(newPassword);
      r = await this.request(username, again.asBytes(), [MSG.USERAUTH_PASSWD_CHANGEREQ]);
    }
    return r;
  }

  /** The signature algorithm for a key: for RSA, the best the server announced. */
  pickAlgorithm(key: PKey, disabled: string[] = []): string[] {
    const algs = key.signatureAlgorithms().filter((a) => !disabled.includes(a));
    const server = this.t.serverSigAlgs();
    if (key.getName() !== 'ssh-rsa') return algs.slice(0, 1);
    if (server) {
      const ok = algs.filter((a) => server.includes(a));
      return ok.length ? ok.slice(0, 1) : algs.slice(-1);
    }
    // No ext-info (an old server): try SHA-2 first, then ssh-rsa.
    return algs.filter((a) => a !== 'rsa-sha2-256');
  }

  /** Publickey auth, signed at once (no query round trip), with a certificate if the key has one. */
  async authPublickey(username: string, signer: AuthSigner, disabled: string[] = []): Promise<AuthOutcome> {
    let last: AuthOutcome | null = null;
    const algorithms = this.pickAlgorithm(signer.key, disabled);
    if (!algorithms.length) {
      throw new SSHException(`no signature algorithm left for a ${signer.key.getName()} key: ${signer.key.signatureAlgorithms().join(', ')} all disabled`);
    }
    for (const sigAlg of algorithms) {
      const cert = signer.key.publicBlob;
      const alg = cert ? certAlgorithm(sigAlg, cert.keyType) : sigAlg;
      const blob = cert ? cert.keyBlob : signer.key.asBytes();
      const base = this.header(username, 'publickey').addBoolean(true).addString(alg).addString(blob);
      const signed = new Message().addString(this.t.sessionId()).addBytes(base.asBytes());
      await this.ensureService();
      const sig = await signer.sign(signed.asBytes(), sigAlg);
      last = (await this.request(username, base.addString(sig).asBytes())) as AuthOutcome;
      if (last.success || last.partial) return last;
    }
    return last!;
  }

  /** Keyboard-interactive (RFC 4256): the handler may be asked several times. */
  async authInteractive(username: string, handler: InteractiveHandler, submethods = ''): Promise<AuthOutcome> {
    const m = this.header(username, 'keyboard-interactive').addString('').addString(submethods);
    this.interactive = handler;
    try {
      return (await this.request(username, m.asBytes())) as AuthOutcome;
    } finally {
      this.interactive = null;
    }
  }

  private async answerInfoRequest(msg: Message): Promise<void> {
    try {
      const title = msg.getText();
      const instructions = msg.getText();
      msg.getString(); // language tag
      const n = msg.getInt();
      if (n > 256) throw new SSHException(`server sent ${n} keyboard-interactive prompts`);
      const prompts: Array<[string, boolean]> = [];
      for (let i = 0; i < n; i++) prompts.push([msg.getText(), msg.getBoolean()]);
      const answers = await this.interactive!(title, instructions, prompts);
      if (!Array.isArray(answers) || answers.length !== n) {
        throw new AuthenticationException(`the interactive handler returned ${Array.isArray(answers) ? answers.length : 'no'} answers for ${n} prompts`);
      }
      const out = new Message().addByte(MSG.USERAUTH_INFO_RESPONSE).addInt(n);
      for (const a of answers) out.addString(String(a));
      this.t.send(out.asBytes());
    } catch (e) {
      const w = this.waiter;
      this.waiter = null;
      w?.reject(e as Error);
    }
  }
}

/** rsa-sha2-512 + ssh-rsa-cert-v01@openssh.com -> rsa-sha2-512-cert-v01@openssh.com. */
function certAlgorithm(sigAlg: string, certType: string): string {
  return sigAlg.startsWith('rsa-sha2-') ? `${sigAlg}-cert-v01@openssh.com` : certType;
}

/** Turns an outcome into Paramiko's return value: [] on success, the next methods on partial. */
export function paramikoAuthResult(method: string, o: AuthOutcome): string[] {
  if (o.success) return [];
  if (o.partial) return o.allowed;
  if (!o.allowed.includes(method)) throw new BadAuthenticationType('Bad authentication type', o.allowed);
  // Paramiko's text first (scripts print it), then what OpenSSH's "Permission denied (...)" says.
  const e = new AuthenticationException(`Authentication failed. (${method} refused; the server accepts: ${o.allowed.join(', ') || 'nothing more'})`);
  throw Object.assign(e, { allowedTypes: o.allowed });
}
