/**
 * Paramiko's SSHConfigDict: the result of SSHConfig.lookup.
 *
 * Design: an instance *is* the record. Each config key (lowercased, as `ssh -G` prints it) is
 * an own enumerable property, so `cfg.hostname`, `cfg['identityfile']`, `Object.keys(cfg)`,
 * `{ ...cfg }` and `JSON.stringify(cfg)` see exactly the config keys; the helpers `asBool`,
 * `asInt`, `get`, `has` and `keys` live on the prototype, hence are non-enumerable. Values
 * are strings, except the multi-valued keys (`identityfile`, `certificatefile`,
 * `localforward`, `remoteforward`, `dynamicforward`, `sendenv`, `setenv`), which are arrays.
 * A key that would shadow a helper (`get`, `has`, `keys`, `constructor`, `__*`) is refused by
 * the parser; OpenSSH knows no such keyword either.
 */

export type ConfigValue = string | string[];

/** Keys with a fixed value type. */
export interface KnownConfigKeys {
  hostname?: string;
  user?: string;
  port?: string;
  proxycommand?: string;
  proxyjump?: string;
  identityfile?: string[];
  certificatefile?: string[];
  localforward?: string[];
  remoteforward?: string[];
  dynamicforward?: string[];
  sendenv?: string[];
  setenv?: string[];
}

/** The helpers every SSHConfigDict carries (non-enumerable). */
export interface SSHConfigDictMethods {
  /** `yes`/`true` (any case) → true, anything else → false, like Paramiko's as_bool. Throws for a missing key. */
  asBool(key: string): boolean;
  /** The value as an integer, like Paramiko's as_int (Python's int()). Throws for a missing key or a non-integer. */
  asInt(key: string): number;
  /** The value, or `fallback` (default undefined) when the key is absent (Python's dict.get). */
  get(key: string): ConfigValue | undefined;
  get<T>(key: string, fallback: T): ConfigValue | T;
  has(key: string): boolean;
  /** The config keys, in insertion order (same as Object.keys). */
  keys(): string[];
}

/** An SSHConfigDict instance: its config keys plus the helpers. */
export type SSHConfigDict = SSHConfigDictMethods & KnownConfigKeys & { [key: string]: ConfigValue | undefined };

export interface SSHConfigDictConstructor {
  new (init?: Record<string, ConfigValue> | Iterable<readonly [string, ConfigValue]>): SSHConfigDict;
  readonly prototype: SSHConfigDictMethods;
}

const RESERVED = new Set(['get', 'has', 'keys', 'constructor']);

/** Whether a config key would collide with a helper or an Object.prototype member. */
export function isReservedKey(key: string): boolean {
  return RESERVED.has(key) || key.startsWith('__');
}

class SSHConfigDictImpl implements SSHConfigDictMethods {
  constructor(init?: Record<string, ConfigValue> | Iterable<readonly [string, ConfigValue]>) {
    if (init === undefined) return;
    const entries = Symbol.iterator in init
      ? (init as Iterable<readonly [string, ConfigValue]>)
      : Object.entries(init as Record<string, ConfigValue>);
    for (const [key, value] of entries) setConfigValue(this, key, value);
  }

  asBool(key: string): boolean {
    const value = requireValue(this, key);
    if (typeof value !== 'string') throw new TypeError(`config key "${key}" is a list, not a flag`);
    const lower = value.toLowerCase();
    return lower === 'yes' || lower === 'true';
  }

  asInt(key: string): number {
    const value = requireValue(this, key);
    if (typeof value !== 'string' || !/^\s*[+-]?\d+\s*$/.test(value)) {
      throw new TypeError(`config key "${key}" is not an integer: ${JSON.stringify(value)}`);
    }
    return Number.parseInt(value, 10);
  }

  get(key: string): ConfigValue | undefined;
  get<T>(key: string, fallback: T): ConfigValue | T;
  get<T>(key: string, fallback?: T): ConfigValue | T | undefined {
    return this.has(key) ? ((this as Record<string, unknown>)[key] as ConfigValue) : fallback;
  }

  has(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this, key);
  }

  keys(): string[] {
    return Object.keys(this);
  }
}

/** Python's KeyError, as a RangeError: Paramiko's as_bool/as_int raise it for a missing key. */
function requireValue(dict: object, key: string): ConfigValue {
  if (!Object.prototype.hasOwnProperty.call(dict, key)) throw new RangeError(`no such config key: "${key}"`);
  return (dict as Record<string, ConfigValue>)[key];
}

/** Set a config key as an own enumerable property (safe even for odd names). */
export function setConfigValue(dict: object, key: string, value: ConfigValue): void {
  Object.defineProperty(dict, key, { value, enumerable: true, writable: true, configurable: true });
}

export const SSHConfigDict = SSHConfigDictImpl as unknown as SSHConfigDictConstructor;
