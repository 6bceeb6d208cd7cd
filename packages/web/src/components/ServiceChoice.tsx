import {
  Alert,
  Badge,
  Button,
  Group,
  List,
  Paper,
  Stack,
  Table,
  Text,
  Textarea,
  TextInput,
  Title,
} from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { api, newIdempotencyKey } from '../lib/api.ts';
import {
  DIRECTORY_PERMISSIONS,
  distanceWords,
  EXCLUSION_WORDS,
  postcodeIn,
  SERVICE_TYPE_WORDS,
  useDirectorySearch,
  useReferral,
  type DirectorySearchAnswer,
  type ReferralView,
} from '../lib/directory.ts';
import { useFormProblems } from '../lib/forms.ts';
import { useSession } from '../lib/session.tsx';
import type { CaseDetail, DirectoryService, RankedService } from '../lib/types.ts';
import { CapacityBadge, CapacityControl } from './CapacityControl.tsx';
import { FormAlert } from './FormAlert.tsx';
import { ReferralStatus } from './ReferralStatus.tsx';
import { SampleNotice } from './SampleNotice.tsx';

/** Sample directory content says so wherever it is shown. */
export const SAMPLE_DIRECTORY_TEXT =
  'Directory of services: sample content for demonstration — not clinically validated';

/** How a service takes referrals, in words for the list. */
export function howToReferWords(service: DirectoryService): string {
  switch (service.referral.kind) {
    case 'message':
      return service.booking ? 'Electronic referral; times can be booked' : 'Electronic referral';
    case 'phone':
      return `Phone only: ${service.referral.phone}`;
    case 'walk_in':
      return 'Walk in: tell the caller where to go';
  }
}

/** What the adviser reads out for a walk-in service: where it is and when it is open. */
export function walkInAdvice(ranked: Pick<RankedService, 'service' | 'opening'>): string {
  const s = ranked.service;
  return `Go to ${s.name}, ${[...s.address, s.postcode].join(', ')}. It is ${ranked.opening}.`;
}

/**
 * Where to send the patient after a disposition (the adviser's) or an outcome (the clinician's)
 * that refers: the patient's location now (a postcode, filled in from the case or the patient's
 * record and editable), the ranked services with distance, opening, capacity and how each takes a
 * referral, and every service left out with why. Choosing a service records the choice with what
 * was offered; from then on the referral's state is shown as the server has it (ReferralStatus),
 * and a refusal opens the list again.
 */
export function ServiceChoice({
  caseDetail,
  patientPostcode,
}: {
  caseDetail: CaseDetail;
  patientPostcode: string | null;
}) {
  const caseId = caseDetail.caseId;
  const referral = useReferral(caseId);
  const session = useSession();
  const r = referral.data;
  if (referral.isPending) return <Text>Checking whether a referral has been made…</Text>;
  if (!r)
    return (
      <Alert color="red" role="alert" mt="md" title="Where the referral stands is not known">
        The server did not say whether a referral was made: {referral.error?.message ?? 'no answer'}. Do not
        tell the caller anything is arranged; try again in a moment.
      </Alert>
    );
  // A refused or failed referral (or one the patient did not attend) leaves the choice open again.
  const chooseAgain =
    session.can('cases.refer') && ['none', 'rejected', 'failed', 'did_not_attend'].includes(r.state);
  return (
    <Stack gap="sm" mt="md" data-testid="service-choice">
      {r.state !== 'none' && <ReferralStatus caseId={caseId} referral={r} />}
      {chooseAgain && (
        <ServiceList
          caseDetail={caseDetail}
          patientPostcode={patientPostcode}
          previous={r.state === 'none' ? null : r}
        />
      )}
    </Stack>
  );
}

