import { Button, Group, Text } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useEffect, useMemo } from 'react';
import { api, apiOptional, routeExists } from '../lib/api.ts';
import { useKeptDowntimePack, type KeptPack } from '../lib/downtime-pack.ts';
import { useNow } from '../lib/live.ts';
import { ageWords, capitalised, unavailableWords, useReachability } from '../lib/reachability.ts';
import { useSession, useUser } from '../lib/session.tsx';
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
 * Any request of any screen that gets no answer or a 5xx turns it degraded at once (see
 * `reportRequestOutcome`); it says connected again only after a request succeeds. While degraded it
 * asks the server every few seconds, so it notices the server's return by itself.
 */
export function ContinuityStatus() {
  const session = useSession();
  const user = useUser();
  const reachability = useReachability();
  const degraded = reachability.failingSince !== null;
  const sync = useQuery({
    queryKey: ['sync-status'],
    queryFn: () => apiOptional<SyncStatus>('/api/v1/sync/status'),
    refetchInterval: degraded ? RETRY_WHILE_DEGRADED_MS : 10_000,
    refetchIntervalInBackground: true,
    retry: false,
  });
  const packRoute = useQuery({
    queryKey: ['route', 'downtime-pack'],
    queryFn: () => routeExists('GET', '/api/v1/downtime-pack.pdf'),
    staleTime: Infinity,
    retry: 3,
  });
  const mayReadPack = session.can('downtime.pack') && packRoute.data === true;
  const kept = useKeptDowntimePack(user.userId, mayReadPack);
  const now = useNow(5_000);

  let level: ContinuityLevel = 'ok';
  let text = 'Checking connection…';
  if (degraded) {
    level = 'bad';
    text = `${capitalised(unavailableWords(reachability))} since ${londonTime(reachability.failingSince!)} · saving is paused; screens show what was last read and retry by themselves · use the downtime pack if it does not come back`;
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
      {/* While connected, only the download (the kept copy changes nothing on screen: a button
          appearing when a pack arrives would move the page under the adviser's pointer); while
          degraded, the kept copy with its age. */}
      {mayReadPack && !degraded && (
        <Button
          component="a"
          href="/api/v1/downtime-pack.pdf"
          size="compact-sm"
          variant="default"
          download
          data-testid="downtime-pack-download"
          data-kept-at={kept ? new Date(kept.keptAt).toISOString() : undefined}
          title={
            kept
              ? `A copy from ${londonTime(kept.keptAt)} is kept in this browser for when the server is not answering`
              : undefined
          }
        >
          Download downtime pack (PDF)
        </Button>
      )}
      {degraded && kept && <KeptPackLink pack={kept} nowMs={now} />}
      {degraded && !kept && mayReadPack && (
        <Text size="sm" fw={700}>
          No downtime pack is kept in this browser: use the printed one
        </Text>
      )}
    </Group>
  );
}

/** Asked this often while requests fail, so the line turns back as soon as the server answers. */
const RETRY_WHILE_DEGRADED_MS = 3_000;

/**
 * The pack this browser kept, saved from memory (an object URL): it works with the node down. A
 * download, not a new tab: the new tab would inherit this page's CSP (object-src 'none'), under
 * which a PDF viewer may not start. Its age is part of its name and of the file's, so nobody takes an
 * old pack for a current one.
 */
function KeptPackLink({ pack, nowMs }: { pack: KeptPack; nowMs: number }) {
  const url = useMemo(() => URL.createObjectURL(pack.pdf), [pack.pdf]);
  // Freed a minute after it is replaced or gone: a download begun from it must be able to finish.
  useEffect(() => () => void setTimeout(() => URL.revokeObjectURL(url), 60_000), [url]);
  return (
    <Button
      component="a"
      href={url}
      download={`downtime-pack-kept-${new Date(pack.keptAt).toISOString().slice(0, 16).replace(/[-:]/g, '')}Z.pdf`}
      size="compact-sm"
      variant="filled"
      data-testid="kept-downtime-pack"
      data-kept-at={new Date(pack.keptAt).toISOString()}
    >
      Open the downtime pack from {londonTime(pack.keptAt)} ({ageWords(pack.keptAt, nowMs)})
    </Button>
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
