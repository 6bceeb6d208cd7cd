import { Box, Button, Group, List, Text, Title } from '@mantine/core';
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
                a note of this kind exists; its text is not shown to your role
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
