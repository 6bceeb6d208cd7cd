import { randomUUID } from 'node:crypto';
import {
  checkPrescription,
  PRESCRIPTION_CHECKS,
  blockingProblems,
  quantityInWords,
  type CheckResult,
  type PatientForPrescribing,
} from '@holdfast/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireFormularyDir, SAMPLE_FORMULARY_DIR } from '../../src/prescribing/formulary-files.ts';
import { STORE_KINDS } from '../support/databases.ts';
import {
  AMOXICILLIN,
  CLARITHROMYCIN,
  draftOf,
  IBUPROFEN,
  MORPHINE,
  PAPER_ODS,
  PARACETAMOL,
  PrescribingWorld,
} from './support.ts';

/**
 * Who may prescribe, what the server's own checks hold back whatever the client says, and the
 * allergies and current medication on the patient, on both stores.
 */
describe.each(STORE_KINDS)('prescribing access, checks and the patient’s allergies on %s', (kind) => {
  const w = new PrescribingWorld();
  beforeAll(async () => {
    await w.start(kind);
  });
  afterAll(async () => {
    await w.stop();
  });

  it('a receptionist, a health adviser and a clinician without the prescriber role get 403 on every prescribing write; the prescriber gets through', async () => {
    const patientId = await w.patient('Eve');
    const caseId = await w.consultation(patientId);
    const issued = await w.json<{ prescription: { prescriptionId: string } }>(
      w.clients.prescriber,
      'POST',
      `/api/v1/cases/${caseId}/prescriptions`,
      { draft: draftOf(AMOXICILLIN), overrides: [], pharmacy: 'nominated' },
    );
    const id = issued.prescription.prescriptionId;
    const writes: [string, string, unknown][] = [
      ['POST', `/api/v1/cases/${caseId}/prescriptions/check`, { draft: draftOf(PARACETAMOL) }],
      [
        'POST',
        `/api/v1/cases/${caseId}/prescriptions`,
        { draft: draftOf(PARACETAMOL), overrides: [], pharmacy: 'nominated' },
      ],
      ['POST', `/api/v1/prescriptions/${id}/print`, { reason: 'try' }],
      ['POST', `/api/v1/prescriptions/${id}/cancel`, { reason: 'try' }],
      ['GET', `/api/v1/prescriptions/${id}/pdf`, undefined],
    ];
    for (const who of ['receptionist', 'adviser', 'clinician'] as const)
      for (const [method, url, body] of writes) {
        const r = await w.clients[who].request(method, url, body);
        expect(r.statusCode, `${who} ${method} ${url}`).toBe(403);
      }
    // A clinician holding the consultation still cannot prescribe in it.
    const clinicianCase = await w.consultation(patientId, w.clients.clinician);
    expect(
      (
        await w.clients.clinician.request('POST', `/api/v1/cases/${clinicianCase}/prescriptions`, {
          draft: draftOf(PARACETAMOL),
          overrides: [],
          pharmacy: 'nominated',
        })
      ).statusCode,
    ).toBe(403);
    // The prescriber gets through each (past the permission: answered by the route's own rules).
    const passed = [];
    for (const [method, url, body] of writes)
      passed.push((await w.clients.prescriber.request(method, url, body)).statusCode);
    expect(passed).toEqual([200, 201, 409, 200, 409]);
    // The prescriber may not prescribe in a consultation someone else holds.
    const notMine = await w.clients.prescriber.request(
      'POST',
      `/api/v1/cases/${clinicianCase}/prescriptions`,
      {
        draft: draftOf(PARACETAMOL),
        overrides: [],
        pharmacy: 'nominated',
      },
    );
    expect(notMine.statusCode).toBe(409);
  });

  it('allergies and current medication: recorded with source and who said so, removed and stopped with a reason; bad input names the field', async () => {
    const patientId = await w.patient('Fay');
    type Lists = {
      allergies: {
        id: string;
        allergen: string;
        source: string;
        reportedBy: string;
        recordedBy: string;
        atMs: number;
      }[];
      medication: {
        id: string;
        name: string;
        code: string | null;
        source: string;
        reportedBy: string;
        recordedBy: string;
      }[];
    };
    const url = `/api/v1/patients/${patientId}`;
    const added = await w.json<Lists>(w.clients.adviser, 'POST', `${url}/allergies`, {
      allergen: 'Penicillin',
      allergyClass: 'penicillin',
      reaction: 'Rash and swollen lips',
      source: 'caller',
      reportedBy: "The patient's daughter",
    });
    expect(added.allergies).toHaveLength(1);
    const adviserId = w.t.providers[0]!.users.health_adviser.userId;
    expect(added.allergies[0]).toMatchObject({
      allergen: 'Penicillin',
      source: 'caller',
      reportedBy: "The patient's daughter",
      recordedBy: `user:${adviserId}`,
      atMs: w.t.clock.nowMs(),
    });
    await w.json(w.clients.clinician, 'POST', `${url}/medication`, {
      // Not a formulary medicine: recorded by name, matched by the formulary's class members.
      name: 'Simvastatin 40 mg tablets',
      dose: '40 mg at night',
      source: 'record',
      reportedBy: 'GP summary record',
    });
    const both = await w.json<Lists>(w.clients.prescriber, 'GET', `${url}/allergies-medication`);
    expect(both.medication[0]).toMatchObject({
      name: 'Simvastatin 40 mg tablets',
      code: null,
      source: 'record',
    });

    // The checks use them: amoxicillin is a hard stop; clarithromycin with simvastatin is too.
    const caseId = await w.consultation(patientId);
    const checked = await w.json<{ checks: CheckResult[] }>(
      w.clients.prescriber,
      'POST',
      `/api/v1/cases/${caseId}/prescriptions/check`,
      { draft: draftOf(AMOXICILLIN) },
    );
    expect(checked.checks.find((c) => c.check === 'allergy')!.outcome).toBe('hard_stop');
    const withStatin = await w.json<{ checks: CheckResult[] }>(
      w.clients.prescriber,
      'POST',
      `/api/v1/cases/${caseId}/prescriptions/check`,
      { draft: draftOf(CLARITHROMYCIN, { frequencyPerDay: 2, quantity: 10 }) },
    );
    expect(withStatin.checks.find((c) => c.check === 'interaction')!.outcome).toBe('hard_stop');

    // Removed and stopped, with reasons: gone from the lists, and from the checks.
    const removed = await w.json<Lists>(
      w.clients.clinician,
      'POST',
      `${url}/allergies/${added.allergies[0]!.id}/remove`,
      {
        reason: 'Tolerated amoxicillin last year: recorded in error',
      },
    );
    expect(removed.allergies).toEqual([]);
    const stopped = await w.json<Lists>(
      w.clients.adviser,
      'POST',
      `${url}/medication/${both.medication[0]!.id}/stop`,
      {
        reason: 'Stopped by the GP last month',
      },
    );
    expect(stopped.medication).toEqual([]);
    const again = await w.json<{ checks: CheckResult[] }>(
      w.clients.prescriber,
      'POST',
      `/api/v1/cases/${caseId}/prescriptions/check`,
      { draft: draftOf(AMOXICILLIN) },
    );
    expect(again.checks.find((c) => c.check === 'allergy')!.outcome).toBe('pass');
    // Removing twice is not found.
    expect(
      (
        await w.clients.clinician.request('POST', `${url}/allergies/${added.allergies[0]!.id}/remove`, {
          reason: 'again',
        })
      ).statusCode,
    ).toBe(404);

    // Bad input: a 4xx naming the field, nothing stored.
    const before = await w.eventCount(['patient.allergy_recorded', 'patient.medication_recorded']);
    for (const [path, body, field] of [
      ['allergies', { allergen: 'Latex', source: 'neighbour', reportedBy: 'x' }, 'body.source'],
      ['allergies', { allergen: '', source: 'caller', reportedBy: 'The patient' }, 'body.allergen'],
      ['allergies', { allergen: 'Latex', source: 'caller' }, 'body.reportedBy'],
      [
        'medication',
        { name: 'Something', code: 'abc', source: 'caller', reportedBy: 'The patient' },
        'body.code',
      ],
      [
        'medication',
        { name: 'Unknown', code: '999999999', source: 'caller', reportedBy: 'The patient' },
        'body.code',
      ],
    ] as const) {
      const r = await w.clients.adviser.request('POST', `${url}/${path}`, body);
      expect(r.statusCode, r.body).toBe(400);
      expect(r.body).toContain(field);
    }
    expect(await w.eventCount(['patient.allergy_recorded', 'patient.medication_recorded'])).toBe(before);
    // A receptionist cannot write them; another provider's patient id is not found.
    expect(
      (
        await w.clients.receptionist.request('POST', `${url}/allergies`, {
          allergen: 'Latex',
          source: 'caller',
          reportedBy: 'The patient',
        })
      ).statusCode,
    ).toBe(403);
    expect(
      (
        await w.clients.adviser.request('POST', `/api/v1/patients/${randomUUID()}/allergies`, {
          allergen: 'Latex',
          source: 'caller',
          reportedBy: 'The patient',
        })
      ).statusCode,
    ).toBe(404);
  });

  it('property: whenever the server’s own checks hold a hard stop or an un-reasoned warning, the answer is 409 and nothing is issued or queued; the client’s claims are never trusted', async () => {
    const formulary = await requireFormularyDir(SAMPLE_FORMULARY_DIR);
    // A patient with a penicillin allergy, taking simvastatin and warfarin, nominating a pharmacy
    // with no endpoint (the paper route: an issued prescription queues no message of its own).
    const patientId = await w.patient('Gus', PAPER_ODS);
    const url = `/api/v1/patients/${patientId}`;
    await w.json(w.clients.prescriber, 'POST', `${url}/allergies`, {
      allergen: 'Penicillin',
      allergyClass: 'penicillin',
      source: 'record',
      reportedBy: 'GP summary record',
    });
    for (const name of ['Simvastatin 40 mg tablets', 'Warfarin 1 mg tablets'])
      await w.json(w.clients.prescriber, 'POST', `${url}/medication`, {
        name,
        source: 'record',
        reportedBy: 'GP summary record',
      });
    const caseId = await w.consultation(patientId);
    const facts = (weightKg: number | null, pregnant: boolean | null): PatientForPrescribing => ({
      ageYears: 46,
      weightKg,
      pregnant,
      renalImpairment: null,
      allergies: [{ allergen: 'Penicillin', allergyClass: 'penicillin' }],
      currentMedication: [
        { code: null, name: 'Simvastatin 40 mg tablets' },
        { code: null, name: 'Warfarin 1 mg tablets' },
      ],
    });
    // The client may not send its own check results at all.
    const claimed = await w.clients.prescriber.request('POST', `/api/v1/cases/${caseId}/prescriptions`, {
      draft: draftOf(AMOXICILLIN),
      overrides: [],
      pharmacy: 'nominated',
      checks: PRESCRIPTION_CHECKS.map((check) => ({ check, outcome: 'pass', message: 'fine' })),
    });
    expect(claimed.statusCode).toBe(400);

    let issuedCount = 0;
    let blockedCount = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({
            code: fc.constantFrom(AMOXICILLIN, PARACETAMOL, IBUPROFEN, MORPHINE, CLARITHROMYCIN),
            doseMg: fc.constantFrom(2.5, 5, 10, 200, 250, 400, 500, 1000, 1500),
            frequencyPerDay: fc.integer({ min: 1, max: 6 }),
            durationDays: fc.integer({ min: 1, max: 40 }),
            quantity: fc.integer({ min: 1, max: 120 }),
            words: fc.boolean(),
            weightKg: fc.option(fc.integer({ min: 40, max: 120 }), { nil: null }),
            pregnant: fc.option(fc.boolean(), { nil: null }),
            overrides: fc.subarray([...PRESCRIPTION_CHECKS]),
            reasoned: fc.boolean(),
          }),
          // Drafts near what a prescriber would send, so that some go.
          fc.record({
            code: fc.constantFrom(PARACETAMOL, IBUPROFEN, MORPHINE),
            doseMg: fc.constantFrom(5, 200, 400, 500, 1000),
            frequencyPerDay: fc.integer({ min: 1, max: 4 }),
            durationDays: fc.integer({ min: 1, max: 7 }),
            quantity: fc.integer({ min: 1, max: 40 }),
            words: fc.constant(true),
            weightKg: fc.constant(null),
            pregnant: fc.constantFrom(null, false),
            overrides: fc.subarray([...PRESCRIPTION_CHECKS]),
            reasoned: fc.boolean(),
          }),
        ),
        async (r) => {
          const draft = {
            medicineCode: r.code,
            doseMg: r.doseMg,
            frequencyPerDay: r.frequencyPerDay,
            durationDays: r.durationDays,
            quantity: r.quantity,
            quantityWords: r.words ? quantityInWords(r.quantity) : null,
            directions: 'As directed',
          };
          const overrides = r.overrides.map((check) => ({
            check,
            reason: r.reasoned ? 'Discussed with the patient' : ' ',
          }));
          // The server's own results, which must be core's on the patient's recorded facts.
          const server = await w.json<{ checks: CheckResult[] }>(
            w.clients.prescriber,
            'POST',
            `/api/v1/cases/${caseId}/prescriptions/check`,
            { draft, weightKg: r.weightKg, pregnant: r.pregnant },
          );
          expect(server.checks).toEqual(checkPrescription(draft, facts(r.weightKg, r.pregnant), formulary));
          const blocked =
            server.checks.some((c) => c.outcome === 'hard_stop') ||
            server.checks.some(
              (c) =>
                c.outcome === 'warning' && !overrides.some((o) => o.check === c.check && o.reason.trim()),
            );
          const before = await w.eventCount(['prescription.issued', 'message.queued']);
          const answer = await w.clients.prescriber.request('POST', `/api/v1/cases/${caseId}/prescriptions`, {
            draft,
            overrides: overrides.filter((o) => o.reason.trim()),
            pharmacy: 'nominated',
            weightKg: r.weightKg,
            pregnant: r.pregnant,
          });
          const after = await w.eventCount(['prescription.issued', 'message.queued']);
          if (blocked) {
            blockedCount++;
            expect(answer.statusCode, answer.body).toBe(409);
            expect((answer.json() as { problems: string[] }).problems).toEqual(
              blockingProblems(
                server.checks,
                overrides.filter((o) => o.reason.trim()),
              ),
            );
            expect(after).toBe(before);
          } else {
            issuedCount++;
            expect(answer.statusCode, answer.body).toBe(201);
            // Issued once, on paper: no message.
            expect(after).toBe(before + 1);
            const id = (answer.json() as { prescription: { prescriptionId: string } }).prescription
              .prescriptionId;
            await w.json(w.clients.prescriber, 'POST', `/api/v1/prescriptions/${id}/cancel`, {
              reason: 'Property test',
            });
          }
        },
      ),
      { numRuns: 40, seed: kind === 'sqlite' ? 18 : 1818 },
    );
    expect(blockedCount).toBeGreaterThan(0);
    expect(issuedCount).toBeGreaterThan(0);
  }, 180_000);
});
