import { formatNhsNumber, normaliseNhsNumber, parseDateOfBirth } from '@holdfast/core';
import {
  Badge,
  Button,
  Group,
  NativeSelect,
  Paper,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { FormAlert } from '../../components/FormAlert.tsx';
import {
  BreakGlassRestricted,
  formatDeathDate,
  PatientIdentityDetails,
  RESTRICTED_WORDS,
} from '../../components/PatientIdentity.tsx';
import { api } from '../../lib/api.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { lengthFeedback } from '../../lib/limits.ts';
import type { PatientSummary, PatientView } from '../../lib/types.ts';

/** "1980-05-03" as "3 May 1980" (a calendar date: no time zone involved). */
export function formatDate(iso: string): string {
  const [y, m, d] = iso.split('-').map(Number);
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  return `${d} ${months[(m ?? 1) - 1]} ${y}`;
}

/** Today's calendar date in the UK (a date of birth after it is a typing error). */
function londonToday(): string {
  // en-CA writes dates as YYYY-MM-DD.
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/London' }).format(new Date());
}

/**
 * A date of birth as typed (day first, whatever the browser's language), as the API takes it: an
 * ISO date, or the year alone where a search allows it; or the reason it cannot be one, as a
 * sentence.
 */
export function dateOfBirthEntry(
  typed: string,
  allowYearOnly: boolean,
): { ok: true; value: string } | { ok: false; error: string } {
  const r = parseDateOfBirth(typed, { today: londonToday(), allowYearOnly });
  if (!r.ok) return { ok: false, error: `The date of birth ${r.message}.` };
  return { ok: true, value: r.kind === 'date' ? r.iso : r.year };
}

const SEX_WORDS: Record<PatientSummary['sex'], string> = {
  female: 'Female',
  male: 'Male',
  other: 'Other',
  unknown: 'Sex not known',
};

/** What the NHS number field says while it is typed: nothing until 10 digits, then valid or why not. */
export function nhsNumberFeedback(value: string): { error?: string; ok?: string } {
  if (value.trim() === '') return {};
  const r = normaliseNhsNumber(value);
  if (r.ok) return { ok: `Valid NHS number: ${formatNhsNumber(r.value)}` };
  // A character that has no place in an NHS number is named at once (a pasted en dash or an
  // invisible space); anything else waits until ten digits are typed.
  const wrongCharacter = !/^[0-9 \t-]*$/.test(value.trim());
  if (!wrongCharacter && value.replace(/[^0-9]/g, '').length < 10) return {};
  return { error: `This NHS number ${r.message}.` };
}

export function PatientSummaryCard({ patient }: { patient: PatientView }) {
  const r = patient.record;
  return (
    <Paper withBorder p="sm">
      <Group gap="xs">
        <Text fw={700} size="lg">
          {r.givenName} {r.familyName.toUpperCase()}
        </Text>
        <Badge color="#1e6b30" variant="filled">
          Identified
        </Badge>
        {patient.repeatCaller.flagged && (
          <Badge color="orange" variant="filled">
            Repeat caller: {patient.repeatCaller.cases96h} cases in 96 hours
          </Badge>
        )}
        {r.deceasedAt && (
          <Badge color="#8a1c1c" variant="filled">
            Deceased
          </Badge>
        )}
        {patient.restricted && (
          <Badge color="#8a1c1c" variant="filled">
            Restricted record
          </Badge>
        )}
      </Group>
      <Text>
        Born {formatDate(r.dateOfBirth)} · NHS number{' '}
        {r.nhsNumber ? formatNhsNumber(r.nhsNumber) : 'not known'}
        {r.postcode ? ` · ${r.postcode}` : ''}
      </Text>
      <PatientIdentityDetails patient={patient} />
      {patient.restricted && (
        <Stack gap="xs" mt="xs" component="section" aria-label={RESTRICTED_WORDS}>
          <BreakGlassRestricted patientId={patient.patientId} />
        </Stack>
      )}
    </Paper>
  );
}

/** Finding the patient: by NHS number (checked as typed), or by name and date of birth; or registering. */
export function PatientSearch({ caseId, siteId }: { caseId: string; siteId: string }) {
  const queryClient = useQueryClient();
  const [nhs, setNhs] = useState('');
  const [familyName, setFamilyName] = useState('');
  const [givenName, setGivenName] = useState('');
  const [dob, setDob] = useState('');
  const [postcode, setPostcode] = useState('');
  const [results, setResults] = useState<PatientSummary[] | null>(null);
  // Each search's answer takes the focus (and the screen), so the adviser sees it at once.
  const resultsRef = useRef<HTMLElement>(null);
  const [searchCount, setSearchCount] = useState(0);
  useEffect(() => {
    if (searchCount === 0) return;
    const section = resultsRef.current;
    if (!section) return;
    // Below the fold (or under the sticky header): bring the results up to just under the header.
    const header = document.querySelector('.app-header')?.getBoundingClientRect().bottom ?? 0;
    const box = section.getBoundingClientRect();
    if (box.top < header || box.bottom > window.innerHeight)
      window.scrollTo({ top: window.scrollY + box.top - header - 8 });
    section.focus({ preventScroll: true });
  }, [searchCount]);
  const showResults = (patients: PatientSummary[]) => {
    setResults(patients);
    setSearchCount((n) => n + 1);
  };
  const [busy, setBusy] = useState(false);
  const familyLength = lengthFeedback(familyName, 100);
  const givenLength = lengthFeedback(givenName, 100);
  const [registering, setRegistering] = useState(false);
  const byNhs = useFormProblems();
  const byName = useFormProblems();
  const selection = useFormProblems();
  const feedback = nhsNumberFeedback(nhs);

  // A patient whose record says they have died is selected only after the adviser confirms the
  // call is about them (the server refuses it otherwise): a namesake is an easy wrong pick.
  const [confirmingDeceased, setConfirmingDeceased] = useState<PatientSummary | null>(null);

  const identify = async (patientId: string, deceasedConfirmed = false) => {
    selection.clear();
    setConfirmingDeceased(null);
    try {
      await api('POST', `/api/v1/cases/${caseId}/patient`, {
        patientId,
        ...(deceasedConfirmed ? { deceasedConfirmed: true } : {}),
      });
      await queryClient.invalidateQueries({ queryKey: ['case', caseId] });
    } catch (error) {
      selection.fromError(error, []);
    }
  };

  const searchNhs = async (event: FormEvent) => {
    event.preventDefault();
    byNhs.clear();
    // A new search: the last one's results no longer answer anything (and must not sit under its error).
    setResults(null);
    const r = normaliseNhsNumber(nhs);
    if (!r.ok) return byNhs.setField('nhsNumber', `This NHS number ${r.message}.`);
    setBusy(true);
    try {
      showResults(
        (await api<{ patients: PatientSummary[] }>('POST', '/api/v1/patients/search', { nhsNumber: r.value }))
          .patients,
      );
    } catch (error) {
      byNhs.fromError(error, ['nhsNumber']);
    } finally {
      setBusy(false);
    }
  };

  const searchName = async (event: FormEvent) => {
    event.preventDefault();
    byName.clear();
    setResults(null);
    const date = dob.trim() ? dateOfBirthEntry(dob, true) : null;
    if (!date) byName.setField('dateOfBirth', 'Enter the date of birth (day/month/year), or the year alone.');
    else if (!date.ok) byName.setField('dateOfBirth', date.error);
    const yearOnly = date?.ok === true && date.value.length === 4;
    let familyMissing: string | null = null;
    if (!familyName.trim() && yearOnly)
      familyMissing = 'Enter the family name: with only the year of birth it is needed.';
    else if (!familyName.trim() && !postcode.trim())
      familyMissing = 'Enter the family name, or the postcode with the full date of birth.';
    if (familyMissing) byName.setField('familyName', familyMissing);
    if (!date?.ok || familyMissing) return;
    setBusy(true);
    try {
      const body = {
        dateOfBirth: date.value,
        ...(familyName.trim() ? { familyName: familyName.trim() } : {}),
        ...(givenName.trim() ? { givenName: givenName.trim() } : {}),
        ...(postcode.trim() ? { postcode: postcode.trim() } : {}),
      };
      showResults(
        (await api<{ patients: PatientSummary[] }>('POST', '/api/v1/patients/search', body)).patients,
      );
    } catch (error) {
      byName.fromError(error, ['familyName', 'givenName', 'dateOfBirth', 'postcode']);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Stack>
      <Group align="flex-start" grow wrap="wrap">
        <form onSubmit={(e) => void searchNhs(e)} noValidate aria-label="Find by NHS number">
          <Stack gap="xs">
            <Title order={3} size="h5">
              By NHS number
            </Title>
            <FormAlert message={byNhs.form} />
            <TextInput
              label="NHS number"
              description={feedback.ok ?? '10 digits, e.g. 943 476 5919'}
              inputMode="numeric"
              autoComplete="off"
              value={nhs}
              onChange={(e) => {
                setNhs(e.currentTarget.value);
                byNhs.clear();
              }}
              error={byNhs.field('nhsNumber') ?? feedback.error}
            />
            <Button type="submit" loading={busy} variant="light">
              Search by NHS number
            </Button>
          </Stack>
        </form>
        <form onSubmit={(e) => void searchName(e)} noValidate aria-label="Find by name and date of birth">
          <Stack gap="xs">
            <Title order={3} size="h5">
              By name and date of birth
            </Title>
            <FormAlert message={byName.form} />
            <TextInput
              label="Family name"
              description={`Leave it out only if you give the full date of birth and the postcode · ${familyLength.description}`}
              autoComplete="off"
              value={familyName}
              onChange={(e) => setFamilyName(e.currentTarget.value)}
              error={byName.field('familyName') ?? familyLength.error}
            />
            <TextInput
              label="Given name (optional)"
              description={givenLength.description}
              autoComplete="off"
              value={givenName}
              onChange={(e) => setGivenName(e.currentTarget.value)}
              error={byName.field('givenName') ?? givenLength.error}
            />
            <TextInput
              label="Date of birth"
              description="Day/month/year, e.g. 03/05/1980; or the year alone, e.g. 1980"
              placeholder="dd/mm/yyyy"
              inputMode="numeric"
              autoComplete="off"
              value={dob}
              onChange={(e) => setDob(e.currentTarget.value)}
              error={byName.field('dateOfBirth')}
            />
            <TextInput
              label="Postcode (optional)"
              autoComplete="off"
              value={postcode}
              onChange={(e) => setPostcode(e.currentTarget.value)}
              error={byName.field('postcode')}
            />
            <Button type="submit" loading={busy} variant="light">
              Search by name
            </Button>
          </Stack>
        </form>
      </Group>
      <FormAlert message={selection.form} title="Could not identify the patient" />
      {confirmingDeceased?.deceasedAt && (
        <Paper withBorder p="sm" role="group" aria-label="Confirm a patient who has died">
          <Text fw={700}>
            {confirmingDeceased.givenName} {confirmingDeceased.familyName.toUpperCase()}&apos;s record says
            they died on {formatDeathDate(confirmingDeceased.deceasedAt)}. Is this call about them?
          </Text>
          <Group mt="xs">
            <Button data-autofocus autoFocus variant="default" onClick={() => setConfirmingDeceased(null)}>
              No, choose again
            </Button>
            <Button color="red" onClick={() => void identify(confirmingDeceased.patientId, true)}>
              Yes, the call is about them
            </Button>
          </Group>
        </Paper>
      )}
      {results && (
        <section aria-label="Search results" ref={resultsRef} tabIndex={-1} data-testid="search-results">
          {results.length === 0 ? (
            <Text role="status">No patient matches. Check the details, or register the patient below.</Text>
          ) : (
            <Table striped withTableBorder>
              <Table.Caption>
                {results.length === 1
                  ? '1 patient found'
                  : `${results.length} patients found, best match first`}
              </Table.Caption>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Name</Table.Th>
                  <Table.Th>Date of birth</Table.Th>
                  <Table.Th>Sex</Table.Th>
                  <Table.Th>NHS number</Table.Th>
                  <Table.Th>Address</Table.Th>
                  <Table.Th>GP practice</Table.Th>
                  <Table.Th>
                    <span className="visually-hidden">Action</span>
                  </Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {results.map((p) => (
                  <Table.Tr key={p.patientId}>
                    <Table.Td>
                      {p.givenName} {p.familyName.toUpperCase()}
                      {p.deceasedAt && (
                        <Text component="span" fw={800} c="red.9">
                          {' '}
                          (died {formatDeathDate(p.deceasedAt)})
                        </Text>
                      )}
                    </Table.Td>
                    <Table.Td>
                      {formatDate(p.dateOfBirth)} (age {p.ageYears})
                      {p.match.dateOfBirth === 'day_month_swapped' && (
                        <Text size="sm" fw={700} c="orange.9">
                          Day and month swapped from what you typed: check with the caller
                        </Text>
                      )}
                    </Table.Td>
                    <Table.Td>{SEX_WORDS[p.sex]}</Table.Td>
                    <Table.Td>{p.nhsNumber ? formatNhsNumber(p.nhsNumber) : '—'}</Table.Td>
                    <Table.Td>
                      {p.restricted
                        ? 'restricted record: withheld'
                        : [p.addressLine, p.postcode].filter((x) => x !== null).join(', ') || '—'}
                    </Table.Td>
                    <Table.Td>{p.restricted ? 'withheld' : (p.practice ?? '—')}</Table.Td>
                    <Table.Td>
                      <Button
                        size="compact-sm"
                        onClick={() => (p.deceasedAt ? setConfirmingDeceased(p) : void identify(p.patientId))}
                        aria-label={`Select ${p.givenName} ${p.familyName}, born ${formatDate(p.dateOfBirth)}`}
                      >
                        Select
                      </Button>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </section>
      )}
      <div>
        <Button variant="subtle" onClick={() => setRegistering(!registering)} aria-expanded={registering}>
          {registering ? 'Hide the new patient form' : 'Register a new patient'}
        </Button>
        {registering && (
          <RegisterPatient
            siteId={siteId}
            initial={{ familyName, givenName, dateOfBirth: dob, postcode, nhsNumber: nhs }}
            onRegistered={(id) => void identify(id)}
          />
        )}
      </div>
    </Stack>
  );
}

function RegisterPatient({
  siteId,
  initial,
  onRegistered,
}: {
  siteId: string;
  initial: {
    familyName: string;
    givenName: string;
    dateOfBirth: string;
    postcode: string;
    nhsNumber: string;
  };
  onRegistered: (patientId: string) => void;
}) {
  const [f, setF] = useState({ ...initial, sex: 'unknown' });
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const feedback = nhsNumberFeedback(f.nhsNumber);
  const set = (key: keyof typeof f) => (value: string) => setF((prev) => ({ ...prev, [key]: value }));

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    const date = dateOfBirthEntry(f.dateOfBirth, false);
    if (!date.ok) return problems.setField('record.dateOfBirth', date.error);
    setBusy(true);
    try {
      const record = {
        givenName: f.givenName.trim(),
        familyName: f.familyName.trim(),
        dateOfBirth: date.value,
        sex: f.sex,
        specialNotes: [],
        ...(f.nhsNumber.trim() ? { nhsNumber: f.nhsNumber.trim() } : {}),
        ...(f.postcode.trim() ? { postcode: f.postcode.trim() } : {}),
      };
      const r = await api<{ patientId: string }>('POST', '/api/v1/patients', { homeSiteId: siteId, record });
      onRegistered(r.patientId);
    } catch (error) {
      problems.fromError(error, [
        'record.givenName',
        'record.familyName',
        'record.dateOfBirth',
        'record.sex',
        'record.nhsNumber',
        'record.postcode',
      ]);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={(e) => void submit(e)} noValidate aria-label="New patient">
      <Stack gap="xs" maw={480} mt="xs">
        <FormAlert message={problems.form} />
        <TextInput
          label="Given name"
          value={f.givenName}
          onChange={(e) => set('givenName')(e.currentTarget.value)}
          error={problems.field('record.givenName')}
        />
        <TextInput
          label="Family name"
          value={f.familyName}
          onChange={(e) => set('familyName')(e.currentTarget.value)}
          error={problems.field('record.familyName')}
        />
        <TextInput
          label="Date of birth"
          description="Day/month/year, e.g. 03/05/1980"
          placeholder="dd/mm/yyyy"
          inputMode="numeric"
          autoComplete="off"
          value={f.dateOfBirth}
          onChange={(e) => set('dateOfBirth')(e.currentTarget.value)}
          error={problems.field('record.dateOfBirth')}
        />
        <NativeSelect
          label="Sex"
          data={[
            { value: 'female', label: 'Female' },
            { value: 'male', label: 'Male' },
            { value: 'other', label: 'Other' },
            { value: 'unknown', label: 'Not known' },
          ]}
          value={f.sex}
          onChange={(e) => set('sex')(e.currentTarget.value)}
          error={problems.field('record.sex')}
        />
        <TextInput
          label="NHS number (optional)"
          description={feedback.ok}
          inputMode="numeric"
          value={f.nhsNumber}
          onChange={(e) => set('nhsNumber')(e.currentTarget.value)}
          error={problems.field('record.nhsNumber') ?? feedback.error}
        />
        <TextInput
          label="Postcode (optional)"
          value={f.postcode}
          onChange={(e) => set('postcode')(e.currentTarget.value)}
          error={problems.field('record.postcode')}
        />
        <Group>
          <Button type="submit" loading={busy}>
            Register and identify
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
