/**
 * Code systems, identifier systems and extension URLs the FHIR mapping uses. National ones are
 * those UK Core and the NHS publish; where no national system exists for a Holdfast concept
 * (a case, a user, a protocol node) the system is under HOLDFAST_SYSTEM_BASE, a reserved `.example`
 * domain, so nobody mistakes it for a national code.
 */

export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
export const ODS_ORGANISATION_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const ODS_SITE_SYSTEM = 'https://fhir.nhs.uk/Id/ods-site-code';

/** UK Core: how far the NHS number was checked against the national service (PDS). */
export const NHS_NUMBER_VERIFICATION_EXTENSION =
  'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus';
export const NHS_NUMBER_VERIFICATION_SYSTEM =
  'https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland';
export const NHS_NUMBER_VERIFICATION_CODES = {
  '01': 'Number present and verified',
  '02': 'Number present but not traced',
  '03': 'Trace required',
  '04': 'Trace attempted - No match or multiple match found',
  '05': 'Trace needs to be resolved - (NHS Number or patient detail conflict)',
  '06': 'Trace in progress',
  '07': 'Number not present and trace not required',
  '08': 'Trace postponed (baby under six weeks old)',
} as const;
export type NhsNumberVerificationCode = keyof typeof NHS_NUMBER_VERIFICATION_CODES;

export const NOMINATED_PHARMACY_EXTENSION =
  'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NominatedPharmacy';

/** Booking and Referral Standard message events. */
export const BARS_MESSAGE_EVENTS_SYSTEM = 'https://fhir.nhs.uk/CodeSystem/message-events-bars';

export const SNOMED = 'http://snomed.info/sct';
export const LOINC = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';
export const OBSERVATION_CATEGORY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const FLAG_CATEGORY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/flag-category';
export const ACT_CODE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
export const RFC_3986 = 'urn:ietf:rfc:3986';

export const HOLDFAST_SYSTEM_BASE = 'https://holdfast.example/fhir';
export const HOLDFAST_PROVIDER_SYSTEM = `${HOLDFAST_SYSTEM_BASE}/Id/provider`;
export const HOLDFAST_SITE_SYSTEM = `${HOLDFAST_SYSTEM_BASE}/Id/site`;
export const HOLDFAST_USER_SYSTEM = `${HOLDFAST_SYSTEM_BASE}/Id/user`;
export const HOLDFAST_CASE_SYSTEM = `${HOLDFAST_SYSTEM_BASE}/Id/case`;
export const HOLDFAST_ROLE_SYSTEM = `${HOLDFAST_SYSTEM_BASE}/CodeSystem/role`;
export const HOLDFAST_DISPOSITION_SYSTEM = `${HOLDFAST_SYSTEM_BASE}/CodeSystem/disposition-dx`;
export const HOLDFAST_NOTE_KIND_SYSTEM = `${HOLDFAST_SYSTEM_BASE}/CodeSystem/special-note-kind`;
export const HOLDFAST_NEWS2_PARAMETER_SYSTEM = `${HOLDFAST_SYSTEM_BASE}/CodeSystem/news2-parameter`;
export const HOLDFAST_ENDPOINT_BASE = `${HOLDFAST_SYSTEM_BASE}/Endpoint`;

/** NEWS2 total score (RCP 2017), as UK Core's NEWS2 examples code it. */
export const NEWS2_TOTAL_SNOMED = {
  system: SNOMED,
  code: '1104051000000101',
  display: 'Royal College of Physicians NEWS2 (National Early Warning Score 2) total score',
};

/** "Report of clinical encounter": the type of the case's document. */
export const ENCOUNTER_REPORT_SNOMED = {
  system: SNOMED,
  code: '371531000',
  display: 'Report of clinical encounter',
};
