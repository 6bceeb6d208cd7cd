import { randomBytes } from 'node:crypto';
import {
  normaliseNhsNumber,
  ROLE_LABELS,
  ROLES,
  SPECIAL_NOTE_KINDS,
  type PatientRecord,
  type Role,
} from '@holdfast/core';
import { AccountsService } from './accounts/service.ts';
import { SessionStore } from './auth/sessions.ts';
import { nameBasedUuid } from './node/ids.ts';
import { seedDemoDirectory } from './directory/demo.ts';
import { seedDemoCentres } from './booking/demo.ts';
import { seedDemoFleet } from './dispatch/demo.ts';
import { DEMO_PHARMACY_ODS } from './receiver/demo.ts';
import type { HoldfastNode } from './node/node.ts';
import { DEMO_PROVIDER_NAME, DEMO_TENANT } from './demo-names.ts';

export { DEMO_PROVIDER_NAME, DEMO_TENANT } from './demo-names.ts';

export interface DemoAccounts {
  password: string;
  users: { username: string; role: Role }[];
}

/**
 * The demo provider seeded at the first `npm start`: Northshire IUC, two sites, one user per role,
 * all with one generated password. Each enrols a second factor at first sign-in, like anyone.
 */
export async function seedDemoProvider(node: HoldfastNode): Promise<DemoAccounts> {
  const accounts = new AccountsService(
    node.store,
    node.ledger,
    new SessionStore(node.store, node.clock),
    node.providerKeys,
  );
  const actor = `node:${node.identity.node}`;
  await accounts.createTenant(DEMO_TENANT, DEMO_PROVIDER_NAME, actor);
  const north = await accounts.createSite(DEMO_TENANT, 'Northshire 111 call centre', actor);
  const south = await accounts.createSite(DEMO_TENANT, 'Southport OOH treatment centre', actor);
  const password = `demo-${randomBytes(9).toString('base64url')}`;
  const users: DemoAccounts['users'] = [];
  for (const role of ROLES) {
    const username = `${role.replace('_', '-')}@northshire`;
    await accounts.create(
      DEMO_TENANT,
      {
        username,
        displayName: `Demo ${ROLE_LABELS[role].toLowerCase()}`,
        roles: [role],
        siteIds: [north, south],
        password,
      },
      actor,
    );
    users.push({ username, role });
  }
  await seedDemoPatients(node, [north, south]);
  // The demo region's postcodes and Directory of Services (made-up, not clinically validated).
  await seedDemoDirectory(node, DEMO_TENANT);
  // Two demo treatment centres with a diary for the next days (C6).
  await seedDemoCentres(node, DEMO_TENANT, south);
  // Three sample home-visit cars with made-up crews on the rota, so the dispatch board is not empty (C7).
  await seedDemoFleet(node, DEMO_TENANT, [north, south]);
  return { password, users };
}

const GIVEN = [
  'Ada',
  'Ben',
  'Chloe',
  'Dev',
  'Ella',
  'Femi',
  'Grace',
  'Hamza',
  'Isla',
  'Jack',
  'Kiran',
  'Lena',
];
const FAMILY = [
  'Archer',
  'Brook',
  'Carter',
  'Dale',
  'Eastwood',
  'Fairley',
  'Garner',
  'Hollis',
  'Ingram',
  'Jessop',
];
const NOTE_TEXT: Record<(typeof SPECIAL_NOTE_KINDS)[number], string> = {
  end_of_life:
    'Made-up demo note: on an end-of-life care plan; the family know the plan and have the anticipatory medicines.',
  dnacpr: 'Made-up demo note: DNACPR in place, signed form kept at home in the kitchen drawer.',
  safeguarding: 'Made-up demo note: safeguarding concern raised; speak to the patient alone where possible.',
  care_plan: 'Made-up demo note: asthma care plan, rescue pack at home; call back within the hour if wheezy.',
  other: 'Made-up demo note: hard of hearing, prefers text relay.',
};

/**
 * Made-up demo patients (about thirty), so that a new user sees patient search, special notes of
 * every kind and the rest of the product working. NHS numbers are valid check-digit numbers from the
 * 999 range, which is never issued to real people; names, dates and addresses are invented.
 */
export async function seedDemoPatients(node: HoldfastNode, siteIds: readonly string[]): Promise<number> {
  const numbers: string[] = [];
  for (let n = 9_990_000_001; numbers.length < 30; n++) {
    const r = normaliseNhsNumber(String(n));
    if (r.ok) numbers.push(r.value);
  }
  const drafts = numbers.map((nhsNumber, i) => {
    const kind = SPECIAL_NOTE_KINDS[i % (SPECIAL_NOTE_KINDS.length + 2)];
    const record: PatientRecord = {
      nhsNumber,
      givenName: GIVEN[i % GIVEN.length]!,
      familyName: FAMILY[(i * 7) % FAMILY.length]!,
      dateOfBirth: `${1935 + ((i * 13) % 85)}-${String((i % 12) + 1).padStart(2, '0')}-${String((i % 27) + 1).padStart(2, '0')}`,
      sex: i % 2 === 0 ? 'female' : 'male',
      phone: `07700 900${String(100 + i).padStart(3, '0')}`,
      address: `${i + 1} Demo Street, Northshire`,
      postcode: `NS${(i % 9) + 1} ${(i % 8) + 1}DM`,
      specialNotes: kind ? [{ kind, text: NOTE_TEXT[kind] }] : [],
      ...(i % 5 === 0
        ? { accessInstructions: 'Made-up demo note: key safe by the back door, code given by phone.' }
        : {}),
      registeredPractice: { odsCode: 'A81001', name: 'Riverside Surgery (demo)' },
      nominatedPharmacy: { odsCode: DEMO_PHARMACY_ODS, name: 'Market Street Pharmacy' },
    };
    return {
      tenant: DEMO_TENANT,
      type: 'patient.registered',
      actor: `node:${node.identity.node}`,
      payload: {
        // A stable id per demo patient, so two demo nodes seed the same people.
        patientId: nameBasedUuid(`demo-patient-${nhsNumber}`),
        homeSiteId: siteIds[i % siteIds.length]!,
        record,
      },
    };
  });
  await node.ledger.append(drafts);
  return drafts.length;
}
