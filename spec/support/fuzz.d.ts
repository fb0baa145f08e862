import type { Message } from '../../lib/wire/message';

export interface Seeded {
  next(): number;
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  u32(): number;
}
export function seeded(seed: number): Seeded;
export function channelTraffic(r: Seeded, m: Message, channel: number, maxData: number): Message;
