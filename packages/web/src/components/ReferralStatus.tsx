import { Alert, Button, Group, Radio, Stack, Text, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { api, newIdempotencyKey } from '../lib/api.ts';
import { DIRECTORY_PERMISSIONS, type BookingSlot, type ReferralView } from '../lib/directory.ts';
import { useSession } from '../lib/session.tsx';
import { useFormProblems } from '../lib/forms.ts';
import { londonTime, londonWhen } from '../lib/time.ts';
import type { DirectoryService } from '../lib/types.ts';
import { FormAlert } from './FormAlert.tsx';

/** The directory as listed (one read shared by every panel that needs a service's details). */
export function useDirectoryServices(enabled = true) {
  const session = useSession();
  // Provider admins see no patient data and so cannot search, but edit the directory: they read it
  // as its export (the same services; capacity is live state, not part of a file).
  const asAdmin = !session.can(DIRECTORY_PERMISSIONS.read) && session.can(DIRECTORY_PERMISSIONS.edit);
  return useQuery({
    queryKey: ['directory-services'],
    queryFn: async () =>
      (
        await api<{ services: DirectoryService[] }>(
          'GET',
          asAdmin ? '/api/v1/admin/directory/export?format=json' : '/api/v1/directory/services',
        )
      ).services.map((s) => ({ ...s, capacity: s.capacity ?? null })),
    enabled,
    staleTime: 60_000,
  });
}

/** One line in words for where a referral stands: what the case record and lists say too. */
export function referralWords(r: ReferralView): string {
  const name = r.service?.name ?? 'the service';
  const ref = r.reference ? ` (ref ${r.reference})` : '';
  switch (r.state) {
    case 'none':
      return 'No referral made yet';
    case 'waiting':
    case 'sent':
      return `Waiting for ${name} to accept…`;
    case 'accepted':
      return `Accepted by ${name}${ref}`;
    case 'rejected':
      return `Refused by ${name}: ${r.reason ?? 'no reason given'} — choose another service or phone it`;
    case 'did_not_attend':
      return `${name} says the patient did not attend`;
    case 'phoned':
      return `Referred to ${name} by phone${ref}`;
    case 'walk_in':
      return `The caller was told to go to ${name}`;
    case 'failed':
      return `The referral to ${name} could not be sent${r.reason ? `: ${r.reason}` : ''} — phone it or choose another service`;
  }
}

/** Where a booking stands, in words; "Booked for …" only once the receiver has confirmed it. */
export function bookingWords(r: ReferralView): string | null {
  const b = r.booking;
  if (!b) return null;
  const name = r.service?.name ?? 'the service';
  const when = londonWhen(b.slot.start);
  switch (b.state) {
    case 'waiting':
      return `Waiting for ${name} to confirm the booking for ${when}…`;
    case 'booked':
      return `Booked for ${when} at ${name}${b.reference ? ` (ref ${b.reference})` : ''}`;
    case 'refused':
      return `${name} did not take the booking for ${when}: ${b.reason ?? 'no reason given'} — choose another time or phone`;
  }
}

const COLOURS: Record<ReferralView['state'], string> = {
  none: 'gray',
  waiting: 'yellow',
  sent: 'yellow',
  accepted: '#1e6b30',
  phoned: '#1e6b30',
  walk_in: 'blue',
  rejected: 'red',
  did_not_attend: 'red',
  failed: 'red',
};

/**
 * The referral as the server has it, never ahead of it: "Waiting for … to accept…" until the
 * receiving service has accepted; a refusal with its reason. The title takes the focus when the
 * state changes, so a keyboard or screen-reader user hears the answer arrive.
 */
export function ReferralStatus({ caseId, referral }: { caseId: string; referral: ReferralView }) {
  const titleRef = useRef<HTMLHeadingElement>(null);
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    titleRef.current?.focus();
  }, [referral.state, referral.booking?.state]);
  const bad = ['rejected', 'failed', 'did_not_attend'].includes(referral.state);
  const services = useDirectoryServices(!!referral.service);
  const service = services.data?.find((s) => s.serviceId === referral.service?.serviceId);
  const bookable =
    !!service?.booking &&
    ['waiting', 'sent', 'accepted'].includes(referral.state) &&
    referral.booking?.state !== 'booked';
  const booking = bookingWords(referral);
  return (
    <Alert
      color={COLOURS[referral.state]}
      variant="light"
      role={bad ? 'alert' : 'status'}
      data-testid="referral-status"
      data-state={referral.state}
      title={
        <Title order={3} size="h5" ref={titleRef} tabIndex={-1} className="page-title">
          {referralWords(referral)}
        </Title>
      }
    >
      {(referral.state === 'waiting' || referral.state === 'sent') && (
        <Text size="sm">
          {referral.state === 'waiting' ? 'Not yet received by' : 'Sent to'} {referral.service?.name}: not
          accepted yet. Do not tell the caller it is accepted or booked until this says so.
        </Text>
      )}
      {bad && referral.service?.phone && (
        <Text size="sm">
          Phone {referral.service.name} on <strong>{referral.service.phone}</strong>, or choose another
          service below.
        </Text>
      )}
      {referral.state === 'walk_in' && service && (
        <Text size="sm" data-testid="walk-in-advice">
          {service.name}, {[...service.address, service.postcode].join(', ')}
          {service.phone ? `; phone ${service.phone}` : ''}.
        </Text>
      )}
      {booking && (
        <Text size="sm" fw={700} mt={4} data-testid="booking-status" data-state={referral.booking?.state}>
          {booking}
        </Text>
      )}
      {bookable && referral.booking?.state !== 'waiting' && (
        <BookATime caseId={caseId} serviceId={service.serviceId} serviceName={service.name} />
      )}
    </Alert>
  );
}

