/** One message as `GET /api/v1/messages` lists it (packages/server/src/messaging/service.ts MessageView). */
export interface MessageRow {
  messageId: string;
  kind: string;
  caseId: string | null;
  summary: string;
  destination: string;
  state: string;
  queuedAtMs: number;
  answeredAtMs: number | null;
  attempts: number;
  lastProblem: string | null;
  reason: string | null;
  reference: string | null;
  invalid: boolean;
  overdue: boolean;
}

const STATE_WORDS: Record<string, string> = {
  queued: 'Waiting to be sent',
  sent: 'Sent, not yet received',
  delivered: 'Received, not yet accepted',
  accepted: 'Accepted',
  rejected: 'Refused by the receiver',
  failed: 'Failed: not delivered',
  cancelled: 'Cancelled',
};

/** Where a message stands, in plain words (a queued message that was tried says so). */
export function messageStateWords(m: Pick<MessageRow, 'state' | 'attempts'>): string {
  if (m.state === 'queued' && m.attempts > 0) return 'Not delivered yet: trying again';
  return STATE_WORDS[m.state] ?? m.state;
}
