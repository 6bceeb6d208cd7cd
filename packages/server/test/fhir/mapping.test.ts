import { DISPOSITION_KINDS, NEWS2_PARAMETERS, type News2Observations } from '@holdfast/core';
import { walk } from '@holdfast/core/triage/engine';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  caseDocumentBundle,
  caseResources,
  locationResource,
  organizationResource,
  patientInputFromRecord,
  patientResource,
  practitionerResource,
  practitionerRoleResource,
  referralMessageBundle,
  type CaseBundleInput,
  type CaseInput,
  type ConsultationInput,
  type PatientInput,
  type PractitionerInput,
} from '../../src/fhir/mapping.ts';
import { operationOutcomeOf } from '../../src/fhir/outcome.ts';
import { InvalidFhirResourceError, outgoingIssues, validateOutgoing } from '../../src/fhir/validate.ts';
import { toProblem } from '../../src/http/errors.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR, type LoadedPack } from '../../src/triage/packs.ts';
import { answersTo } from '../support/cases.ts';

/**
 * The FHIR mapping against an external validator (@medplum/core over the R4 structure definitions)
 * plus Holdfast's UK Core rules: every resource type made from every sample pathway's case and a
 * full consultation passes; deliberately broken resources are refused, naming the field.
 */

const BASE = 'https://holdfast.example/fhir/R4';
const ORG = { id: 'northshire', name: 'Northshire IUC', tenant: 'northshire', odsCode: 'NYW01' };
const SITE = {
  siteId: '0190a6a0-0000-7000-8000-00000000a001',
  name: 'Northshire CAS',
  organizationId: ORG.id,
};
const CLINICIAN: PractitionerInput = {
  userId: '0190a6a0-0000-7000-8000-00000000c001',
  displayName: 'Dr Casey Clinician',
  roles: ['clinician'],
  organizationId: ORG.id,
  siteIds: [SITE.siteId],
};
const PATIENT_ID = '0190a6a0-0000-7000-8000-00000000b001';

const PATIENT: PatientInput = {
  ...patientInputFromRecord(
    PATIENT_ID,
    {
      nhsNumber: '9990000018',
      givenName: 'Ada Mary',
      familyName: 'Lovelace',
      dateOfBirth: '1950-05-05',
      sex: 'female',
      gender: 'female',
      phone: '07700 900123',
      otherPhones: [{ use: 'work', number: '0113 496 0000' }],
      address: '1 Sample Street, Leeds',
      postcode: 'LS1 4AP',
      otherAddresses: [{ use: 'temporary', text: '2 Holiday Lane, Whitby', postcode: 'YO21 1AA' }],
      registeredPractice: { odsCode: 'B86001', name: 'Sample Practice' },
      nominatedPharmacy: { odsCode: 'FA123', name: 'Sample Pharmacy' },
    },
    ORG.id,
  ),
};
/** The same patient with name, address and telephone history: periods travel with them. */
const PATIENT_WITH_HISTORY: PatientInput = {
  ...PATIENT,
  names: [
    ...PATIENT.names.map((n) => ({ ...n, period: { start: '1975-06-01' } })),
    { use: 'maiden', family: 'Byron', given: ['Ada'], period: { start: '1950-05-05', end: '1975-06-01' } },
  ],
  addresses: [
    ...PATIENT.addresses,
    { use: 'old', text: '9 Former Road, York', postcode: 'YO1 7HH', period: { end: '2020-01-31' } },
  ],
  telecoms: [
    ...PATIENT.telecoms,
    { system: 'phone', use: 'old', value: '01904 000000', period: { end: '2019-12-31' } },
  ],
};

const ALL_SEVEN: News2Observations = {
  respirationRate: 22,
  spo2: 95,
  spo2Scale: 1,
  airOrOxygen: 'air',
  systolicBp: 105,
  pulse: 112,
  consciousness: 'new_confusion',
  temperature: 38.4,
};

