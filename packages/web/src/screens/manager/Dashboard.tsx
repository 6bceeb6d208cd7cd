import { caseReference, ROLE_LABELS, type Role } from '@holdfast/core';
import { LineChart } from '@mantine/charts';
import {
  Alert,
  Badge,
  Button,
  Group,
  NativeSelect,
  Paper,
  SimpleGrid,
  Stack,
  Table,
  Text,
  Textarea,
  Title,
  UnstyledButton,
} from '@mantine/core';
import { keepPreviousData, useQuery, useQueryClient } from '@tanstack/react-query';
import { memo, useCallback, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { ClinicalGrants } from '../../components/ClinicalGrants.tsx';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { TimingBadge, type Timing } from '../../components/Timing.tsx';
import { api, apiOptional } from '../../lib/api.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { useCaseEvents, useNow } from '../../lib/live.ts';
import { siteName, STATUS_LABELS, useSites } from '../../lib/queries.ts';
import { Link } from '../../lib/router.tsx';
import { useSession } from '../../lib/session.tsx';
import { londonDateTime, londonWhen } from '../../lib/time.ts';
import { ReferralAlertsFigure } from './ReferralAlerts.tsx';

interface SiteSummary {
  siteId: string;
  name: string;
  callsWaiting: number;
  queued: number;
  withClinician: number;
  atRisk: number;
  breached: number;
  escalated: number;
}
/** An open case behind the figures: no patient or caller details. */
interface DashboardCase {
  caseId: string;
  siteId: string;
  status: string;
  stage: 'adviser' | 'queue' | 'clinician';
  receivedAt: string;
  deadline: string | null;
  timing: Timing | null;
  escalated: boolean;
  disposition: string | null;
  claimed: boolean;
}
interface AmbulanceRequest {
  messageId: string;
  caseId: string | null;
  siteId: string | null;
  state: string;
  queuedAt: string;
  overdue: boolean;
}
interface DashboardResponse {
  now: string;
  sites: SiteSummary[];
  /** Open cases behind the figures (older servers do not send it). */
  cases?: DashboardCase[];
  escalations: {
    caseId: string;
    siteId: string;
    status: string;
    failedCallbackAttempts: number;
    disposition: string | null;
    claimed: boolean;
    deadline: string;
    timing: Timing;
  }[];
  canOpenCases: boolean;
  /** This server's lasting sync alarms (older servers do not send it). */
  syncAlarms?: { kind: string; raisedAt: string; message: string; advice: string }[];
  /** Failed or overdue messages to other systems; null or absent when not this user's to see. */
  messagesNeedingAttention?: number | null;
  /** Calls with advisers idle longer than the configured time (the list: /calls/open-too-long). */
  callsOpenTooLong?: number;
  /** 999 requests not yet accepted; null or absent when not this user's to see. */
  ambulanceRequestsOutstanding?: AmbulanceRequest[] | null;
  /** Users signed in to this server now, by role (absent on older servers). */
  staffOnDuty?: { role: Role; count: number }[] | null;
  staffSignedIn?: number | null;
}

type CaseListName = 'adviser' | 'queue' | 'clinician' | 'at_risk' | 'breached' | 'escalated';

/**
 * One figure of the dashboard and the list it opens. A figure whose data this user may not see (or
 * this server does not send) returns null from `count` and is left out. New figures are added here.
 */
interface Figure {
  id: string;
  label: string;
  /** A sign beside a non-zero count, so urgency does not rest on colour alone. */
  sign?: string;
  count: (d: DashboardResponse) => number | null;
  /** The server's list of cases behind this figure, read with the dashboard while it is open. */
  caseList?: CaseListName;
  /** The list behind the figure. */
  list: (d: DashboardResponse, now: number) => ReactNode;
}

/** A figure counting cases; its list is read from the server when it is opened. */
const caseFigure = (
  id: string,
  label: string,
  list: CaseListName,
  total: keyof Omit<SiteSummary, 'siteId' | 'name'>,
  sign?: string,
): Figure => ({
  id,
  label,
  sign,
  caseList: list,
  count: (d) => d.sites.reduce((a, s) => a + s[total], 0),
  list: (d, now) => <CaseList d={d} cases={d.cases ?? []} now={now} label={label} />,
});

const FIGURES: Figure[] = [
  caseFigure('calls-with-advisers', 'Calls with advisers', 'adviser', 'callsWaiting'),
  caseFigure('waiting-in-the-queue', 'Waiting in the queue', 'queue', 'queued'),
  caseFigure('with-clinicians', 'With clinicians', 'clinician', 'withClinician'),
  caseFigure('at-risk', 'At risk', 'at_risk', 'atRisk', '!'),
  caseFigure('breached', 'Breached', 'breached', 'breached', '✕'),
  caseFigure('escalated', 'Escalated', 'escalated', 'escalated', '!'),
  {
    id: 'ambulance-requests-outstanding',
    label: 'Ambulance requests not yet accepted',
    sign: '!',
    count: (d) => d.ambulanceRequestsOutstanding?.length ?? null,
    list: (d, now) => <AmbulanceList d={d} now={now} />,
  },
  {
    id: 'messages-needing-attention',
    label: 'Messages needing attention',
    sign: '!',
    count: (d) => (typeof d.messagesNeedingAttention === 'number' ? d.messagesNeedingAttention : null),
    list: (d) => (
      <Text>
        {d.messagesNeedingAttention} message{d.messagesNeedingAttention === 1 ? '' : 's'} to other systems
        failed or overdue. <Link to="/messages">Open the messages list</Link> to retry or cancel them.
      </Text>
    ),
  },
  {
    id: 'calls-open-too-long',
    label: 'Calls open too long',
    sign: '!',
    count: (d) => (typeof d.callsOpenTooLong === 'number' ? d.callsOpenTooLong : null),
    list: (d) => (
      <Text>
        {d.callsOpenTooLong} call{d.callsOpenTooLong === 1 ? '' : 's'} with advisers without activity for a
        while. <Link to="/calls/open-too-long">Calls open too long</Link> lists them, with who has each.
      </Text>
    ),
  },
  {
    id: 'staff-on-duty',
    label: 'Staff signed in',
    // People, not roles: a person with two roles is one person signed in.
    count: (d) => d.staffSignedIn ?? null,
    list: (d) => <StaffList staff={d.staffOnDuty ?? []} />,
  },
];

/**
 * Re-reads a query when the stream says something changed, within the time of one read: a change
 * arriving during a read asks for one more read after it, so the last change is never missed and a
 * burst of changes costs at most two reads. `minGapMs` spaces the reads of something that need not
 * follow every change at once (the hourly trends), so they do not hold up the figures' reads.
 */
function useCoalescedRefetch(refetch: () => Promise<unknown>, minGapMs = 0): () => void {
  const state = useRef({ reading: false, again: false, lastStart: 0 });
  return useCallback(() => {
    const s = state.current;
    if (s.reading) {
      s.again = true;
      return;
    }
    s.reading = true;
    const read = (): void => {
      s.again = false;
      s.lastStart = Date.now();
      void refetch()
        .catch(() => undefined)
        .finally(() => {
          if (s.again) setTimeout(read, Math.max(0, minGapMs - (Date.now() - s.lastStart)));
          else s.reading = false;
        });
    };
    const wait = Math.max(0, minGapMs - (Date.now() - s.lastStart));
    if (wait > 0) setTimeout(read, wait);
    else read();
  }, [refetch, minGapMs]);
}

/** The shift manager's view: figures that follow the live case stream, each opening its list; trends; escalations. */
export function Dashboard() {
  const session = useSession();
  const [open, setOpen] = useState<string | null>(null);
  const openList = FIGURES.find((f) => f.id === open)?.caseList;
  const dashboard = useQuery({
    queryKey: ['dashboard', openList ?? null],
    queryFn: () => api<DashboardResponse>('GET', `/api/v1/dashboard${openList ? `?list=${openList}` : ''}`),
    // The stream moves it; the periodic read only catches what the stream cannot say (time passing).
    refetchInterval: 30_000,
    // Opening a list keeps the figures on screen while its cases are read.
    placeholderData: keepPreviousData,
  });
  const hourly = useQuery({
    queryKey: ['dashboard-hourly'],
    queryFn: () => api<HourlyResponse>('GET', '/api/v1/dashboard/hourly'),
    refetchInterval: 60_000,
  });
  const now = useNow(1000);
  const refreshDashboard = useCoalescedRefetch(dashboard.refetch);
  // Trends per hour need not move within the second; at most one read every 5 s.
  const refreshHourly = useCoalescedRefetch(hourly.refetch, 5_000);
  const live = useCaseEvents(
    () => {
      refreshDashboard();
      refreshHourly();
    },
    () => {
      refreshDashboard();
      refreshHourly();
    },
    () => refreshDashboard(),
  );
  const d = dashboard.data;
  const figures = d
    ? FIGURES.flatMap((f) => {
        const count = f.count(d);
        return count === null ? [] : [{ f, count }];
      })
    : [];
  const opened = figures.find((x) => x.f.id === open) ?? null;

  return (
    <Stack maw={1200}>
      <PageTitle>Shift dashboard</PageTitle>
      <Text size="sm" data-testid="dashboard-live">
        {live === 'live' ? 'Live: figures follow every case change.' : 'Reconnecting to live updates…'}
      </Text>
      {dashboard.isError && (
        <Alert color="red">The dashboard could not be read: {dashboard.error.message}</Alert>
      )}
      {/* A clinical role reads clinical notes: the shift manager sees who was given one, by whom, why. */}
      {session.can('reports.read') && <ClinicalGrants source="dashboard" />}
      {d?.syncAlarms?.map((a) => (
        <Alert
          key={a.kind}
          color="red"
          variant="filled"
          role="alert"
          data-testid="sync-alarm"
          title="Sync alarm: the hub will not take work recorded on this server"
        >
          <Text size="sm">
            Since {londonDateTime(a.raisedAt)}: {a.message}
          </Text>
          <Text size="sm" fw={700} mt={4}>
            What to do: {a.advice}
          </Text>
        </Alert>
      ))}
      {d && (
        <>
          <SimpleGrid
            cols={{ base: 2, sm: 3, md: 5 }}
            role="list"
            aria-label="Figures: choose one to see its list"
          >
            {figures.map(({ f, count }) => (
              <div role="listitem" key={f.id}>
                <Stat
                  id={f.id}
                  label={f.label}
                  value={count}
                  sign={f.sign}
                  open={open === f.id}
                  onToggle={() => setOpen(open === f.id ? null : f.id)}
                />
              </div>
            ))}
          </SimpleGrid>
          {opened && (
            <section
              aria-labelledby="figure-list-heading"
              id="figure-list"
              data-testid={`list-${opened.f.id}`}
            >
              <Group justify="space-between">
                <Title order={2} size="h3" id="figure-list-heading">
                  {opened.f.label}: {opened.count}
                </Title>
                <Button variant="subtle" size="compact-sm" onClick={() => setOpen(null)}>
                  Close the list
                </Button>
              </Group>
              {opened.f.list(d, now)}
            </section>
          )}
          <ReferralAlertsFigure />
          <Table striped withTableBorder data-testid="dashboard-sites">
            <Table.Caption>By site, as of {londonDateTime(d.now)} (UK time)</Table.Caption>
            <Table.Thead>
              <Table.Tr>
                <Table.Th scope="col">Site</Table.Th>
                <Table.Th scope="col">Calls with advisers</Table.Th>
                <Table.Th scope="col">Waiting in the queue</Table.Th>
                <Table.Th scope="col">With clinicians</Table.Th>
                <Table.Th scope="col">At risk</Table.Th>
                <Table.Th scope="col">Breached</Table.Th>
                <Table.Th scope="col">Escalated</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {d.sites.map((s) => (
                <Table.Tr key={s.siteId}>
                  <Table.Th scope="row">{s.name}</Table.Th>
                  <Table.Td>{s.callsWaiting}</Table.Td>
                  <Table.Td>{s.queued}</Table.Td>
                  <Table.Td>{s.withClinician}</Table.Td>
                  <Table.Td fw={s.atRisk ? 700 : undefined}>{s.atRisk}</Table.Td>
                  <Table.Td fw={s.breached ? 700 : undefined}>{s.breached}</Table.Td>
                  <Table.Td fw={s.escalated ? 700 : undefined}>{s.escalated}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          {hourly.data && <Trends data={hourly.data} />}
          <section aria-labelledby="escalations-heading">
            <Title order={2} size="h3" id="escalations-heading" mb="xs">
              Escalations
            </Title>
            {d.escalations.length === 0 ? (
              <Text>No escalated cases.</Text>
            ) : (
              <Table withTableBorder>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th scope="col">Deadline</Table.Th>
                    <Table.Th scope="col">Site</Table.Th>
                    <Table.Th scope="col">Disposition</Table.Th>
                    <Table.Th scope="col">Failed call-backs</Table.Th>
                    <Table.Th scope="col">State</Table.Th>
                    <Table.Th scope="col">
                      <span className="visually-hidden">Action</span>
                    </Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {d.escalations.map((e) => {
                    const remaining = Math.round((Date.parse(e.deadline) - now) / 1000);
                    return (
                      <Table.Tr key={e.caseId}>
                        <Table.Td>
                          <TimingBadge
                            timing={remaining < 0 ? 'breached' : e.timing}
                            remainingSeconds={remaining}
                          />{' '}
                          ({londonWhen(e.deadline, now)})
                        </Table.Td>
                        <Table.Td>{d.sites.find((s) => s.siteId === e.siteId)?.name}</Table.Td>
                        <Table.Td>{e.disposition ?? '—'}</Table.Td>
                        <Table.Td>{e.failedCallbackAttempts}</Table.Td>
                        <Table.Td>
                          {STATUS_LABELS[e.status] ?? e.status}
                          {e.claimed ? ' (held)' : ''}
                        </Table.Td>
                        <Table.Td>
                          {d.canOpenCases && (
                            <Button
                              component={Link}
                              to={`/cases/${e.caseId}`}
                              size="compact-sm"
                              variant="default"
                              aria-label={`Open escalated case, deadline ${londonWhen(e.deadline, now)}`}
                            >
                              Open
                            </Button>
                          )}
                        </Table.Td>
                      </Table.Tr>
                    );
                  })}
                </Table.Tbody>
              </Table>
            )}
          </section>
        </>
      )}
      {session.user && <Reconciliation />}
    </Stack>
  );
}

function Stat({
  id,
  label,
  value,
  sign,
  open,
  onToggle,
}: {
  id: string;
  label: string;
  value: number;
  sign?: string;
  open: boolean;
  onToggle: () => void;
}) {
  return (
    <UnstyledButton
      onClick={onToggle}
      aria-expanded={open}
      aria-controls={open ? 'figure-list' : undefined}
      data-testid={`figure-${id}`}
      w="100%"
    >
      <Paper withBorder p="sm" bg={open ? 'gray.1' : undefined}>
        <Text size="sm">{label}</Text>
        <Text fz={28} fw={800} data-testid={`stat-${id}`}>
          {value > 0 && sign ? <span aria-hidden="true">{sign} </span> : null}
          {value}
        </Text>
      </Paper>
    </UnstyledButton>
  );
}

function CaseList({
  d,
  cases,
  now,
  label,
}: {
  d: DashboardResponse;
  cases: DashboardCase[];
  now: number;
  label: string;
}) {
  if (cases.length === 0) return <Text>None now.</Text>;
  return (
    <Table withTableBorder striped>
      <Table.Caption>{label}: the cases, most urgent first (no patient details)</Table.Caption>
      <Table.Thead>
        <Table.Tr>
          <Table.Th scope="col">Case</Table.Th>
          <Table.Th scope="col">Site</Table.Th>
          <Table.Th scope="col">State</Table.Th>
          <Table.Th scope="col">Received</Table.Th>
          <Table.Th scope="col">Deadline</Table.Th>
          <Table.Th scope="col">Disposition</Table.Th>
          <Table.Th scope="col">
            <span className="visually-hidden">Action</span>
          </Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {cases.map((c) => {
          const remaining = c.deadline ? Math.round((Date.parse(c.deadline) - now) / 1000) : null;
          return (
            <Table.Tr key={c.caseId}>
              <Table.Th scope="row">{caseReference(c.caseId)}</Table.Th>
              <Table.Td>{d.sites.find((s) => s.siteId === c.siteId)?.name ?? '—'}</Table.Td>
              <Table.Td>
                {STATUS_LABELS[c.status] ?? c.status}
                {c.escalated ? ' · escalated' : ''}
              </Table.Td>
              <Table.Td>{londonWhen(c.receivedAt, now)}</Table.Td>
              <Table.Td>
                {c.deadline && c.timing && remaining !== null ? (
                  <>
                    <TimingBadge
                      timing={remaining < 0 ? 'breached' : c.timing}
                      remainingSeconds={remaining}
                    />{' '}
                    ({londonWhen(c.deadline, now)})
                  </>
                ) : (
                  '—'
                )}
              </Table.Td>
              <Table.Td>{c.disposition ?? '—'}</Table.Td>
              <Table.Td>
                {d.canOpenCases && (
                  <Button
                    component={Link}
                    to={`/cases/${c.caseId}`}
                    size="compact-sm"
                    variant="default"
                    aria-label={`Open case ${caseReference(c.caseId)}`}
                  >
                    Open
                  </Button>
                )}
              </Table.Td>
            </Table.Tr>
          );
        })}
      </Table.Tbody>
    </Table>
  );
}

const AMBULANCE_STATES: Record<string, string> = {
  queued: 'Waiting to be sent',
  sent: 'Sent, not yet answered',
  delivered: 'Delivered, not yet accepted',
  failed: 'Failed: phone the ambulance service',
};

function AmbulanceList({ d, now }: { d: DashboardResponse; now: number }) {
  const requests = d.ambulanceRequestsOutstanding ?? [];
  if (requests.length === 0) return <Text>Every ambulance request has been accepted.</Text>;
  return (
    <Table withTableBorder striped>
      <Table.Caption>999 requests the ambulance service has not accepted yet, newest first</Table.Caption>
      <Table.Thead>
        <Table.Tr>
          <Table.Th scope="col">Case</Table.Th>
          <Table.Th scope="col">Site</Table.Th>
          <Table.Th scope="col">Requested</Table.Th>
          <Table.Th scope="col">Where it stands</Table.Th>
          <Table.Th scope="col">
            <span className="visually-hidden">Action</span>
          </Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {requests.map((r) => (
          <Table.Tr key={r.messageId}>
            <Table.Th scope="row">{r.caseId ? caseReference(r.caseId) : '—'}</Table.Th>
            <Table.Td>{d.sites.find((s) => s.siteId === r.siteId)?.name ?? '—'}</Table.Td>
            <Table.Td>{londonWhen(r.queuedAt, now)}</Table.Td>
            <Table.Td fw={r.overdue ? 700 : undefined}>
              {r.overdue && r.state !== 'failed'
                ? 'Overdue: phone the ambulance service'
                : (AMBULANCE_STATES[r.state] ?? r.state)}
            </Table.Td>
            <Table.Td>
              {d.canOpenCases && r.caseId && (
                <Button
                  component={Link}
                  to={`/cases/${r.caseId}`}
                  size="compact-sm"
                  variant="default"
                  aria-label={`Open case ${caseReference(r.caseId)}`}
                >
                  Open
                </Button>
              )}
            </Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

function StaffList({ staff }: { staff: { role: Role; count: number }[] }) {
  return (
    <Stack gap="xs">
      {staff.length === 0 ? (
        <Text>Nobody is signed in to this server.</Text>
      ) : (
        <Table withTableBorder>
          <Table.Caption>
            Signed in to this server now, by role (a person with two roles counts in both)
          </Table.Caption>
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Role</Table.Th>
              <Table.Th scope="col">Signed in</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {staff.map((s) => (
              <Table.Tr key={s.role}>
                <Table.Th scope="row">{ROLE_LABELS[s.role] ?? s.role}</Table.Th>
                <Table.Td>{s.count}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Text size="sm">
        Who is on the rota is not known yet: this counts people signed in to this server, not those due on
        shift.
      </Text>
    </Stack>
  );
}

interface HourlyPoint {
  slot: string;
  label: string;
  calls: number | null;
  breaches: number | null;
  callsLastWeek: number | null;
  breachesLastWeek: number | null;
}
interface HourlyResponse {
  date: string;
  compareWith: string;
  hours: HourlyPoint[];
}

const dayName = (date: string) =>
  new Intl.DateTimeFormat('en-GB', {
    weekday: 'long',
    day: 'numeric',
    month: 'long',
    timeZone: 'UTC',
  }).format(new Date(`${date}T12:00:00Z`));

/**
 * Calls and breaches per UK hour today against the same weekday last week: charts, and the numbers as
 * a table. Memoised: the dashboard re-renders every second and on every figure's change, and drawing
 * the charts again each time would delay the figures.
 */
const Trends = memo(function Trends({ data }: { data: HourlyResponse }) {
  const today = `Today (${dayName(data.date)})`;
  const lastWeek = `A week earlier (${dayName(data.compareWith)})`;
  const chart = (kind: 'calls' | 'breaches', title: string) => (
    <Paper withBorder p="sm" data-testid={`chart-${kind}`}>
      <Title order={3} size="h4" mb="xs">
        {title}
      </Title>
      <LineChart
        h={220}
        data={data.hours.map((h) => ({
          hour: h.label,
          today: h[kind],
          lastWeek: h[kind === 'calls' ? 'callsLastWeek' : 'breachesLastWeek'],
        }))}
        dataKey="hour"
        series={[
          { name: 'today', label: today, color: kind === 'calls' ? 'blue.8' : 'red.8' },
          { name: 'lastWeek', label: lastWeek, color: 'gray.7', strokeDasharray: '5 5' },
        ]}
        withLegend
        curveType="linear"
        connectNulls={false}
        yAxisProps={{ allowDecimals: false }}
        // The animation would delay what a manager reads at a glance (and what a test measures).
        lineProps={{ isAnimationActive: false }}
      />
    </Paper>
  );
  return (
    <section aria-labelledby="trends-heading">
      <Title order={2} size="h3" id="trends-heading" mb="xs">
        Calls and breaches per hour (UK time)
      </Title>
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        {chart('calls', 'Calls received per hour')}
        {chart('breaches', 'Breaches per hour (deadline passed while the case was open)')}
      </SimpleGrid>
      <details>
        <summary>The same figures as a table</summary>
        <Table withTableBorder data-testid="hourly-table">
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Hour</Table.Th>
              <Table.Th scope="col">Calls today</Table.Th>
              <Table.Th scope="col">Calls a week earlier</Table.Th>
              <Table.Th scope="col">Breaches today</Table.Th>
              <Table.Th scope="col">Breaches a week earlier</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {data.hours.map((h) => (
              <Table.Tr key={h.slot} data-hour={h.label}>
                <Table.Th scope="row">{h.label}</Table.Th>
                <Table.Td>{h.calls ?? '—'}</Table.Td>
                <Table.Td>{h.callsLastWeek ?? '—'}</Table.Td>
                <Table.Td>{h.breaches ?? '—'}</Table.Td>
                <Table.Td>{h.breachesLastWeek ?? '—'}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </details>
    </section>
  );
});

interface ReconciliationItem {
  itemId: string;
  caseId: string;
  siteId: string;
  kind: string;
  status: string;
  detectedAt: string;
  claimants: string[];
  decisions: string[];
}

const KIND_WORDS: Record<string, string> = {
  double_claim: 'Two clinicians claimed the same case while apart',
  changed_after_close: 'The case changed after it was closed elsewhere',
  two_outcomes: 'Two outcomes were recorded',
  conflicting_change: 'Conflicting changes',
};
const DECISION_WORDS: Record<string, string> = {
  keep_claim: 'Keep one clinician’s claim',
  release_to_queue: 'Release to the queue',
  keep_closed: 'Keep it closed',
  reopen_to_queue: 'Reopen into the queue',
  keep_outcome: 'Keep one outcome',
  keep_current: 'Keep the case as it is',
};

/** Reconciliation items, when this server has them (the section hides on a server without the route). */
function Reconciliation() {
  const sites = useSites();
  const items = useQuery({
    queryKey: ['reconciliation'],
    queryFn: async () =>
      (await apiOptional<{ items: ReconciliationItem[] }>('/api/v1/reconciliation'))?.items ?? null,
    retry: false,
  });
  if (items.isError || items.data === null || items.data === undefined) return null;
  return (
    <section aria-labelledby="reconciliation-heading">
      <Title order={2} size="h3" id="reconciliation-heading" mb="xs">
        Reconciliation: collisions to decide
      </Title>
      {items.data.length === 0 ? (
        <Text>Nothing to reconcile.</Text>
      ) : (
        <Stack>
          {items.data.map((item) => (
            <ReconciliationCard key={item.itemId} item={item} site={siteName(sites.data, item.siteId)} />
          ))}
        </Stack>
      )}
    </section>
  );
}

function ReconciliationCard({ item, site }: { item: ReconciliationItem; site: string }) {
  const queryClient = useQueryClient();
  const simple = item.decisions.filter((d) => d !== 'keep_claim' && d !== 'keep_outcome');
  const [decision, setDecision] = useState(simple[0] ?? item.decisions[0] ?? '');
  const [clinicianId, setClinicianId] = useState(item.claimants[0] ?? '');
  const [reason, setReason] = useState('');
  const problems = useFormProblems();
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (!reason.trim()) return problems.setField('reason', 'Say why you decided this.');
    setBusy(true);
    try {
      await api('POST', `/api/v1/reconciliation/${item.itemId}/resolve`, {
        decision: decision === 'keep_claim' ? { action: decision, clinicianId } : { action: decision },
        reason: reason.trim(),
      });
      await queryClient.invalidateQueries({ queryKey: ['reconciliation'] });
    } catch (error) {
      problems.fromError(error, ['decision', 'reason']);
    } finally {
      setBusy(false);
    }
  };
  const options = item.decisions.filter((d) => d !== 'keep_outcome');
  return (
    <Paper
      withBorder
      p="sm"
      component="form"
      onSubmit={(e: FormEvent) => void submit(e)}
      aria-label={`Reconciliation item at ${site}`}
      noValidate
    >
      <Group gap="xs">
        <Badge color="#8a4b00">To decide</Badge>
        <Text fw={700}>{KIND_WORDS[item.kind] ?? item.kind}</Text>
      </Group>
      <Text size="sm">
        {site} · detected {londonDateTime(item.detectedAt)} · case ref {caseReference(item.caseId)}
      </Text>
      <FormAlert message={problems.form} />
      {options.length === 0 ? (
        <Text size="sm" mt="xs">
          This kind of item is decided from its case record.
        </Text>
      ) : (
        <Group align="flex-end" mt="xs" wrap="wrap">
          <NativeSelect
            label="Decision"
            data={options.map((d) => ({ value: d, label: DECISION_WORDS[d] ?? d }))}
            value={decision}
            onChange={(e) => setDecision(e.currentTarget.value)}
            error={problems.field('decision')}
          />
          {decision === 'keep_claim' && (
            <NativeSelect
              label="Clinician who keeps the case"
              data={item.claimants.map((c, i) => ({
                value: c,
                label: `Claimant ${i + 1} (${c.slice(0, 8)})`,
              }))}
              value={clinicianId}
              onChange={(e) => setClinicianId(e.currentTarget.value)}
            />
          )}
          <Textarea
            label="Reason"
            value={reason}
            onChange={(e) => setReason(e.currentTarget.value)}
            error={problems.field('reason')}
            autosize
            minRows={1}
          />
          <Button type="submit" loading={busy}>
            Record decision
          </Button>
        </Group>
      )}
    </Paper>
  );
}
