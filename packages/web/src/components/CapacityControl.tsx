import { Badge, Button, Group, NativeSelect, Text } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api } from '../lib/api.ts';
import { CAPACITY_COLOURS, CAPACITY_WORDS } from '../lib/directory.ts';
import { useFormProblems } from '../lib/forms.ts';
import { londonWhen } from '../lib/time.ts';
import type { CapacityStatus, DirectoryService } from '../lib/types.ts';

/** A service's capacity as a coloured badge with the time it was set ("Amber: busy · set 14:05 GMT"). */
export function CapacityBadge({ capacity }: { capacity: DirectoryService['capacity'] }) {
  if (!capacity)
    return (
      <Text size="sm" component="span">
        Not known
      </Text>
    );
  return (
    <span data-testid="capacity" data-status={capacity.status}>
      <Badge color={CAPACITY_COLOURS[capacity.status]} variant="filled" size="sm" radius="sm">
        {CAPACITY_WORDS[capacity.status]}
      </Badge>{' '}
      <Text size="xs" component="span">
        set {londonWhen(capacity.setAtMs)}
        {capacity.note ? ` (${capacity.note})` : ''}
      </Text>
    </span>
  );
}

/**
 * Clinicians and shift managers set a service's capacity (green, amber, red) from wherever the
 * service is listed. The choice is sent only with the button: a native select changes its value as
 * arrow keys pass over the options, and that must not tell everyone a service is full.
 */
export function CapacityControl({ service }: { service: Pick<DirectoryService, 'serviceId' | 'name'> }) {
  const queryClient = useQueryClient();
  const [status, setStatus] = useState<CapacityStatus | ''>('');
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const problems = useFormProblems();
  const submit = async () => {
    problems.clear();
    setDone(null);
    if (status === '') {
      problems.setField('status', `Choose the capacity of ${service.name} first.`);
      return;
    }
    setBusy(true);
    try {
      await api('POST', `/api/v1/directory/services/${encodeURIComponent(service.serviceId)}/capacity`, {
        status,
      });
      setDone(`Capacity set: ${CAPACITY_WORDS[status]}.`);
      setStatus('');
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: ['directory-search'] }),
        queryClient.invalidateQueries({ queryKey: ['directory-services'] }),
      ]);
    } catch (error) {
      problems.fromError(error, ['status', 'note']);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Group gap={4} align="flex-end" wrap="nowrap">
      <NativeSelect
        size="xs"
        aria-label={`Capacity of ${service.name}`}
        data={[
          { value: '', label: 'Set capacity…' },
          { value: 'green', label: CAPACITY_WORDS.green },
          { value: 'amber', label: CAPACITY_WORDS.amber },
          { value: 'red', label: CAPACITY_WORDS.red },
        ]}
        value={status}
        onChange={(e) => setStatus(e.currentTarget.value as CapacityStatus | '')}
        error={problems.field('status') ?? problems.form ?? undefined}
      />
      <Button
        size="xs"
        variant="default"
        loading={busy}
        onClick={() => void submit()}
        aria-label={`Set capacity of ${service.name}`}
      >
        Set
      </Button>
      {done && (
        <Text size="xs" role="status">
          {done}
        </Text>
      )}
    </Group>
  );
}
