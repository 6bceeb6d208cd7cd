/**
 * Disposition codes the triage engine and the protocol checker know.
 *
 * THIS TABLE IS SAMPLE DATA. The authoritative Dx table is published with the IUC Aggregate Data
 * Collection specification ("Dx code mapping") and NHS Pathways content is licensed. The `Dx…` rows
 * below are the primary-care subset that is publicly documented, with their published meanings;
 * every row whose code starts with `SAMPLE-` is invented here for the sample protocols (ambulance,
 * emergency department, urgent treatment centre, urgent dental, mental health and self-care
 * outcomes the public subset does not list) and must never be reported nationally as a Dx code.
 * A licensed pack is checked against its own table (`checkPack(pack, { dxCodes })`).
 */

export const TRIAGE_DISPOSITION_KINDS = [
  'ambulance',
  'ed_utc',
  'speak_to_primary_care',
  'contact_primary_care',
  'self_care',
  'dental',
  'pharmacy',
  'other',
] as const;
export type TriageDispositionKind = (typeof TRIAGE_DISPOSITION_KINDS)[number];

export const AMBULANCE_CATEGORIES = [1, 2, 3, 4] as const;
type AmbulanceCategory = (typeof AMBULANCE_CATEGORIES)[number];

export interface DxCodeDefinition {
  code: string;
  meaning: string;
  kind: TriageDispositionKind;
  /**
   * The window the code itself fixes, in minutes. Null when the code sets no fixed clock window
   * (working days, "non-urgent", information only): the disposition then states its own.
   */
  timeframeMinutes: number | null;
  ambulanceCategory?: AmbulanceCategory;
  /** Invented for the sample protocols; not an NHS Pathways code. */
  sample: boolean;
  /** Post Event Message rules: never sent to the GP practice for these codes. */
  neverSendsPostEventMessage?: boolean;
  /**
   * For an `ed_utc` code, which service the patient is sent to: IUC ADC E04 counts only type 1/2
   * emergency departments, not urgent treatment centres (a code without it is not counted in E04).
   */
  attends?: 'emergency_department' | 'urgent_treatment_centre';
}

const HOUR = 60;

function dx(def: Omit<DxCodeDefinition, 'sample'>): DxCodeDefinition {
  return { ...def, sample: false };
}

function sampleDx(def: Omit<DxCodeDefinition, 'sample'>): DxCodeDefinition {
  return { ...def, sample: true };
}

/**
 * Ambulance windows are the Ambulance Response Programme 90th-centile standards (category 1 also
 * has a 7-minute mean, category 2 an 18-minute mean).
 */
const AMBULANCE_WINDOW_MINUTES: Record<AmbulanceCategory, number> = { 1: 15, 2: 40, 3: 120, 4: 180 };

