import { Alert, Badge, List, Paper, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { api } from '../lib/api.ts';
import { useReferral } from '../lib/directory.ts';
import { messageStateWords, type MessageRow } from '../lib/messages.ts';
import { useSession } from '../lib/session.tsx';
import { londonWhen } from '../lib/time.ts';
import { bookingWords, referralWords } from './ReferralStatus.tsx';

const FINISHED = ['accepted', 'rejected', 'cancelled'];

/**
 * What this case sent to other systems (the ambulance service, the GP practice, …) and where each
 * message stands, read again while any is unanswered. A message that failed, or that was never valid
 * and so never left, says so here on the case, naming the fields, so whoever holds the case acts on it
 * (by phone) rather than assuming it went.
 */
export function CaseMessages({ caseId, caseStatus }: { caseId: string; caseStatus: string }) {
  const session = useSession();
  const allowed = session.can('messages.read');
  const messages = useQuery({
    // A new status may have sent something (a confirmed ambulance, a close's PEM): read again at once.
    queryKey: ['messages', 'case', caseId, caseStatus],
    queryFn: async () =>
      (await api<{ messages: MessageRow[] }>('GET', `/api/v1/messages?caseId=${caseId}&limit=50`)).messages,
    enabled: allowed,
    // Often while a message is unanswered; now and then otherwise (another screen may act on the case).
    refetchInterval: (q) =>
      q.state.data && q.state.data.length > 0 && q.state.data.every((m) => FINISHED.includes(m.state))
        ? 30_000
        : 3000,
  });
  // The referral (issue 15) is listed with the messages: a phone referral or a walk-in sends none.
  const referral = useReferral(caseId, allowed);
  const referred = referral.data && referral.data.state !== 'none' ? referral.data : null;
  if (!allowed) return null;
  const rows = messages.data ?? [];
  // Nothing sent yet is not worth a panel; an unreadable list is (never imply nothing was sent).
  if (!referred && (messages.isPending || (rows.length === 0 && !messages.isError))) return null;
  const now = Date.now();
  return (
    <Paper withBorder p="sm" component="section" aria-labelledby="case-messages-heading">
      <Title order={2} size="h4" id="case-messages-heading" mb="xs">
        Messages about this case
      </Title>
      {messages.isError && (
        <Alert color="red" mb="xs">
          The messages of this case could not be read: {messages.error.message}.
          {rows.length > 0 ? ' Below is what the server last said.' : ''}
        </Alert>
      )}
      {referred && (
        <Text size="sm" data-testid="case-referral" data-state={referred.state}>
          <strong>Referral:</strong> {referralWords(referred)}
          {referred.booking ? ` · Booking: ${bookingWords(referred)}` : ''}
        </Text>
      )}
      <List spacing={6} listStyleType="none" data-testid="case-messages">
        {rows.map((m) => (
          <List.Item key={m.messageId} data-state={m.state}>
            <Text size="sm" component="span" fw={700}>
              {m.summary}
            </Text>{' '}
            <Text size="sm" component="span">
              to {m.destination}, queued {londonWhen(m.queuedAtMs, now)}: {messageStateWords(m)}
              {m.reference ? ` (reference ${m.reference})` : ''}
            </Text>
            {m.overdue && m.state !== 'failed' && (
              <Badge color="#8a4b00" ml={4}>
                Overdue
              </Badge>
            )}
            {(m.state === 'failed' || m.state === 'rejected') && (
              <Text size="sm" c="red.9" role="alert">
                {m.invalid
                  ? 'Never sent: the message is not valid and cannot be sent as it is. Pass the details on by phone. '
                  : 'Not accepted: pass the details on by phone, or ask the shift manager to send it again. '}
                {m.reason ?? m.lastProblem ?? ''}
              </Text>
            )}
          </List.Item>
        ))}
      </List>
    </Paper>
  );
}
