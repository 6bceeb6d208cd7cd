import { Badge, Button, Checkbox, Group, NativeSelect, Paper, Stack, Text } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useVirtualizer } from '@tanstack/react-virtual';
import { memo, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { PageTitle } from '../../components/PageTitle.tsx';
import { formatDeathDate } from '../../components/PatientIdentity.tsx';
import { timingAt, TimingBadge, TIMING_WORDS, type Timing } from '../../components/Timing.tsx';
import { api, ApiError, isServerUnavailable } from '../../lib/api.ts';
import { useCaseEvents, useNow } from '../../lib/live.ts';
import { ageWords, unavailableWords, useReachability } from '../../lib/reachability.ts';
import { siteName, STATUS_LABELS, useSites } from '../../lib/queries.ts';
import { Link, navigate } from '../../lib/router.tsx';
import { useSession, useUser } from '../../lib/session.tsx';
import { londonWhen } from '../../lib/time.ts';
import type { CaseDetail, QueueCase, QueueResponse } from '../../lib/types.ts';
import { news2BadgeText } from './News2Panel.tsx';
import { provisionalRow, queueRowFrom, timesOf, upsertRow } from './queueModel.ts';

const ROW_HEIGHT = 96;

interface Filters {
  siteId: string;
  skillSet: string;
  mine: boolean;
  timing: '' | Timing;
}

/**
 * The CAS queue, live: a full read, then each server-sent case event re-reads that one case and
 * moves its row (so an update shows in milliseconds even with thousands of cases); a full read
 * again every minute and after a dropped connection. Countdowns tick every second. The list is
 * virtualised: only the rows on screen exist in the page.
 */
export function Queue() {
  const session = useSession();
  const user = useUser();
  const sites = useSites();
  const queryClient = useQueryClient();
  const [filters, setFilters] = useState<Filters>({ siteId: '', skillSet: '', mine: false, timing: '' });
  const queryKey = useMemo(
    () => ['queue', filters.siteId, filters.skillSet, filters.mine],
    [filters.siteId, filters.skillSet, filters.mine],
  );
  const offset = useRef(0);
  const queue = useQuery({
    queryKey,
    queryFn: async () => {
      const params = new URLSearchParams();
      if (filters.siteId) params.set('siteId', filters.siteId);
      if (filters.skillSet) params.set('skillSet', filters.skillSet);
      if (filters.mine) params.set('mine', 'true');
      const r = await api<QueueResponse>('GET', `/api/v1/queue${params.size ? `?${params}` : ''}`);
      // The server's clock decides deadlines; count down against it.
      offset.current = Date.parse(r.now) - Date.now();
      return r.cases;
    },
    refetchInterval: 60_000,
  });
  const now = useNow(1000) + offset.current;

  const inFlight = useRef(new Map<string, boolean>());
  const refreshCase = useCallback(
    async (caseId: string) => {
      if (inFlight.current.has(caseId)) {
        inFlight.current.set(caseId, true); // read again when this read ends
        return;
      }
      inFlight.current.set(caseId, false);
      try {
        let row: QueueCase | null = null;
        try {
          row = queueRowFrom(
            await api<CaseDetail>('GET', `/api/v1/cases/${caseId}`),
            Date.now() + offset.current,
          );
        } catch (error) {
          if (!(error instanceof ApiError && (error.status === 404 || error.status === 403))) throw error;
        }
        if (row && filters.siteId && row.siteId !== filters.siteId) row = null;
        // The queue is the work of one's own sites (the server scopes it the same way).
        if (row && !session.can('queue.all_sites') && !user.siteIds.includes(row.siteId)) row = null;
        if (row && filters.skillSet && row.disposition.skillSet !== filters.skillSet) row = null;
        if (row && filters.mine && row.claimedBy !== user.userId) row = null;
        queryClient.setQueryData<QueueCase[]>(queryKey, (list) =>
          list ? upsertRow(list, caseId, row) : list,
        );
      } finally {
        const again = inFlight.current.get(caseId);
        inFlight.current.delete(caseId);
        if (again) void refreshCase(caseId);
      }
    },
    [filters, queryClient, queryKey, user.userId, user.siteIds, session],
  );

  const live = useCaseEvents(
    (event) => {
      const caseId = event.caseId;
      if (!caseId) return;
      queryClient.setQueryData<QueueCase[]>(queryKey, (list) => {
        const row = list?.find((c) => c.caseId === caseId);
        if (!list || !row) return list;
        const next = provisionalRow(row, event.type);
        return next === undefined ? list : upsertRow(list, caseId, next);
      });
      void refreshCase(caseId).catch(() => undefined);
    },
    () => void queue.refetch(),
  );

  // Not read now: the last read failed, or any request to the server is failing. The list then is
  // the last one read, said so with its age; with none read yet there is no count to give (never 0).
  const reachability = useReachability();
  const unread = queue.isError || reachability.failingSince !== null;
  const { refetch, isError } = queue;
  useEffect(() => {
    // The server answers again: read the queue now, not at the next minute.
    if (reachability.failingSince === null && isError) void refetch();
  }, [reachability.failingSince, isError, refetch]);
  const all = queue.data ?? [];
  const withTiming = useMemo(
    () =>
      all.map((c) => {
        const { deadlineMs, receivedMs } = timesOf(c);
        return {
          c,
          timing: timingAt(deadlineMs, receivedMs, now),
          remaining: Math.round((deadlineMs - now) / 1000),
        };
      }),
    [all, now],
  );
  const shown = filters.timing ? withTiming.filter((r) => r.timing === filters.timing) : withTiming;
  const counts = { breached: 0, at_risk: 0, on_time: 0 };
  for (const r of withTiming) counts[r.timing]++;
  const skillSets = [
    ...new Set(all.map((c) => c.disposition.skillSet).filter((s): s is string => !!s)),
  ].sort();

  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: shown.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 6,
  });

  const [claimProblem, setClaimProblem] = useState<string | null>(null);
  const claim = useCallback(
    async (caseId: string) => {
      setClaimProblem(null);
      try {
        await api('POST', `/api/v1/cases/${caseId}/claim`);
        navigate(`/queue/${caseId}`);
      } catch (error) {
        setClaimProblem(
          error instanceof ApiError && error.status === 409
            ? 'Another clinician has just claimed that case. Choose another.'
            : error instanceof ApiError
              ? error.plain()
              : 'The case could not be claimed.',
        );
        void refreshCase(caseId);
      }
    },
    [refreshCase],
  );

  const canWork = session.can('queue.work');
  // Rows re-render when their own data or second changes; the day only matters for date labels.
  const nowDay = Math.floor(now / 3_600_000) * 3_600_000;

  const set = <K extends keyof Filters>(key: K, value: Filters[K]) =>
    setFilters((f) => ({ ...f, [key]: value }));

  return (
    <Stack>
      <PageTitle>CAS queue</PageTitle>
      <Group justify="space-between" wrap="wrap">
        <Text
          role="status"
          aria-live="polite"
          data-testid="queue-summary"
          data-stale={unread && !!queue.data}
        >
          {unread && !queue.data
            ? `The queue could not be read — ${unavailableWords(reachability)}. No list has been read yet; it is read again by itself.`
            : queue.isPending
              ? 'Loading the queue…'
              : unread
                ? `Last read ${ageWords(queue.dataUpdatedAt, now - offset.current)} — ${unavailableWords(reachability)}. Showing the last list read (${all.length} ${all.length === 1 ? 'case' : 'cases'}): it may have changed since.`
                : `${all.length} ${all.length === 1 ? 'case' : 'cases'}: ${counts.breached} breached, ${counts.at_risk} at risk, ${counts.on_time} on time`}
        </Text>
        <Badge
          variant={live === 'live' ? 'outline' : 'filled'}
          color={live === 'live' ? '#1b5e20' : '#8a4b00'}
          data-testid="queue-live"
          data-live={live}
        >
          {live === 'live'
            ? 'Live: updates without reloading'
            : live === 'connecting'
              ? 'Connecting to live updates…'
              : 'Live updates lost: reconnecting…'}
        </Badge>
      </Group>
      <Paper
        withBorder
        p="sm"
        component="form"
        aria-label="Queue filters"
        onSubmit={(e) => e.preventDefault()}
      >
        <Group align="flex-end" wrap="wrap">
          <NativeSelect
            label="Site"
            data={[
              { value: '', label: 'All sites' },
              ...(sites.data ?? [])
                .filter((s) => session.can('queue.all_sites') || user.siteIds.includes(s.siteId))
                .map((s) => ({ value: s.siteId, label: s.name })),
            ]}
            value={filters.siteId}
            onChange={(e) => set('siteId', e.currentTarget.value)}
          />
          <NativeSelect
            label="Skill set"
            data={[
              { value: '', label: 'All skill sets' },
              ...skillSets.map((s) => ({ value: s, label: s.replace(/_/g, ' ') })),
            ]}
            value={filters.skillSet}
            onChange={(e) => set('skillSet', e.currentTarget.value)}
          />
          <NativeSelect
            label="Deadline state"
            data={[
              { value: '', label: 'All states' },
              { value: 'breached', label: 'Breached' },
              { value: 'at_risk', label: 'At risk' },
              { value: 'on_time', label: 'On time' },
            ]}
            value={filters.timing}
            onChange={(e) => set('timing', e.currentTarget.value as Filters['timing'])}
          />
          {session.can('queue.work') && (
            <Checkbox
              label="Only cases I hold"
              checked={filters.mine}
              onChange={(e) => set('mine', e.currentTarget.checked)}
              mb={8}
            />
          )}
        </Group>
      </Paper>
      {claimProblem && (
        <Text c="red.9" role="alert" fw={700}>
          {claimProblem}
        </Text>
      )}
      {queue.isError && !isServerUnavailable(queue.error) && (
        <Text c="red.9" role="alert">
          The queue could not be read: {queue.error.message}
        </Text>
      )}
      {queue.isSuccess && shown.length === 0 && <Text>No cases match.</Text>}
      <div
        ref={scrollRef}
        className="queue-scroll"
        style={{ height: 'calc(100vh - 330px)', minHeight: 320, overflow: 'auto' }}
        data-testid="queue-scroll"
        tabIndex={-1}
      >
        <ul
          aria-label="Cases in the queue, most urgent first"
          style={{
            height: virtualizer.getTotalSize(),
            position: 'relative',
            margin: 0,
            padding: 0,
            listStyle: 'none',
          }}
        >
          {virtualizer.getVirtualItems().map((item) => {
            const { c, timing, remaining } = shown[item.index]!;
            return (
              <QueueRow
                key={c.caseId}
                c={c}
                timing={timing}
                remaining={remaining}
                index={item.index}
                setSize={shown.length}
                start={item.start}
                nowDay={nowDay}
                mine={c.claimedBy === user.userId}
                site={siteName(sites.data, c.siteId)}
                canWork={canWork}
                onClaim={claim}
              />
            );
          })}
        </ul>
      </div>
      <Text size="sm" c="dimmed">
        States: {Object.values(TIMING_WORDS).join(', ')}. At risk means less than a fifth of the time allowed
        is left. Times are UK time.
      </Text>
    </Stack>
  );
}

