import type { Permission } from '@holdfast/core';
import { useQuery } from '@tanstack/react-query';
import { api, apiOptional } from './api.ts';
import type {
  CapacityStatus,
  DirectorySearchQuery,
  DirectorySearchResult,
  ExclusionReason,
  ServiceType,
} from './types.ts';

/**
 * The directory of services and referrals as the screens need them: words for the codes the server
 * sends, and the queries (one query key each, so every panel showing the same thing shares one read).
 */

/**
 * The directory's permissions (core accounts/roles.ts, added by the directory module): read (every
 * clinical and call-handling role), edit (provider admins), capacity (clinicians, shift managers).
 */
export const DIRECTORY_PERMISSIONS = {
  read: 'directory.read',
  edit: 'directory.edit',
  capacity: 'directory.capacity',
} as const satisfies Record<string, Permission>;

export const SERVICE_TYPE_WORDS: Record<ServiceType, string> = {
  emergency_department: 'Emergency department',
  urgent_treatment_centre: 'Urgent treatment centre',
  same_day_emergency_care: 'Same-day emergency care',
  gp_out_of_hours_base: 'GP out-of-hours base',
  gp_practice: 'GP practice',
  community_pharmacy: 'Community pharmacy',
  dental: 'Dental service',
  mental_health_crisis: 'Mental health crisis service',
  community_services: 'Community services',
  other: 'Other service',
};

export const EXCLUSION_WORDS: Record<ExclusionReason, string> = {
  disposition_not_accepted: 'does not take this disposition',
  symptom_group_not_accepted: 'does not take this symptom group',
  age_out_of_range: 'does not see patients of this age',
  sex_not_accepted: 'does not see patients of this sex',
  too_far: 'too far away',
  closed_for_timeframe: 'closed for the whole time the disposition allows',
  capacity_red: 'says it is full (red)',
};

export const CAPACITY_WORDS: Record<CapacityStatus, string> = {
  green: 'Green: taking patients',
  amber: 'Amber: busy',
  red: 'Red: full',
};

/** Colours dark enough for text on white (axe contrast), by capacity. */
export const CAPACITY_COLOURS: Record<CapacityStatus, string> = {
  green: '#1e6b30',
  amber: '#8a4b00',
  red: '#a51d1d',
};

/** "3.2 km (2.0 miles)": staff and callers think in either. */
export function distanceWords(km: number): string {
  return `${km.toFixed(1)} km (${(km / 1.609344).toFixed(1)} miles)`;
}

/** A UK postcode written in free text ("At home, 3 Mill Lane, LS1 4AP"), upper-cased, or null. */
export function postcodeIn(text: string | null | undefined): string | null {
  const match = /\b([A-Z]{1,2}\d[A-Z\d]?)\s*(\d[A-Z]{2})\b/i.exec(text ?? '');
  return match ? `${match[1]!.toUpperCase()} ${match[2]!.toUpperCase()}` : null;
}

export type DirectorySearchAnswer = DirectorySearchResult & { query: DirectorySearchQuery; searchId: string };

/** The ranked services for a case from where the patient is now (a postcode). */
export function useDirectorySearch(caseId: string, postcode: string | null) {
  return useQuery({
    queryKey: ['directory-search', caseId, postcode],
    queryFn: () =>
      api<DirectorySearchAnswer>(
        'GET',
        `/api/v1/directory/search?caseId=${encodeURIComponent(caseId)}&postcode=${encodeURIComponent(postcode ?? '')}`,
      ),
    enabled: postcode !== null && postcode.trim() !== '',
    retry: false,
  });
}

/** Referral states in which nothing more will change without someone acting: read slowly then. */
const SETTLED = ['accepted', 'rejected', 'did_not_attend', 'phoned', 'walk_in', 'failed', 'none'];

/** A booking of a slot at the referred service; 'booked' only once the service accepted it. */
export interface ReferralBooking {
  bookingId: string;
  state: 'waiting' | 'booked' | 'refused';
  slot: BookingSlot;
  reference: string | null;
  reason: string | null;
  requestedAtMs: number;
}

/** `GET /api/v1/cases/:id/referral` (h15-referrals). */
export interface ReferralView {
  state:
    | 'none'
    | 'waiting'
    | 'sent'
    | 'accepted'
    | 'rejected'
    | 'did_not_attend'
    | 'phoned'
    | 'walk_in'
    | 'failed';
  service?: { serviceId: string; name: string; odsCode: string; type: ServiceType; phone: string | null };
  referralId?: string;
  route?: 'message' | 'phone' | 'walk_in';
  reference?: string | null;
  reason?: string | null;
  offered?: string[];
  chosenAtMs?: number;
  booking?: ReferralBooking;
}

/**
 * Where the case's referral stands, read every two seconds while the receiver has not answered (a
 * referral or a booking waiting), every 30 seconds otherwise (a did-not-attend can still come).
 */
export function useReferral(caseId: string, enabled = true) {
  return useQuery({
    queryKey: ['referral', caseId],
    // A server without referrals (an older node) has none to show.
    queryFn: async () =>
      (await apiOptional<ReferralView>(`/api/v1/cases/${caseId}/referral`)) ?? { state: 'none' as const },
    enabled,
    refetchInterval: (q) => {
      const r = q.state.data;
      if (!r) return 2000;
      const bookingWaiting = r.booking?.state === 'waiting';
      return SETTLED.includes(r.state) && !bookingWaiting ? 30_000 : 2000;
    },
  });
}

/** One bookable time as `GET /api/v1/cases/:id/booking/slots` lists it. */
export interface BookingSlot {
  slotId: string;
  /** ISO date-times, as the service's FHIR Slot gives them. */
  start: string;
  end: string;
}

/** A referral alert for the shift manager (`GET /api/v1/referrals?needsAttention=true`). */
export interface ReferralAlert {
  referralId: string;
  caseId: string;
  alert: 'rejected' | 'did_not_attend';
  service: { serviceId: string; name: string };
  words: string;
  atMs: number;
}
