/**
 * `Match` lines: parsed once when the file is read (so a bad condition is reported like any
 * other syntax error), evaluated at each lookup against what is known at that point of the
 * pass, as OpenSSH's match_cfg_line does.
 */

import { LexError, strdelim } from './lexer';
import { matchHostname, matchPatternList } from './patterns';

export type MatchAttribute = 'all' | 'canonical' | 'final' | 'exec' | 'host' | 'originalhost' | 'user' | 'localuser';

export interface MatchCriterion {
  attribute: MatchAttribute;
  negated: boolean;
  /** The pattern-list or command; absent for all, canonical and final. */
  argument?: string;
}

/** What a Match line is evaluated against. */
export interface MatchContext {
  /** Target host: after HostName substitution, and after canonicalisation in the final pass. */
  host: string;
  /** The host name as the caller gave it. */
  originalHost: string;
  /** Remote user: the User obtained so far in this pass, else the local user. */
  user: string;
  localUser: string;
  /** Whether this is the second pass (Match final / canonicalisation). */
  finalPass: boolean;
  /** Expand tokens in the command and run it; true when it exits with status 0. */
  exec(command: string): boolean;
}

const WITH_ARGUMENT = new Set<MatchAttribute>(['exec', 'host', 'originalhost', 'user', 'localuser']);

/** Thrown for a bad Match line; the parser adds file and line. */
export class MatchSyntaxError extends Error {}

function nextWord(rest: string | null): { word: string | null; rest: string | null } {
  if (rest === null) return { word: null, rest: null };
  try {
    const { word, rest: after } = strdelim(rest);
    return { word, rest: after };
  } catch (e) {
    if (e instanceof LexError) throw new MatchSyntaxError(`invalid quotes in Match condition`);
    throw e;
  }
}

/** Parse the text after `Match` into its criteria. */
export function parseMatch(text: string): MatchCriterion[] {
  const criteria: MatchCriterion[] = [];
  let rest: string | null = text;
  let attributes = 0;
  for (;;) {
    const step = nextWord(rest);
    rest = step.rest;
    const raw = step.word;
    if (raw === null || raw === '' || raw.startsWith('#')) break;
    const negated = raw.startsWith('!');
    const name = (negated ? raw.slice(1) : raw).toLowerCase();
    if (name === 'all') {
      // "all" stands alone, or directly after canonical/final (OpenSSH counts one attribute).
      const after = nextWord(rest).word;
      if (attributes > 1 || (after !== null && after !== '' && !after.startsWith('#'))) {
        throw new MatchSyntaxError(`'${raw}' cannot be combined with other Match attributes`);
      }
      criteria.push({ attribute: 'all', negated });
      return criteria;
    }
    attributes++;
    if (name === 'canonical' || name === 'final') {
      criteria.push({ attribute: name, negated });
      continue;
    }
    if (!WITH_ARGUMENT.has(name as MatchAttribute)) {
      throw new MatchSyntaxError(`Unsupported Match attribute ${raw}`);
    }
    const arg = nextWord(rest);
    rest = arg.rest;
    if (arg.word === null || arg.word === '' || arg.word.startsWith('#')) {
      throw new MatchSyntaxError(`Missing Match criteria for ${raw}`);
    }
    criteria.push({ attribute: name as MatchAttribute, negated, argument: arg.word });
  }
  if (attributes === 0) throw new MatchSyntaxError('One or more attributes required for Match');
  return criteria;
}

/** Whether the line asks for the final pass (`Match final`, negated or not). */
export function requestsFinalPass(criteria: readonly MatchCriterion[]): boolean {
  return criteria.some((c) => c.attribute === 'final');
}

/**
 * Evaluate the criteria (all must hold). As in OpenSSH, `exec` is not run once an earlier
 * criterion has failed, `canonical` and `final` both hold exactly in the final pass, and
 * `all` keeps the result of what precedes it.
 */
export function evaluateMatch(criteria: readonly MatchCriterion[], ctx: MatchContext): boolean {
  let result = true;
  for (const c of criteria) {
    let hit: boolean;
    switch (c.attribute) {
      case 'all':
        return result && !c.negated;
      case 'canonical':
      case 'final':
        hit = ctx.finalPass;
        break;
      case 'host':
        hit = matchHostname(ctx.host, c.argument!);
        break;
      case 'originalhost':
        hit = matchHostname(ctx.originalHost, c.argument!);
        break;
      case 'user':
        hit = matchPatternList(ctx.user, c.argument!) === 1;
        break;
      case 'localuser':
        hit = matchPatternList(ctx.localUser, c.argument!) === 1;
        break;
      case 'exec':
        if (!result) continue;
        hit = ctx.exec(c.argument!);
        break;
    }
    if (hit === c.negated) result = false;
  }
  return result;
}