function consultation(n: number, observations: News2Observations): ConsultationInput {
  return {
    consultationId: `0190a6a0-0000-7000-8000-0000000d000${n}`,
    recordedAt: `2026-11-29T09:${10 + n}:00.000Z`,
    clinicianId: CLINICIAN.userId,
    history: 'Breathless since this morning <worse on stairs> & coughing',
    examination: 'Chest crackles right base',
    observations,
    assessment: 'Possible chest infection',
    plan: 'Antibiotics via the on-call prescriber',
    safetyNetting: 'Call 999 if breathing gets worse',
  };
}

interface PathwayCase {
  label: string;
  input: CaseInput;
}

/** A case per pathway and disposition kind the pathway can reach, walked by the real engine. */
function pathwayCases(pack: LoadedPack): PathwayCase[] {
  const out: PathwayCase[] = [];
  let n = 0;
  for (const [pathwayId, protocol] of pack.protocols) {
    for (const kind of DISPOSITION_KINDS) {
      const answers = answersTo(protocol, (d) => d.kind === kind);
      if (!answers) continue;
      const result = walk(protocol, answers);
      if (result.status !== 'disposition') throw new Error(`${pathwayId} did not reach a disposition`);
      const d = result.disposition;
      n++;
      const caseId = `0190a6a0-0000-7000-8000-${String(n).padStart(12, '0')}`;
      out.push({
        label: `${pathwayId} → ${kind} (${d.dxCode})`,
        input: {
          caseId,
          siteId: SITE.siteId,
          status: 'disposition_reached',
          receivedAt: '2026-11-29T09:00:00.000Z',
          patientId: PATIENT_ID,
          presentingComplaint: result.content.presentingComplaint,
          location: 'At home',
          disposition: {
            kind: d.kind,
            dxCode: d.dxCode,
            label: d.label,
            timeframeMinutes: d.timeframeMinutes ?? 0,
            ambulanceCategory: d.ambulanceCategory ?? null,
            careAdvice: d.careAdvice,
            sample: result.content.sample,
          },
          deadline: null,
          claimedBy: null,
          triage: {
            pathwayId,
            pathwayVersion: protocol.content.pathwayVersion,
            steps: result.path.map((s) => ({ nodeId: s.nodeId, question: s.question, answer: s.answer })),
            complete: true,
            lastAnsweredAt: '2026-11-29T09:05:00.000Z',
          },
          consultations: [],
          organizationId: ORG.id,
        },
      });
    }
  }
  return out;
}

function bundleInput(c: CaseInput, patient: PatientInput = PATIENT): CaseBundleInput {
  return {
    base: BASE,
    case: c,
    patient,
    notes: [
      { kind: 'dnacpr', text: 'DNACPR form at the bedside' },
      { kind: 'safeguarding' }, // text withheld from this reader: the kind still travels
    ],
    organization: ORG,
    site: SITE,
    practitioners: [CLINICIAN],
    timestamp: '2026-11-29T10:00:00.000Z',
  };
}

function everyResource(input: CaseBundleInput): Resource[] {
  const r = caseResources(input.case, input.notes);
  return [
    patientResource(input.patient),
    r.encounter,
    ...(r.serviceRequest ? [r.serviceRequest] : []),
    ...(r.questionnaireResponse ? [r.questionnaireResponse] : []),
    ...r.observations,
    ...r.flags,
    ...(r.composition ? [r.composition] : []),
    organizationResource(input.organization),
    locationResource(input.site),
    practitionerResource(CLINICIAN),
    practitionerRoleResource(CLINICIAN),
  ];
}

