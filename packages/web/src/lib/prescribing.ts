import type {
  CheckResult,
  Formulary,
  Medicine,
  Override,
  PrescriptionCheckKind,
  PrescriptionDraft,
} from '@holdfast/core';
import { useQuery } from '@tanstack/react-query';
import { api } from './api.ts';

/**
 * Emergency prescribing (C9) as the screens need it: every call to the prescribing routes of
 * CONTRACT-18 and the JSON shapes they answer with, in one place so they are easy to reconcile
 * with the server.
 */

export const PRESCRIBE_PERMISSION = 'cases.prescribe' as const;

export type FactSource = 'caller' | 'record' | 'clinician';
export const FACT_SOURCE_WORDS: Record<FactSource, string> = {
  caller: 'The caller',
  record: 'The patient’s record',
  clinician: 'A clinician',
};

export interface FactView {
  id: string;
  text: string;
  source: FactSource;
  reportedBy: string;
  recordedBy: string;
  atMs: number;
}
export interface AllergyView extends FactView {
  allergen?: string;
  allergyClass?: string | null;
}
export interface MedicationView extends FactView {
  name?: string;
  code?: string | null;
}
export interface AllergiesMedication {
  allergies: AllergyView[];
  medication: MedicationView[];
}

export interface FormularyAnswer {
  formulary: Omit<Formulary, 'medicines'>;
  medicines: Medicine[];
}

export type PrescriptionState =
  'queued' | 'sent' | 'received' | 'dispensed' | 'rejected' | 'failed' | 'cancelled' | 'printed';

export interface PrescriptionView {
  prescriptionId: string;
  caseId: string;
  shortFormId: string;
  medicine: {
    code: string;
    name: string;
    form: string;
    strength: string;
    route: string;
    schedule: number | null;
  };
  /** As sent, without the medicine (that is `medicine.code`). */
  draft: Omit<PrescriptionDraft, 'medicineCode'>;
  checks: CheckResult[];
  overrides: Override[];
  pharmacy: { odsCode: string; name: string; endpointId: string | null };
  route: 'message' | 'paper';
  atMs: number;
  state: PrescriptionState;
  stateText: string;
}

export type PharmacyChoice = 'nominated' | { odsCode: string } | { serviceId: string };

export const CHECK_WORDS: Record<PrescriptionCheckKind, string> = {
  allergy: 'Allergy',
  dose: 'Dose for age and weight',
  max_daily: 'Maximum daily dose',
  duplicate: 'Duplicate therapy',
  interaction: 'Interactions with current medication',
  controlled: 'Controlled drug rules',
  pregnancy: 'Pregnancy',
  age: 'Age',
  renal: 'Kidney function',
  duration: 'Duration',
};

/** States in which the pharmacy has not answered: the screen keeps asking the server. */
export const WAITING_STATES: readonly PrescriptionState[] = ['queued', 'sent'];

export function useFormulary(enabled = true) {
  return useQuery({
    queryKey: ['formulary'],
    queryFn: () => api<FormularyAnswer>('GET', '/api/v1/formulary'),
    staleTime: 300_000,
    enabled,
  });
}

export function useAllergiesMedication(patientId: string | null) {
  return useQuery({
    queryKey: ['allergies-medication', patientId],
    queryFn: () => api<AllergiesMedication>('GET', `/api/v1/patients/${patientId}/allergies-medication`),
    enabled: !!patientId,
  });
}

export function usePrescriptions(caseId: string) {
  return useQuery({
    queryKey: ['prescriptions', caseId],
    queryFn: () => api<{ prescriptions: PrescriptionView[] }>('GET', `/api/v1/cases/${caseId}/prescriptions`),
    // Until the pharmacy answers, ask again: "received" is shown only once the server says so.
    refetchInterval: (q) =>
      q.state.data?.prescriptions.some((p) => WAITING_STATES.includes(p.state)) ? 1500 : false,
  });
}

export const recordAllergy = (
  patientId: string,
  body: {
    allergen: string;
    allergyClass?: string;
    reaction?: string;
    source: FactSource;
    reportedBy: string;
  },
) => api<{ allergyId: string }>('POST', `/api/v1/patients/${patientId}/allergies`, body);

export const removeAllergy = (patientId: string, allergyId: string, reason: string) =>
  api('POST', `/api/v1/patients/${patientId}/allergies/${allergyId}/remove`, { reason });

export const recordMedication = (
  patientId: string,
  body: { name: string; code?: string; dose?: string; source: FactSource; reportedBy: string },
) => api<{ medicationId: string }>('POST', `/api/v1/patients/${patientId}/medication`, body);

export const stopMedication = (patientId: string, medicationId: string, reason: string) =>
  api('POST', `/api/v1/patients/${patientId}/medication/${medicationId}/stop`, { reason });

export const sendPrescription = (
  caseId: string,
  body: {
    draft: PrescriptionDraft;
    overrides: Override[];
    pharmacy: PharmacyChoice;
    weightKg?: number | null;
    pregnant?: boolean | null;
  },
) => api<{ prescription: PrescriptionView }>('POST', `/api/v1/cases/${caseId}/prescriptions`, body);

export const cancelPrescription = (prescriptionId: string, reason: string) =>
  api<{ prescription: PrescriptionView }>('POST', `/api/v1/prescriptions/${prescriptionId}/cancel`, {
    reason,
  });

export const recordPrint = (prescriptionId: string, reason: string) =>
  api<{ prescription: PrescriptionView }>('POST', `/api/v1/prescriptions/${prescriptionId}/print`, {
    reason,
  });

export const prescriptionPdfUrl = (prescriptionId: string) => `/api/v1/prescriptions/${prescriptionId}/pdf`;
