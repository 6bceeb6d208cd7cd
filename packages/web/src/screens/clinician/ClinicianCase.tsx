import {
  CALLBACK_OUTCOMES,
  caseReference,
  CONSULTATION_OUTCOMES,
  isUrgentNews2Band,
  NON_URGENT_OUTCOMES,
  WELFARE_CHECK_OUTCOMES,
  WELFARE_CHECKERS,
  type ConsultationOutcome,
  type News2NotApplicable,
  type News2Result,
} from '@holdfast/core';
import { ageInYears } from '@holdfast/core/triage/eligibility';
import {
  Alert,
  Badge,
  Button,
  Group,
  List,
  NativeSelect,
  Paper,
  Stack,
  Text,
  Textarea,
  TextInput,
  Title,
} from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useRef, useState, type FormEvent } from 'react';
import { AmbulanceHandover } from '../../components/AmbulanceHandover.tsx';
import { CaseMessages } from '../../components/CaseMessages.tsx';
import { CaseRecord } from '../../components/CaseRecord.tsx';
import { ServiceChoice } from '../../components/ServiceChoice.tsx';
import { BookingPanel } from '../../components/BookingPanel.tsx';
import { HomeVisitPanel } from '../../components/HomeVisitPanel.tsx';
import { outcomeBooking } from '../../lib/booking.ts';
import { mergeDraft, useConsultationDraft } from '../../lib/drafts.ts';
import { FormAlert } from '../../components/FormAlert.tsx';
import {
  AllergiesMedicationPanel,
  PrescribingPanel,
  PrescriptionList,
} from '../../components/Prescribing.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { SampleNotice } from '../../components/SampleNotice.tsx';
import { DeceasedBanner } from '../../components/PatientIdentity.tsx';
import { SafeguardingConcern } from '../../components/PatientEditing.tsx';
import { SpecialNotesBanner, SpecialNotesWithheld } from '../../components/SpecialNotes.tsx';
import { timingAt, TimingBadge } from '../../components/Timing.tsx';
import { api, ApiError } from '../../lib/api.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { useCaseEvents, useNow } from '../../lib/live.ts';
import { siteName, STATUS_LABELS, useCase, useSites } from '../../lib/queries.ts';
import { Link, navigate } from '../../lib/router.tsx';
import { PRESCRIBE_PERMISSION } from '../../lib/prescribing.ts';
import { useSession, useUser } from '../../lib/session.tsx';
import { londonDateTime, londonTime, londonWhen } from '../../lib/time.ts';
import type { CaseDetail, PatientView, WalkResult } from '../../lib/types.ts';
import { PatientSummaryCard } from '../adviser/PatientPanel.tsx';
import { TriagePath } from '../adviser/TriageRunner.tsx';
import {
  EMPTY_OBSERVATIONS,
  hasObservations,
  news2BadgeText,
  OBSERVATION_FIELDS,
  observationWords,
  ObservationsFields,
  patientFacts,
  toObservations,
  type ObservationInputs,
} from './News2Panel.tsx';

/** The consultation's notes as the form opens, before anything is typed or a draft is brought back. */
const EMPTY_NOTES = { history: '', examination: '', assessment: '', plan: '', safetyNetting: '' };

/** The notes' fields as the form labels them (and a draft brought back names them). */
const NOTE_LABELS: Record<keyof typeof EMPTY_NOTES, string> = {
  history: 'History',
  examination: 'Examination',
  assessment: 'Assessment',
  plan: 'Plan',
  safetyNetting: 'Safety-netting advice',
};

const CALLBACK_WORDS: Record<string, string> = {
  answered: 'Answered',
  no_answer: 'No answer',
  voicemail: 'Voicemail (message left)',
  wrong_number: 'Wrong number',
};

