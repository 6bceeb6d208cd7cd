import { v7 as uuidv7 } from 'uuid';
import type { IdGenerator } from '@holdfast/core';

export const uuidV7Generator: IdGenerator = { next: () => uuidv7() };

export const systemClock = { nowMs: () => Date.now() };
