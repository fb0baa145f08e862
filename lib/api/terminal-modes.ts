/**
 * The encoded terminal modes of a pty-req (RFC 4254 section 8, RFC 8160 for IUTF8): an opcode
 * byte and a uint32 value per mode, ending with TTY_OP_END. AsyncSSH's `term_modes`; Paramiko
 * sends none.
 */
import { Message } from '../wire/message';

/** Opcodes by the names of RFC 4254 section 8 (and IUTF8, RFC 8160). */
export const TERMINAL_MODES: Readonly<Record<string, number>> = {
  VINTR: 1, VQUIT: 2, VERASE: 3, VKILL: 4, VEOF: 5, VEOL: 6, VEOL2: 7, VSTART: 8, VSTOP: 9, VSUSP: 10,
  VDSUSP: 11, VREPRINT: 12, VWERASE: 13, VLNEXT: 14, VFLUSH: 15, VSWTCH: 16, VSTATUS: 17, VDISCARD: 18,
  IGNPAR: 30, PARMRK: 31, INPCK: 32, ISTRIP: 33, INLCR: 34, IGNCR: 35, ICRNL: 36, IUCLC: 37, IXON: 38,
  IXANY: 39, IXOFF: 40, IMAXBEL: 41, IUTF8: 42,
  ISIG: 50, ICANON: 51, XCASE: 52, ECHO: 53, ECHOE: 54, ECHOK: 55, ECHONL: 56, NOFLSH: 57, TOSTOP: 58,
  IEXTEN: 59, ECHOCTL: 60, ECHOKE: 61, PENDIN: 62,
  OPOST: 70, OLCUC: 71, ONLCR: 72, OCRNL: 73, ONOCR: 74, ONLRET: 75,
  CS7: 90, CS8: 91, PARENB: 92, PARODD: 93,
  TTY_OP_ISPEED: 128, TTY_OP_OSPEED: 129,
};

/** Modes by name (`{ ECHO: 0 }`) or opcode (`{ 53: 0 }`): flags take 0 or 1, characters their code, speeds baud. */
export type TerminalModes = Record<string | number, number | boolean>;

/** The modes string of a pty-req; TypeError for an unknown name, an opcode out of 1-159 or a value that is not a uint32. */
export function encodeTerminalModes(modes: TerminalModes | null | undefined): Buffer {
  const m = new Message();
  for (const [key, raw] of Object.entries(modes ?? {})) {
    const opcode = /^\d+$/.test(key) ? Number(key) : TERMINAL_MODES[key.toUpperCase()];
    // 160 and up take values other than a uint32 (RFC 4254: "not yet defined"); 0 ends the list.
    if (opcode === undefined || opcode < 1 || opcode > 159) throw new TypeError(`unknown terminal mode ${JSON.stringify(key)} (a name of RFC 4254 section 8, or an opcode 1-159)`);
    const value = typeof raw === 'boolean' ? Number(raw) : raw;
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new TypeError(`terminal mode ${key} needs a uint32 value, not ${raw}`);
    m.addByte(opcode).addInt(value);
  }
  return Buffer.concat([m.asBytes(), Buffer.from([0])]);
}
