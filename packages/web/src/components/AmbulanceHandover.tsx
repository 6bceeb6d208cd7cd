import { Alert, Button, Group, List, Text, TextInput } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api } from '../lib/api.ts';
import { useFormProblems } from '../lib/forms.ts';
import { useNow } from '../lib/live.ts';
import { londonTime } from '../lib/time.ts';
import type { CaseDetail } from '../lib/types.ts';
import { FormAlert } from './FormAlert.tsx';

/** The states in which the ambulance service has the patient: nothing more for the screen to chase. */
const HANDED_OVER = ['accepted', 'phoned'];

/**
 * Where the request to the ambulance service stands, read every second until it is settled
 * (accepted, phoned, or refused: then the adviser phones). Shared by the panel and by whatever on
 * the screen must wait for it (one request: the same query key).
 */
export function useAmbulanceHandover(caseId: string, enabled: boolean) {
  return useQuery({
    queryKey: ['ambulance-handover', caseId],
    queryFn: () => api<AmbulanceHandoverView>('GET', `/api/v1/cases/${caseId}/ambulance-handover`),
    enabled,
    refetchInterval: (q) =>
      q.state.data && [...HANDED_OVER, 'rejected'].includes(q.state.data.state) ? false : 1000,
  });
}

/** True once the ambulance service has the patient (accepted electronically, or by phone). */
export function handedOver(view: AmbulanceHandoverView | undefined): boolean {
  return view !== undefined && HANDED_OVER.includes(view.state);
}

export interface AmbulanceHandoverView {
  state: 'waiting' | 'accepted' | 'rejected' | 'phone_now' | 'no_endpoint' | 'phoned';
  messageState: string | null;
  destination: string | null;
  phone: string | null;
  acceptBy: string | null;
  reference: string | null;
  reason: string | null;
  phoned: { at: string; spokeTo: string; reference: string | null } | null;
}

/**
 * Where the request to the ambulance service stands, read again every second while it is open. The
 * screen says "accepted" only once the ambulance service has; if it has not within its window, it
 * tells the adviser to phone, with the number and the details to read out, and records the call.
 */
export function AmbulanceHandover({ caseDetail }: { caseDetail: CaseDetail }) {
  const caseId = caseDetail.caseId;
  const queryClient = useQueryClient();
  const status = useAmbulanceHandover(caseId, true);
  const [spokeTo, setSpokeTo] = useState('');
  const [reference, setReference] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  // A clock of the screen's own: with the server silent, nothing else makes the panel look again.
  const now = useNow(1000);
  // What the server last said; while it does not answer, the screen must not keep promising.
  const said = status.data;
  if (!said)
    return status.isError ? (
      <Alert
        color="red"
        mt="md"
        title="Phone the ambulance service now"
        role="alert"
        data-testid="ambulance-handover"
      >
        The server is not answering, so nobody can tell whether the ambulance service has the request. Phone
        the ambulance service and read out the call details.
      </Alert>
    ) : (
      <Text mt="md">Checking the request to the ambulance service…</Text>
    );
  const serverDown = status.isError;
  // "Waiting" turns into "phone now" at the ambulance service's deadline even with the server gone.
  const lateWithoutServer =
    said.state === 'waiting' && serverDown && said.acceptBy !== null && now >= Date.parse(said.acceptBy);
  const h: AmbulanceHandoverView = lateWithoutServer ? { ...said, state: 'phone_now' } : said;
  const record = async () => {
    problems.clear();
    setBusy(true);
    try {
      const next = await api<AmbulanceHandoverView>(
        'POST',
        `/api/v1/cases/${caseId}/ambulance-handover/phone`,
        {
          spokeTo,
          ...(reference.trim() === '' ? {} : { reference }),
        },
      );
      queryClient.setQueryData(['ambulance-handover', caseId], next);
    } catch (error) {
      problems.fromError(error, ['spokeTo', 'reference']);
    } finally {
      setBusy(false);
    }
  };
  if (h.state === 'accepted')
    return (
      <Alert
        color="green"
        mt="md"
        title="The ambulance service accepted the request"
        role="status"
        data-testid="ambulance-handover"
      >
        {h.destination}: incident reference <strong>{h.reference ?? '(none given)'}</strong>.
      </Alert>
    );
  if (h.state === 'phoned')
    return (
      <Alert
        color="green"
        mt="md"
        title="Handed over to the ambulance service by phone"
        role="status"
        data-testid="ambulance-handover"
      >
        Spoke to {h.phoned?.spokeTo} at {h.phoned ? londonTime(h.phoned.at) : ''}
        {h.reference ? `; incident reference ${h.reference}` : ''}.
      </Alert>
    );
  if (h.state === 'waiting')
    return (
      <Alert
        color="yellow"
        mt="md"
        title={
          h.messageState === 'queued'
            ? 'Request not sent yet: waiting for the ambulance service to accept it'
            : 'Request sent: waiting for the ambulance service to accept it'
        }
        role="status"
        data-testid="ambulance-handover"
      >
        {serverDown ? 'The server is not answering: this is what it last said. ' : ''}
        {h.messageState === 'queued' ? `Not yet taken by ${h.destination}` : `Sent to ${h.destination}`}. Not
        accepted yet
        {h.acceptBy ? `; if it is not accepted by ${londonTime(h.acceptBy)} you will be told to phone` : ''}.
      </Alert>
    );
  const caller = caseDetail.caller;
  const d = caseDetail.disposition;
  return (
    <Alert
      color="red"
      mt="md"
      title="Phone the ambulance service now"
      role="alert"
      data-testid="ambulance-handover"
    >
      <Text fw={700}>
        {lateWithoutServer
          ? 'The server is not answering and the ambulance service had not accepted the request in time.'
          : h.state === 'no_endpoint'
            ? 'No electronic link to the ambulance service is set up.'
            : h.state === 'rejected'
              ? `The ambulance service refused the electronic request: ${h.reason ?? 'no reason given'}.`
              : h.reason
                ? `The electronic request did not go: ${h.reason}.`
                : 'The ambulance service has not accepted the electronic request.'}{' '}
        Phone {h.phone ? <span data-testid="ambulance-phone">{h.phone}</span> : 'the ambulance service'} and
        read out:
      </Text>
      <List size="sm" mt={4} spacing={2}>
        <List.Item>
          Category {d?.ambulanceCategory ?? '(not given)'} ambulance, {d?.label ?? ''}
        </List.Item>
        <List.Item>Problem: {caseDetail.presentingComplaint}</List.Item>
        <List.Item>The patient is at: {caseDetail.location}</List.Item>
        <List.Item>
          Call-back number: {caller.callbackNumber} ({caller.name}, {caller.relationship})
        </List.Item>
      </List>
      <FormAlert message={problems.form} />
      <Group mt="sm" align="flex-end">
        <TextInput
          label="Who took the call"
          value={spokeTo}
          onChange={(e) => setSpokeTo(e.currentTarget.value)}
          error={problems.field('spokeTo')}
          maxLength={200}
        />
        <TextInput
          label="Incident reference (if given)"
          value={reference}
          onChange={(e) => setReference(e.currentTarget.value)}
          error={problems.field('reference')}
          maxLength={200}
        />
        <Button onClick={() => void record()} loading={busy}>
          Record the phone handover
        </Button>
      </Group>
    </Alert>
  );
}
