import { NHS_NUMBER_VERIFICATION, type NhsNumberVerificationCode } from '@holdfast/core';
import { Alert, Box, Button, Group, List, Stack, Text, Textarea, Title } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { api } from '../lib/api.ts';
import { useFormProblems } from '../lib/forms.ts';
import { useSession } from '../lib/session.tsx';
import { londonDateTime } from '../lib/time.ts';
import type { EmergencyContact, PatientView, RestrictedFields } from '../lib/types.ts';
import { FormAlert } from './FormAlert.tsx';

/**
 * What the national record (PDS) says about a patient beyond name and date of birth: death, a
 * restricted record, interpreter need, emergency contacts, whether the NHS number was verified and
 * when the record was last confirmed. Shown wherever the patient's record is shown.
 */

/** "2026-11-20" or "2026-11-20T14:30:00+00:00" as "20 Nov 2026" (the calendar date given). */
export function formatDeathDate(value: string): string {
  const [y, m, d] = value.slice(0, 10).split('-').map(Number);
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  return `${d} ${months[(m ?? 1) - 1]} ${y}`;
}

export const RESTRICTED_WORDS = 'Restricted record — address and contacts withheld';

/** The patient has died: a banner no one can miss; a relative may be calling. */
export function DeceasedBanner({
  deceasedAt,
  acknowledged,
  onAcknowledge,
}: {
  deceasedAt: string;
  /** Undefined where nothing waits on it (a case already triaged, the clinician's view). */
  acknowledged?: boolean;
  onAcknowledge?: () => void;
}) {
  return (
    <Box
      component="section"
      aria-labelledby="deceased-heading"
      className="special-notes"
      p="md"
      mb="md"
      role="alert"
      data-testid="deceased-warning"
    >
      <Title order={2} id="deceased-heading" size="h3">
        <span aria-hidden="true">⚠ </span>This patient is recorded as deceased: died{' '}
        {formatDeathDate(deceasedAt)}
      </Title>
      <Text size="lg" mt="xs">
        Check who is calling and about whom. A relative or carer may be calling about themselves or someone
        else; the record may also be wrong.
      </Text>
      {onAcknowledge && (
        <Group mt="sm">
          {acknowledged ? (
            <Text fw={700}>You have checked who the call is about.</Text>
          ) : (
            <Button color="red" onClick={onAcknowledge}>
              I have checked who the call is about
            </Button>
          )}
        </Group>
      )}
    </Box>
  );
}

function contactLine(c: EmergencyContact): string {
  return [c.name, c.relationship ? `(${c.relationship})` : undefined, c.phone].filter(Boolean).join(' ');
}

/** Interpreter, emergency contacts, NHS number verification and last confirmed, under the name. */
export function PatientIdentityDetails({ patient }: { patient: PatientView }) {
  const r = patient.record;
  const verification = r.nhsNumberVerification?.code as NhsNumberVerificationCode | undefined;
  return (
    <Stack gap={2} mt={4}>
      {r.deceasedAt && (
        <Text fw={800} c="red.9" data-testid="patient-deceased">
          Died {formatDeathDate(r.deceasedAt)}
        </Text>
      )}
      {patient.restricted && (
        <Text fw={800} c="red.9" data-testid="patient-restricted">
          {RESTRICTED_WORDS}
        </Text>
      )}
      {r.interpreter?.required && (
        <Text fw={700} data-testid="patient-interpreter">
          Interpreter needed{r.interpreter.language ? `: ${r.interpreter.language}` : ''}
        </Text>
      )}
      {r.address && (
        <Text>
          Address: {r.address}
          {r.postcode ? `, ${r.postcode}` : ''}
        </Text>
      )}
      {r.registeredPractice && (
        <Text>GP practice: {r.registeredPractice.name ?? r.registeredPractice.odsCode}</Text>
      )}
      {r.emergencyContacts && r.emergencyContacts.length > 0 && (
        <Text data-testid="patient-emergency-contacts">
          Emergency contact: {r.emergencyContacts.map(contactLine).join('; ')}
        </Text>
      )}
      {verification && (
        <Text size="sm" data-testid="patient-nhs-verification">
          NHS number: {NHS_NUMBER_VERIFICATION[verification] ?? verification}
        </Text>
      )}
      {r.lastConfirmedAt && (
        <Text size="sm" data-testid="patient-last-confirmed">
          National record last confirmed {londonDateTime(r.lastConfirmedAt)}
        </Text>
      )}
    </Stack>
  );
}

/**
 * A restricted record's withheld details, on request: only roles with break-glass see the form; a
 * reason is required and the read is audited and reviewed.
 */
export function BreakGlassRestricted({ patientId }: { patientId: string }) {
  const session = useSession();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [released, setReleased] = useState<RestrictedFields | null>(null);
  const problems = useFormProblems();
  if (!session.can('patients.break_glass'))
    return (
      <Text size="sm">
        Your role cannot open the withheld details. If the patient's location is needed, pass the call to a
        clinician or the shift manager.
      </Text>
    );
  if (released) {
    const f = released.fields;
    return (
      <Alert color="orange" title="Withheld details (break-glass: this access is recorded and reviewed)">
        <List size="sm" data-testid="restricted-details">
          {f.address && (
            <List.Item>
              Address: {f.address}
              {f.postcode ? `, ${f.postcode}` : ''}
            </List.Item>
          )}
          {f.phone && <List.Item>Telephone: {f.phone}</List.Item>}
          {f.registeredPractice && (
            <List.Item>GP practice: {f.registeredPractice.name ?? f.registeredPractice.odsCode}</List.Item>
          )}
          {f.nominatedPharmacy && (
            <List.Item>Pharmacy: {f.nominatedPharmacy.name ?? f.nominatedPharmacy.odsCode}</List.Item>
          )}
          {(f.emergencyContacts ?? []).map((c, i) => (
            <List.Item key={i}>Emergency contact: {contactLine(c)}</List.Item>
          ))}
        </List>
      </Alert>
    );
  }
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (reason.trim().length < 10)
      return problems.setField('reason', 'Say why you need the withheld details (at least 10 characters).');
    setBusy(true);
    try {
      setReleased(
        await api<RestrictedFields>('POST', `/api/v1/patients/${patientId}/restricted`, {
          reason: reason.trim(),
        }),
      );
    } catch (error) {
      problems.fromError(error, ['reason']);
    } finally {
      setBusy(false);
    }
  };
  if (!open)
    return (
      <Group>
        <Button variant="outline" color="red" size="compact-sm" onClick={() => setOpen(true)}>
          Break glass: show the withheld details
        </Button>
      </Group>
    );
  return (
    <form onSubmit={(e) => void submit(e)} noValidate aria-label="Break glass">
      <Stack gap="xs" maw={480}>
        <FormAlert message={problems.form} />
        <Textarea
          label="Why do you need the withheld details?"
          description="Recorded with your name and reviewed. The patient's location is withheld for their safety."
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          error={problems.field('reason')}
          autosize
          minRows={2}
        />
        <Group>
          <Button type="submit" color="red" loading={busy}>
            Show the withheld details
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