describe('FHIR R4 mapping: every sample pathway and a full consultation pass the external validator', () => {
  let pack: LoadedPack;
  let cases: PathwayCase[];

  beforeAll(async () => {
    pack = await requireProtocolPack(SAMPLE_PACK_DIR);
    cases = pathwayCases(pack);
  });

  it('walks every pathway of the sample pack to at least one disposition', () => {
    const pathways = new Set(cases.map((c) => c.input.triage!.pathwayId));
    expect([...pathways].sort()).toEqual([...pack.protocols.keys()].sort());
    // More than one disposition kind per pathway on average: the walk explores, not just the first leaf.
    expect(cases.length).toBeGreaterThan(pack.protocols.size);
  });

  it('every resource, the document Bundle and the BaRS message Bundle of every pathway case are valid', () => {
    const failures: string[] = [];
    const types = new Set<string>();
    for (const { label, input } of cases) {
      const bundleIn = bundleInput(input);
      const resources = everyResource(bundleIn);
      const doc = caseDocumentBundle(bundleIn, input.caseId)!;
      const message = referralMessageBundle(bundleIn, {
        messageId: input.caseId.replace(/^0190/, '0191'),
        sourceEndpoint: `${BASE}/$process-message`,
        destination: {
          endpoint: 'https://receiver.example/fhir/R4/$process-message',
          receiverOdsCode: 'RR8',
        },
      })!;
      for (const r of [...resources, doc, message]) {
        types.add(r.resourceType === 'Bundle' ? `Bundle:${r.type}` : r.resourceType);
        for (const issue of outgoingIssues(r)) failures.push(`${label}: ${issue.path} ${issue.message}`);
      }
      // The QuestionnaireResponse keeps the triage path: every question and answer, in order.
      const qr = caseResources(input).questionnaireResponse!;
      expect(qr.item!.map((i) => i.linkId)).toEqual(input.triage!.steps.map((s) => s.nodeId));
      expect(qr.item!.map((i) => i.answer![0]!.valueString)).toEqual(
        input.triage!.steps.map((s) => s.answer),
      );
      expect(doc.entry![0]!.resource!.resourceType).toBe('Composition');
      expect(message.entry![0]!.resource!.resourceType).toBe('MessageHeader');
    }
    expect(failures).toEqual([]);
    expect([...types].sort()).toEqual(
      [
        'Bundle:document',
        'Bundle:message',
        'Composition',
        'Encounter',
        'Flag',
        'Location',
        'Organization',
        'Patient',
        'Practitioner',
        'PractitionerRole',
        'QuestionnaireResponse',
        'ServiceRequest',
      ].sort(),
    );
  });

  it('a full consultation: all 7 NEWS2 parameters and the total as coded Observations, all valid', () => {
    const base = cases.find((c) => c.input.disposition!.kind === 'speak_to_primary_care')!.input;
    const closed: CaseInput = {
      ...base,
      status: 'closed',
      closedAt: '2026-11-29T09:40:00.000Z',
      claimedBy: CLINICIAN.userId,
      consultations: [
        consultation(1, ALL_SEVEN),
        // A second, partial set on SpO2 scale 2 (hypercapnic respiratory failure), on oxygen.
        consultation(2, { spo2: 94, spo2Scale: 2, airOrOxygen: 'oxygen', pulse: 90 }),
      ],
    };
    const input = bundleInput(closed, PATIENT_WITH_HISTORY);
    const r = caseResources(closed, input.notes);
    const first = r.observations.slice(0, 8);
    expect(first.map((o) => o.code.coding!.at(-1)!.code)).toEqual([...NEWS2_PARAMETERS, '1104051000000101']);
    const total = first.at(-1)!;
    // RR 22 → 2, SpO2 95 → 1, air → 0, BP 105 → 1, pulse 112 → 2, new confusion → 3, 38.4 → 1: 10.
    expect(total.valueQuantity).toMatchObject({ value: 10, code: '{score}' });
    expect(total.derivedFrom).toHaveLength(7);
    expect(
      first.find((o) => o.code.text === 'Level of consciousness (ACVPU)')!.valueCodeableConcept,
    ).toMatchObject({
      coding: [{ system: 'http://snomed.info/sct', code: '130987000' }],
    });
    // The partial set: its 3 recorded parameters and no total (a partial sum is not a NEWS2 score).
    const second = r.observations.slice(8);
    expect(second.map((o) => o.code.coding!.at(-1)!.code)).toEqual(['spo2', 'airOrOxygen', 'pulse']);
    // And none for a patient NEWS2 does not apply to (under 16, pregnant), even with all seven.
    const child = caseResources(
      { ...closed, consultations: [{ ...consultation(1, ALL_SEVEN), news2NotApplicable: true }] },
      input.notes,
    );
    expect(child.observations.map((o) => o.code.coding!.at(-1)!.code)).toEqual([...NEWS2_PARAMETERS]);

    const patient = patientResource(input.patient);
    expect(patient.name![1]).toMatchObject({
      use: 'maiden',
      period: { start: '1950-05-05', end: '1975-06-01' },
    });
    expect(patient.address!.at(-1)).toMatchObject({ use: 'old', period: { end: '2020-01-31' } });
    expect(patient.telecom!.at(-1)).toMatchObject({ use: 'old', period: { end: '2019-12-31' } });
    expect(patient.identifier![0]).toMatchObject({
      system: 'https://fhir.nhs.uk/Id/nhs-number',
      value: '9990000018',
      extension: [{ valueCodeableConcept: { coding: [{ code: '02' }] } }],
    });

    const doc = caseDocumentBundle(input, closed.caseId)!;
    const failures = [...everyResource(input), doc].flatMap((res) =>
      outgoingIssues(res).map((i) => `${res.resourceType}/${res.id}: ${i.path} ${i.message}`),
    );
    expect(failures).toEqual([]);
    // 7 parameters and the total, then the partial set's 3 parameters (no total).
    expect(doc.entry!.filter((e) => e.resource!.resourceType === 'Observation')).toHaveLength(11);
    // Staff's text is escaped in the narrative, not taken as markup.
    const comp = r.composition!;
    expect(comp.status).toBe('final');
    expect(JSON.stringify(comp.section)).toContain('&lt;worse on stairs&gt; &amp; coughing');
  });
});

