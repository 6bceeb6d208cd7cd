import { Badge, Checkbox, Group, NativeSelect, Paper, Stack, Text } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useVirtualizer } from '@tanstack/react-virtual';
import { memo, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { PageTitle } from '../../components/PageTitle.tsx';
import { NOTES_WITHHELD } from '../../components/SpecialNotes.tsx';
import { formatDeathDate } from '../../components/PatientIdentity.tsx';
import { timingAt, TimingBadge, TIMING_WORDS, type Timing } from '../../components/Timing.tsx';
import { api, ApiError, isServerUnavailable } from '../../lib/api.ts';
import { useCaseEvents, useNow } from '../../lib/live.ts';
import { ageWords, unavailableWords, useReachability } from '../../lib/reachability.ts';
import { siteName, useSites } from '../../lib/queries.ts';
import { Link, navigate } from '../../lib/router.tsx';
import { useSession, useUser } from '../../lib/session.tsx';
import { londonWhen } from '../../lib/time.ts';
import type { CaseDetail, QueueCase, QueuePatient, QueueResponse } from '../../lib/types.ts';
import { news2BadgeText } from './News2Panel.tsx';
import { provisionalRow, queueRowFrom, timesOf, upsertRow } from './queueModel.ts';

/** One line per case: 15 or more rows fit at 1366×768 (a call-centre monitor). */
const ROW_HEIGHT = 28;
/** The column headings above the rows, inside the scrolled box (app.css .queue-columns). */
const COLUMNS_HEIGHT = 26;

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
  // Memoised: the list re-renders on every scroll frame, and these walk every case.
  const shown = useMemo(
    () => (filters.timing ? withTiming.filter((r) => r.timing === filters.timing) : withTiming),
    [withTiming, filters.timing],
  );
  // The summary counts what the filters show, never the whole queue behind them.
  const counts = useMemo(() => {
    const n = { breached: 0, at_risk: 0, on_time: 0 };
    for (const r of shown) n[r.timing]++;
    return n;
  }, [shown]);
  const filtered = !!(filters.siteId || filters.skillSet || filters.mine || filters.timing);
  const skillSets = useMemo(
    () => [...new Set(all.map((c) => c.disposition.skillSet).filter((s): s is string => !!s))].sort(),
    [all],
  );

  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: shown.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 4,
    // The list starts below the column headings: rows become visible where they really are.
    scrollMargin: COLUMNS_HEIGHT,
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
    <Stack gap="xs">
      {/* Title, summary and filters kept to a few lines: the rows are what the screen is for. */}
      <Group justify="space-between" wrap="nowrap" align="center">
        <PageTitle>CAS queue</PageTitle>
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
        px="sm"
        py={4}
        component="form"
        aria-label="Queue filters"
        onSubmit={(e) => e.preventDefault()}
      >
        <Group justify="space-between" align="flex-end" wrap="wrap">
          <Text
            role="status"
            aria-live="polite"
            data-testid="queue-summary"
            data-stale={unread && !!queue.data}
            fw={700}
            mb={4}
          >
            {unread && !queue.data
              ? `The queue could not be read — ${unavailableWords(reachability)}. No list has been read yet; it is read again by itself.`
              : queue.isPending
                ? 'Loading the queue…'
                : unread
                  ? `Last read ${ageWords(queue.dataUpdatedAt, now - offset.current)} — ${unavailableWords(reachability)}. Showing the last list read (${shown.length} ${shown.length === 1 ? 'case' : 'cases'}${filtered ? ', filtered' : ''}): it may have changed since.`
                  : `${shown.length} ${shown.length === 1 ? 'case' : 'cases'}: ${counts.breached} breached, ${counts.at_risk} at risk, ${counts.on_time} on time${filtered ? ' (filtered)' : ''}`}
          </Text>
          <Group align="flex-end" wrap="wrap" gap="sm">
            <NativeSelect
              size="xs"
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
              size="xs"
              label="Skill set"
              data={[
                { value: '', label: 'All skill sets' },
                ...skillSets.map((s) => ({ value: s, label: s.replace(/_/g, ' ') })),
              ]}
              value={filters.skillSet}
              onChange={(e) => set('skillSet', e.currentTarget.value)}
            />
            <NativeSelect
              size="xs"
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
                size="xs"
                label="Only cases I hold"
                checked={filters.mine}
                onChange={(e) => set('mine', e.currentTarget.checked)}
                mb={6}
              />
            )}
          </Group>
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
        style={{ height: 'calc(100vh - 290px)', minHeight: 320, overflow: 'auto' }}
        data-testid="queue-scroll"
        tabIndex={-1}
      >
        <div className="queue-columns" aria-hidden="true">
          <span>Deadline</span>
          <span>Patient</span>
          <span>Age/sex</span>
          <span>Flags</span>
          <span>NEWS2</span>
          <span>Problem · disposition</span>
          <span>Site</span>
          <span>Held by</span>
          <span />
        </div>
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
                start={item.start - COLUMNS_HEIGHT}
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