function ServiceList({
  caseDetail,
  patientPostcode,
  previous,
}: {
  caseDetail: CaseDetail;
  patientPostcode: string | null;
  previous: ReferralView | null;
}) {
  const caseId = caseDetail.caseId;
  const session = useSession();
  // The case's location first (where the patient is now), else the home postcode on the record.
  const initial = postcodeIn(caseDetail.location) ?? patientPostcode ?? '';
  const [typed, setTyped] = useState(initial);
  const [postcode, setPostcode] = useState<string | null>(initial || null);
  const search = useDirectorySearch(caseId, postcode);
  const [chosen, setChosen] = useState<RankedService | null>(null);
  const canSetCapacity = session.can(DIRECTORY_PERMISSIONS.capacity);
  const problems = useFormProblems();
  useEffect(() => {
    if (search.isError) problems.fromError(search.error, ['postcode']);
    else problems.clear();
    // Only a new answer from the search changes the message.
  }, [search.isError, search.error]);

  const find = (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (typed.trim() === '') {
      problems.setField('postcode', 'Enter the postcode where the patient is now.');
      return;
    }
    setChosen(null);
    if (typed.trim() === postcode) void search.refetch();
    else setPostcode(typed.trim());
  };

  const answer = search.data;
  const sample = answer?.ranked.some((s) => s.service.notClinicallyValidated);
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="services-heading">
      <Title order={3} size="h4" id="services-heading" mb="xs">
        {previous ? 'Choose another service' : 'Where to send the patient'}
      </Title>
      <form onSubmit={find} noValidate aria-label="Patient's location">
        <Group align="flex-end" gap="xs">
          <TextInput
            label="Postcode where the patient is now"
            description="From the case or the patient's record: change it if the patient is elsewhere."
            value={typed}
            onChange={(e) => setTyped(e.currentTarget.value)}
            error={problems.field('postcode')}
            maxLength={10}
            w={360}
          />
          <Button type="submit" variant="light" loading={search.isFetching}>
            Find services
          </Button>
        </Group>
      </form>
      <FormAlert message={problems.form} />
      {(sample || answer?.excluded.length) && <SampleNotice text={SAMPLE_DIRECTORY_TEXT} compact />}
      {answer && (
        <RankedTable
          answer={answer}
          canSetCapacity={canSetCapacity}
          chosenId={chosen?.service.serviceId ?? null}
          onChoose={setChosen}
        />
      )}
      {answer && <LeftOut answer={answer} onChoose={setChosen} />}
      {answer && chosen && (
        <ReferTo caseId={caseId} answer={answer} chosen={chosen} onCancel={() => setChosen(null)} />
      )}
    </Paper>
  );
}

