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
  since: string | null;
  lastSuccessAt: string | null;
  unsentEvents: number;
  sites: { node: string; connected: boolean }[];
}

const events = (n: number) => `${n} ${n === 1 ? 'event' : 'events'}`;

export function describeSync(status: SyncStatus): { ok: boolean; text: string } {
  if (!status.peer) {
    if (status.role === 'hub') {
      const up = status.sites.filter((s) => s.connected).length;
      return {
        ok: true,
        text: `Connected · this is the hub; ${up} of ${status.sites.length} sites connected`,
      };
    }
    return { ok: true, text: 'Connected (this server works on its own: no hub configured)' };
  }
  if (status.connected) {
    return {
      ok: true,
      text:
        status.unsentEvents > 0
          ? `Connected to the hub · sending ${events(status.unsentEvents)}`
          : 'Connected to the hub · everything sent',
    };
  }
  const since = status.since ? ` since ${londonTime(status.since)}` : '';
  return {
    ok: false,
    text: `Hub unreachable${since} · ${events(status.unsentEvents)} not yet sent · you can carry on working here`,
  };
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

  let ok = true;
  let text = 'Checking connection…';
  if (serverDownSince !== null) {
    ok = false;
    text = `This server is not answering since ${londonTime(serverDownSince)} · use the downtime pack if it does not come back`;
  } else if (sync.isSuccess) {
    if (sync.data === null) text = 'Connected (this server works on its own: no hub configured)';
    else ({ ok, text } = describeSync(sync.data));
  } else if (sync.isError) {
    text = 'Connection status unknown';
  }

  return (
    <Group
      justify="space-between"
      wrap="nowrap"
      gap="sm"
      px="md"
      py={6}
      className={ok ? 'status-ok' : 'status-bad'}
    >
      <Text size="sm" role="status" aria-live="polite" data-testid="continuity-status">
        <span aria-hidden="true">{ok ? '● ' : '▲ '}</span>
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
