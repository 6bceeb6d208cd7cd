import { ENGLAND_AND_WALES_BANK_HOLIDAYS } from '../messaging/working-days.ts';
import { LondonDays, lookAheadDays, openingStatus } from './opening-times.ts';
import type {
  CapacityStatus,
  DirectorySearchQuery,
  DirectorySearchResult,
  DirectoryService,
  ExclusionReason,
  RankedService,
} from './types.ts';

/** The Earth's mean radius (IUGG), in km. */
const EARTH_RADIUS_KM = 6371.0088;
const RADIANS = Math.PI / 180;

/**
 * Great-circle distance in kilometres by the haversine formula on a sphere of the Earth's mean
 * radius (within 0.5 % of the ellipsoid over Britain; the tests compare it with geolib). Written
 * out rather than called through geolib, whose argument handling costs more than the formula when
 * a search measures every service.
 */
export function greatCircleKm(
  a: { latitude: number; longitude: number },
  b: { latitude: number; longitude: number },
): number {
  const dLat = (b.latitude - a.latitude) * RADIANS;
  const dLong = (b.longitude - a.longitude) * RADIANS;
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(a.latitude * RADIANS) * Math.cos(b.latitude * RADIANS) * Math.sin(dLong / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** The reasons in the order they are checked and listed (bit i of a search's mask is reason i). */
const EXCLUSION_ORDER: readonly ExclusionReason[] = [
  'disposition_not_accepted',
  'symptom_group_not_accepted',
  'age_out_of_range',
  'sex_not_accepted',
  'too_far',
  'closed_for_timeframe',
  'capacity_red',
];

/** Green first, then amber, then services whose capacity nobody has set. */
const CAPACITY_ORDER: Record<CapacityStatus | 'unknown', number> = { green: 0, amber: 1, unknown: 2, red: 3 };

function kmWords(km: number): string {
  return km < 10 ? `${km.toFixed(1)} km` : `${Math.round(km)} km`;
}

/** One plain sentence per reason, in the order the reasons are listed. */
function reasonWords(
  reason: ExclusionReason,
  service: DirectoryService,
  query: DirectorySearchQuery,
  distanceKm: number,
  opening: string,
): string {
  switch (reason) {
    case 'disposition_not_accepted':
      return `does not take ${query.dxCode} dispositions`;
    case 'symptom_group_not_accepted':
      return `does not see symptom group ${query.symptomGroup ?? ''}`.trim();
    case 'age_out_of_range': {
      const { minYears, maxYears } = service.ageRange;
      const range = maxYears === null ? `${minYears} and over` : `${minYears} to ${maxYears}`;
      return `sees people aged ${range} only`;
    }
    case 'sex_not_accepted':
      return `sees ${service.sexes.join(' and ')} patients only`;
    case 'too_far':
      return distanceKm === Infinity
        ? `more than ${kmWords(2 * query.maxDistanceKm)} away, beyond the ${kmWords(query.maxDistanceKm)} searched`
        : `${kmWords(distanceKm)} away, beyond the ${kmWords(query.maxDistanceKm)} searched`;
    case 'closed_for_timeframe':
      return `closed for the whole timeframe (${query.withinMinutes} minutes${opening})`;
    case 'capacity_red':
      return `capacity red: not taking patients${service.capacity?.note ? ` (${service.capacity.note})` : ''}`;
  }
}

/**
 * Searches a provider's directory for the services that can see a patient now: those that take the
 * disposition, symptom group, age and sex, lie within the distance, are open at some point of the
 * disposition's timeframe, and are not at red capacity. Ranked: open now before opening later, then
 * capacity (green, amber, unknown), then distance (then name, so equal services keep one order).
 * Every service left out is listed with all its reasons, in plain words.
 *
 * Pure: the same services and query give the same answer at a site with no hub and in the browser.
 * An unknown sex, age or symptom group leaves no service out on that ground: the adviser decides.
 */
export function searchDirectory(
  services: readonly DirectoryService[],
  query: DirectorySearchQuery,
  options: { bankHolidays?: ReadonlySet<string> } = {},
): DirectorySearchResult {
  const bankHolidays = options.bankHolidays ?? ENGLAND_AND_WALES_BANK_HOLIDAYS;
  const toMs = query.fromMs + query.withinMinutes * 60_000;
  // The London days of the timeframe are worked out once for every service.
  const days = new LondonDays(query.fromMs, toMs, bankHolidays);
  // The two weeks the opening words look at, worked out once, when first needed.
  let lookAhead: LondonDays | null = null;
  const statusOf = (service: DirectoryService) =>
    openingStatus(
      service.openingTimes,
      query.fromMs,
      bankHolidays,
      (lookAhead ??= lookAheadDays(query.fromMs, bankHolidays)),
    );
  const candidates: Omit<RankedService, 'rank'>[] = [];
  const excluded: DirectorySearchResult['excluded'] = [];
  // Most services of a large directory are left out for reasons that read the same for each (not
  // this disposition, beyond twice the distance): their reason lists and words are made once per
  // search and shared, which keeps a search of 10,000 services from making 10,000 of each.
  const shared = new Map<number, { reasons: ExclusionReason[]; words: string | null }>();
  for (const service of services) {
    let mask = 0;
    if (!service.dispositions.includes(query.dxCode)) mask |= 1 << 0;
    if (
      query.symptomGroup !== null &&
      service.symptomGroups.length > 0 &&
      !service.symptomGroups.includes(query.symptomGroup)
    )
      mask |= 1 << 1;
    if (
      query.ageYears !== null &&
      (query.ageYears < service.ageRange.minYears ||
        (service.ageRange.maxYears !== null && query.ageYears > service.ageRange.maxYears))
    )
      mask |= 1 << 2;
    if (
      (query.sex === 'male' || query.sex === 'female') &&
      service.sexes.length > 0 &&
      !service.sexes.includes(query.sex)
    )
      mask |= 1 << 3;
    const distanceKm = greatCircleKm(query.location, service);
    if (distanceKm > query.maxDistanceKm) mask |= 1 << 4;
    const openInTime = days.openWithin(service.openingTimes, query.fromMs, toMs);
    if (!openInTime) mask |= 1 << 5;
    if (service.capacity?.status === 'red') mask |= 1 << 6;

    if (mask !== 0) {
      let entry = shared.get(mask);
      if (!entry) {
        entry = { reasons: EXCLUSION_ORDER.filter((_, bit) => mask & (1 << bit)), words: null };
        shared.set(mask, entry);
      }
      const far = distanceKm > 2 * query.maxDistanceKm;
      // Words that depend on the service itself: its ages, sexes, distance, next opening, note.
      const ownWords =
        (mask & ((1 << 2) | (1 << 3))) !== 0 ||
        ((mask & (1 << 4)) !== 0 && !far) ||
        ((mask & (1 << 5)) !== 0 && (mask & (1 << 4)) === 0) ||
        ((mask & (1 << 6)) !== 0 && service.capacity?.note !== undefined);
      let words = ownWords ? null : entry.words;
      if (words === null) {
        // When a closed service next opens is worked out only for one within reach: a person may
        // still choose it; the thousands beyond the distance need no such words.
        const opening = openInTime || distanceKm > query.maxDistanceKm ? '' : `; ${statusOf(service).words}`;
        const text = entry.reasons
          .map((r) => reasonWords(r, service, query, far ? Infinity : distanceKm, opening))
          .join('; ');
        words = text.charAt(0).toUpperCase() + text.slice(1);
        if (!ownWords) entry.words = words;
      }
      excluded.push({ serviceId: service.serviceId, name: service.name, reasons: entry.reasons, words });
      continue;
    }
    const status = statusOf(service);
    candidates.push({
      service,
      distanceKm,
      openNow: status.openNow,
      opening: status.words,
      opensAtMs: status.opensAtMs,
    });
  }
  candidates.sort(
    (a, b) =>
      Number(b.openNow) - Number(a.openNow) ||
      CAPACITY_ORDER[a.service.capacity?.status ?? 'unknown'] -
        CAPACITY_ORDER[b.service.capacity?.status ?? 'unknown'] ||
      a.distanceKm - b.distanceKm ||
      a.service.name.localeCompare(b.service.name) ||
      (a.service.serviceId < b.service.serviceId ? -1 : a.service.serviceId > b.service.serviceId ? 1 : 0),
  );
  return { ranked: candidates.map((c, i) => ({ ...c, rank: i + 1 })), excluded };
}