const OUTCOME_WORDS: Record<string, string> = {
  advice_and_close: 'Advice given: close the case',
  retriage: 'Re-triage',
  upgrade_to_ambulance: 'Upgrade to an ambulance',
  refer: 'Refer to another service',
  book_appointment: 'Book an appointment',
  home_visit: 'Home visit',
  prescribe: 'Prescribe',
};

/** The clinician's case: claim, call-back attempts, the consultation with NEWS2, outcome, close. */
export function ClinicianCase({ caseId }: { caseId: string }) {
  const detail = useCase(caseId);
  const queryClient = useQueryClient();
  const user = useUser();
  const { can } = useSession();
  const sites = useSites();
  const c = detail.data;
  const patient = useQuery({
    queryKey: ['patient', c?.patientId],
    queryFn: () => api<PatientView>('GET', `/api/v1/patients/${c!.patientId}`),
    enabled: !!c?.patientId,
    // Outside one's sites the answer stays 403 until break-glass: asking again changes nothing.
    retry: (count, error) => !(error instanceof ApiError && error.status === 403) && count < 3,
  });
  const triage = useQuery({
    queryKey: ['triage', caseId],
    queryFn: () => api<WalkResult | { status: 'not_started' }>('GET', `/api/v1/cases/${caseId}/triage`),
  });
  const [acknowledged, setAcknowledged] = useState(false);
  const [actionProblem, setActionProblem] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const now = useNow(1000);
  // Someone else claiming or changing this case shows here without reloading.
  useCaseEvents(
    (e) => {
      if (e.caseId === caseId) void detail.refetch();
    },
    () => void detail.refetch(),
  );

  if (detail.isPending) return <Text>Loading the case…</Text>;
  if (detail.isError || !c)
    return (
      <>
        <PageTitle>Case not available</PageTitle>
        <Alert color="red">This case could not be opened: {detail.error?.message ?? 'unknown error'}.</Alert>
      </>
    );

  const mine = c.claimedBy === user.userId;
  const refresh = () => queryClient.invalidateQueries({ queryKey: ['case', caseId] });
  const act = async (label: string, run: () => Promise<unknown>) => {
    setActionProblem(null);
    setNotice(null);
    setBusy(true);
    try {
      await run();
      await refresh();
    } catch (error) {
      setActionProblem(
        error instanceof ApiError && error.status === 409
          ? `${label} was not possible: ${error.detail ?? 'the case has changed'}. The screen now shows the case as it is.`
          : error instanceof ApiError
            ? error.plain()
            : `${label} failed.`,
      );
      await refresh();
    } finally {
      setBusy(false);
    }
  };

  const deadline = c.deadline ? Date.parse(c.deadline) : null;
  const timing = deadline ? timingAt(deadline, Date.parse(c.receivedAt), now) : null;
  const notes = patient.data?.record.specialNotes ?? [];
  const news2Badge = news2BadgeText(c.news2, c.news2NotApplicable);
  // NEWS2 is for adults: the identified patient's age at the call, from the date of birth.
  const patientAge = {
    identified: !!c.patientId,
    ageYears: patient.data ? ageInYears(patient.data.record.dateOfBirth, c.receivedAt) : null,
  };
  const path = triage.data && triage.data.status !== 'not_started' ? triage.data.path : [];

  return (
    <Stack maw={1200}>
      <PageTitle text="Case">Case: {c.presentingComplaint}</PageTitle>
      {c.patientId && patient.error instanceof ApiError && patient.error.status === 403 && (
        <SpecialNotesWithheld
          patientId={c.patientId}
          canBreakGlass={can('patients.break_glass')}
          onRead={(read) => queryClient.setQueryData(['patient', c.patientId], read)}
        />
      )}
      {patient.data?.breakGlass && (
        <Text fw={700} data-testid="break-glass-read">
          Read by break-glass: your reason is recorded and flagged for review.
        </Text>
      )}
      <SpecialNotesBanner
        notes={notes}
        acknowledged={acknowledged}
        onAcknowledge={() => setAcknowledged(true)}
      />
      {c.disposition?.notice && <SampleNotice text={c.disposition.notice} />}
      <Paper withBorder p="sm" component="section" aria-label="Case details">
        <Group gap="xs" wrap="wrap">
          <Badge size="lg" variant="light" data-testid="case-status">
            {STATUS_LABELS[c.status] ?? c.status}
          </Badge>
          <Text size="sm" fw={700} data-testid="case-ref">
            Case ref {caseReference(c.caseId)}
          </Text>
          {timing && deadline && ['queued', 'claimed', 'in_consultation'].includes(c.status) && (
            <TimingBadge timing={timing} remainingSeconds={Math.round((deadline - now) / 1000)} />
          )}
          {c.escalated && (
            <Badge color="#a51d1d" variant="filled">
              Escalated: welfare check needed
            </Badge>
          )}
          {news2Badge && (
            <Badge variant="outline" color="dark" data-testid="case-news2">
              {news2Badge}
            </Badge>
          )}
          <Badge variant="outline" color="dark" data-testid="case-site">
            Site: {siteName(sites.data, c.siteId)}
          </Badge>
        </Group>
        <Text mt={4}>
          <strong>Disposition:</strong> {c.disposition?.label ?? 'none'}
          {c.deadline ? ` · call back by ${londonWhen(c.deadline, now)}` : ''}
        </Text>
        <Text>
          <strong>Caller:</strong> {c.caller.name} ({c.caller.relationship}) ·{' '}
          <strong>call back on {c.caller.callbackNumber}</strong>
        </Text>
        {c.news2NotApplicable && <Text data-testid="news2-not-used">{c.news2NotApplicable.message}</Text>}
        <Text size="sm">
          Received {londonDateTime(c.receivedAt)} at {siteName(sites.data, c.siteId)} · patient is at{' '}
          {c.location} · {c.callbackAttempts} call-back {c.callbackAttempts === 1 ? 'attempt' : 'attempts'} (
          {c.failedCallbackAttempts} failed) ·{' '}
          <span data-testid="case-holder">
            {mine
              ? 'held by you'
              : c.claimedBy
                ? `held by ${c.claimedByName ?? 'a clinician'}`
                : 'not claimed'}
          </span>
        </Text>
      </Paper>
      {patient.data?.record.deceasedAt && <DeceasedBanner deceasedAt={patient.data.record.deceasedAt} />}
      {patient.data && <PatientSummaryCard patient={patient.data} />}
      {!c.patientId && <Text>The patient has not been identified on this case.</Text>}
      <Group className="no-print">
        <Link to={`/cases/${caseId}/summary`}>Case summary to read or print</Link>
        {c.patientId && <Link to={`/patients/${c.patientId}`}>Patient record and previous encounters</Link>}
      </Group>

      {actionProblem && (
        <Alert color="red" role="alert" title="Not done">
          {actionProblem}
        </Alert>
      )}
      {notice && (
        <Alert color="orange" role="alert" title="Welfare check">
          {notice}
        </Alert>
      )}

      {c.status === 'queued' && (
        <Group>
          <Button
            loading={busy}
            onClick={() => void act('Claiming', () => api('POST', `/api/v1/cases/${caseId}/claim`))}
          >
            Claim this case
          </Button>
        </Group>
      )}

      {mine && (c.status === 'claimed' || c.status === 'in_consultation') && (
        <CallbackAttempt
          caseId={caseId}
          onRecorded={(prompt) => {
            setNotice(prompt);
            void refresh();
          }}
        />
      )}

      {c.escalated && !['closed', 'abandoned'].includes(c.status) && (
        <WelfareCheck caseId={caseId} onRecorded={() => void refresh()} />
      )}
      {(c.welfareChecks ?? []).length > 0 && <WelfareChecks checks={c.welfareChecks ?? []} />}

      {mine && c.status === 'claimed' && (
        <Group>
          <Button
            loading={busy}
            onClick={() =>
              void act('Starting the consultation', () => api('POST', `/api/v1/cases/${caseId}/consultation`))
            }
          >
            Start consultation
          </Button>
          <Button
            variant="default"
            loading={busy}
            onClick={() =>
              void act('Releasing', async () => {
                await api('POST', `/api/v1/cases/${caseId}/release`);
                navigate('/queue');
              })
            }
          >
            Release back to the queue
          </Button>
        </Group>
      )}

      {mine && c.status === 'in_consultation' && (
        <Consultation
          caseDetail={c}
          patient={patientAge}
          prescribing={{ can: can(PRESCRIBE_PERMISSION), patient: patient.data ?? null }}
          onSaved={() => void refresh()}
        />
      )}
      <PrescriptionList caseId={caseId} canPrescribe={mine && can(PRESCRIBE_PERMISSION)} />
      {c.patientId && patient.data && (
        <AllergiesMedicationPanel patientId={c.patientId} canEdit={can('patients.edit')} />
      )}

      {c.status === 'follow_up_arranged' ||
      c.status === 'referral_pending' ||
      c.status === 'ambulance_requested' ? (
        <Group>
          <Button
            loading={busy}
            onClick={() => void act('Closing', () => api('POST', `/api/v1/cases/${caseId}/close`))}
          >
            Close case
          </Button>
        </Group>
      ) : null}

      {c.status === 'follow_up_arranged' && c.outcomes.includes('book_appointment') && (
        <BookingPanel caseId={caseId} kind={outcomeBooking()?.kind ?? null} />
      )}
      {c.status === 'ambulance_requested' && <AmbulanceHandover caseDetail={c} />}
      {c.outcomes.includes('home_visit') && <HomeVisitPanel caseId={caseId} />}
      {/* A referring outcome: the same ranked services and choice as the adviser's disposition. */}
      {c.status === 'referral_pending' && (
        <ServiceChoice caseDetail={c} patientPostcode={patient.data?.record.postcode ?? null} />
      )}
      <CaseMessages caseId={caseId} caseStatus={c.status} />

      {c.status === 'closed' && (
        <Alert color="#1e6b30" title="Case closed" role="status">
          This case is closed and has left the queue.{' '}
          <Button variant="subtle" onClick={() => navigate('/queue')}>
            Back to the queue
          </Button>
        </Alert>
      )}

      <TriagePath path={path} />
      {c.patientId && can('patients.edit') && (
        <SafeguardingConcern
          caseId={caseId}
          onRaised={() =>
            Promise.all([refresh(), queryClient.invalidateQueries({ queryKey: ['patient', c.patientId] })])
          }
        />
      )}
      {c.record && <CaseRecord record={c.record} caseId={caseId} />}
    </Stack>
  );
}

