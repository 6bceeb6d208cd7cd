import type { ApiUser } from './api.ts';

/**
 * Made-up patients for the browser tests and screenshots (NHS numbers with valid check digits from
 * the ranges used in test data; no real person).
 */
export const PATIENTS = {
  /** The journey's patient: a DNACPR note that the adviser must not miss. */
  margaret: {
    nhsNumber: '9434765919',
    givenName: 'Margaret',
    familyName: 'Holloway',
    dateOfBirth: '1941-03-14',
    sex: 'female',
    phone: '07700 900123',
    address: '12 Quay Street, Northshire',
    postcode: 'NS1 4AP',
    specialNotes: [
      { kind: 'dnacpr', text: 'DNACPR form signed 2026-09-02, copy at home in the red folder.' },
      { kind: 'end_of_life', text: 'Receiving end-of-life care from the Northshire hospice team.' },
    ],
  },
  david: {
    nhsNumber: '9434765870',
    givenName: 'David',
    familyName: 'Okonjo',
    dateOfBirth: '1987-11-02',
    sex: 'male',
    phone: '07700 900456',
    address: '3 Mill Lane, Southport',
    postcode: 'SP2 7QT',
    specialNotes: [],
  },
} as const;

/** Registers the fixture patients through the API (as an adviser); returns their ids by key. */
export async function registerPatients(
  adviser: ApiUser,
  homeSiteId: string,
): Promise<Record<keyof typeof PATIENTS, string>> {
  const ids = {} as Record<keyof typeof PATIENTS, string>;
  for (const [key, record] of Object.entries(PATIENTS) as [
    keyof typeof PATIENTS,
    (typeof PATIENTS)[keyof typeof PATIENTS],
  ][]) {
    const { patientId } = await adviser.call<{ patientId: string }>('POST', '/api/v1/patients', {
      homeSiteId,
      record,
    });
    ids[key] = patientId;
  }
  return ids;
}

/**
 * The journey's triage, in the shipped sample pack: the headache pathway, "No" to each
 * life-threatening question, a gradual onset, and new loss of vision, which ends at "A clinician will
 * call you back within 1 hour" (speak to primary care within 1 hour). Each answer is the 1-based
 * position of the option(s) to pick, as the number keys pick them.
 */
export const HEADACHE_TO_CALLBACK = {
  pathway: 'Headache',
  answers: [
    { question: /not breathing/, keys: [2] },
    { question: /unconscious/, keys: [2] },
    { question: /choking/, keys: [2] },
    { question: /heavy bleeding/, keys: [2] },
    { question: /face drooped/, keys: [2] },
    { question: /allergic reaction/, keys: [2] },
    { question: /How did the headache start/, keys: [3] },
    { question: /Do any of these apply/, keys: [2], multi: true },
  ],
  disposition: /call you back within 1 hour/,
} as const;
