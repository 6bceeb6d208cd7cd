import { Alert, Paper, Text, Title } from '@mantine/core';
import {
  useCaseVisits,
  VISIT_OUTCOME_WORDS,
  VISIT_STATUS_WORDS,
  type Visit,
  type VisitOutcome,
} from '../lib/dispatch.ts';
import { londonTime } from '../lib/time.ts';

/**
 * The case's home visit as the server holds it (C7): requested within how many hours, its deadline,
 * and where dispatch has got to. It stays on the case page once the consultation has ended, so the
 * clinician never depends on a message that vanished with the consultation form — and it says only
 * what the visit's own record says ("waiting for a car" until a dispatcher has allocated one).
 */
export function HomeVisitPanel({ caseId }: { caseId: string }) {
  const visits = useCaseVisits(caseId);
  return (
    <Paper
      withBorder
      p="md"
      component="section"
      aria-labelledby="home-visit-heading"
      data-testid="home-visit"
    >
      <Title order={2} size="h4" id="home-visit-heading" mb="xs">
        Home visit
      </Title>
      {visits.isError && (
        <Alert color="red">
          The case’s home visit could not be read: {visits.error.message}
          {visits.data !== undefined &&
            ` What follows is what the server said at ${londonTime(visits.dataUpdatedAt)}.`}
        </Alert>
      )}
      {visits.isPending ? (
        <Text>Reading the case’s home visit…</Text>
      ) : (visits.data ?? []).length === 0 ? (
        <Text>No home visit is recorded for this case yet.</Text>
      ) : (
        (visits.data ?? []).map((v) => (
          <Text key={v.visitId} data-visit-id={v.visitId} data-status={v.status}>
            {visitWords(v)}
          </Text>
        ))
      )}
    </Paper>
  );
}

function visitWords(v: Visit): string {
  const within =
    v.withinHours === null ? '' : ` within ${v.withinHours} ${v.withinHours === 1 ? 'hour' : 'hours'}`;
  const outcome = v.outcome ? `: ${VISIT_OUTCOME_WORDS[v.outcome as VisitOutcome] ?? v.outcome}` : '';
  return `Requested${within} (by ${londonTime(v.deadlineMs)}): ${VISIT_STATUS_WORDS[v.status] ?? v.status}${outcome}.`;
}
