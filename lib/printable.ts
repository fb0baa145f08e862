/**
 * Text a peer chose, fit for a log line or an error message: control characters (C0, DEL, C1)
 * written C-style (`\n`, `\x1b`), as OpenSSH writes what a peer sent, and for a log backslashes
 * too (`\\`, so an escape cannot be forged). One log entry stays one line, and a message printed
 * to a terminal carries no escape sequences.
 */
export function printable(text: string, { backslashes = true } = {}): string {
  return text.replace(backslashes ? WITH_BACKSLASH : CONTROLS, (c) => CONTROL_ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

const CONTROLS = /[\x00-\x1f\x7f-\x9f]/g;
const WITH_BACKSLASH = /[\\\x00-\x1f\x7f-\x9f]/g;

const CONTROL_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
