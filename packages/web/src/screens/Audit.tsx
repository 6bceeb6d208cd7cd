import { ROLE_LABELS, type Role } from '@holdfast/core';
import { Button, Checkbox, Group, NativeSelect, Paper, Stack, Table, Text, TextInput } from '@mantine/core';
import { useInfiniteQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { FormAlert } from '../components/FormAlert.tsx';
import { PageTitle } from '../components/PageTitle.tsx';
import { api, apiDownload, ApiError } from '../lib/api.ts';
import { sentence } from '../lib/forms.ts';
import { londonDateTime, londonInputToIso } from '../lib/time.ts';

/** One row of the trail as the server names it (repeated reads of one record grouped, with a count). */
interface TrailRow {
  at: string;
  firstAt: string;
  count: number;
  event: string;
  user: { userId: string; name: string | null } | null;
  roles: string[];
  record: {
    kind: string;
    id: string;
    reference: string | null;
    patientName: string | null;
    nhsNumber: string | null;
  } | null;
  outcome: string | null;
  reason: string | null;
  breakGlass: boolean;
}

interface Filters {
  nhsNumber: string;
  userName: string;
  from: string;
  to: string;
  breakGlass: boolean;
  /** One kind of event, or '' for every kind. */
  kind: string;
}

const EMPTY: Filters = { nhsNumber: '', userName: '', from: '', to: '', breakGlass: false, kind: '' };

/** The kinds of event the trail can be filtered by (the server's names). */
const KINDS = [
  { value: '', label: 'Every kind' },
  { value: 'access', label: 'Patient and case access' },
  { value: 'account', label: 'Accounts: users, roles, second factors, passwords' },
  { value: 'sign_in', label: 'Sign-ins' },
  { value: 'denied', label: 'Refusals' },
  { value: 'export', label: 'Exports and downtime packs' },
];

/**
 * The filters as a request body (never a URL: an NHS number in a query string would stay in the
 * browser's history and in logs along the way).
 */
function filterBody(f: Filters): Record<string, unknown> {
  return {
    ...(f.nhsNumber.trim() ? { nhsNumber: f.nhsNumber.trim() } : {}),
    ...(f.userName.trim() ? { userName: f.userName.trim() } : {}),
    ...(f.from ? { from: londonInputToIso(f.from) } : {}),
    ...(f.to ? { to: londonInputToIso(f.to) } : {}),
    ...(f.breakGlass ? { breakGlass: true } : {}),
    ...(f.kind ? { kinds: [f.kind] } : {}),
  };
}

const spacedNhs = (n: string) => (n.length === 10 ? `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}` : n);

/** The auditor's trail: who did what to whose record, by name and NHS number; grouped reads; exports. */
export function Audit() {
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [exporting, setExporting] = useState<'csv' | 'pdf' | null>(null);
  const [exportError, setExportError] = useState<string | null>(null);
  const trail = useInfiniteQuery({
    queryKey: ['audit', filters],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }) =>
      api<{ rows: TrailRow[]; events: number; next: string | null }>('POST', '/api/v1/audit/search', {
        ...filterBody(filters),
        limit: 100,
        ...(pageParam ? { before: pageParam } : {}),
      }),
    getNextPageParam: (last) => last.next,
    retry: false,
  });
  const apply = (event: FormEvent) => {
    event.preventDefault();
    setFilters(draft);
  };
  const download = async (format: 'csv' | 'pdf') => {
    setExporting(format);
    setExportError(null);
    try {
      const { blob, fileName } = await apiDownload('/api/v1/audit/export', {
        ...filterBody(filters),
        format,
      });
      const url = URL.createObjectURL(blob);
      const link = document.createElement('a');
      link.href = url;
      link.download = fileName;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      setExportError(
        `The export could not be made: ${error instanceof ApiError ? error.plain() : String(error)}`,
      );
    } finally {
      setExporting(null);
    }
  };
  // A refused filter is answered next to its field (the body names it, e.g. body.nhsNumber).
  const refused = trail.error instanceof ApiError ? trail.error : null;
  const fieldErrors = refused?.fieldErrors() ?? {};
  const field = (k: string) => (fieldErrors[k] ? sentence(fieldErrors[k]) : undefined);
  const formError = trail.error
    ? Object.keys(fieldErrors).length > 0
      ? 'A filter needs correcting: see the message next to it.'
      : (refused?.plain() ?? trail.error.message)
    : null;
  const rows = trail.data?.pages.flatMap((p) => p.rows) ?? [];
  const events = trail.data?.pages.reduce((a, p) => a + p.events, 0) ?? 0;
  return (
    <Stack maw={1300}>
      <PageTitle>Audit trail</PageTitle>
      <Paper withBorder p="sm" component="form" onSubmit={apply} aria-label="Audit filters" noValidate>
        <FormAlert message={formError} />
        <Group align="flex-end" wrap="wrap">
          <TextInput
            label="Patient's NHS number"
            value={draft.nhsNumber}
            onChange={(e) => setDraft({ ...draft, nhsNumber: e.currentTarget.value })}
            error={field('nhsNumber')}
            autoComplete="off"
            inputMode="numeric"
          />
          <TextInput
            label="User's name or login"
            value={draft.userName}
            onChange={(e) => setDraft({ ...draft, userName: e.currentTarget.value })}
            error={field('userName')}
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
          <NativeSelect
            label="Kind of event"
            data={KINDS}
            value={draft.kind}
            onChange={(e) => setDraft({ ...draft, kind: e.currentTarget.value })}
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
      <Group justify="space-between">
        <Text role="status">
          {trail.isPending
            ? 'Reading the audit trail…'
            : trail.isError
              ? 'No events shown: correct the filters.'
              : `${rows.length} rows (${events} events; repeated reads within a minute grouped), newest first.`}
        </Text>
        <Group gap="xs">
          <Button
            variant="default"
            onClick={() => void download('csv')}
            loading={exporting === 'csv'}
            disabled={trail.isError}
          >
            Export as CSV
          </Button>
          <Button
            variant="default"
            onClick={() => void download('pdf')}
            loading={exporting === 'pdf'}
            disabled={trail.isError}
          >
            Export as PDF
          </Button>
        </Group>
      </Group>
      <FormAlert message={exportError} />
      <Text size="sm">Exports hold names and NHS numbers: each export is itself recorded in this trail.</Text>
      <Table striped withTableBorder data-testid="audit-table">
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">When (UK time)</Table.Th>
            <Table.Th scope="col">What happened</Table.Th>
            <Table.Th scope="col">Times</Table.Th>
            <Table.Th scope="col">User</Table.Th>
            <Table.Th scope="col">Record</Table.Th>
            <Table.Th scope="col">Patient</Table.Th>
            <Table.Th scope="col">NHS number</Table.Th>
            <Table.Th scope="col">Break-glass</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((r, i) => (
            <Table.Tr key={`${r.at}-${i}`} data-testid="audit-row">
              <Table.Td>
                {londonDateTime(r.at)}
                {r.count > 1 ? ` (first ${londonDateTime(r.firstAt)})` : ''}
              </Table.Td>
              <Table.Td>{r.event}</Table.Td>
              <Table.Td data-testid="audit-count">{r.count}</Table.Td>
              <Table.Td>
                {r.user ? (r.user.name ?? 'Unknown user') : '—'}{' '}
                {r.roles.length
                  ? `(${r.roles.map((role) => ROLE_LABELS[role as Role] ?? role).join(', ')})`
                  : ''}
              </Table.Td>
              <Table.Td>
                {r.record
                  ? r.record.kind === 'case'
                    ? `Case ${r.record.reference}`
                    : 'Patient record'
                  : '—'}
              </Table.Td>
              <Table.Td>{r.record?.patientName ?? '—'}</Table.Td>
              <Table.Td>{r.record?.nhsNumber ? spacedNhs(r.record.nhsNumber) : '—'}</Table.Td>
              <Table.Td>{r.breakGlass ? `Yes: ${r.reason ?? ''}` : 'No'}</Table.Td>
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