/**
 * "Book a time": the service's free slots (asked from it over HTTP by the server), one picked, the
 * booking posted; it shows as booked only once the service has confirmed it (ReferralStatus).
 */
function BookATime({
  caseId,
  serviceId,
  serviceName,
}: {
  caseId: string;
  serviceId: string;
  serviceName: string;
}) {
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const [slotId, setSlotId] = useState('');
  const [busy, setBusy] = useState(false);
  const [idempotencyKey, setIdempotencyKey] = useState(newIdempotencyKey);
  const problems = useFormProblems();
  const slots = useQuery({
    queryKey: ['booking-slots', caseId, serviceId],
    queryFn: async () => {
      const answer = await api<{ slots: BookingSlot[] }>(
        'GET',
        `/api/v1/cases/${caseId}/booking/slots?serviceId=${encodeURIComponent(serviceId)}`,
      );
      return answer.slots;
    },
    enabled: open,
    retry: false,
  });
  const legendRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (open) legendRef.current?.focus();
  }, [open]);
  if (!open)
    return (
      <Button mt="xs" size="xs" variant="default" onClick={() => setOpen(true)}>
        Book a time
      </Button>
    );
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (!slotId) {
      problems.setField('slotId', `Choose a time at ${serviceName}.`);
      return;
    }
    setBusy(true);
    try {
      await api('POST', `/api/v1/cases/${caseId}/booking`, { serviceId, slotId }, { idempotencyKey });
      setIdempotencyKey(newIdempotencyKey());
      await queryClient.invalidateQueries({ queryKey: ['referral', caseId] });
    } catch (error) {
      problems.fromError(error, ['slotId']);
      await queryClient.invalidateQueries({ queryKey: ['booking-slots', caseId, serviceId] });
    } finally {
      setBusy(false);
    }
  };
  const list = slots.data ?? [];
  return (
    <Stack
      component="form"
      onSubmit={(e: FormEvent) => void submit(e)}
      gap={4}
      mt="xs"
      data-testid="book-a-time"
    >
      <FormAlert message={problems.form} />
      {slots.isPending && <Text size="sm">Asking {serviceName} for free times…</Text>}
      {slots.isError && (
        <Text size="sm" c="red.9" role="alert">
          {serviceName} did not list its free times: {slots.error.message}. Phone it to book.
        </Text>
      )}
      {slots.data && list.length === 0 && <Text size="sm">{serviceName} has no free time to book.</Text>}
      {list.length > 0 && (
        <Radio.Group
          ref={legendRef}
          tabIndex={-1}
          label={`Free times at ${serviceName}`}
          value={slotId}
          onChange={setSlotId}
          error={problems.field('slotId')}
        >
          <Group gap="md" mt={4}>
            {list.map((s) => (
              <Radio
                key={s.slotId}
                value={s.slotId}
                label={`${londonWhen(s.start)} to ${londonTime(s.end)}`}
              />
            ))}
          </Group>
        </Radio.Group>
      )}
      <Group>
        {list.length > 0 && (
          <Button type="submit" size="xs" loading={busy}>
            Book this time
          </Button>
        )}
        <Button size="xs" variant="default" onClick={() => setOpen(false)}>
          Do not book
        </Button>
      </Group>
    </Stack>
  );
}
