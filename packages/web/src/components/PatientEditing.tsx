import {
  Alert,
  Button,
  Checkbox,
  Group,
  List,
  Paper,
  Stack,
  Text,
  Textarea,
  TextInput,
  Title,
} from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, ApiError } from '../lib/api.ts';
import { londonDateTime } from '../lib/time.ts';
import type { PatientView } from '../lib/types.ts';

/** One entry of a record's history as the server lists it: which fields, who, when (no values). */
interface HistoryEntry {
  at: string;
  type: 'registered' | 'details_changed' | 'special_note_added';
  by: string;
  fields: string[];
  kind?: string;
}

const FIELD_WORDS: Record<string, string> = {
  address: 'address',
  postcode: 'postcode',
  phone: 'phone',
  otherPhones: 'other phones',
  registeredPractice: 'GP practice',
  nominatedPharmacy: 'pharmacy',
  interpreter: 'interpreter need',
  emergencyContacts: 'emergency contacts',
  allergies: 'allergies',
  specialNotes: 'special notes',
};

const describeEntry = (e: HistoryEntry) =>
  e.type === 'registered'
    ? 'Registered'
    : e.type === 'special_note_added'
      ? `Special note added (${(e.kind ?? 'other').replace(/_/g, ' ')})`
      : `Changed: ${e.fields.map((f) => FIELD_WORDS[f] ?? f).join(', ')}`;

/** Every change to the record: who and when, newest first. */
export function PatientHistory({ patientId }: { patientId: string }) {
  const history = useQuery({
    queryKey: ['patient-history', patientId],
    queryFn: async () =>
      (await api<{ history: HistoryEntry[] }>('GET', `/api/v1/patients/${patientId}/history`)).history,
  });
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="history-heading">
      <Title order={2} size="h4" id="history-heading" mb="xs">
        Changes to this record
      </Title>
      {history.isError && <Alert color="red">The history could not be read: {history.error.message}.</Alert>}
      {history.data && (
        <List data-testid="patient-history">
          {[...history.data].reverse().map((e, i) => (
            <List.Item key={i}>
              {londonDateTime(e.at)} · {e.by} · {describeEntry(e)}
            </List.Item>
          ))}
        </List>
      )}
    </Paper>
  );
}

/**
 * Changing a patient's address, phone, GP practice, pharmacy, interpreter need and allergies. Sends
 * the record's version: when someone else changed it meanwhile the server refuses, and the screen
 * says so and shows the record as it is now.
 */
export interface EditOutcome {
  saved: string | null;
  problem: string | null;
}

/**
 * The editor is remounted with each new version of the record (its fields start from the record as
 * it is now), so what a save said — "Saved: …" or "someone else changed it" — is kept by the parent
 * (`outcome`, `onOutcome`); kept inside, it vanished the moment the new version arrived.
 */
