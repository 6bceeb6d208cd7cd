import { caseReference } from '@holdfast/core';
import {
  Alert,
  Button,
  Group,
  NativeSelect,
  Paper,
  Stack,
  Text,
  Textarea,
  TextInput,
  Title,
} from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { api, ApiError } from '../../lib/api.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { siteName, STATUS_LABELS, useCase, useSites } from '../../lib/queries.ts';
import { Link } from '../../lib/router.tsx';
import { useSession } from '../../lib/session.tsx';
import { londonDateTime, londonInputToIso } from '../../lib/time.ts';

interface FoundCase {
  caseId: string;
  status: string;
  siteId: string;
  receivedAt: string;
}

/** What a downtime pack's paper form can record, in the words the form uses. */
const KINDS = [
  { value: 'call', label: 'Call record (a new call or the caller ringing again)' },
  { value: 'triage', label: 'Triage record' },
  { value: 'callback', label: 'Call-back attempt' },
  { value: 'clinical', label: 'Clinical notes (entered by a clinician)' },
  { value: 'outcome', label: 'Outcome (advice given, referred, ambulance phoned…)' },
  { value: 'other', label: 'Something else' },
];

const EMPTY = { kind: '', happenedAt: '', writtenBy: '', text: '' };

/**
 * Back-entry after an outage (issue 13 §3): paper from the downtime pack is matched to its case by
 * the reference printed beside it, checked against the caller and call-back number, and what was
 * done on it is entered with the time written on the paper. Nothing is said to be entered until the
 * server has stored it.
 */
export function PaperRecords() {
  const [reference, setReference] = useState('');
  const [found, setFound] = useState<FoundCase[] | null>(null);
  const [looking, setLooking] = useState(false);
  const [chosen, setChosen] = useState<string | null>(null);
  const lookup = useFormProblems();

  const find = async (event: FormEvent) => {
    event.preventDefault();
    lookup.clear();
    setFound(null);
    setChosen(null);
    setLooking(true);
    try {
      const r = await api<{ cases: FoundCase[] }>(
        'GET',
        `/api/v1/cases/by-reference/${encodeURIComponent(reference.trim())}`,
      );
      setFound(r.cases);
      if (r.cases.length === 1) setChosen(r.cases[0]!.caseId);
    } catch (error) {
      // No case with that reference at the caller's sites: said below, not as a failure.
      if (error instanceof ApiError && error.status === 404) setFound([]);
      else lookup.fromError(error, ['reference']);
    } finally {
      setLooking(false);
    }
  };

  return (
    <Stack maw={900}>
      <PageTitle>Enter paper records</PageTitle>
      <Text>
        After an outage, type in what was done on paper. Find the case by the reference printed beside it in
        the downtime pack, check it is the same caller, and enter each record with the time written on the
        paper. The case&apos;s record then shows it at that time, marked as from paper.
      </Text>
      <Paper withBorder p="md" component="form" onSubmit={(e: FormEvent) => void find(e)} noValidate>
        <FormAlert message={lookup.form} />
        <Group align="end">
          <TextInput
            label="Case reference on the paper"
            description="As printed in the downtime pack, e.g. 3F2A-9C1B"
            value={reference}
            onChange={(e) => setReference(e.currentTarget.value)}
            error={lookup.field('reference')}
            autoComplete="off"
          />
          <Button type="submit" loading={looking} disabled={reference.trim() === ''}>
            Find the case
          </Button>
        </Group>
      </Paper>
      {found && found.length === 0 && (
        <Alert color="yellow" title="No case with that reference at your sites">
          Check the reference against the paper. A call taken only on paper has no case yet: open it as a new
          call, then enter the rest of its paper here.
        </Alert>
      )}
      {found && found.length > 1 && (
        <Alert color="yellow" title="More than one case has this reference">
          Choose the one whose caller and call-back number match the paper.
        </Alert>
      )}
      {found?.map((c) => (
        <FoundCaseCard
          key={c.caseId}
          found={c}
          chosen={chosen === c.caseId}
          onChoose={() => setChosen(c.caseId)}
        />
      ))}
      {chosen && <PaperRecordForm key={chosen} caseId={chosen} />}
    </Stack>
  );
}