function RankedTable({
  answer,
  canSetCapacity,
  chosenId,
  onChoose,
}: {
  answer: DirectorySearchAnswer;
  canSetCapacity: boolean;
  chosenId: string | null;
  onChoose: (s: RankedService) => void;
}) {
  if (answer.ranked.length === 0)
    return (
      <Alert color="orange" mt="sm" role="status" title="No service found">
        No service in the directory can take this patient within the time the disposition allows. See why
        below; phone the clinical lead or choose a service left out only for its capacity.
      </Alert>
    );
  return (
    <Table.ScrollContainer minWidth={900} mt="sm">
      <Table data-testid="ranked-services" striped verticalSpacing={4}>
        <Table.Caption>
          {answer.ranked.length} {answer.ranked.length === 1 ? 'service' : 'services'} that can take the
          patient, best first (open now, then capacity, then distance)
        </Table.Caption>
        <Table.Thead>
          <Table.Tr>
            <Table.Th scope="col">Rank</Table.Th>
            <Table.Th scope="col">Service</Table.Th>
            <Table.Th scope="col">Distance</Table.Th>
            <Table.Th scope="col">Opening</Table.Th>
            <Table.Th scope="col">Capacity</Table.Th>
            <Table.Th scope="col">How to refer</Table.Th>
            <Table.Th scope="col">Choose</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {answer.ranked.map((r) => (
            <Table.Tr
              key={r.service.serviceId}
              data-service={r.service.name}
              aria-selected={r.service.serviceId === chosenId}
            >
              <Table.Td>{r.rank}</Table.Td>
              <Table.Td>
                <Text size="sm" fw={700}>
                  {r.service.name}
                </Text>
                <Text size="xs">{SERVICE_TYPE_WORDS[r.service.type]}</Text>
              </Table.Td>
              <Table.Td>{distanceWords(r.distanceKm)}</Table.Td>
              <Table.Td>
                <Text size="sm" fw={r.openNow ? 700 : 400}>
                  {r.openNow ? r.opening : `Closed now: ${r.opening}`}
                </Text>
              </Table.Td>
              <Table.Td>
                <CapacityBadge capacity={r.service.capacity} />
                {canSetCapacity && <CapacityControl service={r.service} />}
              </Table.Td>
              <Table.Td>
                <Text size="sm">{howToReferWords(r.service)}</Text>
              </Table.Td>
              <Table.Td>
                <Button size="xs" onClick={() => onChoose(r)} aria-label={`Choose ${r.service.name}`}>
                  Choose
                </Button>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

/**
 * "Why not others?": every service the search left out, with its reasons in words. One left out only
 * because it said it is full can still be chosen (the adviser may know better, e.g. after phoning it).
 */
function LeftOut({
  answer,
  onChoose,
}: {
  answer: DirectorySearchAnswer;
  onChoose: (s: RankedService) => void;
}) {
  if (answer.excluded.length === 0) return null;
  return (
    <details className="why-not-others" data-testid="why-not-others">
      <summary>
        Why not others? ({answer.excluded.length} {answer.excluded.length === 1 ? 'service' : 'services'} left
        out)
      </summary>
      <List size="sm" spacing={4} mt={4}>
        {answer.excluded.map((x) => (
          <List.Item key={x.serviceId} data-service={x.name}>
            <strong>{x.name}</strong>: {x.words || x.reasons.map((r) => EXCLUSION_WORDS[r]).join('; ')}
            {x.reasons.length === 1 && x.reasons[0] === 'capacity_red' && (
              <ChooseFull serviceId={x.serviceId} name={x.name} onChoose={onChoose} />
            )}
          </List.Item>
        ))}
      </List>
    </details>
  );
}

/** A service left out only for being full, chosen anyway: its details come from the directory. */
function ChooseFull({
  serviceId,
  name,
  onChoose,
}: {
  serviceId: string;
  name: string;
  onChoose: (s: RankedService) => void;
}) {
  const [problem, setProblem] = useState<string | null>(null);
  const choose = async () => {
    setProblem(null);
    try {
      const { services } = await api<{ services: DirectoryService[] }>('GET', '/api/v1/directory/services');
      const service = services.find((s) => s.serviceId === serviceId);
      if (!service) throw new Error(`${name} is no longer in the directory`);
      onChoose({
        service,
        distanceKm: Number.NaN,
        openNow: true,
        opening: 'full (red)',
        opensAtMs: null,
        rank: 0,
      });
    } catch (error) {
      setProblem(error instanceof Error ? error.message : 'It could not be read.');
    }
  };
  return (
    <>
      {' '}
      <Button
        size="compact-xs"
        variant="default"
        onClick={() => void choose()}
        aria-label={`Choose ${name} anyway`}
      >
        Choose anyway
      </Button>
      {problem && (
        <Text size="xs" c="red.9" role="alert">
          {problem}
        </Text>
      )}
    </>
  );
}

/**
 * The chosen service: the reason when it is not the first offered, who took a phone referral, what
 * to tell the caller for a walk-in; then the referral is posted with what was offered.
 */
function ReferTo({
  caseId,
  answer,
  chosen,
  onCancel,
}: {
  caseId: string;
  answer: DirectorySearchAnswer;
  chosen: RankedService;
  onCancel: () => void;
}) {
  const queryClient = useQueryClient();
  const headingRef = useRef<HTMLHeadingElement>(null);
  const [reason, setReason] = useState('');
  const [spokeTo, setSpokeTo] = useState('');
  const [reference, setReference] = useState('');
  const [busy, setBusy] = useState(false);
  const [idempotencyKey] = useState(newIdempotencyKey);
  const problems = useFormProblems();
  const s = chosen.service;
  // The choice takes the focus, so a keyboard user lands on what to do next.
  useEffect(() => headingRef.current?.focus(), [s.serviceId]);
  const first = answer.ranked[0]?.service.serviceId;
  const notFirst = first !== undefined && first !== s.serviceId;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (notFirst && reason.trim() === '') {
      problems.setField('reasonIfNotFirst', `Say why ${s.name} rather than the first service offered.`);
      return;
    }
    if (s.referral.kind === 'phone' && spokeTo.trim() === '') {
      problems.setField('phoneReferral.spokeTo', `Say who at ${s.name} took the referral.`);
      return;
    }
    setBusy(true);
    try {
      const next = await api<ReferralView>(
        'POST',
        `/api/v1/cases/${caseId}/referral`,
        {
          serviceId: s.serviceId,
          searchId: answer.searchId,
          offered: answer.ranked.map((r) => r.service.serviceId),
          ...(notFirst ? { reasonIfNotFirst: reason.trim() } : {}),
          ...(s.referral.kind === 'phone'
            ? {
                phoneReferral: {
                  spokeTo: spokeTo.trim(),
                  ...(reference.trim() ? { reference: reference.trim() } : {}),
                },
              }
            : {}),
        },
        { idempotencyKey },
      );
      if (next && typeof next === 'object' && 'state' in next)
        queryClient.setQueryData(['referral', caseId], next);
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: ['referral', caseId] }),
        queryClient.invalidateQueries({ queryKey: ['case', caseId] }),
      ]);
    } catch (error) {
      problems.fromError(error, [
        'serviceId',
        'reasonIfNotFirst',
        'phoneReferral.spokeTo',
        'phoneReferral.reference',
      ]);
    } finally {
      setBusy(false);
    }
  };

  const action =
    s.referral.kind === 'message'
      ? `Send the referral to ${s.name}`
      : s.referral.kind === 'phone'
        ? 'Record the phone referral'
        : 'Record the advice given';
  return (
    <Paper
      withBorder
      p="sm"
      mt="sm"
      component="form"
      onSubmit={(e: FormEvent) => void submit(e)}
      noValidate
      aria-labelledby="refer-to-heading"
      data-testid="refer-to"
    >
      <Title order={4} size="h5" id="refer-to-heading" ref={headingRef} tabIndex={-1}>
        Refer to {s.name}
      </Title>
      <Group gap="xs" mb="xs">
        <Badge variant="outline">{SERVICE_TYPE_WORDS[s.type]}</Badge>
        {s.notClinicallyValidated && (
          <Badge variant="outline" color="#8a4b00">
            sample, not clinically validated
          </Badge>
        )}
      </Group>
      <FormAlert message={problems.form} />
      {notFirst && (
        <Textarea
          label="Why this service and not the first one offered?"
          description={`${answer.ranked[0]!.service.name} was offered first.`}
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          error={problems.field('reasonIfNotFirst')}
          autosize
          minRows={1}
          maxLength={500}
        />
      )}
      {s.referral.kind === 'phone' && (
        <>
          <Text mt="xs">
            {s.name} takes referrals by phone only: phone{' '}
            <strong data-testid="service-phone">{s.referral.phone}</strong>, give the patient's details, then
            record who took it.
          </Text>
          <Group align="flex-end" mt={4}>
            <TextInput
              label="Who took the referral"
              value={spokeTo}
              onChange={(e) => setSpokeTo(e.currentTarget.value)}
              error={problems.field('phoneReferral.spokeTo')}
              maxLength={200}
            />
            <TextInput
              label="Their reference (if given)"
              value={reference}
              onChange={(e) => setReference(e.currentTarget.value)}
              error={problems.field('phoneReferral.reference')}
              maxLength={200}
            />
          </Group>
        </>
      )}
      {s.referral.kind === 'walk_in' && (
        <Alert color="blue" variant="light" mt="xs" title="Tell the caller" data-testid="walk-in-advice">
          {walkInAdvice(chosen)}
          {s.phone ? ` Their phone number is ${s.phone}.` : ''}
        </Alert>
      )}
      {s.referral.kind === 'message' && (
        <Text size="sm" mt="xs">
          The referral goes to {s.name} electronically. Do not tell the caller it is accepted until this
          screen says so.
        </Text>
      )}
      <Group mt="sm">
        <Button type="submit" loading={busy}>
          {action}
        </Button>
        <Button variant="default" onClick={onCancel}>
          Choose a different service
        </Button>
      </Group>
    </Paper>
  );
}
