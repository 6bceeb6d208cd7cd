// The simulator's duration rule in a module of its own: the CLI checks `--duration` while it parses
// its arguments, which must not load the simulator (and the triage engine it runs) for every command.

/** The longest run allowed. */
export const MAX_DURATION_MS = 24 * 3_600_000;

/** `90s`, `30m`, `2h`, `1h30m` → milliseconds (at least 1 s, at most 24 h). */
export function parseDuration(text: string): number {
  const m = /^\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$/.exec(text);
  if (!m || (!m[1] && !m[2] && !m[3]))
    throw new Error(`a duration looks like 90s, 30m, 2h or 1h30m, got ${JSON.stringify(text)}`);
  const ms = (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000;
  if (ms < 1000) throw new Error('a duration must be at least 1s');
  if (ms > MAX_DURATION_MS) throw new Error('a duration can be at most 24h');
  return ms;
}
