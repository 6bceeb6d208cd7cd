/**
 * The Directory of Services (C10): the services a provider can send a patient to, and what a search
 * of them answers. These shapes are shared by the server, the referrals module and the browser.
 */

export const SERVICE_TYPES = [
  'emergency_department',
  'urgent_treatment_centre',
  'same_day_emergency_care',
  'gp_out_of_hours_base',
  'gp_practice',
  'community_pharmacy',
  'dental',
  'mental_health_crisis',
  'community_services',
  'other',
] as const;
export type ServiceType = (typeof SERVICE_TYPES)[number];

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** Local (Europe/London) wall-clock times 'HH:MM'; closes '24:00' allowed; closes <= opens means it runs past midnight. */
export interface OpeningSession {
  opens: string;
  closes: string;
}
export interface OpeningTimes {
  /** 24 h, every day. */
  alwaysOpen: boolean;
  weekly: Record<Weekday, OpeningSession[]>;
  /** England and Wales bank holidays; null = the weekday's pattern. */
  bankHolidays: OpeningSession[] | null;
  /** Dated exceptions (YYYY-MM-DD); `sessions: []` = closed that day. */
  exceptions: { date: string; sessions: OpeningSession[]; note?: string }[];
}
export type ReferralRoute =
  /** An existing message endpoint (message.endpoint_set). */
  { kind: 'message'; endpointId: string } | { kind: 'phone'; phone: string } | { kind: 'walk_in' };

export const CAPACITY_STATUSES = ['green', 'amber', 'red'] as const;
export type CapacityStatus = (typeof CAPACITY_STATUSES)[number];

export interface DirectoryService {
  serviceId: string;
  name: string;
  odsCode: string;
  type: ServiceType;
  address: string[];
  postcode: string;
  latitude: number;
  longitude: number;
  phone: string | null;
  openingTimes: OpeningTimes;
  /** Dx codes accepted, e.g. ['Dx02','Dx03']. */
  dispositions: string[];
  /** Symptom groups accepted; [] = all. */
  symptomGroups: string[];
  ageRange: { minYears: number; maxYears: number | null };
  /** [] = all. */
  sexes: ('male' | 'female')[];
  referral: ReferralRoute;
  /** Where the service exposes slots (FHIR Slot search over HTTP), else null. */
  booking: { slotsEndpointId: string } | null;
  capacity: { status: CapacityStatus; setAtMs: number; setBy: string; note?: string } | null;
  /** Sample content says so wherever shown. */
  notClinicallyValidated: boolean;
}

export interface DirectorySearchQuery {
  dxCode: string;
  symptomGroup: string | null;
  ageYears: number | null;
  sex: 'male' | 'female' | 'unknown' | null;
  location: { latitude: number; longitude: number };
  maxDistanceKm: number;
  /** Now (injected clock). */
  fromMs: number;
  /** The disposition's timeframe: the service must be open at some point in [from, from+within]. */
  withinMinutes: number;
}

export const EXCLUSION_REASONS = [
  'disposition_not_accepted',
  'symptom_group_not_accepted',
  'age_out_of_range',
  'sex_not_accepted',
  'too_far',
  'closed_for_timeframe',
  'capacity_red',
] as const;
export type ExclusionReason = (typeof EXCLUSION_REASONS)[number];

export interface RankedService {
  service: DirectoryService;
  distanceKm: number;
  openNow: boolean;
  /** 'open until 22:00' | 'opens 08:00' | 'open 24 hours' | 'opens Mon 08:00'. */
  opening: string;
  opensAtMs: number | null;
  rank: number;
}
export interface DirectorySearchResult {
  ranked: RankedService[];
  excluded: { serviceId: string; name: string; reasons: ExclusionReason[]; words: string }[];
}
