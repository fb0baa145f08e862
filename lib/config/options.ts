/**
 * The options one lookup has obtained so far, combined by OpenSSH's rules: for most keywords
 * the first value obtained wins; IdentityFile, CertificateFile and the forwardings add an
 * entry per directive (dropping exact duplicates); SendEnv adds names and `-pattern` removes
 * them; SetEnv keeps its first directive; ProxyCommand and ProxyJump lock each other out.
 * Values are kept as parsed words until the lookup expands tokens at the end.
 */

import { keywordSpec } from './keywords';
import { matchPattern } from './patterns';

export class OptionState {
  private readonly scalars = new Map<string, string[]>();
  private readonly lists = new Map<string, string[][]>();
  /** Keys in the order they were first obtained. */
  private readonly order: string[] = [];

  /** Whether the key has a value (for list keys: at least one directive applied). */
  has(key: string): boolean {
    return this.scalars.has(key) || this.lists.has(key);
  }

  /** The words of a first-wins key, or undefined. */
  words(key: string): string[] | undefined {
    return this.scalars.get(key);
  }

  /** A first-wins key's words joined by spaces, or undefined. */
  value(key: string): string | undefined {
    return this.scalars.get(key)?.join(' ');
  }

  /** The entries of an accumulating key (each as its words), or undefined. */
  entries(key: string): string[][] | undefined {
    return this.lists.get(key);
  }

  keys(): readonly string[] {
    return this.order;
  }

  /** Overwrite a first-wins key (what OpenSSH does to HostName between the passes). */
  replace(key: string, words: string[]): void {
    if (!this.has(key)) this.order.push(key);
    this.scalars.set(key, words);
  }

  /** Apply one directive of an active block. */
  apply(key: string, args: string[]): void {
    const spec = keywordSpec(key);
    switch (spec.kind) {
      case 'single':
      case 'words':
      case 'command':
        if (!this.scalars.has(key)) this.replace(key, args);
        return;
      case 'proxyjump':
        // ProxyJump applies only while neither it nor ProxyCommand is set; a real jump host
        // also sets ProxyCommand to "none" so that a later ProxyCommand is ignored.
        if (this.scalars.has('proxycommand') || this.scalars.has('proxyjump')) return;
        this.replace('proxyjump', args);
        if (args[0].toLowerCase() !== 'none') this.replace('proxycommand', ['none']);
        return;
      case 'each': {
        const list = this.list(key);
        const text = args.join(' ');
        if (!list.some((entry) => entry.join(' ') === text)) list.push(args);
        return;
      }
      case 'sendenv': {
        const list = this.list(key);
        for (const name of args) {
          if (name.startsWith('-')) {
            const pattern = name.slice(1);
            for (let i = list.length - 1; i >= 0; i--) if (matchPattern(list[i][0], pattern)) list.splice(i, 1);
          } else {
            list.push([name]);
          }
        }
        return;
      }
      case 'setenv': {
        if (this.lists.has(key)) return;
        const seen = new Set<string>();
        const list = this.list(key);
        for (const assignment of args) {
          const name = assignment.slice(0, assignment.indexOf('='));
          if (seen.has(name)) continue;
          seen.add(name);
          list.push([assignment]);
        }
        return;
      }
    }
  }

  private list(key: string): string[][] {
    let list = this.lists.get(key);
    if (list === undefined) {
      list = [];
      this.lists.set(key, list);
      this.order.push(key);
    }
    return list;
  }
}
