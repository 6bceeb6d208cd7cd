import { caseReference } from '@holdfast/core';
import { Alert, Badge, Button, Group, Modal, Stack, Table, Text, Textarea, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { api } from '../../lib/api.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { useSession } from '../../lib/session.tsx';
import { messageStateWords, type MessageRow } from '../../lib/messages.ts';
import { londonWhen } from '../../lib/time.ts';

/** How often the lists are read again: delivery moves on its own, and a 999 request fails in 30 s. */
const REFRESH_MS = 3000;

/**
 * The shift manager's view of messages to other systems: those that failed or are overdue first
 * (a person must act on them), then the recent ones; a failed message can be sent again and an
 * unanswered one stopped, each with a reason that is recorded.
 */
export function Messages() {
  const session = useSession();
  const canManage = session.can('messages.manage');
  const attention = useQuery({
    queryKey: ['messages', 'attention'],
    queryFn: async () =>
      (await api<{ messages: MessageRow[] }>('GET', '/api/v1/messages?needsAttention=true&limit=200'))
        .messages,
    refetchInterval: REFRESH_MS,
  });
  const recent = useQuery({
    queryKey: ['messages', 'recent'],
    queryFn: async () =>
      (await api<{ messages: MessageRow[] }>('GET', '/api/v1/messages?limit=100')).messages,
    refetchInterval: REFRESH_MS,
  });
  const [acting, setActing] = useState<{ message: MessageRow; action: 'retry' | 'cancel' } | null>(null);

  // needsAttention is the server's rule (failed, past its deadline or past the receiver's window,
  // as the dashboard counts); the recent list leaves those out so none is shown twice.
  const needingRows = attention.data ?? [];
  const needingIds = new Set(needingRows.map((m) => m.messageId));
  const otherRows = (recent.data ?? []).filter((m) => !needingIds.has(m.messageId));
  const error = attention.error ?? recent.error;

  return (
    <Stack maw={1300}>
      <PageTitle>Messages to other systems</PageTitle>
      {error && (
        <Alert color="red">
          The messages could not be read: {error.message}.
          {attention.data ? ' The lists below are what the server last said and may be out of date.' : ''}
        </Alert>
      )}
      <section aria-labelledby="attention-heading">
        <Title order={2} size="h3" id="attention-heading" mb="xs">
          Failed or overdue: act on these
        </Title>
        {attention.isPending ? (
          <Text>Reading messages…</Text>
        ) : !attention.data || (attention.isError && needingRows.length === 0) ? (
          // Never "nothing needs attention" when nothing could be read.
          <Text>Unknown: the messages cannot be read.</Text>
        ) : needingRows.length === 0 ? (
          <Text data-testid="messages-attention-empty">No message needs attention.</Text>
        ) : (
          <MessageTable
            testId="messages-attention"
            caption={`${needingRows.length} ${needingRows.length === 1 ? 'message needs' : 'messages need'} attention`}
            rows={needingRows}
            canManage={canManage}
            onAct={(message, action) => setActing({ message, action })}
          />
        )}
      </section>
      <section aria-labelledby="recent-heading">
        <Title order={2} size="h3" id="recent-heading" mb="xs">
          Recent messages
        </Title>
        {recent.isPending ? (
          <Text>Reading messages…</Text>
        ) : otherRows.length === 0 ? (
          <Text>No other messages.</Text>
        ) : (
          <MessageTable
            testId="messages-recent"
            caption="Newest first"
            rows={otherRows}
            canManage={canManage}
            onAct={(message, action) => setActing({ message, action })}
          />
        )}
      </section>
      {acting && <ReasonDialog {...acting} onClose={() => setActing(null)} />}
    </Stack>
  );
}

function MessageTable({
  rows,
  caption,
  testId,
  canManage,
  onAct,
}: {
  rows: MessageRow[];
  caption: string;
  testId: string;
  canManage: boolean;
  onAct(message: MessageRow, action: 'retry' | 'cancel'): void;
}) {
  const now = Date.now();
  return (
    <Table withTableBorder striped data-testid={testId}>
      <Table.Caption>{caption} (times are UK time)</Table.Caption>
      <Table.Thead>
        <Table.Tr>
          <Table.Th scope="col">What</Table.Th>
          <Table.Th scope="col">To</Table.Th>
          <Table.Th scope="col">Case ref</Table.Th>
          <Table.Th scope="col">State</Table.Th>
          <Table.Th scope="col">Queued</Table.Th>
          <Table.Th scope="col">Answered</Table.Th>
          <Table.Th scope="col">Attempts</Table.Th>
          <Table.Th scope="col">Last problem or reason</Table.Th>
          <Table.Th scope="col">
            <span className="visually-hidden">Actions</span>
          </Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {rows.map((m) => {
          const finished = m.state === 'accepted' || m.state === 'rejected' || m.state === 'cancelled';
          const ref = m.caseId ? caseReference(m.caseId) : null;
          return (
            <Table.Tr key={m.messageId} data-message-id={m.messageId} data-state={m.state}>
              <Table.Th scope="row">{m.summary}</Table.Th>
              <Table.Td>{m.destination}</Table.Td>
              <Table.Td>{ref ?? '—'}</Table.Td>
              <Table.Td>
                {messageStateWords(m)}
                {m.overdue && m.state !== 'failed' && (
                  <Badge color="#8a4b00" ml={4}>
                    Overdue
                  </Badge>
                )}
                {m.reference && (
                  <Text size="sm" component="span" display="block">
                    Reference {m.reference}
                  </Text>
                )}
              </Table.Td>
              <Table.Td>{londonWhen(m.queuedAtMs, now)}</Table.Td>
              <Table.Td>{m.answeredAtMs === null ? '—' : londonWhen(m.answeredAtMs, now)}</Table.Td>
              <Table.Td>{m.attempts}</Table.Td>
              <Table.Td>
                {m.invalid ? 'Not valid: cannot be sent as it is. ' : ''}
                {m.reason ?? m.lastProblem ?? '—'}
              </Table.Td>
              <Table.Td>
                {canManage && (
                  <Group gap={4} wrap="nowrap">
                    {m.state === 'failed' && !m.invalid && (
                      <Button
                        size="compact-sm"
                        variant="default"
                        onClick={() => onAct(m, 'retry')}
                        aria-label={`Retry: ${m.summary}${ref ? `, case ${ref}` : ''}`}
                      >
                        Retry
                      </Button>
                    )}
                    {!finished && (
                      <Button
                        size="compact-sm"
                        variant="default"
                        onClick={() => onAct(m, 'cancel')}
                        aria-label={`Cancel: ${m.summary}${ref ? `, case ${ref}` : ''}`}
                      >
                        Cancel
                      </Button>
                    )}
                  </Group>
                )}
              </Table.Td>
            </Table.Tr>
          );
        })}
      </Table.Tbody>
    </Table>
  );
}

/** Retry or cancel needs a reason, recorded with the fact; the server's refusal is shown at the field. */
function ReasonDialog({
  message,
  action,
  onClose,
}: {
  message: MessageRow;
  action: 'retry' | 'cancel';
  onClose(): void;
}) {
  const queryClient = useQueryClient();
  const problems = useFormProblems();
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const title = action === 'retry' ? 'Send this message again' : 'Stop sending this message';
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (!reason.trim()) return problems.setField('reason', 'Say why.');
    setBusy(true);
    try {
      await api('POST', `/api/v1/messages/${message.messageId}/${action}`, { reason: reason.trim() });
      await queryClient.invalidateQueries({ queryKey: ['messages'] });
      onClose();
    } catch (error) {
      problems.fromError(error, ['reason']);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal opened onClose={onClose} title={title} closeButtonProps={{ 'aria-label': 'Close' }}>
      <form aria-label={title} onSubmit={(e) => void submit(e)} noValidate>
        <Text size="sm" mb="xs">
          {message.summary} to {message.destination}
          {message.caseId ? `, case ref ${caseReference(message.caseId)}` : ''}.
        </Text>
        <FormAlert message={problems.form} />
        <Textarea
          label="Reason"
          description="Recorded with the message."
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          error={problems.field('reason')}
          autosize
          minRows={2}
          data-autofocus
        />
        <Group justify="flex-end" mt="md">
          <Button variant="default" onClick={onClose}>
            Back
          </Button>
          <Button type="submit" loading={busy} color={action === 'cancel' ? 'red.8' : undefined}>
            {action === 'retry' ? 'Retry the message' : 'Cancel the message'}
          </Button>
        </Group>
      </form>
    </Modal>
  );
}
