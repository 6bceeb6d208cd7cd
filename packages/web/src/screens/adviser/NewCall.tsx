import { parseCallbackNumber } from '@holdfast/core';
import {
  Box,
  Button,
  Checkbox,
  Group,
  NativeSelect,
  SimpleGrid,
  Stack,
  Text,
  TextInput,
  Textarea,
} from '@mantine/core';
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { api, newIdempotencyKey } from '../../lib/api.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { anyTooLong, lengthFeedback } from '../../lib/limits.ts';
import { RELATIONSHIPS, useSites } from '../../lib/queries.ts';
import { navigate } from '../../lib/router.tsx';
import { MyOpenCalls } from './OpenCalls.tsx';

/** The API's limits (core facts.ts: callerSchema, caseOpened), shown as the adviser types. */
const NAME_MAX = 100;
const TEXT_MAX = 300;

/**
 * What the call-back number field says while it is typed: nothing until it could be complete (ten
 * digits, or a character that has no place in a number), then the number as it will be stored, or
 * why it is not a UK number in use.
 */
export function callbackNumberFeedback(value: string): { error?: string; ok?: string; national?: string } {
  if (value.trim() === '') return {};
  const r = parseCallbackNumber(value);
  if (r.ok)
    return {
      ok: r.e164.startsWith('+44') ? `UK number: ${r.national}` : `Number abroad: ${r.national}`,
      national: r.national,
    };
  const wrongCharacter = !/^\+?[0-9\s().-]*$/.test(value.trim());
  if (!wrongCharacter && value.replace(/\D/g, '').length < 10) return {};
  return { error: `This number ${r.message}.` };
}

