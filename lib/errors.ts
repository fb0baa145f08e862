/**
 * Paramiko's exception hierarchy (paramiko.ssh_exception), as Error subclasses with the same
 * names, plus the standard Python exceptions that are part of Paramiko's API (socket.timeout,
 * IOError with errno, EOFError).
 */

/** Base for protocol and logic errors. */
export class SSHException extends Error {
  constructor(message?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Authentication failed. */
export class AuthenticationException extends SSHException {}

/** An encrypted private key was loaded without a password. */
export class PasswordRequiredException extends AuthenticationException {}

/** The server does not allow the authentication method tried; `allowedTypes` lists those it does. */
export class BadAuthenticationType extends AuthenticationException {
  readonly allowedTypes: string[];
  constructor(explanation: string, types: string[]) {
    super(`${explanation} (allowed types: ${JSON.stringify(types)})`);
    this.allowedTypes = types;
  }
}

/**
 * AsyncSSH's PasswordChangeRequired: thrown by a ServerInterface's `checkAuthPassword` (or
 * `checkAuthPasswordChange`, for a new password it will not take) to ask the client for a new
 * password (RFC 4252 section 8); `prompt` is shown to the user.
 */
export class PasswordChangeRequired extends AuthenticationException {
  readonly prompt: string;
  readonly lang: string;
  constructor(prompt = 'Password change required', lang = '') {
    super(prompt);
    this.prompt = prompt;
    this.lang = lang;
  }
}

/** Internal to multi-step authentication: more methods are needed. */
export class PartialAuthentication extends AuthenticationException {
  readonly allowedTypes: string[];
  constructor(types: string[]) {
    super(`Partial authentication; allowed types: ${JSON.stringify(types)}`);
    this.allowedTypes = types;
  }
}

/** The peer refused to open a channel; `code` is one of the OPEN_FAILED_* values. */
export class ChannelException extends SSHException {
  readonly code: number;
  readonly text: string;
  constructor(code: number, text: string) {
    super(`ChannelException(${code}, ${JSON.stringify(text)})`);
    this.code = code;
    this.text = text;
  }
}

/** Minimal structural type so the error does not depend on the keys layer. */
interface FingerprintedKey {
  getName(): string;
  getBase64(): string;
  readonly fingerprint: string;
}

/** The host key the server presented differs from the one on record. */
export class BadHostKeyException extends SSHException {
  readonly hostname: string;
  readonly key: FingerprintedKey;
  readonly expectedKey: FingerprintedKey;
  constructor(hostname: string, gotKey: FingerprintedKey, expectedKey: FingerprintedKey) {
    super(
      `Host key for server '${hostname}' does not match: got '${gotKey.fingerprint}', expected '${expectedKey.fingerprint}'`,
    );
    this.hostname = hostname;
    this.key = gotKey;
    this.expectedKey = expectedKey;
  }
}

/**
 * An SCP transfer failed: the remote scp's message (e.g. "scp: /x: No such file or
 * directory"), its exit status and stderr, or a protocol violation. As the `scp` package's.
 */
export class SCPException extends SSHException {}

/** A ProxyCommand process failed or exited. */
export class ProxyCommandFailure extends SSHException {
  readonly command: string;
  readonly error: string;
  constructor(command: string, error: string) {
    super(`ProxyCommand("${command}") returned nonzero exit status: ${error}`);
    this.command = command;
    this.error = error;
  }
}

/** No common algorithm with the peer. */
export class IncompatiblePeer extends SSHException {}

/** A message arrived out of the order the protocol allows (strict kex). */
export class MessageOrderError extends SSHException {}

/** Raised by the packetizer when a rekey is due (internal). */
export class NeedRekeyException extends Error {
  constructor(message = 'rekey needed') {
    super(message);
    this.name = 'NeedRekeyException';
  }
}

/** An ssh_config file could not be parsed. */
export class ConfigParseError extends SSHException {}

/** CanonicalizeHostname=yes with CanonicalizeFallbackLocal=no and no match. */
export class CouldNotCanonicalize extends SSHException {}

/** A known_hosts line holds a key that cannot be parsed. */
export class InvalidHostKey extends SSHException {
  readonly line: string;
  readonly exc: Error;
  constructor(line: string, exc: Error) {
    super(`Invalid host key line: ${line.slice(0, 80)}: ${exc.message}`, { cause: exc });
    this.line = line;
    this.exc = exc;
  }
}

/** A key type this library does not know. */
export class UnknownKeyType extends SSHException {
  readonly keyType: string | null;
  readonly keyBytes: Buffer | null;
  constructor(keyType: string | null = null, keyBytes: Buffer | null = null) {
    super(`Unknown key type: ${keyType === null ? '(none)' : JSON.stringify(keyType)}`);
    this.keyType = keyType;
    this.keyBytes = keyBytes;
  }
}

/** A feature that paramiko-ts does not implement (yet); the message names it. */
export class NotImplementedError extends Error {
  constructor(feature: string) {
    super(`not supported by paramiko-ts: ${feature}`);
    this.name = 'NotImplementedError';
  }
}

/**
 * Python's IOError/OSError: carries Node's `code` ('ENOENT', 'EACCES'...) and `errno` like an
 * `fs` error, so `catch (e) { if (e.code === 'ENOENT') ... }` works as it does for `fs`.
 */
export class IOError extends Error {
  code?: string;
  errno?: number;
  filename?: string;
  constructor(message: string, options: { code?: string; errno?: number; filename?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    if (options.code !== undefined) this.code = options.code;
    if (options.errno !== undefined) this.errno = options.errno;
    if (options.filename !== undefined) this.filename = options.filename;
  }
}

/** Python's EOFError. */
export class EOFError extends Error {
  constructor(message = 'end of file') {
    super(message);
    this.name = 'EOFError';
  }
}

/**
 * asyncio's IncompleteReadError (AsyncSSH's readuntil and readexactly): the stream ended before
 * what was asked for; `partial` holds what came (text or bytes, as the read gives).
 */
export class IncompleteReadError extends EOFError {
  constructor(
    readonly partial: string | Buffer,
    what: string,
  ) {
    super(`the stream ended after ${partial.length} ${typeof partial === 'string' ? 'characters' : 'bytes'}, before ${what}`);
    this.name = 'IncompleteReadError';
  }
}

/** Python's socket.timeout: a blocking call ran out of time. */
export class SocketTimeout extends Error {
  constructor(message = 'timed out') {
    super(message);
    this.name = 'SocketTimeout';
  }
}

/**
 * Every address of a host refused or failed the TCP connection (Paramiko's
 * NoValidConnectionsError, a socket.error): `errors` maps "address:port" to each cause.
 */
export class NoValidConnectionsError extends IOError {
  readonly errors: Map<string, Error>;
  constructor(errors: Map<string, Error>) {
    const list = [...errors.entries()].map(([addr, e]) => `${addr}: ${e.message}`);
    // errno stays unset, as Paramiko's; `code` is the first address's, like ECONNREFUSED.
    const first = errors.values().next().value as NodeJS.ErrnoException | undefined;
    super(`Unable to connect to ${list.join('; ')}`, { code: first?.code });
    this.errors = errors;
  }
}

/**
 * AsyncSSH's ProcessError: `SSHClient.run(..., { check: true })` ran a command that ended with
 * a non-zero exit status or a signal. Carries what the command printed.
 */
export class ProcessError extends SSHException {
  constructor(
    readonly command: string,
    /** The exit status; -1 when the command died of a signal or sent none. */
    readonly exitStatus: number,
    /** The signal's name (without SIG) when it died of one. */
    readonly exitSignal: string | null,
    readonly stdout: string | Buffer,
    readonly stderr: string | Buffer,
  ) {
    super(exitSignal !== null ? `Process exited with signal ${exitSignal}` : `Process exited with non-zero exit status ${exitStatus}`);
    this.name = 'ProcessError';
  }
}