export function PatientDetailsEditor({
  patient,
  outcome,
  onOutcome,
}: {
  patient: PatientView;
  outcome: EditOutcome;
  onOutcome: (outcome: EditOutcome) => void;
}) {
  const queryClient = useQueryClient();
  const r = patient.record;
  const [address, setAddress] = useState(r.address ?? '');
  const [postcode, setPostcode] = useState(r.postcode ?? '');
  const [phone, setPhone] = useState(r.phone ?? '');
  const [practice, setPractice] = useState(r.registeredPractice?.odsCode ?? '');
  const [pharmacy, setPharmacy] = useState(r.nominatedPharmacy?.odsCode ?? '');
  const [interpreterNeeded, setInterpreterNeeded] = useState(r.interpreter?.required ?? false);
  const [language, setLanguage] = useState(r.interpreter?.language ?? '');
  const [substance, setSubstance] = useState('');
  const [reaction, setReaction] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const { saved, problem } = outcome;
  const setSaved = (text: string | null) => onOutcome({ saved: text, problem: null });
  const setProblem = (text: string | null) => onOutcome({ saved: null, problem: text });

  const send = async (changes: Record<string, unknown>) => {
    setErrors({});
    setProblem(null);
    setSaved(null);
    try {
      const result = await api<{ changed: string[] }>('PATCH', `/api/v1/patients/${patient.patientId}`, {
        version: patient.version,
        changes,
      });
      setSaved(
        result.changed.length === 0
          ? 'Nothing was different: nothing changed.'
          : `Saved: ${result.changed.map((f) => FIELD_WORDS[f] ?? f).join(', ')}.`,
      );
      return true;
    } catch (e) {
      if (e instanceof ApiError) {
        const fields = e.fieldErrors();
        setErrors(fields);
        setProblem(
          e.status === 409 ? e.plain() : Object.keys(fields).length ? 'Check the fields marked.' : e.plain(),
        );
      } else setProblem('The change could not be saved.');
      return false;
    } finally {
      await queryClient.invalidateQueries({ queryKey: ['patient', patient.patientId] });
      await queryClient.invalidateQueries({ queryKey: ['patient-history', patient.patientId] });
    }
  };

  const saveDetails = async (event: FormEvent) => {
    event.preventDefault();
    const changes: Record<string, unknown> = {};
    if (address.trim()) changes.address = address.trim();
    if (postcode.trim()) changes.postcode = postcode.trim();
    if (phone.trim()) changes.phone = phone.trim();
    if (practice.trim()) changes.registeredPractice = { odsCode: practice.trim().toUpperCase() };
    if (pharmacy.trim()) changes.nominatedPharmacy = { odsCode: pharmacy.trim().toUpperCase() };
    changes.interpreter = {
      required: interpreterNeeded,
      ...(interpreterNeeded && language.trim() ? { language: language.trim() } : {}),
    };
    await send(changes);
  };

  const addAllergy = async (event: FormEvent) => {
    event.preventDefault();
    const allergies = [
      ...(r.allergies ?? []),
      { substance: substance.trim(), ...(reaction.trim() ? { reaction: reaction.trim() } : {}) },
    ];
    if (await send({ allergies })) {
      setSubstance('');
      setReaction('');
    }
  };

  const err = (path: string) => errors[path] ?? errors[`changes.${path}`];
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="edit-heading">
      <Title order={2} size="h4" id="edit-heading" mb="xs">
        Change the patient's details
      </Title>
      {problem && (
        <Alert color="red" role="alert" title="Not saved" mb="sm">
          {problem}
        </Alert>
      )}
      {saved && (
        <Alert color="green" role="status" mb="sm">
          {saved}
        </Alert>
      )}
      <form onSubmit={(e) => void saveDetails(e)} aria-label="Patient details">
        <Stack gap="xs">
          <TextInput
            label="Address"
            value={address}
            onChange={(e) => setAddress(e.currentTarget.value)}
            error={err('address')}
          />
          <TextInput
            label="Postcode"
            value={postcode}
            onChange={(e) => setPostcode(e.currentTarget.value)}
            error={err('postcode')}
          />
          <TextInput
            label="Phone"
            value={phone}
            onChange={(e) => setPhone(e.currentTarget.value)}
            error={err('phone')}
          />
          <TextInput
            label="GP practice (ODS code)"
            value={practice}
            onChange={(e) => setPractice(e.currentTarget.value)}
            error={err('registeredPractice.odsCode')}
          />
          <TextInput
            label="Nominated pharmacy (ODS code)"
            value={pharmacy}
            onChange={(e) => setPharmacy(e.currentTarget.value)}
            error={err('nominatedPharmacy.odsCode')}
          />
          <Checkbox
            label="Needs an interpreter"
            checked={interpreterNeeded}
            onChange={(e) => setInterpreterNeeded(e.currentTarget.checked)}
          />
          {interpreterNeeded && (
            <TextInput
              label="Interpreter language"
              value={language}
              onChange={(e) => setLanguage(e.currentTarget.value)}
              error={err('interpreter.language')}
            />
          )}
          <Group>
            <Button type="submit">Save details</Button>
          </Group>
        </Stack>
      </form>
      <form onSubmit={(e) => void addAllergy(e)} aria-label="Add an allergy">
        <Title order={3} size="h5" mt="md" mb="xs">
          Add an allergy
        </Title>
        <Group align="flex-end">
          <TextInput
            label="Allergic to"
            required
            value={substance}
            onChange={(e) => setSubstance(e.currentTarget.value)}
            error={err(`allergies.${(r.allergies ?? []).length}.substance`)}
          />
          <TextInput
            label="Reaction (if known)"
            value={reaction}
            onChange={(e) => setReaction(e.currentTarget.value)}
          />
          <Button type="submit">Add allergy</Button>
        </Group>
      </form>
    </Paper>
  );
}

/**
 * Raising a safeguarding concern from a case: recorded on the case and as a safeguarding note on
 * the patient, so the next clinician sees it on both.
 */
export function SafeguardingConcern({ caseId, onRaised }: { caseId: string; onRaised: () => unknown }) {
  const [concern, setConcern] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    try {
      await api('POST', `/api/v1/cases/${caseId}/safeguarding-concerns`, { concern });
      setConcern('');
      setDone(true);
      await onRaised();
    } catch (e) {
      setProblem(
        e instanceof ApiError ? (e.fieldErrors().concern ?? e.plain()) : 'The concern was not recorded.',
      );
    }
  };
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="safeguarding-heading" className="no-print">
      <Title order={2} size="h4" id="safeguarding-heading" mb="xs">
        Raise a safeguarding concern
      </Title>
      <Text size="sm" mb="xs">
        Recorded on this case and as a safeguarding note on the patient's record. Follow your local
        safeguarding referral process as well.
      </Text>
      {done && (
        <Alert color="green" role="status" mb="sm">
          Safeguarding concern recorded on the case and the patient's record.
        </Alert>
      )}
      <form onSubmit={(e) => void submit(e)} aria-label="Safeguarding concern">
        <Stack gap="xs">
          <Textarea
            label="The concern"
            required
            value={concern}
            onChange={(e) => setConcern(e.currentTarget.value)}
            error={problem ?? undefined}
          />
          <Group>
            <Button type="submit" color="red">
              Raise the concern
            </Button>
          </Group>
        </Stack>
      </form>
    </Paper>
  );
}
