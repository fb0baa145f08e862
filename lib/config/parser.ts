/**
 * Reading ssh_config text into a tree: Host and Match headers, options with their parsed
 * arguments, and Include directives with the files they pulled in (read once, at parse time,
 * each file keeping its own list so that Host/Match inside an included file stay local to
 * it, as in OpenSSH). Syntax errors are ConfigParseError naming the file and line.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigParseError } from '../errors';
import { isReservedKey } from './config-dict';
import { globSync } from './glob';
import { canonicalKeyword, keywordSpec } from './keywords';
import { argvSplit, commandArgument, LexError, splitKeyword } from './lexer';
import { MatchCriterion, MatchSyntaxError, parseMatch } from './match';
import { homeOf } from './local';

/** OpenSSH's READCONF_MAX_DEPTH: how deeply Include may nest. */
export const MAX_INCLUDE_DEPTH = 16;

export interface SourceRef {
  file: string;
  line: number;
}

export type ConfigItem =
  | { type: 'host'; patterns: string[]; source: SourceRef }
  | { type: 'match'; criteria: MatchCriterion[]; source: SourceRef }
  /** `args` is the single verbatim text for command keywords. */
  | { type: 'option'; key: string; args: string[]; source: SourceRef }
  | { type: 'include'; files: ConfigFile[]; source: SourceRef };

export interface ConfigFile {
  name: string;
  items: ConfigItem[];
}

export interface ParseSettings {
  /** Directory for relative Include paths (OpenSSH: ~/.ssh for user configs). */
  includeDir: string;
  /** What `~` means in Include paths (OpenSSH's glob uses $HOME). */
  homeDir: string;
}

class LineError extends Error {}

/** Parse config text; `name` is used in error messages. */
export function parseConfig(text: string, name: string, settings: ParseSettings, depth = 0): ConfigFile {
  if (depth > MAX_INCLUDE_DEPTH) {
    throw new ConfigParseError(`${name}: too many recursive configuration includes (more than ${MAX_INCLUDE_DEPTH})`);
  }
  const items: ConfigItem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const source = { file: name, line: i + 1 };
    try {
      const item = parseLine(lines[i], source, settings, depth);
      if (item !== null) items.push(item);
    } catch (e) {
      if (e instanceof LineError) throw new ConfigParseError(`${name} line ${i + 1}: ${e.message}`);
      throw e;
    }
  }
  return { name, items };
}

function parseLine(line: string, source: SourceRef, settings: ParseSettings, depth: number): ConfigItem | null {
  let head;
  try {
    head = splitKeyword(line);
  } catch (e) {
    if (e instanceof LexError) throw new LineError('invalid quotes');
    throw e;
  }
  if (head === null) return null;
  const { keyword, rest } = head;
  if (rest === '') throw new LineError(`no argument after keyword "${keyword}"`);
  let args: string[];
  try {
    args = argvSplit(rest);
  } catch (e) {
    if (e instanceof LexError) throw new LineError('invalid quotes');
    throw e;
  }

  switch (keyword) {
    case 'host':
      if (args.some((a) => a === '')) throw new LineError('keyword host empty argument');
      return { type: 'host', patterns: args, source };
    case 'match':
      try {
        return { type: 'match', criteria: parseMatch(rest), source };
      } catch (e) {
        if (e instanceof MatchSyntaxError) throw new LineError(`Bad Match condition: ${e.message}`);
        throw e;
      }
    case 'include':
      if (args.length === 0) throw new LineError('Missing argument.');
      return { type: 'include', files: includeFiles(args, settings, depth), source };
  }

  const key = canonicalKeyword(keyword);
  if (!/^[a-z0-9_-]+$/i.test(key) || isReservedKey(key)) throw new LineError(`Bad configuration option: ${keyword}`);
  return { type: 'option', key, args: optionArguments(key, rest, args), source };
}

/** Check the arguments of an option as OpenSSH would, and return what is stored. */
function optionArguments(key: string, rest: string, args: string[]): string[] {
  const spec = keywordSpec(key);
  if (spec.kind === 'command') return [commandArgument(rest)];
  if (spec.kind === 'proxyjump') {
    // OpenSSH reads the raw text, drops a trailing comment and keeps one word, quotes and all.
    const word = commandArgument(rest).replace(/#.*$/, '').trim().split(/[ \t]+/)[0];
    if (word === '') throw new LineError('Missing argument.');
    return [word];
  }
  if (args.length === 0 || args.some((a) => a === '')) throw new LineError('Missing argument.');
  switch (spec.kind) {
    case 'single':
      if (args.length > 1) throw new LineError(`keyword ${key} extra arguments at end of line`);
      if (key === 'port') checkPort(args[0]);
      break;
    case 'words':
      if (key === 'canonicalizepermittedcnames') checkPermittedCnames(args);
      break;
    case 'each':
      if (args.length < (spec.minArgs ?? 1) || args.length > (spec.maxArgs ?? Infinity)) {
        throw new LineError(`Bad forwarding specification or extra arguments for ${key}`);
      }
      break;
    case 'sendenv':
      if (args.some((a) => a.includes('='))) throw new LineError('Invalid environment name.');
      break;
    case 'setenv':
      if (args.some((a) => a.indexOf('=') <= 0)) throw new LineError('Invalid SetEnv.');
      break;
  }
  return args;
}

/** `source_list:target_list` rules, or `none` alone (OpenSSH's messages). */
function checkPermittedCnames(args: string[]): void {
  for (const arg of args) {
    if (arg.toLowerCase() === 'none') {
      if (args.length > 1) throw new LineError('keyword canonicalizepermittedcnames "none" argument must appear alone.');
      continue;
    }
    const colon = arg.indexOf(':');
    if (colon < 0 || colon === arg.length - 1) throw new LineError(`Invalid permitted CNAME "${arg}"`);
  }
}

function checkPort(value: string): void {
  // A name is looked up in /etc/services by OpenSSH; we keep it as written.
  if (/^\d+$/.test(value) && (Number(value) < 1 || Number(value) > 65535)) throw new LineError(`Bad port '${value}'.`);
}

function includeFiles(args: string[], settings: ParseSettings, depth: number): ConfigFile[] {
  const files: ConfigFile[] = [];
  for (const arg of args) {
    let pattern: string;
    if (arg.startsWith('~')) {
      const slash = arg.indexOf('/');
      const user = arg.slice(1, slash < 0 ? undefined : slash);
      const home = user === '' ? settings.homeDir : homeOf(user);
      if (home === null) throw new LineError(`bad include path ${arg}: no such user`);
      pattern = path.join(home, slash < 0 ? '' : arg.slice(slash + 1));
    } else {
      pattern = path.isAbsolute(arg) ? arg : path.join(settings.includeDir, arg);
    }
    for (const file of globSync(pattern)) {
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new LineError(`Can't open user config file ${file}: ${(e as Error).message}`);
      }
      files.push(parseConfig(text, file, settings, depth + 1));
    }
  }
  return files;
}

/** The literal Host patterns of a file and everything it includes. */
export function hostPatterns(file: ConfigFile, into: Set<string> = new Set()): Set<string> {
  for (const item of file.items) {
    if (item.type === 'host') item.patterns.forEach((p) => into.add(p));
    else if (item.type === 'include') item.files.forEach((f) => hostPatterns(f, into));
  }
  return into;
}