// One row per code, so the table reads as a table.
// prettier-ignore
export const DX_CODES: readonly DxCodeDefinition[] = [
  // Publicly documented primary-care subset (NHS Pathways Dx codes).
  dx({ code: 'Dx05', meaning: 'Contact a primary care service within 2 hours', kind: 'contact_primary_care', timeframeMinutes: 2 * HOUR }),
  dx({ code: 'Dx06', meaning: 'Contact a primary care service within 6 hours', kind: 'contact_primary_care', timeframeMinutes: 6 * HOUR }),
  dx({ code: 'Dx07', meaning: 'Contact a primary care service within 12 hours', kind: 'contact_primary_care', timeframeMinutes: 12 * HOUR }),
  dx({ code: 'Dx08', meaning: 'Contact a primary care service within 24 hours', kind: 'contact_primary_care', timeframeMinutes: 24 * HOUR }),
  dx({ code: 'Dx09', meaning: 'Persistent symptoms: non-urgent GP appointment', kind: 'contact_primary_care', timeframeMinutes: null }),
  dx({ code: 'Dx10', meaning: 'Contact own GP for a non-urgent appointment', kind: 'contact_primary_care', timeframeMinutes: null }),
  dx({ code: 'Dx11', meaning: 'Speak to a primary care service within 1 hour', kind: 'speak_to_primary_care', timeframeMinutes: 1 * HOUR }),
  dx({ code: 'Dx12', meaning: 'Speak to a primary care service within 2 hours', kind: 'speak_to_primary_care', timeframeMinutes: 2 * HOUR }),
  dx({ code: 'Dx13', meaning: 'Speak to a primary care service within 6 hours', kind: 'speak_to_primary_care', timeframeMinutes: 6 * HOUR }),
  dx({ code: 'Dx14', meaning: 'Speak to a primary care service within 12 hours', kind: 'speak_to_primary_care', timeframeMinutes: 12 * HOUR }),
  dx({ code: 'Dx15', meaning: 'Speak to a primary care service within 24 hours', kind: 'speak_to_primary_care', timeframeMinutes: 24 * HOUR }),
  dx({ code: 'Dx75', meaning: 'Own GP within 3 working days', kind: 'contact_primary_care', timeframeMinutes: null }),
  dx({ code: 'Dx81', meaning: 'Repeat prescription needed next working day', kind: 'contact_primary_care', timeframeMinutes: null }),
  dx({ code: 'Dx115', meaning: 'Own GP next working day', kind: 'contact_primary_care', timeframeMinutes: null }),
  dx({ code: 'Dx117', meaning: 'Speak to a primary care service within 1 hour, palliative care', kind: 'speak_to_primary_care', timeframeMinutes: 1 * HOUR }),
  dx({ code: 'Dx22', meaning: 'Dental service within 3 working days', kind: 'dental', timeframeMinutes: null, neverSendsPostEventMessage: true }),
  dx({ code: 'Dx23', meaning: 'Orthodontist', kind: 'dental', timeframeMinutes: null, neverSendsPostEventMessage: true }),
  dx({ code: 'Dx28', meaning: 'Pharmacist', kind: 'pharmacy', timeframeMinutes: null, neverSendsPostEventMessage: true }),
  dx({ code: 'Dx45', meaning: 'Information only', kind: 'other', timeframeMinutes: null, neverSendsPostEventMessage: true }),
  dx({ code: 'Dx46', meaning: 'Information only', kind: 'other', timeframeMinutes: null, neverSendsPostEventMessage: true }),
  dx({ code: 'Dx52', meaning: 'Police', kind: 'other', timeframeMinutes: null, neverSendsPostEventMessage: true }),
  dx({ code: 'Dx60', meaning: 'Optician', kind: 'other', timeframeMinutes: null, neverSendsPostEventMessage: true }),
  dx({ code: 'Dx63', meaning: 'Flu line', kind: 'other', timeframeMinutes: null, neverSendsPostEventMessage: true }),

  // SAMPLE codes: invented for the sample protocols. Not NHS Pathways codes.
  sampleDx({ code: 'SAMPLE-AMB-C1', meaning: 'Emergency ambulance response, category 1 (life-threatening)', kind: 'ambulance', timeframeMinutes: AMBULANCE_WINDOW_MINUTES[1], ambulanceCategory: 1 }),
  sampleDx({ code: 'SAMPLE-AMB-C2', meaning: 'Emergency ambulance response, category 2 (emergency)', kind: 'ambulance', timeframeMinutes: AMBULANCE_WINDOW_MINUTES[2], ambulanceCategory: 2 }),
  sampleDx({ code: 'SAMPLE-AMB-C3', meaning: 'Ambulance response, category 3 (urgent)', kind: 'ambulance', timeframeMinutes: AMBULANCE_WINDOW_MINUTES[3], ambulanceCategory: 3 }),
  sampleDx({ code: 'SAMPLE-AMB-C4', meaning: 'Ambulance response, category 4 (less urgent)', kind: 'ambulance', timeframeMinutes: AMBULANCE_WINDOW_MINUTES[4], ambulanceCategory: 4 }),
  sampleDx({ code: 'SAMPLE-ED-1H', meaning: 'Attend an emergency department within 1 hour', kind: 'ed_utc', timeframeMinutes: 1 * HOUR, attends: 'emergency_department' }),
  sampleDx({ code: 'SAMPLE-ED-4H', meaning: 'Attend an emergency department within 4 hours', kind: 'ed_utc', timeframeMinutes: 4 * HOUR, attends: 'emergency_department' }),
  sampleDx({ code: 'SAMPLE-UTC-4H', meaning: 'Attend an urgent treatment centre within 4 hours', kind: 'ed_utc', timeframeMinutes: 4 * HOUR, attends: 'urgent_treatment_centre' }),
  sampleDx({ code: 'SAMPLE-DENTAL-4H', meaning: 'Speak to a dental service within 4 hours', kind: 'dental', timeframeMinutes: 4 * HOUR, neverSendsPostEventMessage: true }),
  sampleDx({ code: 'SAMPLE-DENTAL-24H', meaning: 'Speak to a dental service within 24 hours', kind: 'dental', timeframeMinutes: 24 * HOUR, neverSendsPostEventMessage: true }),
  sampleDx({ code: 'SAMPLE-MH-1H', meaning: 'Speak to a mental health crisis service within 1 hour', kind: 'other', timeframeMinutes: 1 * HOUR }),
  sampleDx({ code: 'SAMPLE-SELFCARE', meaning: 'Self-care at home; no service needed now', kind: 'self_care', timeframeMinutes: null }),
];

export type DxCodeTable = ReadonlyMap<string, DxCodeDefinition>;

export function dxCodeTable(definitions: readonly DxCodeDefinition[]): DxCodeTable {
  const table = new Map<string, DxCodeDefinition>();
  for (const def of definitions) {
    if (table.has(def.code)) throw new Error(`Dx code ${def.code} is defined twice`);
    table.set(def.code, def);
  }
  return table;
}

/** The table the sample pack is checked against (see the note at the top: sample data). */
export const SAMPLE_DX_CODES: DxCodeTable = dxCodeTable(DX_CODES);