describe('FHIR R4 mapping: what the national record says travels with the patient', () => {
  it('a restricted record that says the patient has died: meta.security R and deceasedDateTime, valid R4', () => {
    const input = patientInputFromRecord(
      PATIENT_ID,
      {
        nhsNumber: '9990000018',
        givenName: 'Dora',
        familyName: 'Gone',
        dateOfBirth: '1930-03-03',
        sex: 'female',
        confidentiality: 'R',
        deceasedAt: '2026-11-20',
      },
      ORG.id,
    );
    const resource = patientResource(input);
    expect(resource.meta?.security).toEqual([
      {
        system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality',
        code: 'R',
        display: 'restricted',
      },
    ]);
    expect(resource.deceasedDateTime).toBe('2026-11-20');
    expect(outgoingIssues(resource)).toEqual([]);
    // An ordinary record carries neither.
    const ordinary = patientResource(PATIENT);
    expect(ordinary.meta).toBeUndefined();
    expect(ordinary.deceasedDateTime).toBeUndefined();
  });
});

describe('deliberately broken mappings are refused before sending, naming the field', () => {
  const good = () => {
    const c: CaseInput = {
      caseId: '0190a6a0-0000-7000-8000-0000000e0001',
      siteId: SITE.siteId,
      status: 'closed',
      receivedAt: '2026-11-29T09:00:00.000Z',
      closedAt: '2026-11-29T09:40:00.000Z',
      patientId: PATIENT_ID,
      presentingComplaint: 'Cough',
      location: 'At home',
      disposition: {
        kind: 'speak_to_primary_care',
        dxCode: 'Dx11',
        label: 'Speak to a primary care service within 1 hour',
        timeframeMinutes: 60,
        careAdvice: ['Rest'],
        sample: true,
      },
      triage: {
        pathwayId: 'breathing-difficulty',
        pathwayVersion: '1.0.0',
        steps: [{ nodeId: 'q1', question: 'Is the patient breathing?', answer: 'Yes' }],
        complete: true,
      },
      consultations: [consultation(1, ALL_SEVEN)],
      organizationId: ORG.id,
    };
    const input = bundleInput(c);
    return { c, input, r: caseResources(c, input.notes), patient: patientResource(PATIENT) };
  };
  const message = (input: CaseBundleInput) =>
    referralMessageBundle(input, {
      messageId: '0190a6a0-0000-7000-8000-0000000f0001',
      sourceEndpoint: `${BASE}/$process-message`,
      destination: { endpoint: 'https://receiver.example/fhir/R4/$process-message' },
    })!;
  const entryIndex = (b: Bundle, type: string) =>
    b.entry!.findIndex((e) => e.resource!.resourceType === type);

  /** Each breaks one thing; `path` is the field the refusal must name. */
  const CORPUS: { label: string; make: () => Resource; path: string }[] = [
    {
      label: 'NHS number with a wrong check digit',
      make: () => {
        const p = good().patient;
        p.identifier![0]!.value = '9990000019';
        return p;
      },
      path: 'Patient.identifier[0].value',
    },
    {
      label: 'NHS number with spaces',
      make: () => {
        const p = good().patient;
        p.identifier![0]!.value = '999 000 0018';
        return p;
      },
      path: 'Patient.identifier[0].value',
    },
    {
      label: 'NHS number as a JSON number',
      make: () => {
        const p = good().patient as unknown as { identifier: { value: unknown }[] } & Resource;
        p.identifier[0]!.value = 9990000018;
        return p;
      },
      path: 'Patient.identifier[0].value',
    },
    {
      label: 'NHS number without its verification status',
      make: () => {
        const p = good().patient;
        delete p.identifier![0]!.extension;
        return p;
      },
      path: 'Patient.identifier[0].extension',
    },
    {
      label: 'verification status code outside 01–08',
      make: () => {
        const p = good().patient;
        p.identifier![0]!.extension![0]!.valueCodeableConcept!.coding![0]!.code = '09';
        return p;
      },
      path: 'Patient.identifier[0].extension[0].valueCodeableConcept.coding[0].code',
    },
    {
      label: 'verification status from the wrong code system',
      make: () => {
        const p = good().patient;
        p.identifier![0]!.extension![0]!.valueCodeableConcept!.coding![0]!.system = 'https://example.org/cs';
        return p;
      },
      path: 'Patient.identifier[0].extension[0].valueCodeableConcept.coding',
    },
    {
      label: 'a gender outside the required value set',
      make: () => ({ ...good().patient, gender: 'f' as 'female' }),
      path: 'Patient.gender',
    },
    {
      label: 'a date of birth that does not exist',
      make: () => ({ ...good().patient, birthDate: '1950-13-45' }),
      path: 'Patient.birthDate',
    },
    {
      label: 'a GP practice ODS code in lower case with a symbol',
      make: () => {
        const p = good().patient;
        p.generalPractitioner![0]!.identifier!.value = 'b86001!';
        return p;
      },
      path: 'Patient.generalPractitioner[0].identifier.value',
    },
    {
      label: 'an Organization ODS code too long',
      make: () => organizationResource({ ...ORG, odsCode: 'NYW0100' }),
      path: 'Organization.identifier[0].value',
    },
    {
      label: 'an Observation without its code',
      make: () => {
        const o = { ...good().r.observations[0]! } as Partial<Resource> & { code?: unknown };
        delete o.code;
        return o as Resource;
      },
      path: 'Observation.code',
    },
    {
      label: 'an Observation status outside the value set',
      make: () => ({ ...good().r.observations[0]!, status: 'done' as 'final' }),
      path: 'Observation.status',
    },
    {
      label: 'a NEWS2 total above 20',
      make: () => {
        const total = good().r.observations.at(-1)!;
        return { ...total, valueQuantity: { ...total.valueQuantity, value: 21 } };
      },
      path: 'Observation.valueQuantity.value',
    },
    {
      label: 'an Encounter without its class',
      make: () => {
        const e = { ...good().r.encounter } as Partial<Resource> & { class?: unknown };
        delete e.class;
        return e as Resource;
      },
      path: 'Encounter.class',
    },
    {
      label: 'an element R4 does not define',
      make: () => ({ ...good().r.serviceRequest!, dispositionCode: 'Dx11' }) as Resource,
      path: 'ServiceRequest.dispositionCode',
    },
    {
      label: 'a triage answer without its question id',
      make: () => {
        const qr = good().r.questionnaireResponse!;
        return {
          ...qr,
          item: [{ text: 'Is the patient breathing?', answer: [{ valueString: 'Yes' }] }],
        } as Resource;
      },
      path: 'QuestionnaireResponse.item[0].linkId',
    },
    {
      label: 'a narrative that is not XHTML',
      make: () => {
        const comp = good().r.composition!;
        return {
          ...comp,
          section: [{ ...comp.section![0]!, text: { status: 'generated', div: '<p>notes</p>' } }],
        };
      },
      path: 'Composition.section[0].text.div',
    },
    {
      label: 'a message whose first entry is not the MessageHeader',
      make: () => {
        const b = message(good().input);
        return { ...b, entry: [...b.entry!.slice(1), b.entry![0]!] };
      },
      path: 'Bundle.entry[0].resource',
    },
    {
      label: 'a message that leaves out the Patient its ServiceRequest points at',
      make: () => {
        const b = message(good().input);
        return { ...b, entry: b.entry!.filter((e) => e.resource!.resourceType !== 'Patient') };
      },
      path: 'Bundle.entry[1].resource.subject.reference',
    },
    {
      label: 'a document with the same fullUrl twice',
      make: () => {
        const { input, c } = good();
        const b = caseDocumentBundle(input, c.caseId)!;
        const i = entryIndex(b, 'Encounter');
        b.entry![i]!.fullUrl = b.entry![0]!.fullUrl;
        return b;
      },
      path: 'Bundle.entry[2].fullUrl',
    },
    {
      label: 'a broken Patient inside a document',
      make: () => {
        const { input, c } = good();
        const b = caseDocumentBundle(input, c.caseId)!;
        const i = entryIndex(b, 'Patient');
        (b.entry![i]!.resource as { identifier: { value: string }[] }).identifier[0]!.value = '9990000019';
        return b;
      },
      path: 'Bundle.entry[1].resource.identifier[0].value',
    },
  ];

  it('the corpus is large enough and each item starts from a valid resource', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(10);
    const { input, c, r, patient } = good();
    for (const res of [
      patient,
      ...everyResource(input),
      message(input),
      caseDocumentBundle(input, c.caseId)!,
    ])
      expect(outgoingIssues(res), `${res.resourceType}/${res.id}`).toEqual([]);
    expect(r.observations).toHaveLength(8);
  });

  it.each(CORPUS)('$label → refused naming $path', ({ make, path }) => {
    const resource = make();
    const paths = outgoingIssues(resource).map((i) => i.path);
    expect(paths).toContain(path);
    let thrown: unknown;
    try {
      validateOutgoing(resource);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidFhirResourceError);
    expect((thrown as InvalidFhirResourceError).issues.map((i) => i.path)).toContain(path);
    // The refusal names fields, never the values that were wrong.
    expect((thrown as Error).message).not.toMatch(/9990000019|b86001!|NYW0100|1950-13-45/);
  });

  it('a refusal becomes a visible error naming the fields: a 500 OperationOutcome, one issue per field', () => {
    const broken = CORPUS.slice(0, 2).map((c) => c.make());
    let thrown: unknown;
    try {
      validateOutgoing(broken[0]!);
    } catch (error) {
      thrown = error;
    }
    const problem = toProblem(thrown);
    expect(problem).toMatchObject({ status: 500, code: 'invalid_fhir_resource' });
    const outcome = operationOutcomeOf(problem);
    expect(outcome.issue!.map((i) => i.expression?.[0])).toContain('Patient.identifier[0].value');
    expect(outcome.issue!.every((i) => i.severity === 'fatal' && i.code === 'exception')).toBe(true);
    expect(JSON.stringify(outcome)).not.toContain('9990000019');
  });
});