function FoundCaseCard({
  found,
  chosen,
  onChoose,
}: {
  found: FoundCase;
  chosen: boolean;
  onChoose: () => void;
}) {
  const detail = useCase(found.caseId);
  const sites = useSites();
  const c = detail.data;
  return (
    <Paper withBorder p="md" component="section" aria-label={`Case ${caseReference(found.caseId)}`}>
      <Group justify="space-between" align="start">
        <Stack gap={2}>
          <Title order={2} size="h4">
            Case {caseReference(found.caseId)}
          </Title>
          {c ? (
            <>
              <Text>
                Caller: {c.caller.name}, call-back {c.caller.callbackNumber}
              </Text>
              <Text>{c.presentingComplaint}</Text>
            </>
          ) : (
            <Text>
              {detail.isError ? 'The case could not be read: reload the page.' : 'Reading the case…'}
            </Text>
          )}
          <Text size="sm">
            Call came in {londonDateTime(found.receivedAt)} · {siteName(sites.data, found.siteId)} ·{' '}
            {STATUS_LABELS[found.status] ?? found.status}
          </Text>
          <Link to={`/cases/${found.caseId}/summary`}>Open its record</Link>
        </Stack>
        {!chosen && (
          <Button variant="default" onClick={onChoose}>
            This is the case on the paper
          </Button>
        )}
      </Group>
    </Paper>
  );
}

function PaperRecordForm({ caseId }: { caseId: string }) {
  const session = useSession();
  const [form, setForm] = useState(EMPTY);
  const [busy, setBusy] = useState(false);
  const [entered, setEntered] = useState<string[]>([]);
  const problems = useFormProblems();
  const kinds = session.can('consultations.write') ? KINDS : KINDS.filter((k) => k.value !== 'clinical');

  const save = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (form.happenedAt === '') {
      problems.setField('happenedAt', 'Give the date and time written on the paper.');
      return;
    }
    setBusy(true);
    try {
      const happenedAt = londonInputToIso(form.happenedAt);
      await api('POST', `/api/v1/cases/${caseId}/paper-records`, { ...form, happenedAt });
      // Said only now that the server has stored it.
      setEntered((e) => [
        ...e,
        `${KINDS.find((k) => k.value === form.kind)?.label ?? form.kind} written by ${form.writtenBy.trim()} at ${londonDateTime(happenedAt)}`,
      ]);
      setForm(EMPTY);
    } catch (error) {
      problems.fromError(error, ['kind', 'happenedAt', 'writtenBy', 'text']);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Paper
      withBorder
      p="md"
      component="form"
      onSubmit={(e: FormEvent) => void save(e)}
      aria-labelledby="paper-record-heading"
      noValidate
    >
      <Title order={2} size="h4" id="paper-record-heading" mb="xs">
        A paper record for case {caseReference(caseId)}
      </Title>
      <FormAlert message={problems.form} />
      <Stack>
        <NativeSelect
          label="What the paper records"
          data={[{ value: '', label: 'Choose…' }, ...kinds]}
          value={form.kind}
          onChange={(e) => setForm({ ...form, kind: e.currentTarget.value })}
          error={problems.field('kind')}
        />
        <TextInput
          type="datetime-local"
          label="When it happened (UK time, as written on the paper)"
          value={form.happenedAt}
          onChange={(e) => setForm({ ...form, happenedAt: e.currentTarget.value })}
          error={problems.field('happenedAt')}
        />
        <TextInput
          label="Written by (name as on the paper)"
          value={form.writtenBy}
          onChange={(e) => setForm({ ...form, writtenBy: e.currentTarget.value })}
          error={problems.field('writtenBy')}
          autoComplete="off"
        />
        <Textarea
          label="What the paper says"
          value={form.text}
          onChange={(e) => setForm({ ...form, text: e.currentTarget.value })}
          error={problems.field('text')}
          autosize
          minRows={3}
        />
        <Group>
          <Button type="submit" loading={busy}>
            Enter into the case
          </Button>
        </Group>
        {entered.length > 0 && (
          <Stack gap={2} role="status" data-testid="paper-entered">
            {entered.map((line) => (
              <Text key={line} size="sm">
                Entered into case {caseReference(caseId)}: {line}.
              </Text>
            ))}
          </Stack>
        )}
      </Stack>
    </Paper>
  );
}