/** A call arrives: who is calling, where the patient is now and what is wrong; the case opens. */
export function NewCall() {
  const sites = useSites();
  const [siteId, setSiteId] = useState<string | null>(null);
  const [callerName, setCallerName] = useState('');
  const [relationship, setRelationship] = useState('self');
  const [callbackNumber, setCallbackNumber] = useState('');
  // The read-back is of one number: changing the number clears it.
  const [readBack, setReadBack] = useState(false);
  const numberFeedback = callbackNumberFeedback(callbackNumber);
  const [location, setLocation] = useState('');
  const [complaint, setComplaint] = useState('');
  const nameLength = lengthFeedback(callerName, NAME_MAX);
  const locationLength = lengthFeedback(location, TEXT_MAX);
  const complaintLength = lengthFeedback(complaint, TEXT_MAX);
  const [busy, setBusy] = useState(false);
  // A screen-pop from the telephony opens this screen as /calls/new?call=<its call id> (no patient
  // data in it): the case is then tied to the call's timings for national reporting.
  const [telephonyCallId] = useState(() => new URLSearchParams(window.location.search).get('call'));
  const problems = useFormProblems();
  // One key per call as entered: pressing "Open case" again after a lost answer (or a full disk)
  // cannot open the case twice; changing any field makes it another request with a new key.
  const idempotencyKey = useMemo(
    () => newIdempotencyKey(),
    [siteId, callerName, relationship, callbackNumber, readBack, location, complaint],
  );

  useEffect(() => {
    if (!siteId && sites.data?.length) setSiteId((sites.data.find((s) => s.mine) ?? sites.data[0])!.siteId);
  }, [sites.data, siteId]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    const missing: [string, string][] = [];
    if (!siteId) missing.push(['siteId', 'Choose the site taking the call.']);
    if (!callerName.trim()) missing.push(['caller.name', "Enter the caller's name."]);
    const parsedNumber = parseCallbackNumber(callbackNumber);
    if (!callbackNumber.trim()) missing.push(['caller.callbackNumber', 'Enter a number to call back on.']);
    else if (!parsedNumber.ok)
      missing.push(['caller.callbackNumber', `This number ${parsedNumber.message}.`]);
    else if (!readBack)
      missing.push([
        'caller.callbackNumberReadBack',
        'Read the number back to the caller, then tick this once they agree it is right.',
      ]);
    if (!location.trim()) missing.push(['location', 'Say where the patient is now.']);
    if (!complaint.trim()) missing.push(['presentingComplaint', 'Say what the problem is.']);
    if (
      missing.length > 0 ||
      anyTooLong([callerName, NAME_MAX], [location, TEXT_MAX], [complaint, TEXT_MAX])
    ) {
      for (const [f, m] of missing) problems.setField(f, m);
      problems.setForm('Some answers need correcting: see the messages next to the fields.');
      return;
    }
    setBusy(true);
    try {
      const r = await api<{ caseId: string }>(
        'POST',
        '/api/v1/calls',
        {
          siteId,
          caller: {
            name: callerName.trim(),
            relationship,
            callbackNumber: callbackNumber.trim(),
            callbackNumberReadBack: readBack,
          },
          location: location.trim(),
          presentingComplaint: complaint.trim(),
          ...(telephonyCallId ? { telephonyCallId } : {}),
        },
        { idempotencyKey },
      );
      navigate(`/cases/${r.caseId}`);
    } catch (error) {
      problems.fromError(error, [
        'siteId',
        'caller.name',
        'caller.relationship',
        'caller.callbackNumber',
        'caller.callbackNumberReadBack',
        'location',
        'presentingComplaint',
      ]);
    } finally {
      setBusy(false);
    }
  };

  // Two columns on a call-centre monitor (1366×768): the whole form and "Open case" fit without
  // scrolling, with the adviser's open calls beside it.
  return (
    <Group align="flex-start" gap="lg" wrap="wrap">
      <Stack style={{ flex: '2 1 560px' }} maw={860} gap="xs">
        <PageTitle>New call</PageTitle>
        <Text>
          Take the caller&rsquo;s details first. You identify the patient and triage on the next screen.
        </Text>
        <form onSubmit={(e) => void submit(e)} noValidate aria-label="New call">
          <FormAlert message={problems.form} />
          <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="md" verticalSpacing="xs">
            <NativeSelect
              label="Site taking the call"
              data={(sites.data ?? []).map((s) => ({ value: s.siteId, label: s.name }))}
              value={siteId ?? ''}
              onChange={(e) => setSiteId(e.currentTarget.value)}
              description={sites.isPending ? 'Loading the sites…' : undefined}
              error={
                problems.field('siteId') ??
                (sites.isError ? 'The sites could not be loaded: reload the page.' : undefined)
              }
              required
            />
            <TextInput
              label="Caller's name"
              value={callerName}
              description={nameLength.description}
              onChange={(e) => setCallerName(e.currentTarget.value)}
              error={problems.field('caller.name') ?? nameLength.error}
              autoComplete="off"
              required
            />
            <NativeSelect
              label="Caller is"
              data={RELATIONSHIPS.map(([value, label]) => ({ value, label }))}
              value={relationship}
              onChange={(e) => setRelationship(e.currentTarget.value)}
              error={problems.field('caller.relationship')}
              required
            />
            <TextInput
              label="Call-back number"
              description={
                numberFeedback.ok ??
                'A UK number, e.g. 07911 123456 or 0113 496 0000; a number abroad with its code, e.g. +33 6 12 34 56 78'
              }
              type="tel"
              value={callbackNumber}
              onChange={(e) => {
                setCallbackNumber(e.currentTarget.value);
                setReadBack(false);
                problems.setField('caller.callbackNumber', null);
              }}
              error={problems.field('caller.callbackNumber') ?? numberFeedback.error}
              autoComplete="off"
              required
            />
            <Box style={{ gridColumn: '1 / -1' }}>
              <Checkbox
                label={
                  numberFeedback.national
                    ? `I read ${numberFeedback.national} back to the caller and they agreed it is right`
                    : 'I read the number back to the caller and they agreed it is right'
                }
                checked={readBack}
                disabled={!numberFeedback.national}
                onChange={(e) => {
                  setReadBack(e.currentTarget.checked);
                  problems.setField('caller.callbackNumberReadBack', null);
                }}
                error={problems.field('caller.callbackNumberReadBack')}
              />
            </Box>
            <TextInput
              label="Where is the patient now?"
              value={location}
              description={locationLength.description}
              onChange={(e) => setLocation(e.currentTarget.value)}
              error={problems.field('location') ?? locationLength.error}
              autoComplete="off"
              required
            />
            <Textarea
              label="What is the problem?"
              value={complaint}
              description={complaintLength.description}
              onChange={(e) => setComplaint(e.currentTarget.value)}
              error={problems.field('presentingComplaint') ?? complaintLength.error}
              autosize
              minRows={1}
              maxRows={4}
              required
            />
          </SimpleGrid>
          <Group mt="sm">
            {/* Not before the sites are in: pressed earlier, the case would be refused for want of
                a site the adviser could not yet choose (the site the user works at is chosen for
                them as soon as the list arrives). */}
            <Button type="submit" loading={busy} disabled={sites.isPending}>
              Open case
            </Button>
          </Group>
        </form>
      </Stack>
      <Box style={{ flex: '1 1 320px' }} maw={520}>
        <MyOpenCalls />
      </Box>
    </Group>
  );
}