function CallbackAttempt({
  caseId,
  onRecorded,
}: {
  caseId: string;
  onRecorded: (prompt: string | null) => void;
}) {
  const [outcome, setOutcome] = useState<string>('no_answer');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const [last, setLast] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    setBusy(true);
    try {
      const r = await api<{ escalated: boolean; prompt?: string }>(
        'POST',
        `/api/v1/cases/${caseId}/callback-attempts`,
        { outcome },
      );
      setLast(`Recorded: ${CALLBACK_WORDS[outcome] ?? outcome} at ${londonTime(Date.now())}.`);
      onRecorded(r.prompt ?? null);
    } catch (error) {
      problems.fromError(error, ['outcome']);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Paper
      withBorder
      p="md"
      component="form"
      onSubmit={(e: FormEvent) => void submit(e)}
      aria-labelledby="callback-heading"
      noValidate
    >
      <Title order={2} size="h4" id="callback-heading" mb="xs">
        Call-back attempt
      </Title>
      <FormAlert message={problems.form} />
      <Group align="flex-end">
        <NativeSelect
          label="Outcome of the call-back"
          data={CALLBACK_OUTCOMES.map((o) => ({ value: o, label: CALLBACK_WORDS[o] ?? o }))}
          value={outcome}
          onChange={(e) => setOutcome(e.currentTarget.value)}
          error={problems.field('outcome')}
        />
        <Button type="submit" loading={busy} variant="light">
          Record call-back attempt
        </Button>
      </Group>
      {last && (
        <Text mt="xs" role="status">
          {last}
        </Text>
      )}
    </Paper>
  );
}

