import type {
  DirectoryService,
  OpeningSession,
  OpeningTimes,
  ServiceType,
  Weekday,
} from '../../lib/types.ts';

/**
 * The directory editor's form as text fields, and the two ways between it and a DirectoryService.
 * Reading the form checks what can be checked in the browser and names the field in plain words;
 * the server checks everything again (its messages are shown next to the same fields).
 */

export const WEEKDAYS: [Weekday, string][] = [
  ['mon', 'Monday'],
  ['tue', 'Tuesday'],
  ['wed', 'Wednesday'],
  ['thu', 'Thursday'],
  ['fri', 'Friday'],
  ['sat', 'Saturday'],
  ['sun', 'Sunday'],
];

export interface ServiceForm {
  serviceId: string;
  name: string;
  odsCode: string;
  type: ServiceType;
  /** One address line per line. */
  address: string;
  postcode: string;
  latitude: string;
  longitude: string;
  phone: string;
  alwaysOpen: boolean;
  /** "08:00-18:30, 19:00-22:00"; empty = closed that day. */
  weekly: Record<Weekday, string>;
  /** Bank holidays follow the weekday's pattern (null in the file) unless sessions are given. */
  bankHolidaysAsWeekday: boolean;
  bankHolidays: string;
  /** One a line: "2026-12-25 closed" or "2026-12-24 08:00-12:00 Christmas Eve". */
  exceptions: string;
  dispositions: string;
  symptomGroups: string;
  minYears: string;
  maxYears: string;
  male: boolean;
  female: boolean;
  referralKind: 'message' | 'phone' | 'walk_in';
  endpointId: string;
  referralPhone: string;
  slotsEndpointId: string;
  notClinicallyValidated: boolean;
}

/** A new service's id: a random UUID (getRandomValues works outside secure contexts too). */
export function newServiceId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const EMPTY_FORM: ServiceForm = {
  serviceId: '',
  name: '',
  odsCode: '',
  type: 'urgent_treatment_centre',
  address: '',
  postcode: '',
  latitude: '',
  longitude: '',
  phone: '',
  alwaysOpen: false,
  weekly: { mon: '', tue: '', wed: '', thu: '', fri: '', sat: '', sun: '' },
  bankHolidaysAsWeekday: true,
  bankHolidays: '',
  exceptions: '',
  dispositions: '',
  symptomGroups: '',
  minYears: '0',
  maxYears: '',
  male: false,
  female: false,
  referralKind: 'message',
  endpointId: '',
  referralPhone: '',
  slotsEndpointId: '',
  notClinicallyValidated: false,
};

function sessionsText(sessions: OpeningSession[]): string {
  return sessions.map((s) => `${s.opens}-${s.closes}`).join(', ');
}

export function toForm(s: DirectoryService): ServiceForm {
  const weekly = { ...EMPTY_FORM.weekly };
  for (const [day] of WEEKDAYS) weekly[day] = sessionsText(s.openingTimes.weekly[day] ?? []);
  return {
    serviceId: s.serviceId,
    name: s.name,
    odsCode: s.odsCode,
    type: s.type,
    address: s.address.join('\n'),
    postcode: s.postcode,
    latitude: String(s.latitude),
    longitude: String(s.longitude),
    phone: s.phone ?? '',
    alwaysOpen: s.openingTimes.alwaysOpen,
    weekly,
    bankHolidaysAsWeekday: s.openingTimes.bankHolidays === null,
    bankHolidays: sessionsText(s.openingTimes.bankHolidays ?? []),
    exceptions: s.openingTimes.exceptions
      .map((e) =>
        [e.date, e.sessions.length === 0 ? 'closed' : sessionsText(e.sessions), e.note ?? '']
          .join(' ')
          .trim(),
      )
      .join('\n'),
    dispositions: s.dispositions.join(', '),
    symptomGroups: s.symptomGroups.join(', '),
    minYears: String(s.ageRange.minYears),
    maxYears: s.ageRange.maxYears === null ? '' : String(s.ageRange.maxYears),
    male: s.sexes.includes('male'),
    female: s.sexes.includes('female'),
    referralKind: s.referral.kind,
    endpointId: s.referral.kind === 'message' ? s.referral.endpointId : '',
    referralPhone: s.referral.kind === 'phone' ? s.referral.phone : '',
    slotsEndpointId: s.booking?.slotsEndpointId ?? '',
    notClinicallyValidated: s.notClinicallyValidated,
  };
}

const TIME = /^([01]\d|2[0-3]):[0-5]\d$|^24:00$/;

/** "08:00-18:30, 19:00-22:00" → sessions; a problem in words naming `label`. */
function parseSessions(text: string, label: string): OpeningSession[] | string {
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const sessions: OpeningSession[] = [];
  for (const part of parts) {
    const [opens, closes, ...rest] = part.split(/\s*-\s*/);
    if (!opens || !closes || rest.length > 0 || !TIME.test(opens) || !TIME.test(closes))
      return `${label}: "${part}" is not an opening time: write it as 08:00-18:30 (24-hour clock), sessions separated by commas.`;
    sessions.push({ opens, closes });
  }
  return sessions;
}

