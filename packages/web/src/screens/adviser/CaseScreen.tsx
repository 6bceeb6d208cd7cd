import { caseReference, WITH_ADVISER_STATUSES } from '@holdfast/core';
import { ageInYears, pathwayNotForAge } from '@holdfast/core/triage/eligibility';
import { Alert, Badge, Button, Group, List, NativeSelect, Paper, Stack, Text, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { CaseMessages } from '../../components/CaseMessages.tsx';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { SampleNotice } from '../../components/SampleNotice.tsx';
import { DeceasedBanner } from '../../components/PatientIdentity.tsx';
import { SpecialNotesBanner } from '../../components/SpecialNotes.tsx';
import { api, isServerUnavailable } from '../../lib/api.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { RETRY_WHILE_UNAVAILABLE, siteName, STATUS_LABELS, useCase, useSites } from '../../lib/queries.ts';
import { capitalised, unavailableWords, useReachability } from '../../lib/reachability.ts';
import { Link, navigate } from '../../lib/router.tsx';
import { useSession } from '../../lib/session.tsx';
import { londonDateTime, londonTime } from '../../lib/time.ts';
import type {
  CaseDetail,
  PatientView,
  QuestionView,
  TriageContentInfo,
  TriagePathStep,
  WalkResult,
} from '../../lib/types.ts';
import { PatientSearch, PatientSummaryCard } from './PatientPanel.tsx';
import { AmbulanceHandover, handedOver, useAmbulanceHandover } from '../../components/AmbulanceHandover.tsx';
import { ServiceChoice } from '../../components/ServiceChoice.tsx';
import { BookingPanel } from '../../components/BookingPanel.tsx';
import { dispositionBooking } from '../../lib/booking.ts';
import { recallQuestion, TriagePath, TriageRunner } from './TriageRunner.tsx';
import { useLeaveWarning } from '../../lib/leave-warning.ts';
import { CaseNotes, CorrectDisposition, EndCall } from './OpenCalls.tsx';

/** Statuses in which the adviser may end the call with a reason (answered, no disposition confirmed). */
const ENDABLE = ['answered', 'in_triage', 'disposition_reached'];

/** The health adviser's case: the patient, triage one question at a time, then the disposition. */
export function CaseScreen({ caseId }: { caseId: string }) {
  const detail = useCase(caseId);
  const sites = useSites();
  const c = detail.data;
  const patient = useQuery({
    queryKey: ['patient', c?.patientId],
    queryFn: () => api<PatientView>('GET', `/api/v1/patients/${c!.patientId}`),
    enabled: !!c?.patientId,
    ...RETRY_WHILE_UNAVAILABLE,
  });
  const [acknowledged, setAcknowledged] = useState(false);
  const [deathAcknowledged, setDeathAcknowledged] = useState(false);
  // An unfinished call is not left by accident: Back, a link or closing the tab asks first.
  useLeaveWarning(!!c && (WITH_ADVISER_STATUSES as readonly string[]).includes(c.status), `/cases/${caseId}`);
  const reachability = useReachability();

  if (detail.isPending)
    return (
      <Text role="status">
        Loading the case…
        {reachability.failingSince !== null && ` ${unavailableWords(reachability)}: trying again by itself.`}
      </Text>
    );
  // Once read, the call stays on screen whatever a later read finds: only a case never read is "not available".
  if (!c)
    return (
      <>
        <PageTitle>Case not available</PageTitle>
        <Alert color="red">This case could not be opened: {detail.error?.message ?? 'unknown error'}.</Alert>
      </>
    );
  const notes = patient.data?.record.specialNotes ?? [];
  const notesPending = notes.length > 0 && !acknowledged;
  // A deceased patient: warn, not block (a relative may be calling), but the warning is confirmed
  // before triage starts, like the special notes.
  const deceasedAt = patient.data?.record.deceasedAt;
  const deathPending = !!deceasedAt && !deathAcknowledged;

  return (
    <Stack maw={1200}>
      <PageTitle text="Call in progress">Call in progress</PageTitle>
      <SavingPaused lastReadAt={detail.dataUpdatedAt} />
      {deceasedAt && (
        <DeceasedBanner
          deceasedAt={deceasedAt}
          acknowledged={deathAcknowledged}
          onAcknowledge={() => setDeathAcknowledged(true)}
        />
      )}
      <SpecialNotesBanner
        notes={notes}
        acknowledged={acknowledged}
        onAcknowledge={() => setAcknowledged(true)}
      />
      <Paper withBorder p="sm" component="section" aria-label="Call details">
        <Group gap="xs">
          <Badge variant="light" size="lg">
            {STATUS_LABELS[c.status] ?? c.status}
          </Badge>
          <Text size="sm" fw={700} data-testid="case-ref">
            Case ref {caseReference(c.caseId)}
          </Text>
          <Text size="sm">
            Received {londonDateTime(c.receivedAt)} at {siteName(sites.data, c.siteId)}
          </Text>
        </Group>
        <Text mt={4}>
          <strong>Caller:</strong> {c.caller.name} ({c.caller.relationship}) · call back on{' '}
          {c.caller.callbackNumber}{' '}
          <span data-testid="callback-read-back">
            {c.caller.callbackNumberReadBack
              ? '(read back to the caller and agreed)'
              : '(not read back to the caller: check it before relying on it)'}
          </span>
        </Text>
        <Text>
          <strong>Problem:</strong> {c.presentingComplaint} · <strong>Patient is at:</strong> {c.location}
        </Text>
        {ENDABLE.includes(c.status) && (
          <Group mt="xs">
            <EndCall caseId={caseId} />
          </Group>
        )}
      </Paper>
      {c.status === 'call_ended' && <CallEnded caseDetail={c} />}

      <section aria-labelledby="patient-heading">
        <Title order={2} id="patient-heading" mb="xs">
          1. Patient
        </Title>
        {c.patientId ? (
          patient.data ? (
            <PatientSummaryCard patient={patient.data} />
          ) : patient.isError && !isServerUnavailable(patient.error) ? (
            <Alert color="red">The patient record could not be read: {patient.error.message}</Alert>
          ) : (
            <Text>
              Reading the patient record…
              {reachability.failingSince !== null &&
                ` ${unavailableWords(reachability)}: trying again by itself.`}
            </Text>
          )
        ) : (
          <PatientSearch caseId={caseId} siteId={c.siteId} />
        )}
      </section>

      <section aria-labelledby="triage-heading">
        <Title order={2} id="triage-heading" mb="xs">
          2. Triage
        </Title>
        {c.status === 'call_ended' ? (
          <Text>The call ended before a disposition was confirmed: nothing was arranged.</Text>
        ) : (
          <Triage
            caseDetail={c}
            blocked={notesPending || deathPending}
            patientDateOfBirth={patient.data?.record.dateOfBirth ?? null}
            patientPostcode={patient.data?.record.postcode ?? null}
          />
        )}
      </section>
      <CaseNotes
        caseId={caseId}
        notes={(c.record?.timeline ?? []).filter((l) => l.type === 'case.note_added')}
      />
      <CaseMessages caseId={caseId} caseStatus={c.status} />
      <Group className="no-print">
        <Link to={`/cases/${caseId}/summary`}>Case summary to read or print</Link>
        {c.patientId && <Link to={`/patients/${c.patientId}`}>Patient record and previous encounters</Link>}
      </Group>
    </Stack>
  );
}

/** The call was ended without a confirmed disposition: why, and on to the next call. */
function CallEnded({ caseDetail }: { caseDetail: CaseDetail }) {
  const ended = caseDetail.record?.timeline.find((l) => l.type === 'case.call_ended');
  return (
    <Alert color="gray" variant="light" title="Call ended" role="status" data-testid="call-ended">
      {ended ? ended.what : 'The call was ended.'}
      <Group mt="sm">
        <Button onClick={() => navigate('/calls/new')}>Take the next call</Button>
      </Group>
    </Alert>
  );
}

/**
 * While requests to the server fail: the call stays on screen as last read, and the adviser is told
 * plainly that nothing is being saved until the server answers again (screens retry by themselves).
 */
function SavingPaused({ lastReadAt }: { lastReadAt: number }) {
  const reachability = useReachability();
  if (reachability.failingSince === null) return null;
  return (
    <Alert color="orange" variant="filled" title="Saving is paused" role="alert" data-testid="saving-paused">
      {capitalised(unavailableWords(reachability))} since {londonTime(reachability.failingSince)}. This call
      stays on screen as last read at {londonTime(lastReadAt)}; nothing you do now is saved until the server
      answers again. It is tried again by itself: stay with the caller, and note anything urgent on paper (the
      downtime pack has the forms).
    </Alert>
  );
}

function Triage({
  caseDetail,
  blocked,
  patientDateOfBirth,
  patientPostcode,
}: {
  caseDetail: CaseDetail;
  blocked: boolean;
  patientDateOfBirth: string | null;
  patientPostcode: string | null;
}) {
  const caseId = caseDetail.caseId;
  const queryClient = useQueryClient();
  const walk = useQuery({
    queryKey: ['triage', caseId],
    queryFn: () => api<WalkResult | { status: 'not_started' }>('GET', `/api/v1/cases/${caseId}/triage`),
    ...RETRY_WHILE_UNAVAILABLE,
  });
  const onResult = (r: WalkResult) => {
    // A read of the walk still in flight began before this step was taken: landing after it, it
    // would put the screen back a step (to "Start triage", with the walk already started). Cancel
    // it before showing the step.
    void queryClient.cancelQueries({ queryKey: ['triage', caseId] }).then(() => {
      queryClient.setQueryData(['triage', caseId], r);
      if (r.status === 'disposition') void queryClient.invalidateQueries({ queryKey: ['case', caseId] });
    });
  };
  if (walk.isPending) return <Text>Loading triage…</Text>;
  if (!walk.data) return <Alert color="red">Triage could not be loaded: {walk.error?.message}</Alert>;
  const r = walk.data;
  if (r.status === 'not_started')
    return (
      <StartTriage
        caseId={caseId}
        blocked={blocked}
        complaint={caseDetail.presentingComplaint}
        patientAge={patientDateOfBirth ? ageInYears(patientDateOfBirth, caseDetail.receivedAt) : null}
        onStarted={onResult}
      />
    );
  if (r.status === 'question') return <TriageRunner caseId={caseId} result={r} onResult={onResult} />;
  return (
    <Disposition caseDetail={caseDetail} result={r} onResult={onResult} patientPostcode={patientPostcode} />
  );
}

function StartTriage({
  caseId,
  blocked,
  complaint,
  patientAge,
  onStarted,
}: {
  caseId: string;
  blocked: boolean;
  complaint: string;
  /** The identified patient's age at the call: pathways for another age group are not offered. */
  patientAge: number | null;
  onStarted: (r: WalkResult) => void;
}) {
  const pathways = useQuery({
    queryKey: ['pathways'],
    queryFn: async () =>
      (await api<{ pathways: TriageContentInfo[] }>('GET', '/api/v1/triage/pathways')).pathways,
    staleTime: Infinity,
  });
  const notFor = (p: TriageContentInfo) =>
    patientAge === null ? null : pathwayNotForAge(p.ageYears, patientAge);
  const [pathwayId, setPathwayId] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  useEffect(() => {
    if (!pathwayId && pathways.data?.length) {
      // Preselect the pathway whose presenting complaint appears in what the caller said.
      const said = complaint.toLowerCase();
      const offered = pathways.data.filter((p) => !notFor(p));
      const guess = offered.find(
        (p) =>
          said.includes(p.pathwayTitle.toLowerCase()) || said.includes(p.presentingComplaint.toLowerCase()),
      );
      setPathwayId((guess ?? offered[0] ?? pathways.data[0]!).pathwayId);
    }
  }, [pathways.data, pathwayId, complaint]);
  const start = async () => {
    problems.clear();
    setBusy(true);
    try {
      onStarted(await api<WalkResult>('POST', `/api/v1/cases/${caseId}/triage`, { pathwayId }));
    } catch (error) {
      problems.fromError(error, ['pathwayId']);
    } finally {
      setBusy(false);
    }
  };
  const anySample = pathways.data?.some((p) => p.sample);
  return (
    <Stack maw={640}>
      {anySample && <SampleNotice />}
      <FormAlert message={problems.form} />
      <NativeSelect
        label="Pathway"
        description="Life-threatening symptoms are checked first, then the pathway's questions."
        data={(pathways.data ?? []).map((p) => {
          const why = notFor(p);
          return {
            value: p.pathwayId,
            label: `${p.pathwayTitle}${p.sample ? ' (sample, not clinically validated)' : ''}${why ? ` — not offered: ${why}` : ''}`,
            disabled: why !== null,
          };
        })}
        value={pathwayId}
        onChange={(e) => setPathwayId(e.currentTarget.value)}
        error={problems.field('pathwayId')}
      />
      {blocked && (
        <Text c="red.9" fw={700}>
          Read the warnings about the patient above and confirm before starting triage.
        </Text>
      )}
      <Group>
        <Button onClick={() => void start()} loading={busy} disabled={blocked || !pathwayId}>
          Start triage
        </Button>
      </Group>
    </Stack>
  );
}

const KIND_WORDS: Record<string, string> = {
  ambulance: 'Ambulance',
  ed_utc: 'Emergency department or urgent treatment centre',
  speak_to_primary_care: 'Speak to a clinician',
  contact_primary_care: 'Contact primary care',
  self_care: 'Self-care advice',
  dental: 'Dental service',
  pharmacy: 'Pharmacy',
  other: 'Other service',
};

/** What the confirmed disposition set in motion, in words, from the case's state after acting on it. */
function whatHappens(c: CaseDetail): string {
  const by = c.deadline ? ` by ${londonTime(c.deadline)}` : '';
  switch (c.status) {
    case 'queued':
    case 'claimed':
    case 'in_consultation':
      return `The case is in the clinical assessment (CAS) queue: a clinician will call back${by}. Tell the caller to call again if things get worse.`;
    case 'ambulance_requested':
      // Never "an ambulance has been requested" before the ambulance service has said so: the
      // handover panel below says where the request stands.
      return 'Keep the caller on the line if you can and give the care advice. Where the request to the ambulance service stands is shown below.';
    case 'referral_pending':
      // Where to send the patient is chosen below; the referral panel says what the service answered.
      return `Choose where to send the patient${by} from the services below, then tell the caller only what the referral panel says. Give the care advice.`;
    case 'closed':
      return 'Advice has been given and the case is closed.';
    default:
      return STATUS_LABELS[c.status] ?? c.status;
  }
}

function Disposition({
  caseDetail,
  result,
  onResult,
  patientPostcode,
}: {
  caseDetail: CaseDetail;
  result: Extract<WalkResult, { status: 'disposition' }>;
  onResult: (r: WalkResult) => void;
  patientPostcode: string | null;
}) {
  const d = result.disposition;
  const session = useSession();
  const queryClient = useQueryClient();
  const headingRef = useRef<HTMLHeadingElement>(null);
  const [busy, setBusy] = useState(false);
  const [changing, setChanging] = useState<{ node: QuestionView; step: TriagePathStep } | null>(null);
  const problems = useFormProblems();
  // The focus goes to the heading, never to the confirm button: a stray key must not act on it.
  useEffect(() => headingRef.current?.focus(), []);
  const proposed = caseDetail.status === 'disposition_reached';
  // Corrected after confirming: back in triage with the old answers; changing one proposes anew.
  const retriaging = caseDetail.status === 'in_triage';
  const caseId = caseDetail.caseId;
  // The adviser stays with the caller until the ambulance service has the patient.
  const ambulanceRequested = caseDetail.status === 'ambulance_requested';
  const ambulance = useAmbulanceHandover(caseId, ambulanceRequested);
  const mustStay = ambulanceRequested && !handedOver(ambulance.data);
  const booking = dispositionBooking(d);

  if (changing)
    return (
      <TriageRunner
        caseId={caseId}
        result={{ status: 'question', content: result.content, node: changing.node, path: result.path }}
        initialChange={changing}
        onResult={(r) => {
          setChanging(null);
          onResult(r);
        }}
      />
    );

  const change = (step: TriagePathStep) => {
    const node = recallQuestion(caseId, step.nodeId);
    if (!node) {
      problems.setForm(
        'That question cannot be shown again in this browser tab: start triage again from the first question.',
      );
      return;
    }
    setChanging({ node, step });
  };

  const confirm = async () => {
    problems.clear();
    setBusy(true);
    try {
      await api('POST', `/api/v1/cases/${caseId}/disposition/confirm`, { dxCode: d.dxCode });
      await queryClient.invalidateQueries({ queryKey: ['case', caseId] });
    } catch (error) {
      problems.fromError(error, []);
      // The confirm may have gone through with its answer lost: read the case again as well.
      await queryClient.invalidateQueries({ queryKey: ['triage', caseId] });
      await queryClient.invalidateQueries({ queryKey: ['case', caseId] });
    } finally {
      setBusy(false);
    }
  };

  return (
    <Stack gap={0}>
      <Group align="flex-start" wrap="wrap" gap="lg">
        <Paper
          withBorder
          p="md"
          style={{ flex: '2 1 420px' }}
          component="section"
          aria-labelledby="disposition-heading"
        >
          {result.content.sample && <SampleNotice text={result.content.label} />}
          <Text size="sm">{proposed ? 'Proposed disposition' : 'Disposition'}</Text>
          <Title order={2} size="h3" id="disposition-heading" ref={headingRef} tabIndex={-1}>
            {d.label}
          </Title>
          <Group gap="xs" mt="xs">
            <Badge variant="outline">{KIND_WORDS[d.kind] ?? d.kind}</Badge>
            <Badge variant="outline">Code {d.dxCode}</Badge>
            {d.timeframeMinutes !== null && (
              <Badge variant="outline">Within {d.timeframeMinutes} minutes</Badge>
            )}
            {d.ambulanceCategory !== undefined && <Badge color="red">Category {d.ambulanceCategory}</Badge>}
          </Group>
          <FormAlert message={problems.form} />
          {proposed ? (
            <Alert
              color="orange"
              variant="light"
              mt="md"
              title="Confirm before anything is done"
              role="status"
            >
              Nothing has been sent or arranged yet. Check the answers (change any that is wrong), then
              confirm.
              <Group mt="sm">
                <Button
                  onClick={() => void confirm()}
                  loading={busy}
                  color={d.kind === 'ambulance' ? 'red.8' : undefined}
                >
                  {d.kind === 'ambulance'
                    ? `Confirm: request an ambulance${d.ambulanceCategory ? ` (category ${d.ambulanceCategory})` : ''}`
                    : 'Confirm this disposition'}
                </Button>
              </Group>
            </Alert>
          ) : retriaging ? null : (
            <Alert color="blue" variant="light" mt="md" title="What happens now" role="status">
              {whatHappens(caseDetail)}
            </Alert>
          )}
          {retriaging && (
            <Alert color="orange" variant="light" mt="md" title="Re-triage" role="status">
              The confirmed disposition was corrected. Change the answer that was wrong (beside this); a new
              disposition is proposed for you to confirm.
            </Alert>
          )}
          {caseDetail.status === 'queued' && (
            <Group mt="sm">
              <CorrectDisposition caseId={caseId} />
            </Group>
          )}
          {ambulanceRequested && <AmbulanceHandover caseDetail={caseDetail} />}
          <Title order={3} size="h5" mt="md">
            Care advice to give
          </Title>
          <List spacing={4} mt={4}>
            {d.careAdvice.map((a, i) => (
              <List.Item key={i}>{a}</List.Item>
            ))}
          </List>
          {!proposed && mustStay && (
            <Text mt="lg" fw={700} data-testid="stay-with-caller">
              Stay with the caller: the ambulance service does not have this patient yet (accepted, or handed
              over by phone).
            </Text>
          )}
          {!proposed && !mustStay && !retriaging && (
            <Group mt="lg">
              <Button onClick={() => navigate('/calls/new')}>Take the next call</Button>
              {session.can('queue.read') && (
                <Button component={Link} to="/queue" variant="default">
                  Open the CAS queue
                </Button>
              )}
            </Group>
          )}
        </Paper>
        <TriagePath path={result.path} {...(proposed || retriaging ? { onChange: change } : {})} />
      </Group>
      {/* A bookable disposition, once confirmed: a treatment-centre appointment while on the call. */}
      {!proposed && !retriaging && booking && session.can('appointments.book') && (
        <BookingPanel caseId={caseId} kind={booking.kind} />
      )}
      {/* Full width below: the ranked list has six columns and must fit a 1366-pixel screen. */}
      {caseDetail.status === 'referral_pending' && (
        <ServiceChoice caseDetail={caseDetail} patientPostcode={patientPostcode} />
      )}
    </Stack>
  );
}
