import { caseReference } from '@holdfast/core';
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
} from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
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
interface DashboardResponse {
  now: string;
  sites: SiteSummary[];
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
}

/** The shift manager's view: per-site counts (live), escalations, and reconciliation items where they exist. */
export function Dashboard() {
  const session = useSession();
  const dashboard = useQuery({
    queryKey: ['dashboard'],
    queryFn: () => api<DashboardResponse>('GET', '/api/v1/dashboard'),
    refetchInterval: 30_000,
  });
  const now = useNow(1000);
  // Case events move the counts: re-read (at most every two seconds) without reloading.
  const [lastRead, setLastRead] = useState(0);
  useCaseEvents(
    () => {
      if (Date.now() - lastRead > 2000) {
        setLastRead(Date.now());
        void dashboard.refetch();
      }
    },
    () => void dashboard.refetch(),
  );
  const d = dashboard.data;
  const total = (k: keyof Omit<SiteSummary, 'siteId' | 'name'>) =>
    d?.sites.reduce((a, s) => a + s[k], 0) ?? 0;

  return (
    <Stack maw={1200}>
      <PageTitle>Shift dashboard</PageTitle>
      {dashboard.isError && (
        <Alert color="red">The dashboard could not be read: {dashboard.error.message}</Alert>
      )}
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
          <SimpleGrid cols={{ base: 2, sm: 3, md: 6 }}>
            <Stat label="Calls with advisers" value={total('callsWaiting')} />
            <Stat label="Waiting in the queue" value={total('queued')} />
            <Stat label="With clinicians" value={total('withClinician')} />
            <Stat label="At risk" value={total('atRisk')} sign="!" />
            <Stat label="Breached" value={total('breached')} sign="✕" />
            <Stat label="Escalated" value={total('escalated')} sign="!" />
          </SimpleGrid>
          {typeof d.messagesNeedingAttention === 'number' && (
            <Paper withBorder p="sm" maw={320}>
              <Text size="sm">
                <Link to="/messages">Messages needing attention</Link>
              </Text>
              <Text fz={28} fw={800} data-testid="stat-messages-needing-attention">
                {d.messagesNeedingAttention > 0 ? <span aria-hidden="true">! </span> : null}
                {d.messagesNeedingAttention}
              </Text>
            </Paper>
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

function Stat({ label, value, sign }: { label: string; value: number; sign?: string }) {
  return (
    <Paper withBorder p="sm">
      <Text size="sm">{label}</Text>
      <Text fz={28} fw={800} data-testid={`stat-${label.toLowerCase().replace(/\s+/g, '-')}`}>
        {value > 0 && sign ? <span aria-hidden="true">{sign} </span> : null}
        {value}
      </Text>
    </Paper>
  );
}

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
