import type { Clock } from '../ports.ts';
import { HLC_PATTERN } from './envelope.ts';

/**
 * Hybrid logical clock (Kulkarni et al.): wall-clock milliseconds plus a counter, so that events
 * are ordered consistently with causality even when node clocks disagree. Encoded as a fixed-width
 * string (`<15-digit ms>-<6-digit counter>`) so that string order is clock order in every store.
 */
export interface HlcValue {
  wallMs: number;
  counter: number;
}

const MAX_COUNTER = 999_999;

export function formatHlc(h: HlcValue): string {
  return `${String(h.wallMs).padStart(15, '0')}-${String(h.counter).padStart(6, '0')}`;
}

export function parseHlc(text: string): HlcValue {
  if (!HLC_PATTERN.test(text)) throw new RangeError(`not an HLC value: ${JSON.stringify(text)}`);
  return { wallMs: Number(text.slice(0, 15)), counter: Number(text.slice(16)) };
}

export function compareHlc(a: HlcValue, b: HlcValue): number {
  return a.wallMs - b.wallMs || a.counter - b.counter;
}

export class HybridLogicalClock {
  private last: HlcValue;

  constructor(
    private readonly clock: Clock,
    last?: string,
  ) {
    this.last = last ? parseHlc(last) : { wallMs: 0, counter: 0 };
  }

  /** A timestamp for a new local event: strictly after every timestamp issued or observed. */
  tick(): string {
    const wall = this.clock.nowMs();
    if (wall > this.last.wallMs) this.last = { wallMs: wall, counter: 0 };
    else this.last = this.bump(this.last);
    return formatHlc(this.last);
  }

  /** Take in a timestamp seen on another node's event, so later local events sort after it. */
  observe(remote: string): void {
    const r = parseHlc(remote);
    const wall = this.clock.nowMs();
    const maxWall = Math.max(wall, r.wallMs, this.last.wallMs);
    if (maxWall === this.last.wallMs && maxWall === r.wallMs) {
      this.last = { wallMs: maxWall, counter: Math.max(this.last.counter, r.counter) };
    } else if (maxWall === this.last.wallMs) {
      this.last = { ...this.last };
    } else if (maxWall === r.wallMs) {
      this.last = { wallMs: maxWall, counter: r.counter };
    } else {
      this.last = { wallMs: maxWall, counter: 0 };
    }
  }

  current(): string {
    return formatHlc(this.last);
  }

  private bump(h: HlcValue): HlcValue {
    // The counter overflows only if a million events share one millisecond; borrowing the next
    // millisecond keeps the order strict instead of failing the append.
    return h.counter >= MAX_COUNTER
      ? { wallMs: h.wallMs + 1, counter: 0 }
      : { wallMs: h.wallMs, counter: h.counter + 1 };
  }
}