function Consultation({
  caseDetail,
  patient,
  prescribing,
  onSaved,
}: {
  caseDetail: CaseDetail;
  patient: { identified: boolean; ageYears: number | null };
  /** Whether this user may prescribe (the prescriber role), and the identified patient. */
  prescribing: { can: boolean; patient: PatientView | null };
  onSaved: () => void;
}) {
  const caseId = caseDetail.caseId;
  const [notes, setNotes] = useState(EMPTY_NOTES);
  const [obs, setObs] = useState<ObservationInputs>(EMPTY_OBSERVATIONS);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const outcomeProblems = useFormProblems();
  const [outcome, setOutcome] = useState<string>('advice_and_close');
  // Never preselected: the clinician chooses the category every time.
  const [category, setCategory] = useState('');
  const [outcomeDone, setOutcomeDone] = useState<string | null>(null);
  // A home visit (C7): within how many hours, and why; the server creates the visit from them.
  const [visitHours, setVisitHours] = useState('');
  const [visitReason, setVisitReason] = useState('');
  // What is typed is kept as a draft on the server: a reload or an idle sign-out loses nothing.
  // A field typed before the draft arrived keeps what was typed (it is newer); the draft fills the
  // rest, and where the draft had other words for a typed field the screen shows them.
  // The draft is merged into the latest form: it arrives in a task of its own, after React has
  // rendered every key typed before it.
  const latest = useRef({ notes, obs });
  latest.current = { notes, obs };
  // The draft's words for each field where they differed from what was typed, shown at the field.
  const [draftWords, setDraftWords] = useState<{
    notes: Partial<Record<keyof typeof EMPTY_NOTES, string>>;
    obs: Partial<Record<keyof ObservationInputs, string>>;
  }>({ notes: {}, obs: {} });
  const draft = useConsultationDraft(caseId, { notes, observations: obs }, (kept) => {
    const { observations = {}, ...keptNotes } = kept;
    const n = mergeDraft(latest.current.notes, EMPTY_NOTES, keptNotes);
    const o = mergeDraft(latest.current.obs, EMPTY_OBSERVATIONS, observations);
    setNotes(n.merged);
    setObs(o.merged);
    setDraftWords({
      notes: Object.fromEntries(n.differing.map((k) => [k, keptNotes[k]!])),
      obs: Object.fromEntries(o.differing.map((k) => [k, observationWords(k, observations[k]!)])),
    });
    return [...n.filled.map((k) => NOTE_LABELS[k]), ...o.filled.map((k) => OBSERVATION_FIELDS[k].label)];
  });
  // The same words listed above the form, by the fields' labels.
  const differing = [
    ...Object.entries(draftWords.notes).map(([k, words]) => ({
      field: NOTE_LABELS[k as keyof typeof EMPTY_NOTES],
      words,
    })),
    ...Object.entries(draftWords.obs).map(([k, words]) => ({
      field: OBSERVATION_FIELDS[k as keyof ObservationInputs].label,
      words,
    })),
  ];

  const [news2Reason, setNews2Reason] = useState('');
  // A raised NEWS2 (5 or more, or a single 3) with an outcome that is not urgent: the clinician says why.
  const needsReason =
    NON_URGENT_OUTCOMES.includes(outcome as ConsultationOutcome) &&
    (isUrgentNews2Band(caseDetail.news2?.band) || outcomeProblems.field('news2Reason') !== undefined);

  const save = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    setSaved(null);
    setBusy(true);
    try {
      const body = {
        ...Object.fromEntries(Object.entries(notes).filter(([, v]) => v.trim() !== '')),
        ...(hasObservations(obs)
          ? { observations: toObservations(obs), ...patientFacts(obs, patient.identified) }
          : {}),
      };
      const r = await api<{ news2: News2Result | null; news2NotApplicable?: News2NotApplicable | null }>(
        'POST',
        `/api/v1/cases/${caseId}/consultation/record`,
        body,
      );
      setSaved(`Consultation saved at ${londonTime(Date.now())}${savedNews2Words(r)}.`);
      onSaved();
    } catch (error) {
      problems.fromError(error, [
        'history',
        'examination',
        'assessment',
        'plan',
        'safetyNetting',
        ...Object.keys(EMPTY_OBSERVATIONS).map((k) => `observations.${k}`),
        'pregnancy',
        'statedAgeYears',
      ]);
    } finally {
      setBusy(false);
    }
  };

  const recordOutcome = async (event: FormEvent) => {
    event.preventDefault();
    outcomeProblems.clear();
    setBusy(true);
    try {
      await api('POST', `/api/v1/cases/${caseId}/outcome`, {
        outcome,
        ...(outcome === 'upgrade_to_ambulance' && category !== ''
          ? { ambulanceCategory: Number(category) }
          : {}),
        ...(needsReason && news2Reason.trim() !== '' ? { news2Reason } : {}),
        ...(outcome === 'home_visit'
          ? {
              homeVisit: {
                withinHours: visitHours.trim() === '' ? null : Number(visitHours),
                reason: visitReason.trim(),
              },
            }
          : {}),
      });
      setOutcomeDone(
        outcome === 'home_visit'
          ? `Home visit requested within ${visitHours.trim()} ${visitHours.trim() === '1' ? 'hour' : 'hours'}: the dispatcher allocates a car`
          : (OUTCOME_WORDS[outcome] ?? outcome),
      );
      onSaved();
    } catch (error) {
      outcomeProblems.fromError(error, [
        'outcome',
        'ambulanceCategory',
        'news2Reason',
        'homeVisit.withinHours',
        'homeVisit.reason',
        'homeVisit',
      ]);
    } finally {
      setBusy(false);
    }
  };

  const text = (key: keyof typeof notes) => (
    <Textarea
      label={NOTE_LABELS[key]}
      description={
        draftWords.notes[key] === undefined ? undefined : `Unsaved notes said: ${draftWords.notes[key]}`
      }
      value={notes[key]}
      onChange={(e) => {
        const v = e.currentTarget.value;
        setNotes((n) => ({ ...n, [key]: v }));
      }}
      error={problems.field(key)}
      autosize
      minRows={2}
    />
  );

  return (
    <>
      <Paper
        withBorder
        p="md"
        component="form"
        onSubmit={(e: FormEvent) => void save(e)}
        aria-labelledby="consultation-heading"
        noValidate
      >
        <Title order={2} size="h4" id="consultation-heading" mb="xs">
          Consultation
        </Title>
        <FormAlert message={problems.form} />
        <Stack>
          {differing.length > 0 && (
            <Alert
              color="yellow"
              title="The unsaved notes had other words where you had already typed"
              data-testid="draft-differing"
            >
              <Text size="sm">
                What you typed is kept. The unsaved notes said this instead (shown under each field too); copy
                anything that was right:
              </Text>
              <List size="sm">
                {differing.map((d) => (
                  <List.Item key={d.field}>
                    <b>{d.field}:</b> <span style={{ whiteSpace: 'pre-wrap' }}>{d.words}</span>
                  </List.Item>
                ))}
              </List>
            </Alert>
          )}
          {text('history')}
          {text('examination')}
          <ObservationsFields
            value={obs}
            onChange={(key, v) => setObs((o) => ({ ...o, [key]: v }))}
            draftWords={draftWords.obs}
            serverErrors={problems.fields}
            patient={patient}
          />
          {text('assessment')}
          {text('plan')}
          {text('safetyNetting')}
          <Group>
            <Button type="submit" loading={busy}>
              Save consultation
            </Button>
            {saved && <Text role="status">{saved}</Text>}
          </Group>
          {draft.restored && (
            <Text size="sm" role="status" data-testid="draft-restored">
              {draft.restored}
            </Text>
          )}
          {draft.status && (
            <Text size="sm" role="status" data-testid="draft-status">
              {draft.status}
            </Text>
          )}
        </Stack>
      </Paper>
      <Paper
        withBorder
        p="md"
        component="form"
        onSubmit={(e: FormEvent) => void recordOutcome(e)}
        aria-labelledby="outcome-heading"
        noValidate
      >
        <Title order={2} size="h4" id="outcome-heading" mb="xs">
          Outcome
        </Title>
        <FormAlert message={outcomeProblems.form} />
        <Group align="flex-end">
          <NativeSelect
            label="Outcome of the consultation"
            data={CONSULTATION_OUTCOMES.map((o) => ({ value: o, label: OUTCOME_WORDS[o] ?? o }))}
            value={outcome}
            onChange={(e) => setOutcome(e.currentTarget.value)}
            error={outcomeProblems.field('outcome')}
          />
          {outcome === 'upgrade_to_ambulance' && (
            <NativeSelect
              label="Ambulance category"
              data={[
                { value: '', label: 'Choose a category' },
                ...['1', '2', '3', '4'].map((v) => ({ value: v, label: `Category ${v}` })),
              ]}
              value={category}
              onChange={(e) => setCategory(e.currentTarget.value)}
              error={outcomeProblems.field('ambulanceCategory')}
            />
          )}
          {outcome === 'home_visit' && (
            <TextInput
              label="Home visit within (hours)"
              inputMode="numeric"
              w={180}
              value={visitHours}
              onChange={(e) => setVisitHours(e.currentTarget.value)}
              error={outcomeProblems.field('homeVisit.withinHours')}
            />
          )}
          <Button type="submit" loading={busy}>
            Record outcome
          </Button>
        </Group>
        {outcome === 'home_visit' && (
          <Textarea
            mt="sm"
            label="Reason for the home visit"
            description="Shown to the dispatcher and the car's crew."
            value={visitReason}
            onChange={(e) => setVisitReason(e.currentTarget.value)}
            error={outcomeProblems.field('homeVisit.reason') ?? outcomeProblems.field('homeVisit')}
            autosize
            minRows={2}
          />
        )}
        {needsReason && (
          <Textarea
            mt="sm"
            label="Why is this outcome right despite the raised NEWS2?"
            description="NEWS2 of 5 or more, or a single parameter scoring 3, asks for an urgent response."
            value={news2Reason}
            onChange={(e) => setNews2Reason(e.currentTarget.value)}
            error={outcomeProblems.field('news2Reason')}
            autosize
            minRows={2}
          />
        )}
        {outcomeDone && (
          <Text mt="xs" role="status">
            Outcome recorded: {outcomeDone}.
          </Text>
        )}
      </Paper>
      {/* "Book an appointment": the treatment-centre booking panel, as on the adviser's call. */}
      {outcome === 'book_appointment' && (
        <BookingPanel caseId={caseId} kind={outcomeBooking()?.kind ?? null} />
      )}
      {/* Prescribing: the prescriber role only; anyone else is told who can. */}
      {outcome === 'prescribe' &&
        (prescribing.can ? (
          <PrescribingPanel caseId={caseId} patient={prescribing.patient} />
        ) : (
          <Alert color="orange" data-testid="not-a-prescriber">
            Only a prescriber can prescribe: hand the case to a prescriber, or choose another outcome.
          </Alert>
        ))}
    </>
  );
}

