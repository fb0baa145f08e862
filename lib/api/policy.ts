import { SSHException } from '../errors';
import type { PKey } from '../keys';
import type { SSHClient } from './client';

/**
 * What SSHClient does with a server whose host key is not on record (Paramiko's
 * MissingHostKeyPolicy). Return to accept; throw to reject. Runs on the main thread.
 */
export class MissingHostKeyPolicy {
  missingHostKey(_client: SSHClient, _hostname: string, _key: PKey): void {
    // The base class accepts, as Paramiko's does; subclasses decide.
  }
}

/** Refuses unknown hosts (the default). */
export class RejectPolicy extends MissingHostKeyPolicy {
  override missingHostKey(_client: SSHClient, hostname: string, key: PKey): void {
    throw new SSHException(`Server '${hostname}' not found in known_hosts (its ${key.getName()} key is ${key.fingerprint})`);
  }
}

/** Accepts unknown hosts and records them (saved if `loadHostKeys` named a file). */
export class AutoAddPolicy extends MissingHostKeyPolicy {
  override missingHostKey(client: SSHClient, hostname: string, key: PKey): void {
    client.getHostKeys().add(hostname, key.getName(), key);
    const file = client.hostKeysFilename;
    if (file) client.saveHostKeys(file);
  }
}

/** Accepts unknown hosts with a warning (process.emitWarning), as Paramiko's warnings.warn. */
export class WarningPolicy extends MissingHostKeyPolicy {
  override missingHostKey(_client: SSHClient, hostname: string, key: PKey): void {
    process.emitWarning(`Unknown ${key.getName()} host key for ${hostname}: ${key.fingerprint}`, 'SSHWarning');
  }
}