function list(text: string): string[] {
  return text
    .split(/[,\n]/)
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

export type ServiceInput = Omit<DirectoryService, 'capacity'>;

/** The form as the service to send, or the problems by field (keys are the body's paths). */
export function fromForm(f: ServiceForm): { service: ServiceInput } | { problems: Record<string, string> } {
  const problems: Record<string, string> = {};
  const need = (value: string, path: string, words: string) => {
    if (value.trim() === '') problems[path] = `Enter ${words}.`;
  };
  need(f.name, 'name', 'the name of the service');
  need(f.odsCode, 'odsCode', 'the ODS code of the service');
  need(f.postcode, 'postcode', 'the postcode of the service');
  const number = (value: string, path: string, words: string, min: number, max: number) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      problems[path] = `${words} must be a number from ${min} to ${max}.`;
      return 0;
    }
    return n;
  };
  const latitude = number(f.latitude, 'latitude', 'Latitude', -90, 90);
  const longitude = number(f.longitude, 'longitude', 'Longitude', -180, 180);
  const minYears = number(f.minYears, 'ageRange.minYears', 'Youngest age seen (years)', 0, 130);
  const maxYears =
    f.maxYears.trim() === ''
      ? null
      : number(f.maxYears, 'ageRange.maxYears', 'Oldest age seen (years)', 0, 130);
  if (maxYears !== null && !problems['ageRange.maxYears'] && maxYears < minYears)
    problems['ageRange.maxYears'] = 'Oldest age seen must not be below the youngest age seen.';
  const weekly = {} as OpeningTimes['weekly'];
  for (const [day, label] of WEEKDAYS) {
    const parsed = parseSessions(f.alwaysOpen ? '' : f.weekly[day], `${label} opening times`);
    if (typeof parsed === 'string') problems[`openingTimes.weekly.${day}`] = parsed;
    else weekly[day] = parsed;
  }
  let bankHolidays: OpeningSession[] | null = null;
  if (!f.bankHolidaysAsWeekday) {
    const parsed = parseSessions(f.bankHolidays, 'Bank holiday opening times');
    if (typeof parsed === 'string') problems['openingTimes.bankHolidays'] = parsed;
    else bankHolidays = parsed;
  }
  const exceptions: OpeningTimes['exceptions'] = [];
  for (const [i, raw] of f.exceptions.split('\n').entries()) {
    const line = raw.trim();
    if (line === '') continue;
    const m = /^(\d{4}-\d{2}-\d{2})\s+(closed|[\d:,\s-]+?)(?:\s+([^\d].*))?$/i.exec(line);
    if (!m) {
      problems['openingTimes.exceptions'] =
        `Dated exceptions, line ${i + 1}: write "2026-12-25 closed" or "2026-12-24 08:00-12:00 Christmas Eve".`;
      break;
    }
    const sessions =
      m[2]!.toLowerCase() === 'closed' ? [] : parseSessions(m[2]!, `Dated exceptions, line ${i + 1}`);
    if (typeof sessions === 'string') {
      problems['openingTimes.exceptions'] = sessions;
      break;
    }
    exceptions.push({ date: m[1]!, sessions, ...(m[3] ? { note: m[3].trim() } : {}) });
  }
  const dispositions = list(f.dispositions);
  if (dispositions.length === 0)
    problems.dispositions = 'Enter at least one disposition code the service takes (e.g. Dx02).';
  else if (dispositions.some((d) => !/^[A-Za-z0-9-]+$/.test(d)))
    problems.dispositions =
      'Dispositions taken: write the codes (letters, digits and hyphens, e.g. Dx02) separated by commas.';
  let referral: DirectoryService['referral'];
  if (f.referralKind === 'message') {
    need(f.endpointId, 'referral.endpointId', 'the message endpoint ID the referrals go to');
    referral = { kind: 'message', endpointId: f.endpointId.trim() };
  } else if (f.referralKind === 'phone') {
    need(f.referralPhone, 'referral.phone', 'the phone number referrals are made on');
    referral = { kind: 'phone', phone: f.referralPhone.trim() };
  } else referral = { kind: 'walk_in' };
  if (Object.keys(problems).length > 0) return { problems };
  return {
    service: {
      serviceId: f.serviceId.trim(),
      name: f.name.trim(),
      odsCode: f.odsCode.trim(),
      type: f.type,
      address: f.address
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== ''),
      postcode: f.postcode.trim().toUpperCase(),
      latitude,
      longitude,
      phone: f.phone.trim() === '' ? null : f.phone.trim(),
      openingTimes: { alwaysOpen: f.alwaysOpen, weekly, bankHolidays, exceptions },
      dispositions,
      symptomGroups: list(f.symptomGroups),
      ageRange: { minYears, maxYears },
      sexes: [...(f.male ? ['male' as const] : []), ...(f.female ? ['female' as const] : [])],
      referral,
      booking: f.slotsEndpointId.trim() === '' ? null : { slotsEndpointId: f.slotsEndpointId.trim() },
      notClinicallyValidated: f.notClinicallyValidated,
    },
  };
}

/**
 * A server message's path (`openingTimes.weekly.mon.0.opens`) to the form field that shows it
 * (`openingTimes.weekly.mon`): every field of the form, longest first.
 */
export const FORM_FIELDS = [
  'serviceId',
  'name',
  'odsCode',
  'type',
  'address',
  'postcode',
  'latitude',
  'longitude',
  'phone',
  ...WEEKDAYS.map(([d]) => `openingTimes.weekly.${d}`),
  'openingTimes.bankHolidays',
  'openingTimes.exceptions',
  'openingTimes',
  'dispositions',
  'symptomGroups',
  'ageRange.minYears',
  'ageRange.maxYears',
  'sexes',
  'referral.endpointId',
  'referral.phone',
  'referral',
  'booking',
  'notClinicallyValidated',
];
