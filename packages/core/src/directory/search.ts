import { getDistance } from 'geolib';
import { ENGLAND_AND_WALES_BANK_HOLIDAYS } from '../messaging/working-days.ts';
import { datesCovering, isOpenWithin, openingStatus } from './opening-times.ts';
import type {
  CapacityStatus,
  DirectorySearchQuery,
  DirectorySearchResult,
  DirectoryService,
  ExclusionReason,
  RankedService,
} from './types.ts';

/** Great-circle distance in kilometres (geolib's haversine, to the metre). */
export function greatCircleKm(
  a: { latitude: number; longitude: number },
  b: { latitude: number; longitude: number },
): number {
  return getDistance(a, b, 1) / 1000;
}

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
      return `${kmWords(distanceKm)} away, beyond the ${kmWords(query.maxDistanceKm)} searched`;
    case 'closed_for_timeframe':
      return `closed for the whole timeframe (${query.withinMinutes} minutes; ${opening})`;
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
  // The London dates of the timeframe are worked out once for every service.
  const dates = datesCovering(query.fromMs, toMs);
  const candidates: Omit<RankedService, 'rank'>[] = [];
  const excluded: DirectorySearchResult['excluded'] = [];
  for (const service of services) {
    const reasons: ExclusionReason[] = [];
    if (!service.dispositions.includes(query.dxCode)) reasons.push('disposition_not_accepted');
    if (
      query.symptomGroup !== null &&
      service.symptomGroups.length > 0 &&
      !service.symptomGroups.includes(query.symptomGroup)
    )
      reasons.push('symptom_group_not_accepted');
    if (
      query.ageYears !== null &&
      (query.ageYears < service.ageRange.minYears ||
        (service.ageRange.maxYears !== null && query.ageYears > service.ageRange.maxYears))
    )
      reasons.push('age_out_of_range');
    if (
      (query.sex === 'male' || query.sex === 'female') &&
      service.sexes.length > 0 &&
      !service.sexes.includes(query.sex)
    )
      reasons.push('sex_not_accepted');
    const distanceKm = greatCircleKm(query.location, service);
    if (distanceKm > query.maxDistanceKm) reasons.push('too_far');
    const openInTime = isOpenWithin(service.openingTimes, query.fromMs, toMs, bankHolidays, dates);
    if (!openInTime) reasons.push('closed_for_timeframe');
    if (service.capacity?.status === 'red') reasons.push('capacity_red');

    if (reasons.length > 0) {
      // The opening words are worked out only where a sentence needs them.
      const opening = openInTime ? '' : openingStatus(service.openingTimes, query.fromMs, bankHolidays).words;
      const sentences = reasons.map((r) => reasonWords(r, service, query, distanceKm, opening));
      const words = sentences.join('; ');
      excluded.push({
        serviceId: service.serviceId,
        name: service.name,
        reasons,
        words: words.charAt(0).toUpperCase() + words.slice(1),
      });
      continue;
    }
    const status = openingStatus(service.openingTimes, query.fromMs, bankHolidays);
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
