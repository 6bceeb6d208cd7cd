import {
  Alert,
  Anchor,
  Button,
  Checkbox,
  Group,
  NativeSelect,
  Paper,
  SimpleGrid,
  Stack,
  Table,
  Text,
  Textarea,
  TextInput,
  Title,
} from '@mantine/core';
import { ImportProblems } from '../../components/ImportProblems.tsx';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { CapacityBadge, CapacityControl } from '../../components/CapacityControl.tsx';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { useDirectoryServices } from '../../components/ReferralStatus.tsx';
import { SampleNotice } from '../../components/SampleNotice.tsx';
import { howToReferWords, SAMPLE_DIRECTORY_TEXT } from '../../components/ServiceChoice.tsx';
import { api, ApiError } from '../../lib/api.ts';
import { DIRECTORY_PERMISSIONS, SERVICE_TYPE_WORDS } from '../../lib/directory.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { useSession } from '../../lib/session.tsx';
import { SERVICE_TYPES, type DirectoryService } from '../../lib/types.ts';
import {
  EMPTY_FORM,
  FORM_FIELDS,
  fromForm,
  newServiceId,
  toForm,
  WEEKDAYS,
  type ServiceForm,
} from './directoryForm.ts';

/**
 * The provider admin's directory of services: the list, a form to add or change a service, removal
 * with a reason, and import and export of the whole directory as CSV or JSON (an import is all or
 * nothing: a bad row is named by line and field and nothing is imported). Clinicians and shift
 * managers may set capacity here too.
 */
