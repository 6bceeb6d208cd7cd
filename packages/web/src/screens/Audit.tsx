import { Button, Checkbox, Group, Paper, Stack, Table, Text, TextInput } from '@mantine/core';
import { useInfiniteQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { FormAlert } from '../components/FormAlert.tsx';
import { PageTitle } from '../components/PageTitle.tsx';
import { api, ApiError } from '../lib/api.ts';
import { sentence } from '../lib/forms.ts';
import { londonDateTime } from '../lib/time.ts';

interface AuditEvent {
  at: string;
  type: string;
  userId: string | null;
  roles: string[];
  action: string | null;
  resourceType: string | null;
  resourceId: string | null;
  outcome: string | null;
  reason: string | null;
  breakGlass: boolean;
}

interface Filters {
  patientId: string;
  userId: string;
  from: string;
  to: string;
  breakGlass: boolean;
}

const EMPTY: Filters = { patientId: '', userId: '', from: '', to: '', breakGlass: false };

/** A UK wall-clock "2026-11-29T08:00" from a datetime-local field as an instant (ISO, with offset). */
function londonInputToIso(value: string): string {
  // The browser reads a datetime-local value in its own zone; staff enter UK time. Work out the
  // London offset at that moment and apply it.
  const asUtc = Date.parse(`${value}:00Z`);
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', timeZoneName: 'shortOffset' })
    .formatToParts(new Date(asUtc))
    .find((p) => p.type === 'timeZoneName')?.value;
  const m = /GMT([+-]\d+)?/.exec(parts ?? 'GMT');
  const hours = m?.[1] ? Number(m[1]) : 0;
  return new Date(asUtc - hours * 3600_000).toISOString();
}

/** The auditor's trail: who did what to which record, filtered by patient, user, time or break-glass. */
export function Audit() {
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const trail = useInfiniteQuery({
    queryKey: ['audit', filters],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }) => {
      const q = new URLSearchParams({ limit: '100' });
      if (filters.patientId) q.set('patientId', filters.patientId.trim());
      if (filters.userId) q.set('userId', filters.userId.trim());
      if (filters.from) q.set('from', londonInputToIso(filters.from));
      if (filters.to) q.set('to', londonInputToIso(filters.to));
      if (filters.breakGlass) q.set('breakGlass', 'true');
      if (pageParam) q.set('before', pageParam);
      return api<{ events: AuditEvent[]; next: string | null }>('GET', `/api/v1/audit?${q}`);
    },
    getNextPageParam: (last) => last.next,
    retry: false,
  });
  const apply = (event: FormEvent) => {
    event.preventDefault();
    setFilters(draft);
  };
  // A refused filter is answered next to its field (the query names it, e.g. query.userId).
  const refused = trail.error instanceof ApiError ? trail.error : null;
  const fieldErrors = refused?.fieldErrors() ?? {};
  const field = (k: string) => (fieldErrors[k] ? sentence(fieldErrors[k]) : undefined);
  const formError = trail.error
    ? Object.keys(fieldErrors).length > 0
      ? 'A filter needs correcting: see the message next to it.'
      : (refused?.plain() ?? trail.error.message)
    : null;
  const events = trail.data?.pages.flatMap((p) => p.events) ?? [];
  return (
    <Stack maw={1300}>
      <PageTitle>Audit trail</PageTitle>
      <Paper withBorder p="sm" component="form" onSubmit={apply} aria-label="Audit filters" noValidate>
        <FormAlert message={formError} />
        <Group align="flex-end" wrap="wrap">
          <TextInput
            label="Patient id"
            value={draft.patientId}
            onChange={(e) => setDraft({ ...draft, patientId: e.currentTarget.value })}
            error={field('patientId')}
            autoComplete="off"
          />
          <TextInput
            label="User id"
            value={draft.userId}
            onChange={(e) => setDraft({ ...draft, userId: e.currentTarget.value })}
            error={field('userId')}
            autoComplete="off"
          />
          <TextInput
            label="From (UK time)"
            type="datetime-local"
            value={draft.from}
            onChange={(e) => setDraft({ ...draft, from: e.currentTarget.value })}
            error={field('from')}
          />
          <TextInput
            label="To (UK time)"
            type="datetime-local"
            value={draft.to}
            onChange={(e) => setDraft({ ...draft, to: e.currentTarget.value })}
            error={field('to')}
          />
          <Checkbox
            label="Break-glass only"
            checked={draft.breakGlass}
            onChange={(e) => setDraft({ ...draft, breakGlass: e.currentTarget.checked })}
            mb={8}
          />
          <Button type="submit">Apply filters</Button>
          <Button
            variant="subtle"
            onClick={() => {
              setDraft(EMPTY);
              setFilters(EMPTY);
            }}
          >
            Clear
          </Button>
        </Group>
      </Paper>
      <Text role="status">
        {trail.isPending ? 'Reading the audit trail…' : `${events.length} events shown, newest first.`}
      </Text>
      <Table striped withTableBorder data-testid="audit-table">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">When (UK time)</Table.Th>
            <Table.Th scope="col">Event</Table.Th>
            <Table.Th scope="col">User</Table.Th>
            <Table.Th scope="col">Action</Table.Th>
            <Table.Th scope="col">Record</Table.Th>
            <Table.Th scope="col">Outcome</Table.Th>
            <Table.Th scope="col">Break-glass</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {events.map((e, i) => (
            <Table.Tr key={`${e.at}-${i}`}>
              <Table.Td>{londonDateTime(e.at)}</Table.Td>
              <Table.Td>{e.type}</Table.Td>
              <Table.Td>
                {e.userId ? e.userId.slice(0, 8) : '—'} {e.roles.length ? `(${e.roles.join(', ')})` : ''}
              </Table.Td>
              <Table.Td>{e.action ?? '—'}</Table.Td>
              <Table.Td>
                {e.resourceType ? `${e.resourceType} ${e.resourceId?.slice(0, 8) ?? ''}` : '—'}
              </Table.Td>
              <Table.Td>{e.outcome ?? '—'}</Table.Td>
              <Table.Td>{e.breakGlass ? `Yes: ${e.reason ?? ''}` : 'No'}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {trail.hasNextPage && (
        <Group>
          <Button
            variant="default"
            onClick={() => void trail.fetchNextPage()}
            loading={trail.isFetchingNextPage}
          >
            Show older events
          </Button>
        </Group>
      )}
    </Stack>
  );
}
