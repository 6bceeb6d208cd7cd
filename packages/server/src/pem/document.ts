import type { PemContent } from '@holdfast/core';
import { formatLondonDateTime } from '@holdfast/core/queue/priority';
import type { Bundle, Composition, CompositionSection, Observation, Reference } from '@medplum/fhirtypes';
import {
  caseDocumentBundle,
  narrative,
  SAMPLE_NOTICE,
  type CaseBundleInput,
  type CaseInput,
} from '../fhir/mapping.ts';

/**
 * The Post Event Message's content, once: the FHIR document Bundle the practice's system takes and
 * the PDF for a practice that cannot take it are both drawn from the same sections, so they cannot
 * say different things.
 */

/** The sections of every PEM, in this order, each always present (saying "none" when empty). */
export const PEM_SECTIONS = [
  'Reason for contact',
  'Triage outcome',
  'Consultation',
  'Medicines prescribed',
  'Observations (NEWS2)',
  'Advice given',
  'Follow-up',
] as const;
export type PemSectionTitle = (typeof PEM_SECTIONS)[number];

export interface PemSection {
  title: PemSectionTitle;
  lines: string[];
  /** The resources (in the Bundle) that carry the section's coded data. */
  entries: string[];
}

export interface PemDocument {
  caseId: string;
  providerName: string;
  patient: { name: string; nhsNumber: string | null; dateOfBirth: string };
  practice: { odsCode: string; name: string | null };
  content: PemContent;
  closedAtMs: number;
  /** The triage content is sample content, not clinically validated. */
  sample: boolean;
  sections: PemSection[];
}

export function pemTypeLabel(content: PemContent): string {
  return content.type === 'for_action' ? 'For action' : 'For information';
}

/** Observations as a line each: "Respiration rate: 22 /min". */
function observationLine(o: Observation): string {
  const name = o.code.text ?? o.code.coding?.[0]?.display ?? 'Observation';
  const value = o.valueQuantity
    ? `${o.valueQuantity.value ?? ''} ${o.valueQuantity.unit ?? ''}`.trim()
    : (o.valueCodeableConcept?.text ?? '');
  const interpretation = o.interpretation?.[0]?.text ? ` (${o.interpretation[0].text})` : '';
  return `${name}: ${value}${interpretation}`;
}

export function pemSections(
  c: CaseInput,
  observations: readonly Observation[],
  content: PemContent,
  /** What was prescribed (C9), a line each: medicine, dose, quantity, pharmacy, sent/printed/cancelled. */
  prescribed: readonly string[] = [],
  /** Treatment-centre appointments (C6), a line each: kind, centre, address, local time, state. */
  appointments: readonly string[] = [],
): PemSection[] {
  const d = c.disposition;
  const triage: string[] = [];
  if (d) triage.push(`${d.dxCode}: ${d.label}`);
  if (d?.sample) triage.push(SAMPLE_NOTICE);
  if (c.triage) {
    triage.push(`Pathway ${c.triage.pathwayId} (version ${c.triage.pathwayVersion})`);
    triage.push(...c.triage.steps.map((s) => `${s.question} — ${s.answer}`));
  }
  const consultation = c.consultations.flatMap((k) => [
    `Consultation at ${formatLondonDateTime(Date.parse(k.recordedAt))}`,
    ...(
      [
        ['History', k.history],
        ['Examination', k.examination],
        ['Assessment', k.assessment],
        ['Plan', k.plan],
      ] as const
    )
      .filter(([, v]) => v)
      .map(([label, v]) => `${label}: ${v}`),
  ]);
  const advice = [
    ...(d?.careAdvice ?? []),
    ...c.consultations.flatMap((k) => (k.safetyNetting ? [`Safety netting: ${k.safetyNetting}`] : [])),
  ];
  const followUp =
    content.type === 'for_action' && content.action
      ? [`For action: ${content.action.what}.`, `By: ${formatLondonDateTime(content.action.byMs)} (UK time)`]
      : ['For information: no action is asked of the practice.'];
  const none = (lines: string[], empty: string) => (lines.length > 0 ? lines : [empty]);
  return [
    {
      title: 'Reason for contact',
      lines: [
        `Presenting complaint: ${c.presentingComplaint}`,
        `Contact received ${formatLondonDateTime(Date.parse(c.receivedAt))} (UK time)`,
      ],
      entries: [`Encounter/${c.caseId}`],
    },
    {
      title: 'Triage outcome',
      lines: none(triage, 'No triage outcome recorded'),
      entries: [
        ...(d ? [`ServiceRequest/${c.caseId}`] : []),
        ...(c.triage ? [`QuestionnaireResponse/${c.caseId}`] : []),
      ],
    },
    {
      title: 'Consultation',
      lines: none(consultation, 'No clinician consultation: the case was closed on the advice given'),
      entries: [],
    },
    {
      title: 'Medicines prescribed',
      lines: none([...prescribed], 'No medicine was prescribed'),
      entries: [],
    },
    {
      title: 'Observations (NEWS2)',
      lines: none(observations.map(observationLine), 'No observations recorded'),
      entries: observations.map((o) => `Observation/${o.id!}`),
    },
    { title: 'Advice given', lines: none(advice, 'No advice recorded'), entries: [] },
    // The treatment-centre appointment (C6), where and when, on its own "Appointment:" line.
    {
      title: 'Follow-up',
      lines: [...followUp, ...appointments.map((a) => `Appointment: ${a}`)],
      entries: [],
    },
  ];
}

/**
 * The PEM as a FHIR document Bundle: the case's document from the mapping (Composition first, then
 * the patient, encounter, disposition, triage, NEWS2 observations, provider, site, clinicians), its
 * Composition given the PEM's sections and titled with the PEM's type.
 */
export function pemBundle(input: CaseBundleInput, doc: PemDocument, documentId: string): Bundle | undefined {
  const bundle = caseDocumentBundle(input, documentId);
  if (!bundle?.entry?.[0]) return undefined;
  const composition = bundle.entry[0].resource as Composition;
  const sections: CompositionSection[] = doc.sections.map((s) => ({
    title: s.title,
    text: narrative(s.lines),
    ...(s.entries.length > 0 ? { entry: s.entries.map((reference): Reference => ({ reference })) } : {}),
  }));
  bundle.entry[0].resource = {
    ...composition,
    status: 'final',
    title: `Post Event Message — ${pemTypeLabel(doc.content).toLowerCase()}`,
    section: sections,
  };
  return bundle;
}