interface QueueRowProps {
  c: QueueCase;
  timing: Timing;
  remaining: number;
  index: number;
  setSize: number;
  start: number;
  nowDay: number;
  mine: boolean;
  site: string;
  canWork: boolean;
  onClaim: (caseId: string) => Promise<void>;
}

/** One case of the virtualised list; memoised so scrolling renders only the rows that appear. */
const QueueRow = memo(function QueueRow({
  c,
  timing,
  remaining,
  index,
  setSize,
  start,
  nowDay,
  mine,
  site,
  canWork,
  onClaim,
}: QueueRowProps) {
  const held = c.claimedBy !== null;
  const deadline = londonWhen(c.deadline, nowDay);
  const news2Badge = news2BadgeText(c.news2, c.news2NotApplicable);
  return (
    <li
      className="queue-row"
      data-case-id={c.caseId}
      data-timing={timing}
      data-status={c.status}
      aria-setsize={setSize}
      aria-posinset={index + 1}
      style={{
        position: 'absolute',
        top: 0,
        left: 0,
        right: 0,
        height: ROW_HEIGHT,
        transform: `translateY(${start}px)`,
        padding: '6px 10px',
      }}
    >
      <Group justify="space-between" wrap="nowrap" align="flex-start" h="100%">
        <Stack gap={2} style={{ minWidth: 0 }}>
          <Group gap="xs" wrap="nowrap">
            <TimingBadge timing={timing} remainingSeconds={remaining} />
            {c.escalated && (
              <Badge color="#a51d1d" variant="filled" radius="sm">
                Escalated: welfare check
              </Badge>
            )}
            {news2Badge && (
              <Badge color="dark" variant="outline" radius="sm" data-testid="queue-news2">
                {news2Badge}
              </Badge>
            )}
            {c.patientDeceasedAt && (
              <Badge color="#8a1c1c" variant="filled" radius="sm">
                Patient died {formatDeathDate(c.patientDeceasedAt)}
              </Badge>
            )}
            {c.ambulanceValidation && (
              <Badge color="dark" variant="outline" radius="sm">
                999 validation · Cat {c.ambulanceValidation.category} · incident{' '}
                {c.ambulanceValidation.incidentReference}
              </Badge>
            )}
          </Group>
          <Text fw={700} truncate>
            {c.presentingComplaint} · {c.disposition.label ?? 'No disposition label'}
          </Text>
          <Text size="sm" truncate>
            {site} · received {londonWhen(c.receivedAt, nowDay)} · deadline {deadline} ·{' '}
            {mine
              ? 'held by you'
              : held
                ? 'held by another clinician'
                : (STATUS_LABELS[c.status] ?? c.status)}
            {c.failedCallbackAttempts > 0 ? ` · ${c.failedCallbackAttempts} failed call-backs` : ''}
            {c.disposition.notice ? ' · sample, not clinically validated' : ''}
          </Text>
        </Stack>
        <Group gap="xs" wrap="nowrap">
          {canWork && c.status === 'queued' && (
            <Button
              size="compact-md"
              onClick={() => void onClaim(c.caseId)}
              aria-label={`Claim: ${c.presentingComplaint}, deadline ${deadline}`}
            >
              Claim
            </Button>
          )}
          <Button
            size="compact-md"
            variant="default"
            component={Link}
            to={canWork ? `/queue/${c.caseId}` : `/cases/${c.caseId}`}
            aria-label={`Open: ${c.presentingComplaint}, deadline ${deadline}`}
          >
            Open
          </Button>
        </Group>
      </Group>
    </li>
  );
});