export function Directory() {
  const services = useDirectoryServices();
  const session = useSession();
  const canEdit = session.can(DIRECTORY_PERMISSIONS.edit);
  const canSetCapacity = session.can(DIRECTORY_PERMISSIONS.capacity);
  const [editing, setEditing] = useState<DirectoryService | 'new' | null>(null);
  const [removing, setRemoving] = useState<DirectoryService | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const list = services.data ?? [];
  return (
    <Stack maw={1300}>
      <PageTitle>Directory of services</PageTitle>
      {list.some((s) => s.notClinicallyValidated) && <SampleNotice text={SAMPLE_DIRECTORY_TEXT} />}
      {notice && (
        <Alert color="#1e6b30" variant="light" role="status">
          {notice}
        </Alert>
      )}
      {canEdit && <ImportExport onImported={setNotice} />}
      {canEdit && editing === null && (
        <Group>
          <Button onClick={() => setEditing('new')}>Add a service</Button>
        </Group>
      )}
      {canEdit && editing !== null && (
        <ServiceEditor
          key={editing === 'new' ? 'new' : editing.serviceId}
          service={editing === 'new' ? null : editing}
          onDone={(message) => {
            setEditing(null);
            if (message) setNotice(message);
          }}
        />
      )}
      {canEdit && removing && (
        <RemoveService
          service={removing}
          onDone={(message) => {
            setRemoving(null);
            if (message) setNotice(message);
          }}
        />
      )}
      {services.isError && <Text c="red.9">The directory could not be read: {services.error.message}</Text>}
      <Table.ScrollContainer minWidth={900}>
        <Table striped withTableBorder data-testid="directory-services">
          <Table.Caption>
            {list.length} {list.length === 1 ? 'service' : 'services'} in your provider's directory
          </Table.Caption>
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Service</Table.Th>
              <Table.Th scope="col">Postcode</Table.Th>
              <Table.Th scope="col">Dispositions</Table.Th>
              <Table.Th scope="col">How to refer</Table.Th>
              <Table.Th scope="col">Capacity</Table.Th>
              {canEdit && <Table.Th scope="col">Change</Table.Th>}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {list.map((s) => (
              <Table.Tr key={s.serviceId} data-service={s.name}>
                <Table.Td>
                  <Text size="sm" fw={700}>
                    {s.name}
                  </Text>
                  <Text size="xs">
                    {SERVICE_TYPE_WORDS[s.type]} · ODS {s.odsCode}
                    {s.notClinicallyValidated ? ' · sample, not clinically validated' : ''}
                  </Text>
                </Table.Td>
                <Table.Td>{s.postcode}</Table.Td>
                <Table.Td>{s.dispositions.join(', ')}</Table.Td>
                <Table.Td>{howToReferWords(s)}</Table.Td>
                <Table.Td>
                  <CapacityBadge capacity={s.capacity} />
                  {canSetCapacity && <CapacityControl service={s} />}
                </Table.Td>
                {canEdit && (
                  <Table.Td>
                    <Group gap={4} wrap="nowrap">
                      <Button
                        size="xs"
                        variant="default"
                        onClick={() => setEditing(s)}
                        aria-label={`Edit ${s.name}`}
                      >
                        Edit
                      </Button>
                      <Button
                        size="xs"
                        variant="default"
                        color="red"
                        onClick={() => setRemoving(s)}
                        aria-label={`Remove ${s.name}`}
                      >
                        Remove
                      </Button>
                    </Group>
                  </Table.Td>
                )}
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Stack>
  );
}

function ServiceEditor({
  service,
  onDone,
}: {
  service: DirectoryService | null;
  onDone: (message: string | null) => void;
}) {
  const queryClient = useQueryClient();
  const [form, setForm] = useState<ServiceForm>(
    service ? toForm(service) : { ...EMPTY_FORM, serviceId: newServiceId() },
  );
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => headingRef.current?.focus(), []);
  const set = <K extends keyof ServiceForm>(key: K, value: ServiceForm[K]) =>
    setForm((f) => ({ ...f, [key]: value }));
  const text = (key: keyof ServiceForm & string, label: string, path: string = key, description?: string) => (
    <TextInput
      label={label}
      description={description}
      value={String(form[key])}
      onChange={(e) => set(key, e.currentTarget.value as never)}
      error={problems.field(path)}
      readOnly={key === 'serviceId'}
    />
  );

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    const read = fromForm(form);
    if ('problems' in read) {
      for (const [path, message] of Object.entries(read.problems)) problems.setField(path, message);
      problems.setForm('Some answers need correcting: see the messages next to the fields.');
      return;
    }
    setBusy(true);
    try {
      await api('POST', '/api/v1/admin/directory/services', read.service);
      await queryClient.invalidateQueries({ queryKey: ['directory-services'] });
      onDone(`${read.service.name} saved.`);
    } catch (error) {
      problems.fromError(error, FORM_FIELDS);
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
      aria-labelledby="service-editor-heading"
      noValidate
    >
      <Title order={2} size="h3" id="service-editor-heading" ref={headingRef} tabIndex={-1} mb="xs">
        {service ? `Edit ${service.name}` : 'Add a service'}
      </Title>
      <FormAlert message={problems.form} />
      <SimpleGrid cols={{ base: 1, sm: 3 }} spacing="sm">
        {text('serviceId', 'Service ID', 'serviceId', 'Given to a new service; it never changes.')}
        {text('name', 'Name')}
        {text('odsCode', 'ODS code')}
        <NativeSelect
          label="Type of service"
          data={SERVICE_TYPES.map((t) => ({ value: t, label: SERVICE_TYPE_WORDS[t] }))}
          value={form.type}
          onChange={(e) => set('type', e.currentTarget.value as ServiceForm['type'])}
          error={problems.field('type')}
        />
        <Textarea
          label="Address (one line per line)"
          value={form.address}
          onChange={(e) => set('address', e.currentTarget.value)}
          error={problems.field('address')}
          autosize
          minRows={2}
        />
        {text('postcode', 'Postcode')}
        {text('latitude', 'Latitude', 'latitude', 'Decimal degrees, e.g. 53.8008')}
        {text('longitude', 'Longitude', 'longitude', 'Decimal degrees, e.g. -1.5491')}
        {text('phone', 'Phone number for the public (optional)')}
      </SimpleGrid>

      <Title order={3} size="h5" mt="md">
        Opening times (UK time)
      </Title>
      <Checkbox
        mt={4}
        label="Open 24 hours, every day"
        checked={form.alwaysOpen}
        onChange={(e) => set('alwaysOpen', e.currentTarget.checked)}
      />
      {!form.alwaysOpen && (
        <SimpleGrid cols={{ base: 1, sm: 4 }} spacing="sm" mt={4}>
          {WEEKDAYS.map(([day, label]) => (
            <TextInput
              key={day}
              label={`${label} opening times`}
              description="e.g. 08:00-18:30, 19:00-22:00; empty = closed"
              value={form.weekly[day]}
              onChange={(e) => {
                const v = e.currentTarget.value;
                setForm((f) => ({ ...f, weekly: { ...f.weekly, [day]: v } }));
              }}
              error={problems.field(`openingTimes.weekly.${day}`)}
            />
          ))}
        </SimpleGrid>
      )}
      <Checkbox
        mt="sm"
        label="Bank holidays: open as on that weekday"
        checked={form.bankHolidaysAsWeekday}
        onChange={(e) => set('bankHolidaysAsWeekday', e.currentTarget.checked)}
      />
      {!form.bankHolidaysAsWeekday && (
        <TextInput
          mt={4}
          label="Bank holiday opening times"
          description="e.g. 10:00-16:00; empty = closed on bank holidays"
          value={form.bankHolidays}
          onChange={(e) => set('bankHolidays', e.currentTarget.value)}
          error={problems.field('openingTimes.bankHolidays')}
        />
      )}
      <Textarea
        mt="sm"
        label="Dated exceptions (one a line)"
        description='e.g. "2026-12-25 closed" or "2026-12-24 08:00-12:00 Christmas Eve"'
        value={form.exceptions}
        onChange={(e) => set('exceptions', e.currentTarget.value)}
        error={problems.field('openingTimes.exceptions') ?? problems.field('openingTimes')}
        autosize
        minRows={1}
      />

      <Title order={3} size="h5" mt="md">
        Who the service takes
      </Title>
      <SimpleGrid cols={{ base: 1, sm: 4 }} spacing="sm">
        {text('dispositions', 'Dispositions taken (Dx codes)', 'dispositions', 'e.g. Dx02, Dx03')}
        {text('symptomGroups', 'Symptom groups taken', 'symptomGroups', 'Empty = all')}
        {text('minYears', 'Youngest age seen (years)', 'ageRange.minYears')}
        {text('maxYears', 'Oldest age seen (years)', 'ageRange.maxYears', 'Empty = no upper limit')}
      </SimpleGrid>
      <Group mt="xs">
        <Text size="sm">Sexes seen (none ticked = all):</Text>
        <Checkbox label="Male" checked={form.male} onChange={(e) => set('male', e.currentTarget.checked)} />
        <Checkbox
          label="Female"
          checked={form.female}
          onChange={(e) => set('female', e.currentTarget.checked)}
        />
      </Group>
      {problems.field('sexes') && (
        <Text size="sm" c="red.9">
          {problems.field('sexes')}
        </Text>
      )}

      <Title order={3} size="h5" mt="md">
        How referrals are made
      </Title>
      <SimpleGrid cols={{ base: 1, sm: 3 }} spacing="sm">
        <NativeSelect
          label="How to refer"
          data={[
            { value: 'message', label: 'Electronic referral (a message endpoint)' },
            { value: 'phone', label: 'Phone only' },
            { value: 'walk_in', label: 'Walk in' },
          ]}
          value={form.referralKind}
          onChange={(e) => set('referralKind', e.currentTarget.value as ServiceForm['referralKind'])}
          error={problems.field('referral')}
        />
        {form.referralKind === 'message' &&
          text(
            'endpointId',
            'Message endpoint ID',
            'referral.endpointId',
            'As set up under receiving systems',
          )}
        {form.referralKind === 'phone' &&
          text('referralPhone', 'Phone number for referrals', 'referral.phone')}
        {text(
          'slotsEndpointId',
          'Booking: slots endpoint ID (optional)',
          'booking',
          'Where the service lists free times; empty = no booking',
        )}
      </SimpleGrid>
      <Checkbox
        mt="sm"
        label="Sample content: not clinically validated"
        checked={form.notClinicallyValidated}
        onChange={(e) => set('notClinicallyValidated', e.currentTarget.checked)}
      />
      <Group mt="md">
        <Button type="submit" loading={busy}>
          {service ? 'Save changes' : 'Add service'}
        </Button>
        <Button variant="default" onClick={() => onDone(null)}>
          Cancel
        </Button>
      </Group>
    </Paper>
  );
}

function RemoveService({
  service,
  onDone,
}: {
  service: DirectoryService;
  onDone: (message: string | null) => void;
}) {
  const queryClient = useQueryClient();
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => headingRef.current?.focus(), []);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (reason.trim() === '') {
      problems.setField('reason', `Say why ${service.name} is being removed.`);
      return;
    }
    setBusy(true);
    try {
      await api('DELETE', `/api/v1/admin/directory/services/${encodeURIComponent(service.serviceId)}`, {
        reason: reason.trim(),
      });
      await queryClient.invalidateQueries({ queryKey: ['directory-services'] });
      onDone(`${service.name} removed from the directory.`);
    } catch (error) {
      problems.fromError(error, ['reason']);
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
      aria-labelledby="remove-heading"
      noValidate
    >
      <Title order={2} size="h4" id="remove-heading" ref={headingRef} tabIndex={-1} mb="xs">
        Remove {service.name}
      </Title>
      <FormAlert message={problems.form} />
      <Textarea
        label="Why is it being removed?"
        value={reason}
        onChange={(e) => setReason(e.currentTarget.value)}
        error={problems.field('reason')}
        autosize
        minRows={1}
        maxLength={500}
      />
      <Group mt="sm">
        <Button type="submit" color="red.8" loading={busy}>
          Remove from the directory
        </Button>
        <Button variant="default" onClick={() => onDone(null)}>
          Keep it
        </Button>
      </Group>
    </Paper>
  );
}

interface ImportProblem {
  line: number;
  field: string;
  message: string;
}

/** The import's refusals, wherever in the problem+json the server lists them. */
function importProblems(error: ApiError): ImportProblem[] {
  for (const key of ['errors', 'rows', 'problems']) {
    const value = error.body[key];
    if (Array.isArray(value) && value.some((v) => typeof v === 'object' && v !== null && 'line' in v))
      return (value as Partial<ImportProblem>[]).map((v) => ({
        line: Number(v.line),
        field: String(v.field ?? ''),
        message: String(v.message ?? ''),
      }));
  }
  return [];
}

/**
 * Import and export of the whole directory. The file is read in the browser and sent as it is (CSV
 * or JSON by its name); the server takes all of it or none, and lists every bad row.
 */
function ImportExport({ onImported }: { onImported: (message: string) => void }) {
  const queryClient = useQueryClient();
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [refused, setRefused] = useState<{ title: string; rows: ImportProblem[] } | null>(null);
  const problems = useFormProblems();
  const refusedRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (refused) refusedRef.current?.focus();
  }, [refused]);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    setRefused(null);
    if (!file) {
      problems.setField('file', 'Choose the directory file to import (CSV or JSON).');
      return;
    }
    const json = /\.json$/i.test(file.name) || file.type === 'application/json';
    setBusy(true);
    try {
      const text = await file.text();
      const answer = await api<{ imported?: number; services?: number }>(
        'POST',
        '/api/v1/admin/directory/import',
        text,
        { contentType: json ? 'application/json' : 'text/csv' },
      );
      await queryClient.invalidateQueries({ queryKey: ['directory-services'] });
      const n = answer?.imported ?? answer?.services;
      onImported(`${file.name} imported${typeof n === 'number' ? `: ${n} services` : ''}.`);
    } catch (error) {
      const rows = error instanceof ApiError ? importProblems(error) : [];
      if (rows.length > 0)
        setRefused({ title: `${file.name} was not imported: nothing in it was imported`, rows });
      else problems.fromError(error, []);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="import-heading">
      <Title order={2} size="h4" id="import-heading" mb="xs">
        Import or export the directory
      </Title>
      <FormAlert message={problems.form} />
      <form onSubmit={(e) => void submit(e)} noValidate aria-label="Import a directory file">
        <Group align="flex-end">
          <div>
            <label htmlFor="directory-file" className="file-label">
              Directory file (CSV or JSON)
            </label>
            <br />
            <input
              id="directory-file"
              type="file"
              accept=".csv,.json,text/csv,application/json"
              aria-invalid={problems.field('file') ? true : undefined}
              aria-describedby={problems.field('file') ? 'directory-file-error' : undefined}
              onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)}
            />
            {problems.field('file') && (
              <Text size="sm" c="red.9" id="directory-file-error">
                {problems.field('file')}
              </Text>
            )}
          </div>
          <Button type="submit" loading={busy} variant="light">
            Import file
          </Button>
        </Group>
        <Text size="xs" mt={4}>
          An import replaces services with the same service ID. If any row is wrong, nothing is imported.
        </Text>
      </form>
      {refused && <ImportProblems refused={refused} alertRef={refusedRef} />}
      <Group mt="sm">
        <Text size="sm">Export:</Text>
        <Anchor href="/api/v1/admin/directory/export?format=csv" download="directory.csv">
          Download as CSV
        </Anchor>
        <Anchor href="/api/v1/admin/directory/export?format=json" download="directory.json">
          Download as JSON
        </Anchor>
      </Group>
    </Paper>
  );
}
