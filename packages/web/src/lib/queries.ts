import { useQuery } from '@tanstack/react-query';
import { api, isServerUnavailable } from './api.ts';
import type { CaseDetail, Site } from './types.ts';

export function useSites() {
  return useQuery({
    queryKey: ['sites'],
    queryFn: async () => (await api<{ sites: Site[] }>('GET', '/api/v1/sites')).sites,
    staleTime: 5 * 60_000,
  });
}

export function siteName(sites: Site[] | undefined, siteId: string): string {
  return sites?.find((s) => s.siteId === siteId)?.name ?? 'Unknown site';
}

/**
 * For reads a screen in use cannot do without (the call in progress): while the server does not
 * answer (or answers 5xx) the read is tried again and again, 1 s, 2 s, 4 s … then every 10 s, and
 * what was read before stays on screen meanwhile. Any other failure is tried once more, as elsewhere.
 */
export const RETRY_WHILE_UNAVAILABLE = {
  retry: (failureCount: number, error: Error) => isServerUnavailable(error) || failureCount < 1,
  retryDelay: (attempt: number) => Math.min(1_000 * 2 ** attempt, 10_000),
} as const;

export function useCase(caseId: string) {
  return useQuery({
    queryKey: ['case', caseId],
    queryFn: () => api<CaseDetail>('GET', `/api/v1/cases/${caseId}`),
    ...RETRY_WHILE_UNAVAILABLE,
  });
}

export const RELATIONSHIPS = [
  ['self', 'The patient (self)'],
  ['parent', 'Parent'],
  ['carer', 'Carer'],
  ['relative', 'Relative'],
  ['friend', 'Friend'],
  ['professional', 'Health or care professional'],
  ['other', 'Other'],
] as const;

export const STATUS_LABELS: Record<string, string> = {
  call_received: 'Call received',
  answered: 'Call answered',
  abandoned: 'Abandoned',
  in_triage: 'In triage',
  disposition_reached: 'Disposition proposed: to confirm',
  ambulance_requested: 'Ambulance disposition confirmed',
  referral_pending: 'Referral to be sent',
  queued: 'Waiting in the CAS queue',
  claimed: 'Claimed by a clinician',
  in_consultation: 'In consultation',
  follow_up_arranged: 'Follow-up arranged',
  closed: 'Closed',
  call_ended: 'Call ended',
};
