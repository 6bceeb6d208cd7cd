import { Alert, Button, Group, Paper, Stack, Text, Textarea, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { api, apiOptional } from '../../lib/api.ts';
import type { ReferralAlert } from '../../lib/directory.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { Link } from '../../lib/router.tsx';
import { useSession } from '../../lib/session.tsx';
import { londonWhen } from '../../lib/time.ts';

/**
 * Referral alerts (issue 15): referrals a service refused, and patients with a safeguarding flag who
 * did not attend. Null when this server has no referrals (an older node): the figure hides.
 */
export function useReferralAlerts() {
  return useQuery({
    queryKey: ['referral-alerts'],
    queryFn: async () =>
      (await apiOptional<{ alerts: ReferralAlert[] }>('/api/v1/referrals?needsAttention=true'))?.alerts ??
      null,
    refetchInterval: 15_000,
  });
}

/** The dashboard's figure: how many referral alerts wait, linking to the list. */
export function ReferralAlertsFigure() {
  const alerts = useReferralAlerts();
  if (!alerts.data) return null;
  const n = alerts.data.length;
  return (
    <Paper withBorder p="sm" maw={320}>
      <Text size="sm">
        <Link to="/referrals">Referral alerts</Link>
      </Text>
      <Text fz={28} fw={800} data-testid="stat-referral-alerts">
        {n > 0 ? <span aria-hidden="true">! </span> : null}
        {n}
      </Text>
    </Paper>
  );
}

const ALERT_WORDS: Record<ReferralAlert['alert'], string> = {
  rejected: 'Referral refused',
  did_not_attend: 'Did not attend (safeguarding flag)',
};

/** The shift manager's list of referral alerts, each acknowledged with what was done about it. */
export function ReferralAlerts() {
  const alerts = useReferralAlerts();
  const { can } = useSession();
  const list = alerts.data ?? [];
  return (
    <Stack maw={900}>
      <PageTitle>Referral alerts</PageTitle>
      <Text>
        Referrals a service refused, and patients with a safeguarding flag who did not attend the service they
        were sent to. Each stays here until someone says what was done about it.
      </Text>
      {alerts.isError && (
        <Alert color="red" role="alert">
          The referral alerts could not be read: {alerts.error.message}
        </Alert>
      )}
      {alerts.data === null && <Text>This server does not handle referrals.</Text>}
      {alerts.data && list.length === 0 && <Text role="status">No referral needs attention.</Text>}
      <Stack gap="sm" data-testid="referral-alerts">
        {list.map((a) => (
          <AlertCard key={`${a.referralId}-${a.alert}`} alert={a} canAcknowledge={can('messages.manage')} />
        ))}
      </Stack>
    </Stack>
  );
}

function AlertCard({ alert, canAcknowledge }: { alert: ReferralAlert; canAcknowledge: boolean }) {
  const queryClient = useQueryClient();
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const headingId = `alert-${alert.referralId}-${alert.alert}`;
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (reason.trim() === '') {
      problems.setField('reason', 'Say what was done about it.');
      return;
    }
    setBusy(true);
    try {
      await api('POST', `/api/v1/referrals/${alert.referralId}/acknowledge`, {
        alert: alert.alert,
        reason: reason.trim(),
      });
      await queryClient.invalidateQueries({ queryKey: ['referral-alerts'] });
    } catch (error) {
      problems.fromError(error, ['reason']);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Paper
      withBorder
      p="sm"
      component="form"
      onSubmit={(e: FormEvent) => void submit(e)}
      aria-labelledby={headingId}
      noValidate
      data-alert={alert.alert}
    >
      <Title order={2} size="h5" id={headingId}>
        {ALERT_WORDS[alert.alert]}: {alert.service.name}
      </Title>
      <Text size="sm">
        {londonWhen(alert.atMs)} · {alert.words} ·{' '}
        <Link to={`/cases/${alert.caseId}/summary`}>Open the case</Link>
      </Text>
      <FormAlert message={problems.form} />
      {canAcknowledge && (
        <Group align="flex-end" mt="xs">
          <Textarea
            label="What was done about it"
            value={reason}
            onChange={(e) => setReason(e.currentTarget.value)}
            error={problems.field('reason')}
            autosize
            minRows={1}
            maxLength={2000}
            style={{ flex: 1 }}
          />
          <Button type="submit" loading={busy} variant="light">
            Acknowledge
          </Button>
        </Group>
      )}
    </Paper>
  );
}
