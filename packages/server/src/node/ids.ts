import { createHash } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import type { IdGenerator } from '@holdfast/core';

export const uuidV7Generator: IdGenerator = { next: () => uuidv7() };

export const systemClock = { nowMs: () => Date.now() };

/**
 * A UUID named by `text` (SHA-256, version-5 layout): the same text always gives the same id, so
 * something rebuilt or seeded twice keeps its ids.
 */
export function nameBasedUuid(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
