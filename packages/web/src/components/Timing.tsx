import { Badge } from '@mantine/core';
import { memo } from 'react';
import { duration } from '../lib/time.ts';

export type Timing = 'on_time' | 'at_risk' | 'breached';

/** At risk: less than a fifth of the window left (core/queue/priority.ts AT_RISK_FRACTION). */
export function timingAt(deadlineMs: number, receivedMs: number, nowMs: number): Timing {
  const remaining = deadlineMs - nowMs;
  if (remaining < 0) return 'breached';
  return remaining * 5 < deadlineMs - receivedMs ? 'at_risk' : 'on_time';
}

const WORDS: Record<Timing, string> = { on_time: 'On time', at_risk: 'At risk', breached: 'Breached' };
const ICONS: Record<Timing, string> = { on_time: '✓', at_risk: '!', breached: '✕' };
const COLORS: Record<Timing, string> = { on_time: '#1b5e20', at_risk: '#8a4b00', breached: '#a51d1d' };

/**
 * The state of a case against its deadline, in words and a sign as well as colour (never by colour
 * alone), with the time left or overdue.
 */
export function TimingBadge({
  timing,
  remainingSeconds,
  compact = false,
}: {
  timing: Timing;
  remainingSeconds: number;
  /** A smaller, plain badge for one-line rows (the queue); the same words and sign. */
  compact?: boolean;
}) {
  const left =
    remainingSeconds < 0 ? `${duration(-remainingSeconds)} overdue` : `${duration(remainingSeconds)} left`;
  if (compact)
    // Plain elements: a dense list mounts rows as it scrolls, and a component badge costs frames.
    return (
      <span className={`timing-${timing}`} data-timing={timing}>
        <span className={`timing-chip timing-chip-${timing}`}>
          <span aria-hidden="true">{ICONS[timing]} </span>
          {WORDS[timing]}
        </span>{' '}
        <span>{left}</span>
      </span>
    );
  return (
    <span className={`timing-${timing}`} data-timing={timing}>
      <TimingWords timing={timing} /> <span>{left}</span>
    </span>
  );
}

/** The badge's words and sign: drawn again when the state changes, not as the seconds count. */
const TimingWords = memo(function TimingWords({ timing }: { timing: Timing }) {
  return (
    <Badge
      color={COLORS[timing]}
      variant={timing === 'on_time' ? 'outline' : 'filled'}
      radius="sm"
      size="md"
      leftSection={<span aria-hidden="true">{ICONS[timing]}</span>}
    >
      {WORDS[timing]}
    </Badge>
  );
});

export const TIMING_WORDS = WORDS;