const SEX_SHORT: Record<QueuePatient['sex'], string> = {
  female: 'F',
  male: 'M',
  other: 'other',
  unknown: 'sex unknown',
};
const SEX_WORDS: Record<QueuePatient['sex'], string> = {
  female: 'female',
  male: 'male',
  other: 'other',
  unknown: 'sex not known',
};
const NOTE_FLAGS: Record<NonNullable<Exclude<QueuePatient['specialNotes'], 'withheld'>>[number], string> = {
  dnacpr: 'DNACPR',
  end_of_life: 'End of life',
  safeguarding: 'Safeguarding',
  care_plan: 'Care plan',
  other: 'Special note',
};

/**
 * One case of the virtualised list, on one line (plain elements, not components: rows are mounted
 * as the list scrolls, and every one costs frames): deadline state, patient (name, age, sex), flags,
 * NEWS2 (a partial set as partial), problem and disposition, site, and who holds it by name.
 * Memoised so scrolling renders only the rows that appear.
 */
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
  const deadline = londonWhen(c.deadline, nowDay);
  const news2Badge = news2BadgeText(c.news2, c.news2NotApplicable);
  const p = c.patient;
  const who = p ? p.name : `Not identified (caller ${c.callerName ?? 'not shown'})`;
  const holder = mine
    ? 'Held by you'
    : c.claimedBy
      ? `Held by ${c.claimedBy === 'pending' || !c.claimedByName ? 'a clinician' : c.claimedByName}`
      : 'Waiting: not held';
  return (
    <li
      className="queue-row"
      data-case-id={c.caseId}
      data-timing={timing}
      data-status={c.status}
      aria-setsize={setSize}
      aria-posinset={index + 1}
      style={{ height: ROW_HEIGHT, transform: `translateY(${start}px)` }}
    >
      <span
        className="queue-cell"
        data-col="deadline"
        title={`Received ${londonWhen(c.receivedAt, nowDay)} · deadline ${deadline}`}
      >
        <TimingBadge timing={timing} remainingSeconds={remaining} compact />
        {/* The times themselves (GMT or BST named) for screen readers; on screen, on hover. */}
        <span className="visually-hidden" data-testid="queue-times">
          received {londonWhen(c.receivedAt, nowDay)} · deadline {deadline}
        </span>
      </span>
      <span className="queue-cell queue-strong" data-col="patient" title={who}>
        {who}
      </span>
      <span className="queue-cell" data-col="age-sex">
        {p ? (
          <>
            <span aria-hidden="true">
              {p.ageYears} {SEX_SHORT[p.sex]}
            </span>
            <span className="visually-hidden">
              {p.ageYears} years, {SEX_WORDS[p.sex]}
            </span>
          </>
        ) : (
          '—'
        )}
      </span>
      <span className="queue-cell queue-flags" data-col="flags">
        {c.escalated && <span className="queue-flag queue-flag-alarm">Escalated</span>}
        {p?.specialNotes === 'withheld' ? (
          <span className="queue-flag queue-flag-withheld">{NOTES_WITHHELD}</span>
        ) : (
          p?.specialNotes.map((kind) => (
            <span key={kind} className="queue-flag queue-flag-note">
              {NOTE_FLAGS[kind]}
            </span>
          ))
        )}
        {p?.repeatCaller && <span className="queue-flag">Repeat caller</span>}
        {c.patientDeceasedAt && (
          <span className="queue-flag queue-flag-alarm">Died {formatDeathDate(c.patientDeceasedAt)}</span>
        )}
        {c.ambulanceValidation && (
          <span className="queue-flag">
            999 Cat {c.ambulanceValidation.category} · {c.ambulanceValidation.incidentReference}
          </span>
        )}
        {c.failedCallbackAttempts > 0 && (
          <span className="queue-flag">{c.failedCallbackAttempts} failed call-backs</span>
        )}
      </span>
      <span className="queue-cell" data-col="news2" data-testid="queue-news2">
        {news2Badge ?? 'No NEWS2'}
      </span>
      <span
        className="queue-cell"
        data-col="disposition"
        title={`${c.presentingComplaint} · ${c.disposition.label ?? 'No disposition label'}`}
      >
        {c.presentingComplaint} · {c.disposition.label ?? 'No disposition label'}
        {c.disposition.notice ? ' (sample, not clinically validated)' : ''}
      </span>
      <span className="queue-cell" data-col="site" title={site}>
        {site}
      </span>
      <span className="queue-cell" data-col="holder" title={holder}>
        {holder}
      </span>
      <span className="queue-cell queue-actions">
        {canWork && c.status === 'queued' && (
          <button
            type="button"
            className="queue-button queue-button-primary"
            onClick={() => void onClaim(c.caseId)}
            aria-label={`Claim: ${who}, ${c.presentingComplaint}, deadline ${deadline}`}
          >
            Claim
          </button>
        )}
        <Link
          className="queue-button"
          to={canWork ? `/queue/${c.caseId}` : `/cases/${c.caseId}`}
          aria-label={`Open: ${who}, ${c.presentingComplaint}, deadline ${deadline}`}
        >
          Open
        </Link>
      </span>
    </li>
  );
});
