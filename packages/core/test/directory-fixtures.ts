import type { DirectoryService, OpeningSession, OpeningTimes } from '../src/directory/types.ts';

/** A made-up region for the directory tests: the patient's home is at P; services lie north of it. */
export const P = { latitude: 53.8, longitude: -1.55 };
/** About a kilometre of latitude. */
const KM = 1 / 111.2;

export const everyDay = (sessions: OpeningSession[]): OpeningTimes['weekly'] => ({
  mon: sessions,
  tue: sessions,
  wed: sessions,
  thu: sessions,
  fri: sessions,
  sat: sessions,
  sun: sessions,
});

export const ALWAYS: OpeningTimes = {
  alwaysOpen: true,
  weekly: everyDay([]),
  bankHolidays: null,
  exceptions: [],
};

export function service(
  id: string,
  fields: Partial<DirectoryService> & { kmNorth: number },
): DirectoryService {
  const { kmNorth, ...rest } = fields;
  return {
    serviceId: id,
    name: id,
    odsCode: 'XYZ01',
    type: 'urgent_treatment_centre',
    address: ['1 Made-up Street', 'Northshire'],
    postcode: 'NS1 1AA',
    latitude: P.latitude + kmNorth * KM,
    longitude: P.longitude,
    phone: null,
    openingTimes: ALWAYS,
    dispositions: ['Dx03'],
    symptomGroups: [],
    ageRange: { minYears: 0, maxYears: null },
    sexes: [],
    referral: { kind: 'walk_in' },
    booking: null,
    capacity: null,
    notClinicallyValidated: true,
    ...rest,
  };
}

const capacity = (status: 'green' | 'amber' | 'red') => ({ status, setAtMs: 0, setBy: 'user:test' });

/** Eleven services: see the table test for what each is there to show. */
export const SERVICES: DirectoryService[] = [
  service('A-ed', { kmNorth: 2, type: 'emergency_department', dispositions: ['Dx02', 'Dx03'] }),
  service('B-utc', {
    kmNorth: 3,
    dispositions: ['Dx03', 'Dx05'],
    openingTimes: {
      alwaysOpen: false,
      weekly: everyDay([{ opens: '08:00', closes: '22:00' }]),
      bankHolidays: [{ opens: '10:00', closes: '16:00' }],
      exceptions: [],
    },
    capacity: capacity('green'),
  }),
  service('C-ooh', {
    kmNorth: 5,
    type: 'gp_out_of_hours_base',
    dispositions: ['Dx05', 'Dx06'],
    openingTimes: {
      alwaysOpen: false,
      weekly: everyDay([{ opens: '18:30', closes: '08:00' }]),
      bankHolidays: null,
      exceptions: [],
    },
  }),
  service('D-pharmacy', {
    kmNorth: 1,
    type: 'community_pharmacy',
    dispositions: ['Dx10'],
    openingTimes: {
      alwaysOpen: false,
      weekly: {
        ...everyDay([{ opens: '09:00', closes: '17:30' }]),
        sat: [{ opens: '09:00', closes: '13:00' }],
        sun: [],
      },
      bankHolidays: [],
      exceptions: [],
    },
  }),
  service('E-sdec', {
    kmNorth: 4,
    type: 'same_day_emergency_care',
    ageRange: { minYears: 16, maxYears: null },
    openingTimes: {
      alwaysOpen: false,
      weekly: { ...everyDay([{ opens: '08:00', closes: '20:00' }]), sat: [], sun: [] },
      bankHolidays: null,
      exceptions: [],
    },
    capacity: capacity('amber'),
  }),
  service('F-far-ed', { kmNorth: -50, type: 'emergency_department', dispositions: ['Dx02', 'Dx03'] }),
  service('G-crisis', { kmNorth: 2.1, type: 'mental_health_crisis', symptomGroups: ['mental-health'] }),
  service('H-red-utc', { kmNorth: 2.5, dispositions: ['Dx03', 'Dx05'], capacity: capacity('red') }),
  service('I-women', { kmNorth: 6, type: 'same_day_emergency_care', sexes: ['female'] }),
  service('J-children', {
    kmNorth: 3.5,
    dispositions: ['Dx03', 'Dx05'],
    ageRange: { minYears: 0, maxYears: 15 },
  }),
  service('K-closed-today', {
    kmNorth: 1.5,
    openingTimes: {
      alwaysOpen: false,
      weekly: everyDay([{ opens: '08:00', closes: '22:00' }]),
      bankHolidays: null,
      exceptions: [{ date: '2026-12-09', sessions: [], note: 'Refurbishment' }],
    },
  }),
];
