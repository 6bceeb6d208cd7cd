import { Box, Button, Group, List, Text, Textarea, Title } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { api, ApiError } from '../lib/api.ts';
import type { PatientView } from '../lib/types.ts';
import type { SpecialNote } from '../lib/types.ts';

const KIND_LABELS: Record<SpecialNote['kind'], string> = {
  end_of_life: 'End of life care',
  dnacpr: 'DNACPR (do not attempt CPR)',
  safeguarding: 'Safeguarding',
  care_plan: 'Care plan',
  other: 'Other note',
};

/**
 * Special patient notes (end of life, DNACPR, safeguarding) at the top of the case: heavy border,
 * large type and a warning sign, announced when it appears, and it asks to be acknowledged before
 * triage starts so it cannot be scrolled past unread.
 */
export function SpecialNotesBanner({
  notes,
  acknowledged,
  onAcknowledge,
}: {
  notes: SpecialNote[];
  acknowledged: boolean;
  onAcknowledge: () => void;
}) {
  if (notes.length === 0) return null;
  return (
    <Box
      component="section"
      aria-labelledby="special-notes-heading"
      className="special-notes"
      p="md"
      mb="md"
      role="alert"
      data-testid="special-notes"
    >
      <Title order={2} id="special-notes-heading" size="h3">
        <span aria-hidden="true">⚠ </span>Special patient notes: read before you continue
      </Title>
      <List mt="xs" spacing="xs" size="lg">
        {notes.map((note, i) => (
          <List.Item key={i}>
            <Text component="span" fw={800} size="lg">
              {KIND_LABELS[note.kind]}:
            </Text>{' '}
            {note.withheld ? (
              <Text component="span" fs="italic">
                a note of this kind exists; its text is withheld from your role (ask a clinician)
              </Text>
            ) : (
              <Text component="span" size="lg">
                {note.text}
              </Text>
            )}
          </List.Item>
        ))}
      </List>
      <Group mt="sm">
        {acknowledged ? (
          <Text fw={700}>You have read these notes.</Text>
        ) : (
          <Button color="red" onClick={onAcknowledge}>
            I have read the special notes
          </Button>
        )}
      </Group>
    </Box>
  );
}

/** Said wherever special notes are kept from the reader (the queue says the same). */
export const NOTES_WITHHELD = 'Special notes withheld — break glass to read';

/**
 * The patient's record is outside the reader's sites, so its special notes (a DNACPR, end of life
 * care, safeguarding) are not shown: the screen says so, never showing nothing as if there were no
 * notes, and offers break-glass with a stated reason. The read is audited flagged break-glass.
 */
export function SpecialNotesWithheld({
  patientId,
  canBreakGlass,
  onRead,
}: {
  patientId: string;
  canBreakGlass: boolean;
  onRead: (patient: PatientView) => void;
}) {
  const [reason, setReason] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    if (reason.trim().length < 10) {
      setProblem('Say why you need the record: at least 10 characters.');
      return;
    }
    setBusy(true);
    try {
      onRead(await api<PatientView>('POST', `/api/v1/patients/${patientId}/break-glass`, { reason }));
    } catch (error) {
      setProblem(error instanceof ApiError ? error.plain() : 'The record could not be read.');
    } finally {
      setBusy(false);
    }
  };
  return (
    <Box
      component="section"
      aria-labelledby="notes-withheld-heading"
      className="special-notes"
      p="md"
      mb="md"
      data-testid="special-notes-withheld"
    >
      <Title order={2} id="notes-withheld-heading" size="h3">
        <span aria-hidden="true">⚠ </span>
        {NOTES_WITHHELD}
      </Title>
      <Text mt="xs">
        This patient’s record belongs to a site that is not one of yours, so any special notes (DNACPR, end of
        life care, safeguarding) are not shown here.
      </Text>
      {canBreakGlass ? (
        <form onSubmit={(e) => void submit(e)} noValidate aria-label="Break glass to read the record">
          <Textarea
            mt="xs"
            label="Why you need the record (recorded and flagged for review)"
            value={reason}
            onChange={(e) => setReason(e.currentTarget.value)}
            error={problem}
            autosize
            minRows={1}
            maxLength={500}
          />
          <Group mt="xs">
            <Button type="submit" color="red" loading={busy}>
              Break glass and read the notes
            </Button>
          </Group>
        </form>
      ) : (
        <Text mt="xs" fw={700}>
          Your role cannot break glass: ask a clinician or the shift manager to read them.
        </Text>
      )}
    </Box>
  );
}
