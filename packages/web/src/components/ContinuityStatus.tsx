import { Button, Group, Text } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { api, ApiError, apiOptional, routeExists } from '../lib/api.ts';
import { londonTime } from '../lib/time.ts';

/** GET /api/v1/sync/status (packages/server/src/sync/status.ts SyncStatusReport), the fields shown. */
interface SyncStatus {
  role: string;
  peer: { node: string; url: string } | null;
  connected: boolean;
  /** Older servers do not send these: treated as "no alarm, no known problem". */
  state?: 'ok' | 'failed' | 'refused' | 'never';
  problem?: string | null;
  lastAttemptAt?: string | null;
  alarms?: { kind: string; raisedAt: string }[];
  since: string | null;
  lastSuccessAt: string | null;
  unsentEvents: number;
  sites: { node: string; connected: boolean }[];
}

const events = (n: number) => `${n} ${n === 1 ? 'event' : 'events'}`;

/** ok: green; bad: amber (work goes on here); alarm: red (work recorded here will not reach the hub). */
export type ContinuityLevel = 'ok' | 'bad' | 'alarm';

export function describeSync(status: SyncStatus): { level: ContinuityLevel; text: string } {
  const alarm = status.alarms?.find((a) => a.kind === 'history_refused');
  if (alarm)
    return {
      level: 'alarm',
      text: `ALARM since ${londonTime(alarm.raisedAt)}: the hub refuses this server's records · work recorded here will not reach the hub · record new work at another site or on paper and tell your shift manager and IT now`,
    };
  if (!status.peer) {
    if (status.role === 'hub') {
      const up = status.sites.filter((s) => s.connected).length;
      return {
        level: 'ok',
        text: `Connected · this is the hub; ${up} of ${status.sites.length} sites connected`,
      };
    }
    return { level: 'ok', text: 'Connected (this server works on its own: no hub configured)' };
  }
  if (status.connected) {
    return {
      level: 'ok',
      text:
        status.unsentEvents > 0
          ? `Connected to the hub · sending ${events(status.unsentEvents)}`
          : 'Connected to the hub · everything sent',
    };
  }
  const since = status.since ? ` since ${londonTime(status.since)}` : '';
  const tried = status.lastAttemptAt ? ` · last tried ${londonTime(status.lastAttemptAt)}` : '';
  const waiting = `${events(status.unsentEvents)} not yet sent · you can carry on working here`;
  if (status.problem === 'hub_key_changed')
    return {
      level: 'bad',
      text: `Not syncing${since}: the hub's identity has changed · ${waiting} · IT must confirm the hub's new key${tried}`,
    };
  if (status.state === 'refused')
    return { level: 'bad', text: `The hub refuses to sync${since} · ${waiting} · IT can see why${tried}` };
  if (status.state === 'never') return { level: 'bad', text: `Not yet synced with the hub · ${waiting}` };
  return { level: 'bad', text: `Hub unreachable${since} · ${waiting}${tried}` };
}

/**
 * The continuity line on every page: connected, or since when the hub has been unreachable and how
 * many events wait to be sent. Without a sync route (a single node) it reports this server only.
 */
export function ContinuityStatus() {
  const [serverDownSince, setServerDownSince] = useState<number | null>(null);
  const sync = useQuery({
    queryKey: ['sync-status'],
    queryFn: () => apiOptional<SyncStatus>('/api/v1/sync/status'),
    refetchInterval: 10_000,
    retry: false,
  });
  const pack = useQuery({
    queryKey: ['route', 'downtime-pack'],
    queryFn: () => routeExists('GET', '/api/v1/downtime-pack.pdf'),
    staleTime: Infinity,
    retry: false,
  });

  const unreachable = sync.error instanceof ApiError && sync.error.status === 0;
  useEffect(() => {
    if (unreachable) setServerDownSince((since) => since ?? Date.now());
    else if (sync.isSuccess) setServerDownSince(null);
  }, [unreachable, sync.isSuccess, sync.dataUpdatedAt]);

  let level: ContinuityLevel = 'ok';
  let text = 'Checking connection…';
  if (serverDownSince !== null) {
    level = 'bad';
    text = `This server is not answering since ${londonTime(serverDownSince)} · use the downtime pack if it does not come back`;
  } else if (sync.isSuccess) {
    if (sync.data === null) text = 'Connected (this server works on its own: no hub configured)';
    else ({ level, text } = describeSync(sync.data));
  } else if (sync.isError) {
    text = 'Connection status unknown';
  }

  return (
    <Group justify="space-between" wrap="nowrap" gap="sm" px="md" py={6} className={`status-${level}`}>
      <Text
        size="sm"
        role="status"
        aria-live={level === 'alarm' ? 'assertive' : 'polite'}
        data-testid="continuity-status"
        data-level={level}
      >
        <span aria-hidden="true">{level === 'ok' ? '● ' : level === 'alarm' ? '■ ' : '▲ '}</span>
        <strong>Continuity:</strong> {text}
      </Text>
      {pack.data === true && (
        <Button component="a" href="/api/v1/downtime-pack.pdf" size="compact-sm" variant="default" download>
          Download downtime pack (PDF)
        </Button>
      )}
    </Group>
  );
}

/** Used by screens that must fall back when the API is away. */
export async function serverAnswers(): Promise<boolean> {
  try {
    await api('GET', '/health');
    return true;
  } catch {
    return false;
  }
}