/** " with NEWS2 7", " with a partial NEWS2 (1 of 7 parameters)", or why NEWS2 was not computed. */
function savedNews2Words(r: {
  news2: News2Result | null;
  news2NotApplicable?: News2NotApplicable | null;
}): string {
  if (r.news2NotApplicable) return `; NEWS2 not computed: ${r.news2NotApplicable.message}`;
  if (!r.news2) return '';
  return r.news2.total !== null
    ? ` with NEWS2 ${r.news2.total}`
    : ` with a partial NEWS2 (${r.news2.present} of ${r.news2.of} parameters, no total)`;
}

const CHECKER_WORDS: Record<string, string> = {
  clinician: 'A clinician',
  next_of_kin: 'Next of kin',
  gp_practice: 'The GP practice',
  police: 'The police',
  ambulance_service: 'The ambulance service',
  other: 'Someone else (say who in the details)',
};

const WELFARE_OUTCOME_WORDS: Record<string, string> = {
  patient_reached: 'The patient was reached',
  not_reached: 'The patient was not reached',
  passed_to_emergency_services: 'Passed to the emergency services',
};

/** Records a welfare check on an escalated case; reaching the patient clears the escalation. */
function WelfareCheck({ caseId, onRecorded }: { caseId: string; onRecorded: () => void }) {
  const [checkedBy, setCheckedBy] = useState<string>('');
  const [outcome, setOutcome] = useState<string>('');
  const [details, setDetails] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    setBusy(true);
    try {
      await api('POST', `/api/v1/cases/${caseId}/welfare-checks`, {
        ...(checkedBy ? { checkedBy } : {}),
        ...(outcome ? { outcome } : {}),
        ...(details.trim() ? { details } : {}),
      });
      setCheckedBy('');
      setOutcome('');
      setDetails('');
      onRecorded();
    } catch (error) {
      problems.fromError(error, ['checkedBy', 'outcome', 'details']);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Paper
      withBorder
      p="md"
      component="form"
      onSubmit={(e: FormEvent) => void submit(e)}
      aria-labelledby="welfare-heading"
      noValidate
    >
      <Title order={2} size="h4" id="welfare-heading" mb="xs">
        Record the welfare check
      </Title>
      <FormAlert message={problems.form} />
      <Group align="flex-end">
        <NativeSelect
          label="Who made the check"
          data={[
            { value: '', label: 'Choose who' },
            ...WELFARE_CHECKERS.map((w) => ({ value: w, label: CHECKER_WORDS[w] ?? w })),
          ]}
          value={checkedBy}
          onChange={(e) => setCheckedBy(e.currentTarget.value)}
          error={problems.field('checkedBy')}
        />
        <NativeSelect
          label="What the check found"
          data={[
            { value: '', label: 'Choose the outcome' },
            ...WELFARE_CHECK_OUTCOMES.map((o) => ({ value: o, label: WELFARE_OUTCOME_WORDS[o] ?? o })),
          ]}
          value={outcome}
          onChange={(e) => setOutcome(e.currentTarget.value)}
          error={problems.field('outcome')}
        />
        <Button type="submit" loading={busy} variant="light">
          Record welfare check
        </Button>
      </Group>
      <Textarea
        mt="xs"
        label="Details of the check"
        value={details}
        onChange={(e) => setDetails(e.currentTarget.value)}
        error={problems.field('details')}
        autosize
        minRows={1}
      />
    </Paper>
  );
}

function WelfareChecks({ checks }: { checks: NonNullable<CaseDetail['welfareChecks']> }) {
  return (
    <Paper withBorder p="sm" component="section" aria-labelledby="welfare-checks-heading">
      <Title order={2} size="h5" id="welfare-checks-heading">
        Welfare checks
      </Title>
      <ul data-testid="welfare-checks">
        {checks.map((w, i) => (
          <li key={i}>
            {londonDateTime(w.checkedAt)}: {CHECKER_WORDS[w.checkedBy] ?? w.checkedBy} —{' '}
            {WELFARE_OUTCOME_WORDS[w.outcome] ?? w.outcome}
            {w.details ? ` (${w.details})` : ''}
          </li>
        ))}
      </ul>
    </Paper>
  );
}
